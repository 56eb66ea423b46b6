package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// transport is the upstream HostClient's RoundTripper. It is fasthttp's own
// round trip for the way the proxy configures its client (no per-request
// timeout, no read or write deadline: headerConn's watchdog bounds the wait
// for the header), with one difference: where the response body goes, which
// it decides once the header is in.
//
//   - A body of declared length up to smallBody is read into the response
//     before the round trip returns, and the connection goes back to the
//     pool at once. The proxy hands its caller the client's own response
//     (roundTrip), so the upstream's answer is read straight into what the
//     client gets: no second Response, no header copy, no stream.
//   - Any other body (larger, chunked, or ended by the connection's close)
//     stays on the connection: the response gets an *upstreamBody that the
//     client's response relays as it is written, and the connection is
//     pooled or closed when that stream is closed.
//
// fasthttp makes that choice before the header is read, for every response
// of a client (HostClient.StreamResponseBody): buffering every body would hold
// a download whole in memory and never finish an event stream, and
// streaming every body cost the usual small answer four allocations, a
// mutex, a second Response and a header copy (together about 7 % of the
// proxy's CPU per request, measured in paired rounds; docs/benchmarks.md).
//
// The response's RemoteAddr and LocalAddr are not set (fasthttp's transport
// sets them); the proxy does not read them.
type transport struct{}

// maxInterim bounds the informational (1xx) answers skipped before the
// final one, as fasthttp does.
const maxInterim = 100

var errTooManyInterim = errors.New("the upstream sent more than 100 informational (1xx) answers before its response")

func (transport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	cc, conn, err := conns.acquire(hc, req.ConnectionClose())
	if err != nil {
		return false, err
	}
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		// A pooled connection the upstream had closed: the caller's
		// RetryIfErr decides whether to try a fresh one.
		conns.close(hc, cc)
		return true, err
	}

	br := hc.AcquireReader(conn)
	if err := readHeader(&resp.Header, br); err != nil {
		hc.ReleaseReader(br)
		conns.close(hc, cc)
		return true, err
	}
	if h, ok := conn.(*headerConn); ok {
		h.headerIn()
	}
	closeConn := req.ConnectionClose() || resp.ConnectionClose()
	size := resp.Header.ContentLength()
	noBody := resp.SkipBody || req.Header.IsHead() || bodyless(resp.StatusCode())
	if noBody || (size >= 0 && size <= smallBody) {
		if !noBody {
			if err := resp.ReadBody(br, smallBody); err != nil {
				// The upstream answered and broke off: not retried (that is
				// for a pooled connection it had closed before answering).
				hc.ReleaseReader(br)
				conns.close(hc, cc)
				return false, fmt.Errorf("reading the upstream's %d-byte body: %w", size, err)
			}
		}
		hc.ReleaseReader(br)
		if closeConn {
			conns.close(hc, cc)
		} else {
			conns.release(hc, cc)
		}
		return false, nil
	}

	b := upstreamBodyPool.Get().(*upstreamBody) //nolint:forcetypeassert // pool holds only *upstreamBody
	b.hc, b.cc, b.br = hc, cc, br
	// A body ended by the close of the connection leaves nothing to reuse.
	b.reuse = !closeConn && size != -2
	// fasthttp's stream reader (Content-Length or chunked framing) is set up
	// on a Response of the body's own, so that putting the stream on resp
	// does not close it; that Response hands it back to fasthttp's pool when
	// the body is closed.
	b.frame.Header.SetContentLength(size)
	b.frame.StreamBody = true
	if err := b.frame.ReadBody(br, 0); err != nil {
		b.release(err)
		return false, err
	}
	b.r = b.frame.BodyStream()
	if size < 0 {
		size = -1 // relayed chunked
	}
	resp.SetBodyStream(b, size)
	return false, nil
}

// conns reaches the HostClient's connection pool. fasthttp exports the
// methods (AcquireConn, ReleaseConn, CloseConn) but not the connection's
// type, so a RoundTripper cannot name it to keep it in a struct: the
// methods are taken as method expressions, their connection type inferred,
// and the connection carried as an any (a pointer: no allocation).
var conns = newConnPool((*fasthttp.HostClient).AcquireConn, (*fasthttp.HostClient).ReleaseConn, (*fasthttp.HostClient).CloseConn)

type connPool struct {
	acquire func(hc *fasthttp.HostClient, connectionClose bool) (cc any, conn net.Conn, err error)
	release func(hc *fasthttp.HostClient, cc any)
	close   func(hc *fasthttp.HostClient, cc any)
}

func newConnPool[C interface{ Conn() net.Conn }](
	acquire func(*fasthttp.HostClient, time.Duration, bool) (C, error),
	release, closeConn func(*fasthttp.HostClient, C),
) connPool {
	return connPool{
		acquire: func(hc *fasthttp.HostClient, connectionClose bool) (any, net.Conn, error) {
			cc, err := acquire(hc, 0, connectionClose)
			if err != nil {
				return nil, nil, err
			}
			return cc, cc.Conn(), nil
		},
		release: func(hc *fasthttp.HostClient, cc any) { release(hc, cc.(C)) },   //nolint:forcetypeassert // only C is stored
		close:   func(hc *fasthttp.HostClient, cc any) { closeConn(hc, cc.(C)) }, //nolint:forcetypeassert // only C is stored
	}
}

// readHeader reads the final response's header, skipping informational
// answers other than 101 Switching Protocols, as fasthttp's
// Response.ReadLimitBody does.
func readHeader(h *fasthttp.ResponseHeader, br *bufio.Reader) error {
	if err := h.Read(br); err != nil {
		return err
	}
	for n := 0; ; n++ {
		if s := h.StatusCode(); s < 100 || s > 199 || s == fasthttp.StatusSwitchingProtocols {
			return nil
		}
		if n >= maxInterim {
			return errTooManyInterim
		}
		if err := h.Read(br); err != nil {
			return err
		}
	}
}

// bodyless reports whether a response with this status has no body
// whatever its header says (RFC 9110, section 6.4.1).
func bodyless(status int) bool {
	return status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified
}

// upstreamBody is a response body read from the upstream connection as the
// client's response is written. It counts the bytes and remembers an
// upstream read error; when fasthttp closes it (after the last byte, or on
// a client write error) it pools the connection if the body was read to its
// end and nothing failed, closes it otherwise, and reports to the exchange's
// StreamObserver (set by the proxy after the round trip).
//
// It is read and closed by one goroutine at a time: the client connection's
// (fasthttp writes a response and then closes its body stream).
type upstreamBody struct {
	hc    *fasthttp.HostClient
	cc    any // fasthttp's connection, see conns
	br    *bufio.Reader
	frame fasthttp.Response // holds fasthttp's stream reader, see RoundTrip
	r     io.Reader
	reuse bool

	// Set by the proxy once the round trip returned (roundTrip); nil x
	// when the body was not the proxy's to relay.
	x   *exchange
	obs StreamObserver

	n      int64
	eof    bool
	upErr  error
	closed bool
}

var upstreamBodyPool = sync.Pool{New: func() any { return new(upstreamBody) }}

func (b *upstreamBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && b.upErr == nil:
		b.upErr = err
	}
	return n, err
}

// CloseWithError is called by fasthttp once the body has been written, with
// the write error if writing failed. It deliberately does not implement
// io.Closer as well: fasthttp would then call both.
func (b *upstreamBody) CloseWithError(werr error) error {
	if b.closed {
		return nil
	}
	b.closed = true
	clientErr := werr
	if clientErr != nil && b.upErr != nil && errors.Is(clientErr, b.upErr) {
		// The write failed because the read failed: the upstream's fault.
		clientErr = nil
	}
	cause := b.upErr
	if cause == nil {
		cause = clientErr
	}
	x, obs, n, upErr := b.x, b.obs, b.n, b.upErr
	b.release(cause)
	if obs != nil {
		obs.StreamDone(n, upErr, clientErr)
	}
	if x != nil {
		x.release()
	}
	return nil
}

// release gives the connection back (pooled only after a clean read to the
// end), the stream reader and read buffer to fasthttp, and b to its pool.
func (b *upstreamBody) release(cause error) {
	b.frame.Reset() // closing the stream reader hands it back to fasthttp
	b.hc.ReleaseReader(b.br)
	if b.reuse && b.eof && cause == nil {
		conns.release(b.hc, b.cc)
	} else {
		// Unread body, a failed read or write: the connection's position
		// in the stream is unknown.
		conns.close(b.hc, b.cc)
	}
	b.hc, b.cc, b.br, b.r, b.reuse = nil, nil, nil, nil, false
	b.x, b.obs, b.n, b.eof, b.upErr, b.closed = nil, nil, 0, false, nil, false
	upstreamBodyPool.Put(b)
}

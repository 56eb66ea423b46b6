package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/gateway/httperr"
)

const (
	// maxRejectBody caps the body of a non-101 answer to an upgrade, which
	// is read whole before it is relayed.
	maxRejectBody = 1 << 20
	// tunnelCloseGrace is how long a tunnel waits, after one side finished
	// sending, for the other side to finish too before closing both.
	tunnelCloseGrace = 5 * time.Second
)

// isWebSocketUpgrade reports whether the request asks to switch to the
// WebSocket protocol (RFC 6455 section 4.1).
func isWebSocketUpgrade(h *fasthttp.RequestHeader) bool {
	if !h.IsGet() {
		return false
	}
	up := h.Peek(fiber.HeaderUpgrade)
	if len(up) == 0 || !bytes.EqualFold(trimOWS(up), []byte("websocket")) {
		return false
	}
	return hasToken(h.Peek(fiber.HeaderConnection), "upgrade")
}

// hasToken reports whether a comma-separated header value lists tok
// (lower-case), ignoring case.
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		if i < 0 {
			i = len(v)
		}
		if t := trimOWS(v[:i]); len(t) == len(tok) && bytes.EqualFold(t, []byte(tok)) {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}

// serveWebSocket passes a WebSocket handshake to the upstream over a
// dedicated connection and, if the upstream switches protocols, hijacks the
// client connection and pipes bytes both ways until either side closes.
//
// The upstream sees the same request as any proxied one (identity headers
// stripped, forwarding headers set, Director applied); only Connection and
// Upgrade are kept. Frames are not inspected: once switched, Arbor is a
// byte pipe, which is what keeps it protocol-agnostic and cheap.
func (p *Proxy) serveWebSocket(c *fiber.Ctx, x *exchange) error {
	defer x.release()
	if p.closed.Load() {
		return httperr.New(http.StatusServiceUnavailable, httperr.CodeShuttingDown, "The gateway is shutting down; retry on another instance")
	}
	req := c.Request()
	up, err := p.dialRaw(c.Context())
	if err != nil {
		return UnavailableError(err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = up.Close()
		}
	}()

	// The handshake (request out, response header back) runs under the
	// response-header timeout.
	if err := up.SetDeadline(time.Now().Add(p.cfg.Upstream.ResponseHeaderTimeout)); err != nil {
		return UnavailableError(err)
	}
	req.URI().DisablePathNormalizing = true
	req.ResetBody()
	bw := bufio.NewWriterSize(up, 4096)
	if err := req.Write(bw); err != nil {
		return p.handshakeError(fmt.Errorf("writing the WebSocket handshake: %w", err))
	}
	if err := bw.Flush(); err != nil {
		return p.handshakeError(fmt.Errorf("writing the WebSocket handshake: %w", err))
	}
	br := bufio.NewReaderSize(up, 4096)
	resp := &x.resp
	defer resp.Reset() // before x.release: the pooled exchange keeps no answer
	resp.Header.SetNoDefaultContentType(true)
	if err := resp.Header.Read(br); err != nil {
		return p.handshakeError(fmt.Errorf("reading the WebSocket handshake answer: %w", err))
	}
	for n := 0; resp.StatusCode() >= 100 && resp.StatusCode() < 200 && resp.StatusCode() != http.StatusSwitchingProtocols; n++ {
		if n >= 10 {
			return UnavailableError(fmt.Errorf("upstream sent more than %d interim responses to a WebSocket handshake", n))
		}
		if err := resp.Header.Read(br); err != nil {
			return p.handshakeError(fmt.Errorf("reading the WebSocket handshake answer: %w", err))
		}
	}

	out := c.Response()
	if resp.StatusCode() != http.StatusSwitchingProtocols {
		// The upstream refused the upgrade (401, 404, …): relay its answer.
		if err := resp.ReadBody(br, maxRejectBody); err != nil {
			return p.handshakeError(fmt.Errorf("reading the upstream's refusal of a WebSocket handshake: %w", err))
		}
		resp.Header.CopyTo(&out.Header)
		filterResponseHeaders(&out.Header, x, false)
		out.SetBodyRaw(append([]byte(nil), resp.Body()...))
		return nil
	}
	if err := up.SetDeadline(time.Time{}); err != nil {
		return UnavailableError(err)
	}
	resp.Header.CopyTo(&out.Header)
	filterResponseHeaders(&out.Header, x, true)

	var owner string
	if p.cfg.TunnelOwner != nil {
		// Cloned: a string from the request (c.Query, c.Get) points into
		// buffers that fasthttp reuses; the tunnel outlives them.
		owner = strings.Clone(p.cfg.TunnelOwner(c))
	}
	t, added := p.tunnels.add(up, owner, x.slot)
	if !added {
		return httperr.New(http.StatusServiceUnavailable, httperr.CodeShuttingDown, "The gateway is shutting down; retry on another instance")
	}
	x.slot = Slot{} // the tunnel holds the client's slot now
	ok = true
	// fasthttp writes the 101 answer, then runs the hijack handler on the
	// raw connection (its buffered bytes included). If writing the answer
	// fails, the handler never runs; the tunnel then closes itself after
	// hijackStartTimeout.
	c.Context().Hijack(func(client net.Conn) { p.pipe(t, client, br) })
	return nil
}

func (p *Proxy) handshakeError(err error) *httperr.Error {
	if isTimeout(err) {
		return httperr.Wrap(err, http.StatusGatewayTimeout, httperr.CodeUpstreamTimeout, "The upstream service did not answer in time")
	}
	return UnavailableError(err)
}

// pipe copies bytes between the client and the upstream until both
// directions are done. When the upstream finishes, the client is closed at
// once (for WebSocket, the server closes the TCP connection after the close
// handshake). When the client finishes, the upstream gets a half-close and
// tunnelCloseGrace to finish its side.
func (p *Proxy) pipe(t *tunnel, client net.Conn, upReader *bufio.Reader) {
	// fasthttp's hijacked conn reads through the server's buffer (bytes the
	// client sent right after the handshake) but its Close does nothing;
	// closing has to go to the raw connection.
	raw := client
	if u, ok := client.(interface{ UnsafeConn() net.Conn }); ok {
		raw = u.UnsafeConn()
	}
	if !t.start(raw) {
		return // closed before it started
	}
	defer p.tunnels.remove(t)
	up := t.up
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.copy(up, client)
		if cw, ok := up.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = up.Close()
		}
		_ = up.SetReadDeadline(time.Now().Add(tunnelCloseGrace))
	}()
	t.copy(raw, upReader)
	_ = raw.Close()
	_ = up.Close()
	<-done
}

// hijackStartTimeout bounds the time between accepting an upgrade and
// fasthttp running the hijack handler (normally microseconds).
const hijackStartTimeout = 10 * time.Second

// tunnel is one hijacked WebSocket connection pair.
type tunnel struct {
	set     *tunnelSet
	up      net.Conn
	client  net.Conn
	timer   *time.Timer
	started bool
	closed  bool

	owner  string       // the sign-in that opened it; "" if none (tunnels.go)
	slot   Slot         // the client's MaxPerClient slot; the zero Slot if none
	active atomic.Int64 // sweeper clock of the last byte either way
}

// start records the client connection; it reports false if the tunnel was
// closed before the hijack handler ran.
func (t *tunnel) start(client net.Conn) bool {
	s := t.set
	s.mu.Lock()
	defer s.mu.Unlock()
	t.timer.Stop()
	if t.closed {
		_ = client.Close()
		_ = t.up.Close()
		return false
	}
	t.client = client
	t.started = true
	s.wg.Add(1)
	return true
}

// abandon closes a tunnel whose hijack handler never ran.
func (t *tunnel) abandon() {
	s := t.set
	s.mu.Lock()
	if t.started {
		s.mu.Unlock()
		return
	}
	t.closed = true
	s.deleteLocked(t)
	s.mu.Unlock()
	_ = t.up.Close()
}

// tunnelSet tracks open tunnels so that Close can end them, and ends
// those idle too long or whose sign-in ended (tunnels.go).
type tunnelSet struct {
	mu     sync.Mutex
	m      map[*tunnel]struct{}
	closed bool
	wg     sync.WaitGroup

	owners  map[string]int // open tunnels per owner
	limiter *ClientLimiter
	sweeper tunnelSweeper
}

func (s *tunnelSet) add(up net.Conn, owner string, slot Slot) (*tunnel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	t := &tunnel{set: s, up: up, owner: owner, slot: slot}
	t.active.Store(s.sweeper.now())
	t.timer = time.AfterFunc(hijackStartTimeout, t.abandon)
	s.m[t] = struct{}{}
	if owner != "" {
		s.owners[owner]++
	}
	return t, true
}

// deleteLocked forgets t and returns what it held. Called with s.mu held.
func (s *tunnelSet) deleteLocked(t *tunnel) {
	if _, ok := s.m[t]; !ok {
		return
	}
	delete(s.m, t)
	if t.owner != "" {
		if n := s.owners[t.owner] - 1; n > 0 {
			s.owners[t.owner] = n
		} else {
			delete(s.owners, t.owner)
		}
	}
	t.slot.Release()
	t.slot = Slot{}
}

// remove is called when a started tunnel's pipe has ended.
func (s *tunnelSet) remove(t *tunnel) {
	s.mu.Lock()
	s.deleteLocked(t)
	started := t.started
	s.mu.Unlock()
	if started {
		s.wg.Done()
	}
}

func (s *tunnelSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// closeAll refuses new tunnels, closes both ends of every open one and waits
// until the goroutines of started ones are gone.
func (s *tunnelSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	for t := range s.m {
		s.closeLocked(t)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

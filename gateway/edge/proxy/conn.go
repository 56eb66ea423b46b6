package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// dialError marks a failure to open a connection to the upstream, so that it
// can be told apart from a failure on an established one: the first means the
// upstream is down or refusing (502), the second may be a timeout (504).
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial upstream: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dialRaw opens a TCP (and, for an https upstream, TLS) connection to the
// upstream within the dial timeout.
func (p *Proxy) dialRaw(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Upstream.DialTimeout)
	defer cancel()
	conn, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, &dialError{err: err}
	}
	if p.tlsConfig == nil {
		return conn, nil
	}
	tc := tls.Client(conn, p.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, &dialError{err: fmt.Errorf("TLS handshake with %s: %w", p.addr, err)}
	}
	return tc, nil
}

// dial is the HostClient's Dial. The connection is registered with the
// header watchdog (see headerConn).
func (p *Proxy) dial(string) (net.Conn, error) {
	conn, err := p.dialRaw(context.Background())
	if err != nil {
		return nil, err
	}
	hc := &headerConn{Conn: conn, w: &p.watchdog}
	p.watchdog.add(hc)
	return hc, nil
}

// headerConn enforces the upstream's response-header timeout.
//
// # Why not a read deadline
//
// fasthttp's HostClient knows one read timeout, ReadTimeout, which it arms
// before reading a response and which then stays armed while a streamed body
// is read. A proxy needs something else: the upstream must start answering
// within ResponseHeaderTimeout, but the body may take as long as it takes (a
// download, an event stream open for hours). Re-arming and clearing a read
// deadline around every response would also cost two timer updates per
// request, which showed up as several percent of the proxy's CPU.
//
// So the connection notes, with one atomic store, when it last sent request
// bytes (the upstream's clock starts when the request is out), and the
// proxy's transport clears the note when it has read a response header
// (headerIn). A single watchdog goroutine per proxy looks at all
// connections a few times per timeout period and closes those that have
// waited too long; the read then fails with a timeout error (504). The
// timeout is thus enforced late by at most two ticks of a tenth of it (a
// tick is at least 10 ms, at most 1 s), never early.
//
// The note is cleared by the transport, which parses the header anyway,
// rather than by scanning every read for the blank line that ends a
// header: that scan looked at each byte of every response a second time.
// Like net/http's ResponseHeaderTimeout, the wait is for the final header:
// informational (1xx) answers before it do not end it. The proxy strips
// Expect, so upstreams have no reason to send one.
type headerConn struct {
	net.Conn
	w *watchdog
	// waitingSince is the watchdog clock (ns) when the request was sent and
	// no response header has been seen since; 0 when not waiting.
	waitingSince atomic.Int64
	timedOut     atomic.Bool
	closed       atomic.Bool
}

// errHeaderTimeout is what reads return after the watchdog closed the
// connection. It is a net.Error with Timeout() true, like an expired
// deadline, so that fasthttp and isTimeout classify it as a timeout.
var errHeaderTimeout error = headerTimeoutError{}

type headerTimeoutError struct{}

func (headerTimeoutError) Error() string   { return "no response header from the upstream in time" }
func (headerTimeoutError) Timeout() bool   { return true }
func (headerTimeoutError) Temporary() bool { return true }
func (headerTimeoutError) Unwrap() error   { return os.ErrDeadlineExceeded }

func (c *headerConn) Write(b []byte) (int, error) {
	c.waitingSince.Store(c.w.now())
	n, err := c.Conn.Write(b)
	if err != nil && c.timedOut.Load() {
		err = errHeaderTimeout
	}
	return n, err
}

func (c *headerConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.timedOut.Load() {
		err = errHeaderTimeout
	}
	return n, err
}

func (c *headerConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.w.remove(c)
	}
	return c.Conn.Close()
}

// watchdog closes upstream connections whose response header is overdue.
type watchdog struct {
	timeout int64 // ns
	tick    time.Duration
	base    time.Time
	clock   atomic.Int64 // ns since base, advanced every tick; never 0
	mu      sync.Mutex
	conns   map[*headerConn]struct{}
	stop    chan struct{}
	done    chan struct{}
}

func (w *watchdog) start(timeout time.Duration) {
	w.timeout = int64(timeout)
	w.tick = min(max(timeout/10, 10*time.Millisecond), time.Second)
	w.base = time.Now()
	w.clock.Store(1)
	w.conns = make(map[*headerConn]struct{})
	w.stop = make(chan struct{})
	w.done = make(chan struct{})
	go w.loop()
}

// now is the watchdog's clock, coarse (one tick) but free to read.
func (w *watchdog) now() int64 { return w.clock.Load() }

func (w *watchdog) add(c *headerConn) {
	w.mu.Lock()
	w.conns[c] = struct{}{}
	w.mu.Unlock()
}

func (w *watchdog) remove(c *headerConn) {
	w.mu.Lock()
	delete(w.conns, c)
	w.mu.Unlock()
}

func (w *watchdog) loop() {
	defer close(w.done)
	t := time.NewTicker(w.tick)
	defer t.Stop()
	var expired []*headerConn
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		now := int64(time.Since(w.base)) + 1
		w.clock.Store(now)
		expired = expired[:0]
		w.mu.Lock()
		for c := range w.conns {
			// The clock lags by up to a tick, so "since" may be up to a
			// tick before the request was sent: allow for it, so that the
			// watchdog fires late (by at most two ticks), never early.
			if since := c.waitingSince.Load(); since != 0 && now-since > w.timeout+int64(w.tick) {
				expired = append(expired, c)
			}
		}
		w.mu.Unlock()
		for i, c := range expired {
			c.timedOut.Store(true)
			_ = c.Close()
			expired[i] = nil
		}
	}
}

func (w *watchdog) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
		<-w.done
	}
}

// headerIn tells the watchdog that the response header has been read.
func (c *headerConn) headerIn() { c.waitingSince.Store(0) }

// isTimeout reports whether err is a deadline or timeout error.
func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, fasthttp.ErrDialTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

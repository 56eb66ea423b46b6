package gateway

import (
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/gateway/edge/proxy"
)

// connTracker enforces ReadTimeout (receiving a request's headers) and
// IdleTimeout (a keep-alive connection waiting for its next request) on
// client connections.
//
// # Why not fasthttp's ReadTimeout and IdleTimeout
//
// fasthttp implements both with read deadlines, updated twice per request:
// once before waiting for the next request, once at its first byte. Each
// update is a timer change in the runtime; on the 2-core machine the
// gateway is measured on, the two cost about 2 µs per request, some 7% of
// a bare proxy's whole CPU budget. And fasthttp's read deadline, left armed
// while the handler runs, would also cut off a long upload.
//
// So the gateway tracks each connection's phase instead: fasthttp reports
// "active" (first byte of a request) and "idle" (response written) through
// its ConnState hook, and the entry middleware reports "handling" (headers
// complete). Each report is one atomic store. A single goroutine looks at
// all connections a few times per timeout period and closes those that have
// spent too long reading headers or idling. Timeouts are thus enforced late
// by at most two ticks (a tenth of the shorter timeout, between 10 ms and
// 1 s), never early. Once a request is being handled, the sweeper holds
// its body and its response to the minimum rates and the body to a stall
// of at most ReadTimeout (slowclients.go); Arbor's own routes also set a
// read deadline when they have a body. The same map counts open
// connections per address for MaxConnsPerAddress.
type connTracker struct {
	readTimeout int64 // ns
	idleTimeout int64 // ns
	parkAfter   int64 // ns; 0: never park (park.go)
	tick        time.Duration
	base        time.Time
	clock       atomic.Int64 // ns since base, advanced every tick

	mu    sync.Mutex
	conns map[*trackedConn]struct{}

	// Slow clients and the per-address cap (slowclients.go).
	limits                     slowLimits
	perAddr                    map[netip.Addr]int32 // open connections per address, under mu
	refused                    atomic.Uint64
	cutUploads, cutDownloads   atomic.Uint64
	lastRefusedLog, lastCutLog atomic.Int64
	// pin pins a new connection's peer in the proxy's per-client cap
	// (proxy.Proxy.PinClient), so that its requests take their slots
	// without the cap's map; nil: no proxy or no cap. Set before Serve.
	pin func(peer netip.Addr) proxy.Pin

	// Parking (park.go): serve is fasthttp's ServeConn, set by Serve.
	serve       func(net.Conn) error
	draining    atomic.Bool
	parkedConns atomic.Int64  // parked now
	unparked    atomic.Uint64 // parked connections served again
	// parksSinceRelease counts parks towards the next memory release,
	// which the sweeper schedules at releaseAt (its clock; 0: none), first
	// set at releaseFirst; releaseSeen is the count at its last look.
	parksSinceRelease atomic.Int64
	releaseAt         int64
	releaseFirst      int64
	releaseSeen       int64

	once sync.Once
	stop chan struct{}
	done chan struct{}
}

// Connection phases.
const (
	phaseReading  int32 = iota // waiting for or reading a request's headers
	phaseHandling              // headers read; a handler is running
	phaseIdle                  // response written; waiting for the next request
)

func newConnTracker(readTimeout, idleTimeout, parkAfter time.Duration) *connTracker {
	t := &connTracker{
		readTimeout: int64(readTimeout),
		idleTimeout: int64(idleTimeout),
		parkAfter:   int64(parkAfter),
		tick:        sweepTick(readTimeout, idleTimeout, parkAfter),
		base:        time.Now(),
		conns:       make(map[*trackedConn]struct{}),
		perAddr:     make(map[netip.Addr]int32),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	t.clock.Store(1)
	return t
}

// sweepTick is a tenth of the shortest period the sweeper enforces,
// between 10 ms and 1 s.
func sweepTick(readTimeout, idleTimeout, parkAfter time.Duration) time.Duration {
	d := min(readTimeout, idleTimeout)
	if parkAfter > 0 {
		d = min(d, parkAfter)
	}
	return min(max(d/10, 10*time.Millisecond), time.Second)
}

// start runs the sweeper; close stops it. Both may be called more than
// once; close without start is fine.
func (t *connTracker) start() {
	t.once.Do(func() { go t.loop() })
}

func (t *connTracker) close() {
	started := true
	t.once.Do(func() { started = false })
	select {
	case <-t.stop:
		return
	default:
	}
	close(t.stop)
	if started {
		<-t.done
	}
	t.drain()
}

func (t *connTracker) loop() {
	defer close(t.done)
	tk := time.NewTicker(t.tick)
	defer tk.Stop()
	var expired, park []*trackedConn
	for {
		select {
		case <-t.stop:
			return
		case <-tk.C:
		}
		now := int64(time.Since(t.base)) + 1
		t.clock.Store(now)
		slack := int64(t.tick) // the clock lags a phase change by up to a tick
		expired, park = expired[:0], park[:0]
		parking := t.parkAfter > 0 && !t.draining.Load()
		t.mu.Lock()
		for c := range t.conns {
			since := c.since.Load()
			switch c.phase.Load() {
			case phaseReading:
				if now-since > t.readTimeout+slack {
					c.cut.Store(cutReadTimeout)
					expired = append(expired, c)
				}
			case phaseIdle:
				if now-since > t.idleTimeout+slack {
					c.cut.Store(cutIdle)
					expired = append(expired, c)
				} else if parking && now-since > t.parkAfter && c.park.Load() == parkNone {
					park = append(park, c)
				}
			case phaseHandling:
				if r := t.slowCheck(c, now, slack); r != cutNone {
					c.cut.Store(r)
					expired = append(expired, c)
				}
			}
		}
		t.mu.Unlock()
		for i, c := range expired {
			if r := c.cut.Load(); r == cutUpload || r == cutDownload {
				t.cutConn(c, r)
			}
			_ = c.Conn.Close()
			expired[i] = nil
		}
		for i, c := range park {
			c.requestPark()
			park[i] = nil
		}
		if t.releaseDue(now) {
			go freeMemory()
		}
	}
}

// connState is fasthttp's ConnState hook.
func (t *connTracker) connState(nc net.Conn, state fasthttp.ConnState) {
	c := asTracked(nc)
	if c == nil {
		return
	}
	switch state {
	case fasthttp.StateNew, fasthttp.StateActive:
		c.set(phaseReading)
	case fasthttp.StateIdle:
		c.set(phaseIdle)
	case fasthttp.StateClosed:
		if c.leaving() {
			t.parked(c, nc)
			return
		}
		t.finished(c)
	case fasthttp.StateHijacked:
		t.finished(c)
	}
}

// finished forgets a connection on which no request can run any longer:
// fasthttp has finished with it (closed, or hijacked for a WebSocket
// tunnel, whose slot is its own), or the tracker closed it while parked.
// Its pin goes then, and not in Close, which the sweeper also calls while
// a slow request's handler may still be taking its slot through the pin.
func (t *connTracker) finished(c *trackedConn) {
	t.forget(c)
	if c.unpinned.CompareAndSwap(false, true) {
		c.pin.Unpin()
	}
}

func (t *connTracker) forget(c *trackedConn) {
	t.mu.Lock()
	if _, ok := t.conns[c]; ok {
		delete(t.conns, c)
		t.releaseLocked(c)
	}
	t.mu.Unlock()
}

// handling marks the connection of a request whose headers are complete.
func handling(nc net.Conn) {
	if c := asTracked(nc); c != nil {
		c.startRequest()
		c.set(phaseHandling)
	}
}

// trackedConn is a client connection with its phase.
type trackedConn struct {
	net.Conn
	t     *connTracker
	phase atomic.Int32
	since atomic.Int64

	rd, wr ioState      // the current request's reads and writes (slowclients.go)
	cut    atomic.Int32 // why the sweeper closed the connection
	addr   netip.Addr   // key counted in connTracker.perAddr, under t.mu
	peer   netip.Addr   // the TCP peer, read once at accept (peerAddr)
	st     *reqState    // the state of the connection's current request (newState)

	pin      proxy.Pin   // the peer's entry in the proxy's per-client cap; set at accept
	unpinned atomic.Bool // pin let go (finished)

	park     atomic.Int32 // parkNone, parkWanted, … (park.go)
	first    [1]byte      // the byte that woke a parked connection
	hasFirst bool         // first is still to be read
}

func (c *trackedConn) set(phase int32) {
	c.since.Store(c.t.clock.Load())
	c.phase.Store(phase)
}

func (c *trackedConn) tracked() *trackedConn { return c }

// trackedTLSConn keeps a TLS connection recognizable as one: fasthttp
// (RequestCtx.IsTLS) and the proxy's X-Forwarded-Proto look for these
// methods.
type trackedTLSConn struct {
	*trackedConn
	tls tlsConn
}

// tlsConn is what a TLS connection offers: *tls.Conn, or a wrapper of it
// (package edge/https).
type tlsConn interface {
	Handshake() error
	ConnectionState() tls.ConnectionState
}

func (c *trackedTLSConn) Handshake() error                     { return c.tls.Handshake() }
func (c *trackedTLSConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

func asTracked(nc net.Conn) *trackedConn {
	// The concrete type first: a plain TCP connection, asked three times
	// per request (connState twice, handling), and an interface
	// assertion costs a type-table lookup each time.
	if tc, ok := nc.(*trackedConn); ok {
		return tc
	}
	if tc, ok := nc.(interface{ tracked() *trackedConn }); ok {
		return tc.tracked()
	}
	return nil
}

// trackingListener registers every accepted connection with the tracker.
type trackingListener struct {
	net.Listener
	t *connTracker
}

func (l *trackingListener) Accept() (net.Conn, error) {
	var nc net.Conn
	c := &trackedConn{t: l.t}
	for {
		var err error
		if nc, err = l.Listener.Accept(); err != nil {
			return nil, err
		}
		peer := remoteAddr(nc)
		l.t.mu.Lock()
		ok := l.t.admitLocked(c, peer)
		if ok {
			c.Conn = nc
			c.peer = peer
			c.set(phaseReading)
			l.t.conns[c] = struct{}{}
		}
		l.t.mu.Unlock()
		if ok {
			break
		}
		// Over the per-address cap: closed before TLS or a request.
		_ = nc.Close()
		l.t.refusedConn(peer)
	}
	if l.t.pin != nil {
		c.pin = l.t.pin(c.peer)
	}
	if tc, ok := nc.(tlsConn); ok {
		return &trackedTLSConn{trackedConn: c, tls: tc}, nil
	}
	return c, nil
}

func (c *trackedConn) Close() error {
	if c.leaving() {
		return nil // parked: the socket stays open (park.go)
	}
	c.t.forget(c)
	return c.Conn.Close()
}

package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vintner/arbor/gateway/edge/proxy"
)

// Slow clients and connection caps (docs/edge.md, "Slow clients and
// connections").
//
// A client that sends its upload a byte at a time, or reads a response a
// segment at a time, holds a client connection, a goroutine and, while a
// request is proxied, an upstream connection, for as long as it likes: a
// stall timer that any byte resets does not bound it. So connTracker also
// holds each direction of the request being handled to a minimum rate,
// measured as a bucket of time: it starts full at the grace period, every
// byte that moves adds 1/rate seconds (up to the grace period), every
// moment spent waiting for the client takes time out, and the sweeper
// closes the connection when it is empty. A client may thus fall behind
// the rate by at most the grace period: a stall is cut after the grace
// period whatever came before, and a trickle at a fraction f of the rate
// after grace/(1-f).
//
// Only time spent waiting for the client counts (blocked in a read of the
// body, or in a write of the response): an upstream that is slow to
// produce (an event stream quiet for an hour) costs the client nothing.
// A rate rather than a whole-request deadline, because a legitimate upload
// or download of any size must be able to finish while a trickle must not:
// a deadline long enough for a large file is long enough for an attacker
// to hold the connection. And a bucket rather than the average since the
// start (Apache mod_reqtimeout's MinRate), because with the average a fast
// first megabyte, which the kernel's socket buffers swallow at once, would
// buy a slow reader an hour of stalling.
//
// Each Read and Write costs a few atomic operations and no system call or
// timer update; the sweeper does the rest (see connTracker). The clock is
// the sweeper's coarse one, so a check is late by at most two ticks.
//
// The per-address connection cap is checked when a connection is accepted:
// beyond it the connection is closed at once, before TLS or a request. It
// counts the TCP peer's address (an IPv6 address by its /64, which one
// subscriber usually holds whole); peers in TrustedProxies are exempt,
// since a load balancer carries many clients on its connections. Memory is
// one map entry per address with an open connection.

// slowLimits configure the tracker's slow-client checks; a zero rate or cap
// turns that check off.
type slowLimits struct {
	uploadRate   int64 // bytes per second; 0: off
	downloadRate int64 // bytes per second; 0: off
	grace        int64 // ns: the size of each direction's time bucket
	perAddr      int   // open connections per address; 0: off
	exempt       func(netip.Addr) bool
	logger       *slog.Logger
}

// Why the sweeper closed a connection.
const (
	cutNone int32 = iota
	cutUpload
	cutDownload
	cutReadTimeout
	cutIdle
)

// slowClientError is what a cut connection's Read or Write returns: a
// timeout, so that the proxy answers (and logs) it as one.
type slowClientError struct{ reason int32 }

func (e slowClientError) Error() string {
	switch e.reason {
	case cutUpload:
		return "the client sent the request body slower than the minimum upload rate; connection closed"
	case cutDownload:
		return "the client read the response slower than the minimum download rate; connection closed"
	}
	return "client connection closed"
}
func (slowClientError) Timeout() bool   { return true }
func (slowClientError) Temporary() bool { return true }

// Unwrap makes the error a net.ErrClosed too: fasthttp answers nothing on a
// connection the server closed itself.
func (slowClientError) Unwrap() error { return net.ErrClosed }

// slowErr replaces the error of a read or write on a connection the
// sweeper cut for slowness; other closes (read and idle timeouts) keep
// net.ErrClosed, on which fasthttp stays quiet.
func (c *trackedConn) slowErr(err error) error {
	if r := c.cut.Load(); r == cutUpload || r == cutDownload {
		return slowClientError{r}
	}
	return err
}

// maxWriteChunk splits large writes so that the bytes of a long write are
// credited as they go, not only at its end.
const maxWriteChunk = 16 << 10

// ioState is the per-direction accounting of a connection's current
// request.
type ioState struct {
	start  atomic.Int64 // tracker clock when the current call began; 0: not in a call
	credit atomic.Int64 // ns left in the bucket when the current call began
	bytes  atomic.Int64 // moved in this request, for the log
}

func (s *ioState) reset(grace int64) {
	s.credit.Store(grace)
	s.bytes.Store(0)
}

func (s *ioState) begin(now int64) { s.start.Store(now) }

// end closes a call that moved n bytes: the time it waited is taken out of
// the bucket and the bytes put in, up to grace.
func (s *ioState) end(now int64, n int, rate, grace int64) {
	st := s.start.Load()
	s.start.Store(0)
	s.bytes.Add(int64(n))
	if rate <= 0 || st == 0 {
		return
	}
	c := s.credit.Load() - (now - st) + int64(n)*int64(time.Second)/rate
	s.credit.Store(min(c, grace))
}

// tooSlow reports whether the direction's bucket ran out during the
// current call, or the call has been waiting longer than callLimit.
func (s *ioState) tooSlow(now, rate, callLimit, slack int64) bool {
	st := s.start.Load()
	if st == 0 {
		return false // not waiting for the client now
	}
	waited := now - st
	if callLimit > 0 && waited > callLimit+slack {
		return true
	}
	return rate > 0 && s.credit.Load()-waited < -slack
}

func (c *trackedConn) Read(b []byte) (int, error) {
	if c.hasFirst {
		return c.readFirst(b)
	}
	c.rd.begin(c.t.clock.Load())
	n, err := c.Conn.Read(b)
	c.rd.end(c.t.clock.Load(), n, c.t.limits.uploadRate, c.t.limits.grace)
	if err != nil {
		if n == 0 && c.park.Load() == parkWanted {
			return c.parkRead(b, err)
		}
		err = c.slowErr(err)
	}
	return n, err
}

func (c *trackedConn) Write(b []byte) (int, error) {
	written := 0
	for {
		chunk := b[written:]
		if len(chunk) > maxWriteChunk {
			chunk = chunk[:maxWriteChunk]
		}
		c.wr.begin(c.t.clock.Load())
		n, err := c.Conn.Write(chunk)
		c.wr.end(c.t.clock.Load(), n, c.t.limits.downloadRate, c.t.limits.grace)
		written += n
		if err != nil {
			return written, c.slowErr(err)
		}
		if written >= len(b) {
			return written, nil
		}
	}
}

// startRequest resets the accounting when a request's headers are in.
func (c *trackedConn) startRequest() {
	c.rd.reset(c.t.limits.grace)
	c.wr.reset(c.t.limits.grace)
}

// slowCheck is the sweeper's test of a connection whose request is being
// handled.
func (t *connTracker) slowCheck(c *trackedConn, now, slack int64) int32 {
	l := &t.limits
	// A request body may also stall at most ReadTimeout, with or without
	// a rate.
	if c.rd.tooSlow(now, l.uploadRate, t.readTimeout, slack) {
		return cutUpload
	}
	if c.wr.tooSlow(now, l.downloadRate, 0, slack) {
		return cutDownload
	}
	return cutNone
}

func remoteAddr(nc net.Conn) netip.Addr {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// admit counts a new connection against its address's cap; false means
// the connection must be refused. Called with t.mu held.
func (t *connTracker) admitLocked(c *trackedConn, peer netip.Addr) bool {
	if t.limits.perAddr <= 0 || !peer.IsValid() || (t.limits.exempt != nil && t.limits.exempt(peer)) {
		return true
	}
	key := proxy.ClientKey(peer)
	if t.perAddr[key] >= int32(t.limits.perAddr) {
		return false
	}
	t.perAddr[key]++
	c.addr = key
	return true
}

// releaseLocked undoes admitLocked. Called with t.mu held.
func (t *connTracker) releaseLocked(c *trackedConn) {
	if !c.addr.IsValid() {
		return
	}
	if n := t.perAddr[c.addr] - 1; n > 0 {
		t.perAddr[c.addr] = n
	} else {
		delete(t.perAddr, c.addr)
	}
	c.addr = netip.Addr{}
}

// refusedConn records a connection refused by the cap, logging at most
// one line every logEvery.
func (t *connTracker) refusedConn(peer netip.Addr) {
	t.refused.Add(1)
	t.logSampled(&t.lastRefusedLog, "connection refused: too many open connections from one address",
		slog.String("peer", peer.String()), slog.Int("max_conns_per_address", t.limits.perAddr))
}

// cutConn records a connection the sweeper closed for slowness.
func (t *connTracker) cutConn(c *trackedConn, reason int32) {
	dir, bytes := "upload", c.rd.bytes.Load()
	if reason == cutDownload {
		t.cutDownloads.Add(1)
		dir, bytes = "download", c.wr.bytes.Load()
	} else {
		t.cutUploads.Add(1)
	}
	t.logSampled(&t.lastCutLog, "slow client cut off",
		slog.String("peer", remoteAddr(c.Conn).String()), slog.String("direction", dir), slog.Int64("bytes", bytes))
}

// logEvery spaces the tracker's warnings: under attack there would be one
// per connection.
const logEvery = 10 * time.Second

func (t *connTracker) logSampled(last *atomic.Int64, msg string, attrs ...slog.Attr) {
	if t.limits.logger == nil {
		return
	}
	now := time.Now().UnixNano()
	prev := last.Load()
	if now-prev < int64(logEvery) || !last.CompareAndSwap(prev, now) {
		return
	}
	t.limits.logger.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}

// resolveSlowClients applies the defaults of the slow-client options: 0 is
// the default, -1 turns the check off (stored as 0).
func (r *resolved) resolveSlowClients(bad func(format string, args ...any)) {
	count := func(name string, v *int64, def int64) {
		switch {
		case *v == 0:
			*v = def
		case *v == -1:
			*v = 0
		case *v < 0:
			bad("%s is %d; use a positive number, 0 for the default (%d) or -1 to turn it off", name, *v, def)
		}
	}
	dur := func(name string, v *time.Duration, def time.Duration) {
		switch {
		case *v == 0:
			*v = def
		case *v == -1:
			*v = 0
		case *v < 0:
			bad("%s is %v; use a positive duration, 0 for the default (%v) or -1 to turn it off", name, *v, def)
		}
	}
	count("UploadMinRate", &r.UploadMinRate, DefaultUploadMinRate)
	count("DownloadMinRate", &r.DownloadMinRate, DefaultDownloadMinRate)
	dur("WebSocketIdleTimeout", &r.WebSocketIdleTimeout, DefaultWebSocketIdleTimeout)
	switch {
	case r.MinRateGrace == 0:
		r.MinRateGrace = DefaultMinRateGrace
	case r.MinRateGrace < 0:
		bad("MinRateGrace is %v; use a positive duration or 0 for the default (%v)", r.MinRateGrace, DefaultMinRateGrace)
	}
	perAddr, perClient := int64(r.MaxConnsPerAddress), int64(r.UpstreamMaxPerClient)
	count("MaxConnsPerAddress", &perAddr, DefaultMaxConnsPerAddress)
	count("UpstreamMaxPerClient", &perClient, DefaultUpstreamMaxPerClient)
	r.MaxConnsPerAddress, r.UpstreamMaxPerClient = int(perAddr), int(perClient)
}

// slowLimits builds the tracker's limits from the resolved options.
func (s *Server) slowLimits() slowLimits {
	o := s.opts
	return slowLimits{
		uploadRate:   o.UploadMinRate,
		downloadRate: o.DownloadMinRate,
		grace:        int64(o.MinRateGrace),
		perAddr:      o.MaxConnsPerAddress,
		exempt:       s.trusted,
		logger:       s.logger,
	}
}

// statePeer is the proxy's PeerAddr: the peer newState recorded.
func statePeer(c *fiber.Ctx) netip.Addr {
	if st := stateOf(c); st != nil {
		return st.peer
	}
	return peerAddr(c)
}

// clientKey is the proxy's ClientAddr: the client address resolved through
// TrustedProxies, as ClientIP. A request from a trusted proxy without a
// usable X-Forwarded-For counts for the proxy.
func clientKey(c *fiber.Ctx) netip.Addr {
	if a := ClientAddr(c); a.IsValid() {
		return a
	}
	return peerAddr(c) // outside the gateway's entry middleware
}

// connPin is the proxy's ConnPin: the pin the tracker took for the
// request's connection at accept.
func connPin(c *fiber.Ctx) proxy.Pin {
	if tc := asTracked(c.Context().Conn()); tc != nil {
		return tc.pin
	}
	return proxy.Pin{}
}

// registerSlowMetrics exposes the slow-client counters on /metrics.
func (s *Server) registerSlowMetrics() error {
	t := s.tracker
	cs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "arbor_connections_refused_total",
			Help: "Client connections closed at accept because their address had max_conns_per_address open.",
		}, func() float64 { return float64(t.refused.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "arbor_slow_clients_cut_total",
			Help:        "Client connections closed for sending a request body or reading a response too slowly.",
			ConstLabels: prometheus.Labels{"direction": "upload"},
		}, func() float64 { return float64(t.cutUploads.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "arbor_slow_clients_cut_total",
			Help:        "Client connections closed for sending a request body or reading a response too slowly.",
			ConstLabels: prometheus.Labels{"direction": "download"},
		}, func() float64 { return float64(t.cutDownloads.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "arbor_connections_parked",
			Help: "Idle keep-alive client connections parked outside fasthttp (server.park_idle_after), waiting for their next request.",
		}, func() float64 { return float64(t.parkedConns.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "arbor_connections_unparked_total",
			Help: "Parked client connections served again when their next request came.",
		}, func() float64 { return float64(t.unparked.Load()) }),
	}
	if p := s.proxy; p != nil {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "arbor_proxy_client_limited_total",
			Help: "Proxied requests refused 429 too_many_concurrent_requests because their client had upstream_max_per_client in progress.",
		}, func() float64 { return float64(p.Refused()) }))
	}
	for _, c := range cs {
		if err := s.registry.Register(c); err != nil {
			return fmt.Errorf("gateway: registering metrics: %w", err)
		}
	}
	return nil
}

// CloseTunnels closes the WebSocket tunnels opened under owner (see
// Options.TunnelOwner) and reports how many; call it when that sign-in
// ends.
func (s *Server) CloseTunnels(owner string) int {
	if s.proxy == nil {
		return 0
	}
	return s.proxy.CloseTunnels(owner)
}

// HasTunnels reports whether owner has an open WebSocket tunnel.
func (s *Server) HasTunnels(owner string) bool {
	return s.proxy != nil && s.proxy.HasTunnels(owner)
}

// TunnelOwners lists the owners with an open WebSocket tunnel.
func (s *Server) TunnelOwners() []string {
	if s.proxy == nil {
		return nil
	}
	return s.proxy.TunnelOwners()
}

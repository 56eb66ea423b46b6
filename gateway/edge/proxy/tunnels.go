package proxy

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"time"
)

// WebSocket tunnels end when nothing goes through them for
// TunnelIdleTimeout, and when the sign-in that opened them ends.
//
// # Idle limit
//
// A tunnel is a byte pipe: Arbor does not parse frames, so "idle" means no
// byte either way, pings included (a client or server that pings every 30
// s keeps its tunnel). Each copied chunk stores the sweeper's coarse clock
// in the tunnel (one atomic store, no deadline update); one goroutine per
// proxy looks at all tunnels a few times per limit and closes those idle
// too long. A peer that stops reading blocks the copy towards it, so no
// byte is read from the other side either and the tunnel counts as idle:
// a slow reader is cut by the same limit.
//
// # Owner
//
// A tunnel opened by a signed-in request is kept under the name of its
// sign-in (Config.TunnelOwner, e.g. "session:<id>" or "cli:<login id>").
// The proxy knows nothing of sessions; whoever does (the gateway's wiring,
// on a store watch or a periodic check) calls CloseTunnels when a sign-in
// ends, so that a logout, a session ended from another browser or replica,
// or a revoked CLI login also ends the tunnels it opened.

// tunnelSweeper closes idle tunnels.
type tunnelSweeper struct {
	idle  int64 // ns; 0: no idle limit, no sweeper
	tick  time.Duration
	base  time.Time
	clock atomic.Int64 // ns since base, advanced every tick
	stop  chan struct{}
	done  chan struct{}
	log   *slog.Logger
}

func (w *tunnelSweeper) now() int64 { return w.clock.Load() }

func (s *tunnelSet) init(idle time.Duration, log *slog.Logger, limiter *ClientLimiter) {
	s.m = make(map[*tunnel]struct{})
	s.owners = make(map[string]int)
	s.limiter = limiter
	w := &s.sweeper
	w.log = log
	if idle <= 0 {
		return
	}
	w.idle = int64(idle)
	w.tick = min(max(idle/10, 10*time.Millisecond), time.Second)
	w.base = time.Now()
	w.clock.Store(1)
	w.stop = make(chan struct{})
	w.done = make(chan struct{})
	go s.sweep()
}

func (s *tunnelSet) sweep() {
	w := &s.sweeper
	defer close(w.done)
	tk := time.NewTicker(w.tick)
	defer tk.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tk.C:
		}
		now := int64(time.Since(w.base)) + 1
		w.clock.Store(now)
		closed := 0
		s.mu.Lock()
		for t := range s.m {
			// The clock lags by up to a tick: allow for it, so that the
			// limit is enforced late, never early.
			if !t.closed && now-t.active.Load() > w.idle+int64(w.tick) {
				s.closeLocked(t)
				closed++
			}
		}
		s.mu.Unlock()
		if closed > 0 {
			s.logf("WebSocket tunnel closed: idle", slog.Int("tunnels", closed),
				slog.Duration("idle_timeout", time.Duration(w.idle)))
		}
	}
}

func (s *tunnelSet) stopSweeper() {
	w := &s.sweeper
	if w.stop == nil {
		return
	}
	select {
	case <-w.stop:
	default:
		close(w.stop)
		<-w.done
	}
}

func (s *tunnelSet) logf(msg string, attrs ...slog.Attr) {
	if s.sweeper.log != nil {
		s.sweeper.log.LogAttrs(context.Background(), slog.LevelInfo, msg, attrs...)
	}
}

// closeLocked closes both ends of t; its pipe then ends and removes it.
// Called with s.mu held.
func (s *tunnelSet) closeLocked(t *tunnel) {
	t.closed = true
	_ = t.up.Close()
	if t.client != nil {
		_ = t.client.Close()
	}
	if !t.started {
		t.timer.Stop()
		s.deleteLocked(t)
	}
}

// copy relays src to dst until either fails, noting activity.
func (t *tunnel) copy(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			t.active.Store(t.set.sweeper.now())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// CloseTunnels closes every open WebSocket tunnel opened under owner (see
// Config.TunnelOwner) and reports how many. Call it when that sign-in ends.
func (p *Proxy) CloseTunnels(owner string) int {
	if owner == "" {
		return 0
	}
	s := &p.tunnels
	n := 0
	s.mu.Lock()
	if s.owners[owner] > 0 {
		for t := range s.m {
			if t.owner == owner && !t.closed {
				s.closeLocked(t)
				n++
			}
		}
	}
	s.mu.Unlock()
	if n > 0 {
		s.logf("WebSocket tunnel closed: its sign-in ended", slog.Int("tunnels", n))
	}
	return n
}

// HasTunnels reports whether owner has an open tunnel. It is cheap (a lock
// and a map lookup), for a store watch to skip the sessions that have none.
func (p *Proxy) HasTunnels(owner string) bool {
	s := &p.tunnels
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owners[owner] > 0
}

// TunnelOwners lists the owners with an open tunnel, for a periodic check
// that their sign-ins still exist.
func (p *Proxy) TunnelOwners() []string {
	s := &p.tunnels
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.owners))
	for o := range s.owners {
		out = append(out, o)
	}
	return out
}

// Package tunnelwatch closes the WebSocket tunnels a sign-in opened when
// that sign-in ends: a logout, a session ended from the account page or
// from another replica, an expired session, a revoked CLI login.
//
// # How
//
// The proxy keeps every tunnel under the name of its owner (Owner: a
// browser session or a CLI login) and closes them on request
// (gateway.Server.CloseTunnels). A Watcher tells it when:
//
//   - Sessions: the store's WatchSessions reports every write to a session,
//     on every replica. For a session with open tunnels the watcher reads
//     the session back (from its own goroutine: a watch callback must not
//     call the store) and closes the tunnels if it is gone. A logout thus
//     ends the tunnels at once, on whichever replica holds them.
//   - Everything, every Interval: each owner with open tunnels is checked
//     against the store. This catches what no watch reports: a CLI login
//     revoked (refresh families have no watch), a session that expired
//     without a write, and any watch signal dropped under load.
//
// A store error keeps the tunnels open: an unreachable store is not proof
// that the sign-in ended, and the next check runs soon.
package tunnelwatch

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway/authn"
)

// DefaultInterval is how often every owner with open tunnels is checked.
const DefaultInterval = 30 * time.Second

// Owner prefixes.
const (
	sessionPrefix = "session:"
	loginPrefix   = "cli:"
)

// Owner is the owner name of a tunnel opened with identity id: its browser
// session or its CLI login. "" (no owner, never closed by the watcher) for
// a worker or an anonymous request.
func Owner(id authn.Identity) string {
	switch id.Kind {
	case authn.KindSession:
		return sessionPrefix + id.SessionID
	case authn.KindCLI:
		return loginPrefix + id.LoginID
	}
	return ""
}

// Tunnels is what the watcher needs from the gateway (gateway.Server).
type Tunnels interface {
	HasTunnels(owner string) bool
	TunnelOwners() []string
	CloseTunnels(owner string) int
}

// Store is what the watcher reads.
type Store interface {
	GetSession(ctx context.Context, id string) (data.Session, error)
	WatchSessions(fn func(sessionID string)) (stop func())
	GetRefreshFamily(ctx context.Context, id string) (data.RefreshFamily, error)
}

// Options configure a Watcher.
type Options struct {
	// Interval between checks of every owner. Default 30s.
	Interval time.Duration
	// Timeout bounds one store read. Default 5s.
	Timeout time.Duration
	// Logger receives store errors. Default: discard.
	Logger *slog.Logger
}

// Watcher closes tunnels whose sign-in ended. Close it before the store.
type Watcher struct {
	tunnels   Tunnels
	store     Store
	opts      Options
	queue     chan string
	overflow  atomic.Bool // a signal was dropped: check everything
	stopWatch func()
	stop      chan struct{}
	done      chan struct{}
	once      sync.Once
}

// Start begins watching.
func Start(t Tunnels, store Store, opts Options) *Watcher {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{
		tunnels: t, store: store, opts: opts,
		queue: make(chan string, 256),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	w.stopWatch = store.WatchSessions(w.signal)
	go w.loop()
	return w
}

// signal is the WatchSessions callback: quick, never blocks, no store call.
func (w *Watcher) signal(sid string) {
	owner := sessionPrefix + sid
	if !w.tunnels.HasTunnels(owner) {
		return
	}
	select {
	case w.queue <- owner:
	default:
		w.overflow.Store(true)
	}
}

func (w *Watcher) loop() {
	defer close(w.done)
	tk := time.NewTicker(w.opts.Interval)
	defer tk.Stop()
	for {
		select {
		case <-w.stop:
			return
		case owner := <-w.queue:
			w.check(owner)
		case <-tk.C:
			w.checkAll()
		}
		if w.overflow.Swap(false) {
			w.checkAll()
		}
	}
}

func (w *Watcher) checkAll() {
	for _, owner := range w.tunnels.TunnelOwners() {
		select {
		case <-w.stop:
			return
		default:
		}
		w.check(owner)
	}
}

// check closes owner's tunnels if its sign-in ended.
func (w *Watcher) check(owner string) {
	ended, err := w.ended(owner)
	if err != nil {
		w.opts.Logger.Warn("checking whether a WebSocket tunnel's sign-in ended failed; the tunnel stays open until the next check", "err", err)
		return
	}
	if ended {
		w.tunnels.CloseTunnels(owner)
	}
}

func (w *Watcher) ended(owner string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.Timeout)
	defer cancel()
	if sid, ok := strings.CutPrefix(owner, sessionPrefix); ok {
		_, err := w.store.GetSession(ctx, sid)
		if errors.Is(err, data.ErrNotFound) {
			return true, nil
		}
		return false, err
	}
	if fid, ok := strings.CutPrefix(owner, loginPrefix); ok {
		f, err := w.store.GetRefreshFamily(ctx, fid)
		if errors.Is(err, data.ErrNotFound) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return !f.RevokedAt.IsZero(), nil
	}
	return false, nil // an owner this package did not name
}

// Close stops watching. It is safe to call more than once.
func (w *Watcher) Close() {
	w.once.Do(func() {
		w.stopWatch()
		close(w.stop)
		<-w.done
	})
}

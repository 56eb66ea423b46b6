package boltdb

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Session watchers (data.Sessions.WatchSessions).
//
// The methods that update or delete sessions note the ids their write
// function changed, in variables the function sets afresh on every run (a
// group may run it more than once, see commit.go), and call notifySessions
// once the write has returned: by then the transaction has committed, or
// failed. They report the ids whenever the function's last run succeeded,
// even if the commit then failed: a failed commit may have reached the disk
// in part, and a spurious invalidation is harmless where a missed one is
// not. A function that failed, or whose run was rolled back and not run
// again, has set no ids.
//
// The list of watchers is copy-on-write behind an atomic pointer, so a
// write with no watchers pays one atomic load. Each watcher has its own
// lock, read-held while fn runs and taken by stop, so that once stop has
// returned fn is not running and will not run again.

// watchers is the set of session watchers of one store.
type watchers struct {
	mu   sync.Mutex                 // serialises changes to list
	list atomic.Pointer[[]*watcher] // nil or non-empty
}

type watcher struct {
	fn      func(sessionID string)
	mu      sync.RWMutex // read-held while fn runs; stop takes it
	stopped bool         // guarded by mu
}

// WatchSessions calls fn with the id of every session that a write updated
// or deleted, after the write has committed and before the method that made
// it returns (see data.Sessions). fn runs on the writer's goroutine.
func (s *Store) WatchSessions(fn func(sessionID string)) (stop func()) {
	w := &watcher{fn: fn}
	ws := &s.watchers
	ws.mu.Lock()
	var list []*watcher
	if p := ws.list.Load(); p != nil {
		list = slices.Clone(*p)
	}
	list = append(list, w)
	ws.list.Store(&list)
	ws.mu.Unlock()

	var once sync.Once
	return func() {
		once.Do(func() {
			ws.mu.Lock()
			if p := ws.list.Load(); p != nil {
				list := slices.DeleteFunc(slices.Clone(*p), func(x *watcher) bool { return x == w })
				if len(list) == 0 {
					ws.list.Store(nil)
				} else {
					ws.list.Store(&list)
				}
			}
			ws.mu.Unlock()
			// A notification that loaded the old list may still reach w:
			// wait for one in progress and turn the rest away.
			w.mu.Lock()
			w.stopped = true
			w.mu.Unlock()
		})
	}
}

// notifySessions tells every watcher about ids.
func (s *Store) notifySessions(ids ...string) {
	if len(ids) == 0 {
		return
	}
	p := s.watchers.list.Load()
	if p == nil {
		return
	}
	for _, w := range *p {
		w.notify(ids)
	}
}

func (w *watcher) notify(ids []string) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.stopped {
		return
	}
	for _, id := range ids {
		w.fn(id)
	}
}

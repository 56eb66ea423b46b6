// Package watchers is the registry of watchers that both store backends
// put behind data.Sessions.WatchSessions and data.Workers.WatchWorkers (one
// Set per resource).
//
// It exists so that the concurrency contract of those methods is written
// once: the embedded backend calls Notify from the writing goroutine once
// a transaction has ended, the replicated one from its watch of the
// cluster, and both must give a watcher the same guarantees. Those are:
//
//   - Notify is cheap when nobody watches: the list of watchers is
//     copy-on-write behind an atomic pointer, nil when empty, so a write
//     with no watchers pays one atomic load and no allocation.
//   - Notify takes no lock shared between watchers, and may run on
//     several goroutines at once; so may each watcher's function.
//   - Once the stop function returned by Add has returned, the watcher's
//     function is not running and will not run again: each watcher has its
//     own lock, read-held while its function runs and taken by stop, which
//     waits for a call in progress and turns away the Notify calls that
//     loaded the list before the watcher left it.
//   - stop may be called any number of times.
//
// A watcher's function must not call stop (it would wait for itself) and
// must not block, as data.Sessions says.
package watchers

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Set is a set of watchers. The zero Set is empty and ready to use; a Set
// must not be copied after first use.
type Set struct {
	mu   sync.Mutex                 // serialises changes to list
	list atomic.Pointer[[]*watcher] // nil or non-empty
}

type watcher struct {
	fn      func(id string)
	mu      sync.RWMutex // read-held while fn runs; stop takes it
	stopped bool         // guarded by mu
}

// Add registers fn, which every later Notify calls with each of its ids,
// and returns the function that unregisters it. Once stop has returned, fn
// is not running and will not be called again; stop is idempotent.
func (s *Set) Add(fn func(id string)) (stop func()) {
	w := &watcher{fn: fn}
	s.mu.Lock()
	var list []*watcher
	if p := s.list.Load(); p != nil {
		list = slices.Clone(*p)
	}
	list = append(list, w)
	s.list.Store(&list)
	s.mu.Unlock()

	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if p := s.list.Load(); p != nil {
				list := slices.DeleteFunc(slices.Clone(*p), func(x *watcher) bool { return x == w })
				if len(list) == 0 {
					s.list.Store(nil)
				} else {
					s.list.Store(&list)
				}
			}
			s.mu.Unlock()
			// A notification that loaded the old list may still reach w:
			// wait for one in progress and turn the rest away.
			w.mu.Lock()
			w.stopped = true
			w.mu.Unlock()
		})
	}
}

// Notify calls every registered watcher with each of ids, in order, on the
// calling goroutine. It returns once every call has returned.
func (s *Set) Notify(ids ...string) {
	if len(ids) == 0 {
		return
	}
	p := s.list.Load()
	if p == nil {
		return
	}
	for _, w := range *p {
		w.notify(ids)
	}
}

// Empty reports whether no watcher is registered.
func (s *Set) Empty() bool { return s.list.Load() == nil }

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

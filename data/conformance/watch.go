package conformance

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vintner/arbor/data"
)

// The WatchSessions contract lets a replicated backend deliver calls from its
// watch, shortly after the write, so these tests wait for a call with a
// bounded poll (watchWait) rather than expect it when the write returns.
// To show that a call did not come, they make a marker write after the
// writes under test and wait for its call: calls for writes made one after
// the other come in order, so everything the earlier writes caused has
// arrived by then.

// watchWait bounds how long a test waits for a call.
const watchWait = 5 * time.Second

// watchLog records the ids one watcher is called with, in order.
type watchLog struct {
	mu   sync.Mutex
	ids  []string
	stop func()
}

func (l *watchLog) add(id string) {
	l.mu.Lock()
	l.ids = append(l.ids, id)
	l.mu.Unlock()
}

func (l *watchLog) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ids)
}

// watch registers a watcher that records its calls; it is stopped when the
// test ends.
func (e *env) watch() *watchLog {
	l := &watchLog{}
	l.stop = e.s.WatchSessions(l.add)
	e.t.Cleanup(l.stop)
	return l
}

// waitSeen waits until l has been called with every id in want.
func (e *env) waitSeen(l *watchLog, what string, want ...string) {
	e.t.Helper()
	deadline := time.Now().Add(watchWait)
	for {
		got := l.seen()
		missing := slices.DeleteFunc(slices.Clone(want), func(id string) bool { return slices.Contains(got, id) })
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: the watcher was not called for %q within %s (calls: %q)", what, missing, watchWait, got)
		}
		time.Sleep(time.Millisecond)
	}
}

const markerUser = "watch-marker"

// markers numbers marker sessions.
var markers atomic.Int64

// settle makes a marker write, waits until every watcher in ls has been
// called for it, and returns, for each, the set of ids it was called with
// before the marker (sorted, without repeats).
func (e *env) settle(ls ...*watchLog) [][]string {
	e.t.Helper()
	if _, err := e.s.GetUser(e.ctx, markerUser); errors.Is(err, data.ErrNotFound) {
		e.user(markerUser)
	}
	marker := fmt.Sprintf("watch-marker-%d", markers.Add(1))
	e.ok(e.s.CreateSession(e.ctx, e.newSession(marker, markerUser, time.Hour)), "CreateSession (marker)")
	_, err := e.s.UpdateSession(e.ctx, marker, keep[data.Session])
	e.ok(err, "UpdateSession (marker)")
	out := make([][]string, len(ls))
	for i, l := range ls {
		e.waitSeen(l, "marker write", marker)
		got := l.seen()
		before := got[:slices.Index(got, marker)]
		slices.Sort(before)
		out[i] = slices.Compact(before)
	}
	return out
}

// sessions stores sessions with the given ids for userID.
func (e *env) sessions(userID string, ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		e.ok(e.s.CreateSession(e.ctx, e.newSession(id, userID, time.Hour)), "CreateSession "+id)
	}
}

var watchTests = []subtest{
	{"UpdateNotifies", func(e *env) {
		e.user("u1")
		e.sessions("u1", "s1", "s2")
		l := e.watch()
		e.clock.Advance(time.Minute)
		_, err := e.s.UpdateSession(e.ctx, "s1", func(s data.Session) (data.Session, error) {
			s.LastSeenAt = e.clock.Now()
			return s, nil
		})
		e.ok(err, "UpdateSession s1")
		e.waitSeen(l, "UpdateSession s1", "s1")
		e.orderIs(e.settle(l)[0], []string{"s1"}, "sessions the watcher was told about")
	}},
	{"DeleteNotifies", func(e *env) {
		e.user("u1")
		e.sessions("u1", "s1", "s2")
		l := e.watch()
		e.ok(e.s.DeleteSession(e.ctx, "s1"), "DeleteSession s1")
		// The embedded backend calls before DeleteSession returns; a
		// replicated one shortly after, so wait.
		e.waitSeen(l, "DeleteSession s1", "s1")
		e.is(e.s.DeleteSession(e.ctx, "s1"), data.ErrNotFound, "second DeleteSession s1")
		e.orderIs(e.settle(l)[0], []string{"s1"}, "sessions the watcher was told about")
	}},
	{"DeleteUserNotifiesEachSession", func(e *env) {
		e.user("u1")
		e.user("u2")
		e.sessions("u1", "s1-u1", "s2-u1", "s3-u1")
		e.sessions("u2", "s1-u2", "s2-u2")
		e.ok(e.s.CreateRefreshFamily(e.ctx, e.newRefreshFamily("f-u1", "u1", time.Hour)), "CreateRefreshFamily")
		l := e.watch()
		e.ok(e.s.DeleteUser(e.ctx, "u1"), "DeleteUser u1")
		want := []string{"s1-u1", "s2-u1", "s3-u1"}
		e.waitSeen(l, "DeleteUser u1", want...)
		e.orderIs(e.settle(l)[0], want, "sessions the watcher was told about (u1's, not u2's)")
	}},
	{"CollectExpiredNotifies", func(e *env) {
		e.user("u1")
		e.ok(e.s.CreateSession(e.ctx, e.newSession("short-1", "u1", time.Hour)), "CreateSession short-1")
		e.ok(e.s.CreateSession(e.ctx, e.newSession("short-2", "u1", 30*time.Minute)), "CreateSession short-2")
		e.ok(e.s.CreateSession(e.ctx, e.newSession("long", "u1", 2*time.Hour)), "CreateSession long")
		l := e.watch()
		e.clock.Advance(time.Hour)
		st, err := e.s.CollectExpired(e.ctx, e.clock.Now())
		e.ok(err, "CollectExpired")
		if st.Sessions != 2 {
			e.t.Fatalf("CollectExpired = %+v, want 2 sessions", st)
		}
		want := []string{"short-1", "short-2"}
		e.waitSeen(l, "CollectExpired", want...)
		e.orderIs(e.settle(l)[0], want, "sessions the watcher was told about (the expired ones)")
	}},
	{"RefusedWrites", func(e *env) {
		e.user("u1")
		e.sessions("u1", "s1")
		l := e.watch()
		// Refused writes need not call the watcher, and must not break it.
		_, err := e.s.UpdateSession(e.ctx, "s1", updateFail[data.Session])
		e.is(err, errBoom, "UpdateSession whose function fails")
		_, err = e.s.UpdateSession(e.ctx, "missing", keep[data.Session])
		e.is(err, data.ErrNotFound, "UpdateSession of a missing session")
		e.is(e.s.DeleteSession(e.ctx, "missing"), data.ErrNotFound, "DeleteSession of a missing session")
		e.is(e.s.DeleteUser(e.ctx, "nobody"), data.ErrNotFound, "DeleteUser of a missing user")
		_, err = e.s.UpdateSession(e.ctx, "s1", keep[data.Session])
		e.ok(err, "UpdateSession after the refused writes")
		e.waitSeen(l, "UpdateSession after the refused writes", "s1")
	}},
	{"StopEndsCalls", func(e *env) {
		e.user("u1")
		e.sessions("u1", "s1", "s2")
		var afterStop atomic.Int32
		var stopped atomic.Bool
		a := &watchLog{}
		a.stop = e.s.WatchSessions(func(id string) {
			if stopped.Load() {
				afterStop.Add(1)
			}
			a.add(id)
		})
		e.t.Cleanup(a.stop)
		b := e.watch()
		_, err := e.s.UpdateSession(e.ctx, "s1", keep[data.Session])
		e.ok(err, "UpdateSession s1")
		e.waitSeen(a, "UpdateSession s1, first watcher", "s1")
		e.waitSeen(b, "UpdateSession s1, second watcher", "s1")

		a.stop()
		stopped.Store(true)
		a.stop() // a second stop is harmless
		e.ok(e.s.DeleteSession(e.ctx, "s2"), "DeleteSession s2")
		e.ok(e.s.DeleteUser(e.ctx, "u1"), "DeleteUser u1")
		e.waitSeen(b, "writes after the first watcher stopped", "s1", "s2")
		e.settle(b)
		if n := afterStop.Load(); n != 0 {
			e.t.Fatalf("a stopped watcher was called %d times after stop returned (calls: %q)", n, a.seen())
		}
		b.stop()
		b.stop()
	}},
	{"ConcurrentWatchersAndWrites", func(e *env) {
		const writers, perWriter, churners = 8, 6, 4
		steady := e.watch()
		var deleted []string
		for w := range writers {
			u := fmt.Sprintf("u%d", w)
			e.user(u)
			for i := range perWriter {
				id := fmt.Sprintf("s%d-%d", w, i)
				e.sessions(u, id)
				deleted = append(deleted, id)
			}
		}

		var afterStop atomic.Int32
		var writing atomic.Bool
		writing.Store(true)
		var churn sync.WaitGroup
		for range churners {
			// Register and stop watchers while the writes go on.
			churn.Add(1)
			go func() {
				defer churn.Done()
				for writing.Load() {
					var stopped atomic.Bool
					stop := e.s.WatchSessions(func(string) {
						if stopped.Load() {
							afterStop.Add(1)
						}
					})
					time.Sleep(50 * time.Microsecond)
					stop()
					stopped.Store(true)
					stop()
				}
			}()
		}
		errs := make(chan error, writers*perWriter*2)
		concurrently(writers, func(w int) {
			for i := range perWriter {
				id := fmt.Sprintf("s%d-%d", w, i)
				if _, err := e.s.UpdateSession(e.ctx, id, keep[data.Session]); err != nil {
					errs <- fmt.Errorf("UpdateSession %s: %w", id, err)
				}
				if i == perWriter-1 {
					// The last one goes with its user.
					if err := e.s.DeleteUser(e.ctx, fmt.Sprintf("u%d", w)); err != nil {
						errs <- fmt.Errorf("DeleteUser u%d: %w", w, err)
					}
				} else if err := e.s.DeleteSession(e.ctx, id); err != nil {
					errs <- fmt.Errorf("DeleteSession %s: %w", id, err)
				}
			}
		})
		writing.Store(false)
		churn.Wait()
		close(errs)
		for err := range errs {
			e.t.Error(err)
		}
		e.waitSeen(steady, "concurrent updates and deletes", deleted...)
		e.orderIs(e.settle(steady)[0], sorted(deleted), "sessions the steady watcher was told about")
		if n := afterStop.Load(); n != 0 {
			e.t.Fatalf("stopped watchers were called %d times after stop returned", n)
		}
	}},
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

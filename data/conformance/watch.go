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

// The WatchSessions and WatchWorkers contracts let a replicated backend
// deliver calls from its watch, shortly after the write, so these tests
// wait for a call with a bounded poll (watchWait) rather than expect it
// when the write returns. To show that a call did not come, they make a
// marker write of the same kind after the writes under test and wait for
// its call: calls for writes made one after the other come in order, so
// everything the earlier writes caused has arrived by then.
//
// The same tests run for every kind of record with watchers (watchKind);
// the collector test only for sessions, since workers and users do not
// expire, and the DeleteUser cascade only for the kinds a user owns (for
// users, DeleteUser is the kind's own delete).

// watchWait bounds how long a test waits for a call.
const watchWait = 5 * time.Second

// watchKind is a kind of record with watchers: the store methods the
// tests call, by id.
type watchKind struct {
	name    string
	watch   func(s data.Store, fn func(id string)) (stop func())
	create  func(e *env, id, userID string) error
	update  func(e *env, id string, fn func() error) error // fn's error is the update function's
	delete  func(e *env, id string) error
	expires bool // the record has a lifetime (CollectExpired deletes it)
	owned   bool // the record belongs to a user (DeleteUser deletes it)
}

var sessionKind = watchKind{
	name:  "session",
	watch: func(s data.Store, fn func(string)) func() { return s.WatchSessions(fn) },
	create: func(e *env, id, userID string) error {
		return e.s.CreateSession(e.ctx, e.newSession(id, userID, time.Hour))
	},
	update: func(e *env, id string, fn func() error) error {
		_, err := e.s.UpdateSession(e.ctx, id, func(s data.Session) (data.Session, error) {
			s.LastSeenAt = e.clock.Now()
			return s, fn()
		})
		return err
	},
	delete:  func(e *env, id string) error { return e.s.DeleteSession(e.ctx, id) },
	expires: true,
	owned:   true,
}

var workerKind = watchKind{
	name:  "worker",
	watch: func(s data.Store, fn func(string)) func() { return s.WatchWorkers(fn) },
	create: func(e *env, id, userID string) error {
		return e.s.CreateWorker(e.ctx, e.newWorker(id, userID))
	},
	update: func(e *env, id string, fn func() error) error {
		_, err := e.s.UpdateWorker(e.ctx, id, func(w data.Worker) (data.Worker, error) {
			w.LastUsedAt = e.clock.Now()
			return w, fn()
		})
		return err
	},
	delete: func(e *env, id string) error { return e.s.DeleteWorker(e.ctx, id) },
	owned:  true,
}

// userKind's records are users: create ignores the owner it is given.
var userKind = watchKind{
	name:  "user",
	watch: func(s data.Store, fn func(string)) func() { return s.WatchUsers(fn) },
	create: func(e *env, id, _ string) error {
		return e.s.CreateUser(e.ctx, e.newUser(id))
	},
	update: func(e *env, id string, fn func() error) error {
		_, err := e.s.UpdateUser(e.ctx, id, func(u data.User) (data.User, error) {
			u.Disabled, u.DisabledAt, u.DisabledBy = true, e.clock.Now(), "operator"
			return u, fn()
		})
		return err
	},
	delete: func(e *env, id string) error { return e.s.DeleteUser(e.ctx, id) },
}

func succeed() error { return nil }
func fail() error    { return errBoom }

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

// watch registers a watcher of k that records its calls; it is stopped
// when the test ends.
func (e *env) watch(k watchKind) *watchLog {
	l := &watchLog{}
	l.stop = k.watch(e.s, l.add)
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

// markers numbers marker records.
var markers atomic.Int64

// settle makes a marker write of kind k, waits until every watcher in ls
// (all watchers of k) has been called for it, and returns, for each, the
// set of ids it was called with before the marker (sorted, without
// repeats).
func (e *env) settle(k watchKind, ls ...*watchLog) [][]string {
	e.t.Helper()
	if _, err := e.s.GetUser(e.ctx, markerUser); errors.Is(err, data.ErrNotFound) {
		e.user(markerUser)
	}
	marker := fmt.Sprintf("watch-marker-%d", markers.Add(1))
	e.ok(k.create(e, marker, markerUser), "create "+k.name+" (marker)")
	e.ok(k.update(e, marker, succeed), "update "+k.name+" (marker)")
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

// records stores records of kind k with the given ids for userID.
func (e *env) records(k watchKind, userID string, ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		e.ok(k.create(e, id, userID), "create "+k.name+" "+id)
	}
}

// watchTests are the tests of k's watch.
func watchTests(k watchKind) []subtest {
	tests := []subtest{
		{"UpdateNotifies", func(e *env) {
			e.user("u1")
			e.records(k, "u1", "r1", "r2")
			l := e.watch(k)
			e.clock.Advance(time.Minute)
			e.ok(k.update(e, "r1", succeed), "update r1")
			e.waitSeen(l, "update r1", "r1")
			e.orderIs(e.settle(k, l)[0], []string{"r1"}, k.name+"s the watcher was told about")
		}},
		{"DeleteNotifies", func(e *env) {
			e.user("u1")
			e.records(k, "u1", "r1", "r2")
			l := e.watch(k)
			e.ok(k.delete(e, "r1"), "delete r1")
			// The embedded backend calls before the delete returns; a
			// replicated one shortly after, so wait.
			e.waitSeen(l, "delete r1", "r1")
			e.is(k.delete(e, "r1"), data.ErrNotFound, "second delete r1")
			e.orderIs(e.settle(k, l)[0], []string{"r1"}, k.name+"s the watcher was told about")
		}},
		{"RefusedWrites", func(e *env) {
			e.user("u1")
			e.records(k, "u1", "r1")
			l := e.watch(k)
			// Refused writes need not call the watcher, and must not break it.
			e.is(k.update(e, "r1", fail), errBoom, "update whose function fails")
			e.is(k.update(e, "missing", succeed), data.ErrNotFound, "update of a missing "+k.name)
			e.is(k.delete(e, "missing"), data.ErrNotFound, "delete of a missing "+k.name)
			e.is(e.s.DeleteUser(e.ctx, "nobody"), data.ErrNotFound, "DeleteUser of a missing user")
			e.ok(k.update(e, "r1", succeed), "update after the refused writes")
			e.waitSeen(l, "update after the refused writes", "r1")
		}},
		{"StopEndsCalls", func(e *env) {
			e.user("u1")
			e.records(k, "u1", "r1", "r2")
			var afterStop atomic.Int32
			var stopped atomic.Bool
			a := &watchLog{}
			a.stop = k.watch(e.s, func(id string) {
				if stopped.Load() {
					afterStop.Add(1)
				}
				a.add(id)
			})
			e.t.Cleanup(a.stop)
			b := e.watch(k)
			e.ok(k.update(e, "r1", succeed), "update r1")
			e.waitSeen(a, "update r1, first watcher", "r1")
			e.waitSeen(b, "update r1, second watcher", "r1")

			a.stop()
			stopped.Store(true)
			a.stop() // a second stop is harmless
			e.ok(k.delete(e, "r2"), "delete r2")
			e.ok(e.s.DeleteUser(e.ctx, "u1"), "DeleteUser u1")
			e.waitSeen(b, "writes after the first watcher stopped", "r1", "r2")
			e.settle(k, b)
			if n := afterStop.Load(); n != 0 {
				e.t.Fatalf("a stopped watcher was called %d times after stop returned (calls: %q)", n, a.seen())
			}
			b.stop()
			b.stop()
		}},
		{"ConcurrentWatchersAndWrites", func(e *env) {
			const writers, perWriter, churners = 8, 6, 4
			steady := e.watch(k)
			var deleted []string
			for w := range writers {
				u := fmt.Sprintf("u%d", w)
				e.user(u)
				for i := range perWriter {
					id := fmt.Sprintf("r%d-%d", w, i)
					e.records(k, u, id)
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
						stop := k.watch(e.s, func(string) {
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
					id := fmt.Sprintf("r%d-%d", w, i)
					if err := k.update(e, id, succeed); err != nil {
						errs <- fmt.Errorf("update %s: %w", id, err)
					}
					if i == perWriter-1 && k.owned {
						// The last one goes with its user.
						if err := e.s.DeleteUser(e.ctx, fmt.Sprintf("u%d", w)); err != nil {
							errs <- fmt.Errorf("DeleteUser u%d: %w", w, err)
						}
					} else if err := k.delete(e, id); err != nil {
						errs <- fmt.Errorf("delete %s: %w", id, err)
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
			e.orderIs(e.settle(k, steady)[0], sorted(deleted), k.name+"s the steady watcher was told about")
			if n := afterStop.Load(); n != 0 {
				e.t.Fatalf("stopped watchers were called %d times after stop returned", n)
			}
		}},
	}
	// Only what belongs to a user is deleted with the user.
	if k.owned {
		tests = append(tests, subtest{"DeleteUserNotifiesEach", func(e *env) {
			e.user("u1")
			e.user("u2")
			e.records(k, "u1", "r1-u1", "r2-u1", "r3-u1")
			e.records(k, "u2", "r1-u2", "r2-u2")
			e.ok(e.s.CreateRefreshFamily(e.ctx, e.newRefreshFamily("f-u1", "u1", time.Hour)), "CreateRefreshFamily")
			l := e.watch(k)
			e.ok(e.s.DeleteUser(e.ctx, "u1"), "DeleteUser u1")
			want := []string{"r1-u1", "r2-u1", "r3-u1"}
			e.waitSeen(l, "DeleteUser u1", want...)
			e.orderIs(e.settle(k, l)[0], want, k.name+"s the watcher was told about (u1's, not u2's)")
		}})
	}
	if !k.owned {
		tests = append(tests, subtest{"OwnedWritesDoNotNotify", func(e *env) {
			// Writes to what a user owns are not writes to the user; the
			// user's own delete is one, whatever it cascades to.
			e.user("u1")
			e.user("u2")
			l := e.watch(k)
			e.ok(e.s.CreateSession(e.ctx, e.newSession("s1", "u1", time.Hour)), "CreateSession")
			_, err := e.s.UpdateSession(e.ctx, "s1", func(s data.Session) (data.Session, error) { s.IP = "192.0.2.9"; return s, nil })
			e.ok(err, "UpdateSession")
			e.ok(e.s.CreateWorker(e.ctx, e.newWorker("w1", "u1")), "CreateWorker")
			e.ok(e.s.DeleteWorker(e.ctx, "w1"), "DeleteWorker")
			e.ok(e.s.CreateIdentity(e.ctx, e.newIdentity("u1", "github", "1")), "CreateIdentity")
			_, err = e.s.UpdateIdentity(e.ctx, "github", "1", func(i data.Identity) (data.Identity, error) {
				i.UserID = "u2"
				return i, nil
			})
			e.ok(err, "UpdateIdentity moving it to u2")
			e.ok(e.s.CreateConnection(e.ctx, e.newConnection("u1", "github")), "CreateConnection")
			e.orderIs(e.settle(k, l)[0], nil, "users the watcher was told about after writes to their records")
			l2 := e.watch(k)
			e.ok(e.s.CreateSession(e.ctx, e.newSession("s2", "u2", time.Hour)), "CreateSession")
			e.ok(e.s.DeleteUser(e.ctx, "u2"), "DeleteUser u2")
			e.waitSeen(l2, "DeleteUser u2", "u2")
			e.orderIs(e.settle(k, l2)[0], []string{"u2"}, "users the watcher was told about after DeleteUser u2 (not u1)")
		}})
	}
	if k.expires {
		tests = append(tests, subtest{"CollectExpiredNotifies", func(e *env) {
			e.user("u1")
			e.ok(e.s.CreateSession(e.ctx, e.newSession("short-1", "u1", time.Hour)), "CreateSession short-1")
			e.ok(e.s.CreateSession(e.ctx, e.newSession("short-2", "u1", 30*time.Minute)), "CreateSession short-2")
			e.ok(e.s.CreateSession(e.ctx, e.newSession("long", "u1", 2*time.Hour)), "CreateSession long")
			l := e.watch(k)
			e.clock.Advance(time.Hour)
			st, err := e.s.CollectExpired(e.ctx, e.clock.Now())
			e.ok(err, "CollectExpired")
			if st.Sessions != 2 {
				e.t.Fatalf("CollectExpired = %+v, want 2 sessions", st)
			}
			want := []string{"short-1", "short-2"}
			e.waitSeen(l, "CollectExpired", want...)
			e.orderIs(e.settle(k, l)[0], want, "sessions the watcher was told about (the expired ones)")
		}})
	}
	return tests
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

package boltdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
)

// recorder is a session watcher that records its calls.
type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) add(id string) {
	r.mu.Lock()
	r.ids = append(r.ids, id)
	r.mu.Unlock()
}

// take returns the calls so far, sorted, and forgets them.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := r.ids
	r.ids = nil
	slices.Sort(ids)
	return ids
}

func watchedStore(t *testing.T) (*Store, *recorder, func(id, user string, ttl time.Duration)) {
	t.Helper()
	now := time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)
	s := openTemp(t, Options{Now: func() time.Time { return now }})
	rec := &recorder{}
	t.Cleanup(s.WatchSessions(rec.add))
	ctx := context.Background()
	session := func(id, user string, ttl time.Duration) {
		t.Helper()
		if _, err := s.GetUser(ctx, user); errors.Is(err, data.ErrNotFound) {
			if err := s.CreateUser(ctx, data.User{ID: user, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateSession(ctx, data.Session{ID: id, UserID: user, CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
			t.Fatal(err)
		}
	}
	return s, rec, session
}

func expectCalls(t *testing.T, rec *recorder, what string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := rec.take(); !slices.Equal(got, want) {
		t.Errorf("%s: watcher called with %q, want %q", what, got, want)
	}
}

// The bbolt store calls watchers before the writing method returns.
func TestWatchSessionsIsSynchronous(t *testing.T) {
	s, rec, session := watchedStore(t)
	ctx := context.Background()
	session("s1", "u1", time.Hour)
	session("s2", "u1", time.Hour)
	session("s3", "u1", 2*time.Hour)
	session("s4", "u2", 30*time.Minute)
	session("s5", "u2", 2*time.Hour)
	session("s6", "u3", 30*time.Minute)
	expectCalls(t, rec, "CreateSession")

	if _, err := s.UpdateSession(ctx, "s1", func(v data.Session) (data.Session, error) { return v, nil }); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, rec, "UpdateSession", "s1")
	if err := s.DeleteSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, rec, "DeleteSession", "s1")
	if err := s.DeleteUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, rec, "DeleteUser", "s2", "s3")

	// u2's s4 has expired but not been collected: the cascade reports it
	// too, as it deletes it.
	s.now = func() time.Time { return time.Date(2031, 3, 14, 16, 0, 0, 0, time.UTC) }
	if err := s.DeleteUser(ctx, "u2"); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, rec, "DeleteUser with an expired session", "s4", "s5")

	st, err := s.CollectExpired(ctx, s.now())
	if err != nil || st.Sessions != 1 {
		t.Fatalf("CollectExpired = %+v, %v; want 1 session", st, err)
	}
	expectCalls(t, rec, "CollectExpired", "s6")

	// Refused writes do not call.
	_, err = s.UpdateSession(ctx, "s5", func(v data.Session) (data.Session, error) { return v, nil })
	if !errors.Is(err, data.ErrNotFound) {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, "s5"); !errors.Is(err, data.ErrNotFound) {
		t.Fatal(err)
	}
	expectCalls(t, rec, "refused writes")
}

// CollectExpired reports the sessions of every chunk it commits.
func TestWatchSessionsCollectInChunks(t *testing.T) {
	s, rec, session := watchedStore(t)
	session("s0", "u1", time.Minute)
	want := []string{"s0"}
	// The rest in one transaction: a thousand commits would take seconds.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range collectChunk + 4 {
			id := fmt.Sprintf("s%04d", i+1)
			v := data.Session{ID: id, UserID: "u1", CreatedAt: s.now(), ExpiresAt: s.now().Add(time.Minute)}
			if err := sessions.create(tx, v, s.now()); err != nil {
				return err
			}
			want = append(want, id)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rec.take()
	st, err := s.CollectExpired(context.Background(), s.now().Add(time.Hour))
	if err != nil || st.Sessions != len(want) {
		t.Fatalf("CollectExpired = %+v, %v; want %d sessions", st, err, len(want))
	}
	expectCalls(t, rec, "CollectExpired over two chunks", want...)
}

// grouped holds the committer busy, starts the writes one at a time so that
// they queue in order, and lets them commit as one group.
func grouped(t *testing.T, s *Store, writes ...func()) {
	t.Helper()
	inside, release := make(chan struct{}), make(chan struct{})
	blocker := make(chan error, 1)
	go func() {
		blocker <- s.write(context.Background(), func(tx *bolt.Tx) error {
			close(inside)
			<-release
			return put(tx, bucketMeta, []byte("blocker"), []byte("x"))
		})
	}()
	<-inside
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(w)
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Microsecond) {
			s.committer.mu.Lock()
			q := len(s.committer.queue)
			s.committer.mu.Unlock()
			if q == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("write %d did not queue behind the blocked commit", i)
			}
		}
	}
	close(release)
	wg.Wait()
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
}

// In a group that runs again without a member that failed in bbolt or
// panicked, each session write is reported once, after the commit, and
// writes that failed are not reported.
func TestWatchSessionsInGroupCommit(t *testing.T) {
	s, rec, session := watchedStore(t)
	ctx := context.Background()
	session("s1", "u1", time.Hour)
	session("s2", "u1", time.Hour)
	session("s3", "u1", time.Hour)
	session("s4", "u2", time.Hour)
	session("s5", "u2", time.Hour)
	session("s6", "u3", time.Hour)
	rec.take()

	errBoom := errors.New("refused")
	var mu sync.Mutex
	runs := map[string]int{}
	counted := func(name string, fn func(data.Session) (data.Session, error)) func(data.Session) (data.Session, error) {
		return func(v data.Session) (data.Session, error) {
			mu.Lock()
			runs[name]++
			mu.Unlock()
			return fn(v)
		}
	}
	keep := func(v data.Session) (data.Session, error) { v.IP = "198.51.100.1"; return v, nil }
	errs := make([]error, 8)
	var panicked any
	grouped(t, s,
		func() { _, errs[0] = s.UpdateSession(ctx, "s1", counted("s1", keep)) },
		func() { errs[1] = s.DeleteSession(ctx, "s2") },
		func() {
			_, errs[2] = s.UpdateSession(ctx, "s3", counted("s3", func(v data.Session) (data.Session, error) { return v, errBoom }))
		},
		func() { errs[3] = s.DeleteUser(ctx, "u2") },
		func() {
			errs[4] = s.write(ctx, func(tx *bolt.Tx) error {
				if err := put(tx, bucketMeta, []byte("k"), []byte("v")); err != nil {
					return err
				}
				return &writeFailure{errors.New("disk on fire")}
			})
		},
		func() { errs[5] = s.DeleteSession(ctx, "missing") },
		func() {
			defer func() { panicked = recover() }()
			errs[6] = s.write(ctx, func(tx *bolt.Tx) error { panic("bug") })
		},
		func() { _, errs[7] = s.UpdateSession(ctx, "s6", counted("s6", keep)) },
	)
	for i, want := range []error{nil, nil, errBoom, nil, data.ErrUnavailable, data.ErrNotFound, nil, nil} {
		if (want == nil) != (errs[i] == nil) || !errors.Is(errs[i], want) {
			t.Errorf("write %d: got %v, want %v", i, errs[i], want)
		}
	}
	if panicked != "bug" {
		t.Errorf("the panicking write's caller recovered %v", panicked)
	}
	if runs["s1"] < 2 {
		t.Errorf("UpdateSession s1 ran %d times; the test needs the group to run again", runs["s1"])
	}
	expectCalls(t, rec, "group", "s1", "s2", "s4", "s5", "s6")
	for id, live := range map[string]bool{"s1": true, "s2": false, "s3": true, "s4": false, "s5": false, "s6": true} {
		if _, err := s.GetSession(ctx, id); (err == nil) != live {
			t.Errorf("GetSession %s after the group: %v", id, err)
		}
	}
}

// With no watchers, a notification costs no allocation.
func TestWatchSessionsNoWatchersAllocatesNothing(t *testing.T) {
	s := openTemp(t, Options{})
	stop := s.WatchSessions(func(string) {})
	stop()
	if n := testing.AllocsPerRun(100, func() { s.sessionWatchers.Notify("s1") }); n != 0 {
		t.Errorf("Notify with no watchers: %v allocations", n)
	}
	if !s.sessionWatchers.Empty() {
		t.Error("the last stop left an empty watcher list behind")
	}
}

// stop waits for a call in progress; afterwards fn is not called.
func TestWatchSessionsStopWaitsForCall(t *testing.T) {
	s, _, session := watchedStore(t)
	session("s1", "u1", time.Hour)
	entered, unblock := make(chan struct{}), make(chan struct{})
	var calls int
	var mu sync.Mutex
	stop := s.WatchSessions(func(string) {
		mu.Lock()
		calls++
		mu.Unlock()
		close(entered)
		<-unblock
	})
	deleted := make(chan error, 1)
	go func() { deleted <- s.DeleteSession(context.Background(), "s1") }()
	<-entered
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("stop returned while the watcher was running")
	case <-time.After(20 * time.Millisecond):
	}
	close(unblock)
	<-stopped
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	session("s2", "u1", time.Hour)
	if err := s.DeleteSession(context.Background(), "s2"); err != nil {
		t.Fatal(err)
	}
	stop()
	if calls != 1 {
		t.Errorf("watcher called %d times, want 1 (before stop)", calls)
	}
}

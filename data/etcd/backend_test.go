package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/etcd"
	"github.com/vintner/arbor/data/etcd/etcdtest"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func session(id, user string, now time.Time, ttl time.Duration) data.Session {
	return data.Session{ID: id, UserID: user, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(ttl)}
}

// idLog collects the ids a watcher is called with.
type idLog struct {
	mu  sync.Mutex
	ids []string
}

func (l *idLog) add(id string) { l.mu.Lock(); l.ids = append(l.ids, id); l.mu.Unlock() }

func (l *idLog) has(want ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range want {
		if !slices.Contains(l.ids, id) {
			return false
		}
	}
	return true
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(time.Millisecond)
	}
}

// A stopped cluster makes every method return ErrUnavailable within the
// request timeout, and the store works again once the cluster is back.
func TestUnavailable(t *testing.T) {
	c := etcdtest.Start(t)
	ctx := context.Background()
	const timeout = 500 * time.Millisecond
	s, err := etcd.Open(ctx, etcd.Config{Endpoints: c.Endpoints(), RequestTimeout: timeout}, etcd.Options{Logger: quiet})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	must(t, s.CreateUser(ctx, data.User{ID: "u1"}))
	must(t, s.CreateSession(ctx, session("s1", "u1", time.Now(), time.Hour)))

	c.Member(0).Stop()
	calls := map[string]func() error{
		"Ping":    func() error { return s.Ping(ctx) },
		"GetUser": func() error { _, err := s.GetUser(ctx, "u1"); return err },
		"GetSession": func() error {
			_, err := s.GetSession(ctx, "s1")
			return err
		},
		"CreateUser": func() error { return s.CreateUser(ctx, data.User{ID: "u2"}) },
		"UpdateSession": func() error {
			_, err := s.UpdateSession(ctx, "s1", func(v data.Session) (data.Session, error) { return v, nil })
			return err
		},
		"DeleteUser":  func() error { return s.DeleteUser(ctx, "u1") },
		"AppendAudit": func() error { _, err := s.AppendAudit(ctx, data.AuditEvent{Action: "x"}); return err },
		"CollectExpired": func() error {
			_, err := s.CollectExpired(ctx, time.Now())
			return err
		},
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		took := time.Since(start)
		if !errors.Is(err, data.ErrUnavailable) {
			t.Errorf("%s with the server stopped: %v, want ErrUnavailable", name, err)
		}
		if took > timeout+time.Second {
			t.Errorf("%s with the server stopped took %s, want about the request timeout %s", name, took, timeout)
		}
	}

	must(t, c.Member(0).Restart())
	waitFor(t, 10*time.Second, "store usable after the restart", func() bool { return s.Ping(ctx) == nil })
	got, err := s.GetSession(ctx, "s1")
	must(t, err)
	if got.UserID != "u1" {
		t.Fatalf("session after restart: %+v", got)
	}
}

// Open against an address where nothing listens fails with ErrUnavailable
// within the dial and request timeouts.
func TestOpenUnreachable(t *testing.T) {
	start := time.Now()
	_, err := etcd.Open(context.Background(), etcd.Config{
		Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 300 * time.Millisecond, RequestTimeout: 300 * time.Millisecond,
	}, etcd.Options{Logger: quiet})
	if !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("Open of an unreachable cluster: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Open of an unreachable cluster took %s", took)
	}
}

// Two stores on one cluster and root are two replicas: a write through one
// reaches the watchers of both.
func TestWatchReplicas(t *testing.T) {
	ctx := context.Background()
	root := newRoot()
	a, err := etcd.New(ctx, sharedClient, etcd.Config{Root: root}, etcd.Options{Logger: quiet})
	must(t, err)
	t.Cleanup(func() { a.Close() })
	b, err := etcd.Open(ctx, etcd.Config{Endpoints: shared.Endpoints(), Root: root}, etcd.Options{Logger: quiet})
	must(t, err)
	t.Cleanup(func() { b.Close() })

	now := time.Now()
	must(t, a.CreateUser(ctx, data.User{ID: "u1"}))
	for _, id := range []string{"s1", "s2", "s3"} {
		must(t, a.CreateSession(ctx, session(id, "u1", now, time.Hour)))
	}
	var la, lb idLog
	defer a.WatchSessions(la.add)()
	defer b.WatchSessions(lb.add)()

	must(t, a.DeleteSession(ctx, "s1"))
	waitFor(t, time.Second, "both replicas told of the delete", func() bool { return la.has("s1") && lb.has("s1") })

	_, err = b.UpdateSession(ctx, "s2", func(v data.Session) (data.Session, error) { v.IP = "192.0.2.1"; return v, nil })
	must(t, err)
	waitFor(t, time.Second, "both replicas told of the update", func() bool { return la.has("s2") && lb.has("s2") })

	must(t, a.DeleteUser(ctx, "u1"))
	waitFor(t, time.Second, "both replicas told of the cascade", func() bool { return la.has("s3") && lb.has("s3") })
	if _, err := b.GetSession(ctx, "s3"); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("GetSession on the other replica after DeleteUser: %v, want ErrNotFound", err)
	}
}

// A user disabled (UpdateUser) or deleted on one replica is reported to
// the user watchers of both, shortly after; a user created is not.
func TestWatchUsersReplicas(t *testing.T) {
	ctx := context.Background()
	root := newRoot()
	a, err := etcd.New(ctx, sharedClient, etcd.Config{Root: root}, etcd.Options{Logger: quiet})
	must(t, err)
	t.Cleanup(func() { a.Close() })
	b, err := etcd.Open(ctx, etcd.Config{Endpoints: shared.Endpoints(), Root: root}, etcd.Options{Logger: quiet})
	must(t, err)
	t.Cleanup(func() { b.Close() })

	var la, lb idLog
	defer a.WatchUsers(la.add)()
	defer b.WatchUsers(lb.add)()
	must(t, a.CreateUser(ctx, data.User{ID: "u1"}))
	must(t, a.CreateUser(ctx, data.User{ID: "u2"}))

	_, err = b.UpdateUser(ctx, "u1", func(u data.User) (data.User, error) {
		u.Disabled, u.DisabledBy = true, "operator"
		return u, nil
	})
	must(t, err)
	waitFor(t, 5*time.Second, "both replicas told of the disable", func() bool { return la.has("u1") && lb.has("u1") })

	must(t, a.DeleteUser(ctx, "u2"))
	waitFor(t, 5*time.Second, "both replicas told of the delete", func() bool { return la.has("u2") && lb.has("u2") })
	if _, err := b.GetUser(ctx, "u2"); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("GetUser on the other replica after DeleteUser: %v, want ErrNotFound", err)
	}
	// Calls come in the order of the writes, so by u2's every call for
	// the creates before it would have come.
	for _, l := range []*idLog{&la, &lb} {
		l.mu.Lock()
		if !slices.Equal(l.ids, []string{"u1", "u2"}) {
			t.Errorf("a replica's user watcher was called with %q, want [u1 u2] (the update and the delete, not the creates)", l.ids)
		}
		l.mu.Unlock()
	}
}

// Records with a lifetime carry a lease that outlives ExpiresAt (by the
// store's clock, not the wall clock), shared by records that expire close
// together; records without one carry none.
func TestLeases(t *testing.T) {
	ctx := context.Background()
	root := newRoot()
	fake := time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC) // far from the wall clock
	s, err := etcd.New(ctx, sharedClient, etcd.Config{Root: root}, etcd.Options{Logger: quiet, Now: func() time.Time { return fake }})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	must(t, s.CreateUser(ctx, data.User{ID: "u1"}))
	// Leases are bucketed by the wall clock (a minute wide for an hour's
	// lifetime, lease.go): the two sessions' ends, a second apart, share
	// a bucket unless they straddle a minute's end, which happens when the
	// wall clock is in a minute's last second (CI failed so once in 60).
	// Start the two writes well inside a minute.
	if sec := time.Now().Second(); sec >= 55 {
		time.Sleep(time.Duration(61-sec) * time.Second)
	}
	must(t, s.CreateSession(ctx, session("s1", "u1", fake, time.Hour)))
	must(t, s.CreateSession(ctx, session("s2", "u1", fake, time.Hour+time.Second)))
	must(t, s.CreateWorker(ctx, data.Worker{ID: "w1", UserID: "u1", Name: "w"}))

	lease := func(key string) clientv3.LeaseID {
		t.Helper()
		resp, err := sharedClient.Get(ctx, root+key)
		must(t, err)
		if len(resp.Kvs) != 1 {
			t.Fatalf("key %q: %d kvs", key, len(resp.Kvs))
		}
		return clientv3.LeaseID(resp.Kvs[0].Lease)
	}
	l1, l2 := lease("sessions/u1\x00s1"), lease("sessions/u1\x00s2")
	if l1 == clientv3.NoLease {
		t.Fatal("session s1 has no lease")
	}
	if l1 != l2 {
		t.Errorf("sessions expiring a second apart have leases %x and %x, want one shared lease", l1, l2)
	}
	if idx := lease("idx/session/s1"); idx != l1 {
		t.Errorf("the index entry of s1 has lease %x, want the session's %x", idx, l1)
	}
	if w := lease("workers/u1\x00w1"); w != clientv3.NoLease {
		t.Errorf("worker has lease %x, want none", w)
	}
	ttl, err := sharedClient.TimeToLive(ctx, l1)
	must(t, err)
	if ttl.TTL < int64(time.Hour/time.Second) || ttl.TTL > int64((2*time.Hour)/time.Second) {
		t.Errorf("session lease TTL %ds, want a little over an hour", ttl.TTL)
	}

	// Extending the session moves it and its index entry to a later lease.
	_, err = s.UpdateSession(ctx, "s1", func(v data.Session) (data.Session, error) {
		v.ExpiresAt = fake.Add(3 * time.Hour)
		return v, nil
	})
	must(t, err)
	l3 := lease("sessions/u1\x00s1")
	if l3 == l1 || lease("idx/session/s1") != l3 {
		t.Errorf("after extending: session lease %x, index lease %x (was %x)", l3, lease("idx/session/s1"), l1)
	}
	ttl, err = sharedClient.TimeToLive(ctx, l3)
	must(t, err)
	if ttl.TTL < int64(3*time.Hour/time.Second) {
		t.Errorf("extended session's lease TTL %ds, want over three hours", ttl.TTL)
	}
}

// A user with far more records than etcd's 128 operations per transaction
// is deleted at once, and everything of theirs is gone.
func TestDeleteUserManyRecords(t *testing.T) {
	ctx := context.Background()
	root := newRoot()
	now := time.Now()
	s, err := etcd.New(ctx, sharedClient, etcd.Config{Root: root}, etcd.Options{Logger: quiet})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	must(t, s.CreateUser(ctx, data.User{ID: "u1"}))
	must(t, s.CreateUser(ctx, data.User{ID: "u2"}))
	const nSessions, nWorkers, nFamilies = 150, 100, 30
	var sessionIDs []string
	var wg sync.WaitGroup
	errs := make(chan error, nSessions+nWorkers+nFamilies+1)
	for i := range nSessions {
		id := "s" + strconv.Itoa(i)
		sessionIDs = append(sessionIDs, id)
		wg.Go(func() { errs <- s.CreateSession(ctx, session(id, "u1", now, time.Hour)) })
	}
	for i := range nWorkers {
		wg.Go(func() { errs <- s.CreateWorker(ctx, data.Worker{ID: "w" + strconv.Itoa(i), UserID: "u1", Name: "w"}) })
	}
	for i := range nFamilies {
		wg.Go(func() {
			errs <- s.CreateRefreshFamily(ctx, data.RefreshFamily{ID: "f" + strconv.Itoa(i), UserID: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
		})
	}
	wg.Go(func() { errs <- s.CreateSession(ctx, session("other", "u2", now, time.Hour)) })
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	must(t, s.CreateIdentity(ctx, data.Identity{Provider: "github", Subject: "1", UserID: "u1"}))
	must(t, s.CreateConnection(ctx, data.Connection{UserID: "u1", Provider: "github"}))

	var l idLog
	defer s.WatchSessions(l.add)()
	must(t, s.DeleteUser(ctx, "u1"))

	if _, err := s.GetUser(ctx, "u1"); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("GetUser after DeleteUser: %v", err)
	}
	for _, id := range sessionIDs {
		if _, err := s.GetSession(ctx, id); !errors.Is(err, data.ErrNotFound) {
			t.Fatalf("GetSession %s after DeleteUser: %v", id, err)
		}
	}
	if _, err := s.GetWorker(ctx, "w99"); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("GetWorker after DeleteUser: %v", err)
	}
	if _, err := s.GetIdentity(ctx, "github", "1"); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("GetIdentity after DeleteUser: %v", err)
	}
	if _, err := s.GetSession(ctx, "other"); err != nil {
		t.Fatalf("another user's session after DeleteUser: %v", err)
	}
	waitFor(t, 5*time.Second, "every session of the user reported", func() bool { return l.has(sessionIDs...) })

	// Nothing of u1 is left under the root, index entries included.
	for _, prefix := range []string{"sessions/u1\x00", "workers/u1\x00", "families/u1\x00", "identities/u1\x00", "connections/u1\x00", "idx/worker/", "idx/family/", "idx/identity/"} {
		resp, err := sharedClient.Get(ctx, root+prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		must(t, err)
		if resp.Count != 0 {
			t.Errorf("%d keys left under %q", resp.Count, prefix)
		}
	}
	resp, err := sharedClient.Get(ctx, root+"idx/session/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	must(t, err)
	if resp.Count != 1 {
		t.Errorf("%d session index entries left, want 1 (the other user's)", resp.Count)
	}

	// A new user of the same id starts empty, and the ids are free again.
	must(t, s.CreateUser(ctx, data.User{ID: "u1"}))
	list, err := s.ListSessions(ctx, "u1")
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("the new u1 has %d sessions", len(list))
	}
	must(t, s.CreateSession(ctx, session("s1", "u1", now, time.Hour)))
	must(t, s.CreateWorker(ctx, data.Worker{ID: "w1", UserID: "u1"}))
}

// A cluster of three keeps serving when its leader stops, and the stopped
// member rejoins with its data.
func TestThreeMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of three")
	}
	c := etcdtest.StartCluster(t, 3)
	ctx := context.Background()
	s, err := etcd.Open(ctx, etcd.Config{Endpoints: c.Endpoints(), RequestTimeout: 10 * time.Second}, etcd.Options{Logger: quiet})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	must(t, s.CreateUser(ctx, data.User{ID: "u1"}))

	lead, err := c.WaitLeader(ctx)
	must(t, err)
	c.Member(lead).Stop()
	for i := range 5 {
		if _, err := s.AppendAudit(ctx, data.AuditEvent{Action: fmt.Sprint("without the old leader ", i)}); err != nil {
			t.Fatalf("AppendAudit with two of three members: %v", err)
		}
	}
	must(t, c.Member(lead).Restart())
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListAudit(ctx, data.AuditQuery{})
	must(t, err)
	if len(got) != 5 {
		t.Fatalf("ListAudit: %d events, want 5", len(got))
	}
}

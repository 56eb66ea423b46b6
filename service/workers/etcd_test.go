package workers_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/etcd"
	"github.com/vintner/arbor/data/etcd/etcdtest"
	"github.com/vintner/arbor/service/workers"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openEtcd opens a store on c, closed when the test ends.
func openEtcd(tb testing.TB, c *etcdtest.Cluster) *etcd.Store {
	tb.Helper()
	s, err := etcd.Open(context.Background(), etcd.Config{Endpoints: c.Endpoints(), Root: "/arbor/"}, etcd.Options{Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// authenticate runs svc.Authenticate on a request with the worker headers.
func authenticate(svc *workers.Service, id, tok string) (workers.Identity, error) {
	return svc.Authenticate(context.Background(), []byte(id), []byte(tok), loopback)
}

// Two replicas on one etcd cluster: a worker cached on B is refused by B
// within a second of being revoked or rotated on A.
func TestRevokeOnOtherReplica(t *testing.T) {
	c := etcdtest.Start(t)
	ctx := context.Background()
	a := openEtcd(t, c)
	b := &countingStore{Store: openEtcd(t, c)}
	svcA := workers.New(a, workers.Options{FlushInterval: time.Hour, Logger: quiet})
	t.Cleanup(svcA.Close)
	svcB := workers.New(b, workers.Options{FlushInterval: time.Hour, Logger: quiet})
	t.Cleanup(svcB.Close)
	if err := a.CreateUser(ctx, data.User{ID: "alice", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	// cachedOnB registers a worker on A and authenticates it on B until B
	// answers from its cache.
	cachedOnB := func(name string) (data.Worker, string) {
		t.Helper()
		w, tok, err := svcA.Register(ctx, "alice", name)
		if err != nil {
			t.Fatal(err)
		}
		before := b.n.Load()
		for range 5 {
			id, err := authenticate(svcB, w.ID, tok)
			if err != nil || id.UserID != "alice" || id.Name != name {
				t.Fatalf("%s on B: %+v, %v", name, id, err)
			}
		}
		if n := b.n.Load() - before; n != 1 {
			t.Fatalf("%s: B read the worker %d times for 5 requests, want 1", name, n)
		}
		return w, tok
	}
	refusedWithin := func(what, id, tok string) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for {
			_, err := authenticate(svcB, id, tok)
			if errors.Is(err, workers.ErrUnauthorized) {
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: B still accepts the token a second later", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	w1, tok1 := cachedOnB("revoked")
	if err := svcA.Revoke(ctx, "alice", w1.ID); err != nil {
		t.Fatal(err)
	}
	refusedWithin("revoked on A", w1.ID, tok1)

	w2, tok2 := cachedOnB("rotated")
	_, newTok, err := svcA.Rotate(ctx, "alice", w2.ID)
	if err != nil {
		t.Fatal(err)
	}
	refusedWithin("old token rotated on A", w2.ID, tok2)
	if _, err := authenticate(svcB, w2.ID, newTok); err != nil {
		t.Fatalf("the new token on B: %v", err)
	}

	w3, tok3 := cachedOnB("with-its-user")
	if err := a.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	refusedWithin("user deleted on A", w3.ID, tok3)
}

// loopback is the client address the tests' workers call from.
func loopback() string { return "127.0.0.1" }

package etcd_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/etcd"
	"github.com/vintner/arbor/data/etcd/etcdtest"
)

// replica is a store on a client of its own, as another Arbor process
// would have.
func replica(t *testing.T, root string, ttl time.Duration) (*etcd.Store, *clientv3.Client) {
	t.Helper()
	cl, err := shared.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	s, err := etcd.New(context.Background(), cl, etcd.Config{Root: root}, etcd.Options{Logger: quiet, LockTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, cl
}

func lockWithin(t *testing.T, s data.Locks, name string, d time.Duration) (func(), error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.Lock(ctx, name)
}

func TestLocksExcludeOtherReplicas(t *testing.T) {
	root := newRoot()
	a, _ := replica(t, root, 0)
	b, _ := replica(t, root, 0)

	unlock, err := lockWithin(t, a, "n", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := lockWithin(t, b, "n", 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			u()
		}
		t.Fatalf("replica b took a lock replica a holds: %v", err)
	}
	// Another root is another deployment.
	c, _ := replica(t, newRoot(), 0)
	u, err := lockWithin(t, c, "n", 5*time.Second)
	if err != nil {
		t.Fatalf("a store under another root: %v", err)
	}
	u()
	unlock()

	// Both replicas, many callers each: one holder at a time.
	var inside, done atomic.Int32
	var wg sync.WaitGroup
	for _, s := range []*etcd.Store{a, b} {
		for range 8 {
			wg.Go(func() {
				for range 3 {
					u, err := lockWithin(t, s, "counter", 20*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					if n := inside.Add(1); n != 1 {
						t.Errorf("%d holders at once", n)
					}
					time.Sleep(2 * time.Millisecond)
					inside.Add(-1)
					done.Add(1)
					u()
				}
			})
		}
	}
	wg.Wait()
	if done.Load() != 2*8*3 {
		t.Fatalf("%d critical sections, want %d", done.Load(), 2*8*3)
	}
}

// A replica that dies holding a lock (its client gone: no unlock, no
// revoke, no more keep-alives) holds it until its lease expires, and then
// the other replica gets it.
func TestLockOfDeadReplicaExpires(t *testing.T) {
	const ttl = 2 * time.Second
	root := newRoot()
	a, clientA := replica(t, root, ttl)
	b, _ := replica(t, root, ttl)

	unlockA, err := lockWithin(t, a, "refresh", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// b is already waiting when a dies.
	type result struct {
		unlock func()
		err    error
		after  time.Duration
	}
	got := make(chan result, 1)
	start := time.Now()
	go func() {
		u, err := lockWithin(t, b, "refresh", ttl+5*time.Second)
		got <- result{u, err, time.Since(start)}
	}()
	time.Sleep(200 * time.Millisecond)
	clientA.Close()
	died := time.Now()

	r := <-got
	if r.err != nil {
		t.Fatalf("b did not get the lock of a dead replica within TTL + 5s: %v", r.err)
	}
	defer r.unlock()
	waited := time.Since(died)
	t.Logf("b got the lock %s after a died (TTL %s)", waited.Round(time.Millisecond), ttl)
	if waited < ttl/4 {
		t.Fatalf("b got the lock %s after a died: released before its lease could expire", waited)
	}
	if waited > ttl+3*time.Second {
		t.Fatalf("b got the lock %s after a died, TTL %s", waited, ttl)
	}
	// The dead replica's unlock and Close are harmless (Close returns nil
	// in the cleanup: it does not own the client).
	unlockA()
	unlockA()
}

// Close revokes the lease: a cleanly stopped replica frees its locks at
// once, not a TTL later.
func TestCloseReleasesLocksAtOnce(t *testing.T) {
	root := newRoot()
	a, _ := replica(t, root, time.Minute)
	b, _ := replica(t, root, time.Minute)
	if _, err := lockWithin(t, a, "n", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	go func() {
		time.Sleep(200 * time.Millisecond)
		a.Close()
	}()
	u, err := lockWithin(t, b, "n", 10*time.Second)
	if err != nil {
		t.Fatalf("the lock of a closed store was not released: %v", err)
	}
	u()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the lock of a closed store took %s to be released (TTL 1m)", d)
	}
}

// A cluster that cannot be reached is data.ErrUnavailable within
// RequestTimeout.
func TestLockUnavailable(t *testing.T) {
	c := etcdtest.Start(t)
	s, err := etcd.Open(context.Background(), etcd.Config{Endpoints: c.Endpoints(), RequestTimeout: 500 * time.Millisecond}, etcd.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c.Member(0).Stop()
	start := time.Now()
	_, err = lockWithin(t, s, "n", time.Minute)
	if !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("Lock on a stopped cluster: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Lock on a stopped cluster took %s (RequestTimeout 500ms)", d)
	}
}

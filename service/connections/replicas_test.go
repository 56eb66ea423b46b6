package connections

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/data/etcd"
	"github.com/vintner/arbor/data/etcd/etcdtest"
	"github.com/vintner/arbor/data/seal"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/service/providers"
)

// replicas is one deployment of several brokers (one per store: a store
// stands for a replica) sharing the sealing keys, the fake providers and
// a clock.
type replicas struct {
	t       *testing.T
	keys    *seal.Keyring
	fakes   *fakes.Set
	provs   *providers.Set
	clock   *clock
	brokers []*Broker
	stores  []Store
}

func newReplicas(t *testing.T, stores ...Store) *replicas {
	t.Helper()
	r := &replicas{t: t, keys: newKeyring(t), clock: &clock{}, stores: stores}
	r.clock.ns.Store(time.Now().UnixNano())
	r.fakes, r.provs = startFakes(t, nil)
	for _, st := range stores {
		b := New(st, r.keys, r.provs, Options{
			Now: r.clock.Now, RetryBackoff: time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		t.Cleanup(b.Close)
		r.brokers = append(r.brokers, b)
	}
	return r
}

// expiredConnection connects u1 to provider through the first replica and
// lets the access token expire.
func (r *replicas) expiredConnection(users data.Users, provider string) string {
	r.t.Helper()
	if err := users.CreateUser(context.Background(), data.User{ID: "u1", CreatedAt: time.Now()}); err != nil {
		r.t.Fatal(err)
	}
	connect(r.t, r.brokers[0], r.provs, r.fakes, provider)
	c, err := r.stores[0].GetConnection(context.Background(), "u1", provider)
	if err != nil {
		r.t.Fatal(err)
	}
	s, err := r.brokers[0].open(c)
	if err != nil {
		r.t.Fatal(err)
	}
	r.clock.Advance(3 * time.Hour)
	return s.AccessToken
}

// stampede runs perReplica callers of ValidProviderToken on every replica,
// released at once, and checks that they all got the same new token from
// exactly one refresh at the provider.
func (r *replicas) stampede(provider, old string, perReplica int) {
	r.t.Helper()
	// A provider that takes a moment: every caller arrives while the
	// refresh is in flight on some replica.
	r.fakes.Fakes[provider].SetDelay(fakeprovider.EndpointToken, 150*time.Millisecond)
	n := len(r.brokers) * perReplica
	toks := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		b := r.brokers[i%len(r.brokers)]
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			tok, err := b.ValidProviderToken(ctx, "u1", provider)
			toks[i], errs[i] = tok.AccessToken, err
		})
	}
	close(start)
	wg.Wait()
	refreshes := len(refreshCalls(r.fakes, provider))
	r.t.Logf("%d replicas × %d callers: %d refresh(es) at the provider", len(r.brokers), perReplica, refreshes)
	for i := range n {
		if errs[i] != nil || toks[i] == "" || toks[i] != toks[0] {
			r.t.Fatalf("caller %d (replica %d): %q %v; caller 0 got %q", i, i%len(r.brokers), toks[i], errs[i], toks[0])
		}
	}
	if refreshes != 1 {
		r.t.Fatalf("%d refreshes at the provider for %d callers on %d replicas, want 1", refreshes, n, len(r.brokers))
	}
	if toks[0] == old || !r.fakes.Fakes[provider].ValidAccessToken(toks[0]) {
		r.t.Fatal("the callers got the old token, or one the provider does not know")
	}
}

func openEtcd(t *testing.T, c *etcdtest.Cluster, ttl time.Duration) (*etcd.Store, *clientv3.Client) {
	t.Helper()
	cl, err := c.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	s, err := etcd.New(context.Background(), cl, etcd.Config{}, etcd.Options{LockTTL: ttl, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, cl
}

// Two replicas on one etcd cluster, 50 callers each, one expired
// connection to a provider that rotates refresh tokens: one refresh.
func TestOneRefreshAcrossReplicas(t *testing.T) {
	c := etcdtest.Start(t)
	a, _ := openEtcd(t, c, 0)
	b, _ := openEtcd(t, c, 0)
	r := newReplicas(t, a, b)
	old := r.expiredConnection(a, "gitlab")
	r.stampede("gitlab", old, 50)
}

// The same with two brokers on one bbolt store (one process).
func TestOneRefreshAcrossBrokersOnBolt(t *testing.T) {
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "c.db"), boltdb.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := newReplicas(t, st, st)
	old := r.expiredConnection(st, "gitlab")
	r.stampede("gitlab", old, 50)
}

// Replica A takes the refresh lock and dies before calling the provider
// (its etcd client gone: no unlock, no revoke, no keep-alive). Replica B's
// caller waits for A's lease to expire, then refreshes: one refresh.
func TestRefreshAfterReplicaDiesHoldingTheLock(t *testing.T) {
	const ttl = 2 * time.Second
	c := etcdtest.Start(t)
	a, clientA := openEtcd(t, c, ttl)
	b, _ := openEtcd(t, c, ttl)
	r := newReplicas(t, a, b)
	old := r.expiredConnection(a, "gitlab")

	if _, err := a.Lock(context.Background(), refreshLock("u1", "gitlab")); err != nil {
		t.Fatal(err)
	}
	clientA.Close()
	died := time.Now()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tok, err := r.brokers[1].ValidProviderToken(ctx, "u1", "gitlab")
	waited := time.Since(died)
	if err != nil {
		t.Fatalf("replica B after A died holding the lock: %v", err)
	}
	t.Logf("replica B refreshed %s after A died (lock TTL %s)", waited.Round(time.Millisecond), ttl)
	if waited < ttl/4 || waited > ttl+3*time.Second {
		t.Fatalf("replica B refreshed %s after A died; want about the TTL %s", waited, ttl)
	}
	if n := len(refreshCalls(r.fakes, "gitlab")); n != 1 {
		t.Fatalf("%d refreshes at the provider, want 1", n)
	}
	if tok.AccessToken == old || !r.fakes.Fakes["gitlab"].ValidAccessToken(tok.AccessToken) {
		t.Fatal("replica B returned the old token, or one the provider does not know")
	}
	stored, err := b.GetConnection(context.Background(), "u1", "gitlab")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := r.brokers[1].open(stored); err != nil || s.AccessToken != tok.AccessToken {
		t.Fatalf("the refreshed token was not stored: %v", err)
	}
}

// A store that cannot take the lock answers store_unavailable and leaves
// the provider alone.
func TestRefreshLockUnavailable(t *testing.T) {
	e := newEnv(t, nil, Options{})
	e.connect("gitlab")
	e.clock.Advance(3 * time.Hour)
	e.store.failLocks.Store(1)
	if _, err := e.b.ValidProviderToken(context.Background(), "u1", "gitlab"); codeOf(err) != "store_unavailable" {
		t.Fatalf("lock unavailable: %v, want store_unavailable", err)
	}
	if n := len(e.refreshCalls("gitlab")); n != 0 {
		t.Fatalf("%d refreshes without the lock, want 0", n)
	}
	if _, err := e.b.ValidProviderToken(context.Background(), "u1", "gitlab"); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

func TestRefreshLockNames(t *testing.T) {
	if refreshLock("a/b", "c") == refreshLock("a", "b/c") {
		t.Fatal("two connections share a refresh lock")
	}
	if got := refreshLock("u\x00", "gitlab"); got != "refresh/u%00/gitlab" {
		t.Fatalf("refreshLock = %q", got)
	}
}

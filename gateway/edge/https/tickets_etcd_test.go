package https_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/etcd"
	"github.com/vintner/arbor/data/etcd/etcdtest"
	"github.com/vintner/arbor/gateway/edge/https"
)

// TestSessionTicketKeysOnEtcd: two replicas, each with its own client of
// one real (embedded) etcd cluster, resume each other's sessions, and a
// rotation both see due at once happens once.
func TestSessionTicketKeysOnEtcd(t *testing.T) {
	cluster := etcdtest.Start(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func() *etcd.Store {
		st, err := etcd.Open(context.Background(), etcd.Config{Endpoints: cluster.Endpoints(), Root: "/arbor-tickets/"}, etcd.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	cl := newCluster(t)
	a := cl.replica(t, open(), -1)
	b := cl.replica(t, open(), -1)
	cache := tls.NewLRUClientSessionCache(4)
	if resumed(t, a, cache, tls.VersionTLS13) {
		t.Fatal("first connection resumed")
	}
	if !resumed(t, b, cache, tls.VersionTLS13) {
		t.Fatal("a session from one replica did not resume on the other")
	}

	cl.clock.Advance(https.DefaultTicketRotation)
	// Both replicas find the rotation due and queue on the store lock,
	// which the test holds meanwhile: the one that gets it second must
	// see the rotation made and not rotate again.
	third := open()
	unlock, err := third.Lock(context.Background(), https.TicketKeysBlob)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for _, f := range []*fixture{a, b} {
		go func() { errs <- f.term.SyncTicketKeys(context.Background()) }()
	}
	time.Sleep(300 * time.Millisecond) // let both reach the lock (not an assertion)
	unlock()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	blob, err := third.GetBlob(context.Background(), https.TicketKeysBlob)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := data.OpenBlob(cl.sealer.kr, https.TicketKeysBlob, blob.Value)
	if err != nil {
		t.Fatal(err)
	}
	if n := (len(plain) - 9) / 32; n != 2 {
		t.Fatalf("%d keys after both replicas saw one rotation due; want 2 (one rotation)", n)
	}
	// The older key still resumes, on either replica.
	if !resumed(t, a, cache, tls.VersionTLS13) {
		t.Fatal("after the rotation, a session did not resume")
	}
}

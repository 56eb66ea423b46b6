package etcd_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/conformance"
	"github.com/vintner/arbor/data/etcd"
	"github.com/vintner/arbor/data/etcd/etcdtest"
)

// One embedded server for the whole test binary; every store gets a root
// prefix of its own, so stores do not see each other's records.
var (
	shared       *etcdtest.Cluster
	sharedClient *clientv3.Client
	roots        atomic.Int64
)

func TestMain(m *testing.M) {
	c, err := etcdtest.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cl, err := c.NewClient()
	if err != nil {
		c.Close()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared, sharedClient = c, cl
	code := m.Run()
	cl.Close()
	c.Close()
	os.Exit(code)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newRoot() string { return fmt.Sprintf("/test-%d/", roots.Add(1)) }

// newStore returns a store on the shared server under a fresh root.
func newStore(t testing.TB, now func() time.Time) *etcd.Store {
	t.Helper()
	return newStoreAt(t, newRoot(), now)
}

func newStoreAt(t testing.TB, root string, now func() time.Time) *etcd.Store {
	t.Helper()
	s, err := etcd.New(context.Background(), sharedClient, etcd.Config{Root: root}, etcd.Options{Now: now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T, now func() time.Time) data.Store {
		return newStore(t, now)
	})
}

// TestOpenOwnClient uses a store with a client of its own, which Close closes.
func TestOpenOwnClient(t *testing.T) {
	s, err := etcd.Open(context.Background(), etcd.Config{Endpoints: shared.Endpoints(), Root: newRoot()}, etcd.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.CreateUser(ctx, data.User{ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx, "u1"); !errorsIs(err, data.ErrClosed) {
		t.Fatalf("GetUser after Close: %v, want ErrClosed", err)
	}
}

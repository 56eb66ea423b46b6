package workers_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/sdk/client"
	"github.com/vintner/arbor/service/workers"
)

type fixture struct {
	t     *testing.T
	store *boltdb.Store
	reads *countingStore // what svc uses: store, with its worker reads counted
	svc   *workers.Service
	base  string
	logs  *bytes.Buffer
}

// countingStore is a real store that counts GetWorker calls, to tell a
// cached answer from a store read.
type countingStore struct {
	workers.Store
	n atomic.Int64
}

func (c *countingStore) GetWorker(ctx context.Context, id string) (data.Worker, error) {
	c.n.Add(1)
	return c.Store.GetWorker(ctx, id)
}

// newFixture serves GET /w on a real Fiber server: 200 with the worker's
// ids when Authenticate accepts, 401 otherwise.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureAt(t, nil)
}

// newFixtureAt is newFixture with the service's clock (nil: time.Now).
func newFixtureAt(t *testing.T, now func() time.Time) *fixture {
	t.Helper()
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "w.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, store: st, reads: &countingStore{Store: st}, logs: &bytes.Buffer{}}
	f.svc = workers.New(f.reads, workers.Options{FlushInterval: time.Hour, Now: now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(f.svc.Close)
	for _, u := range []string{"alice", "bob"} {
		if err := st.CreateUser(context.Background(), data.User{ID: u, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/w", func(c *fiber.Ctx) error {
		id, out, err := authn.Workers(f.svc).Authenticate(c)
		switch out {
		case authn.Authenticated:
			return c.SendString(id.WorkerID + " " + id.UserID)
		case authn.Failed:
			return err
		}
		return c.Status(401).SendString("unauthorized") // None or Refused

	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { app.Shutdown() })
	f.base = "http://" + ln.Addr().String()
	return f
}

func (f *fixture) call(headers map[string][]string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.base+"/w", nil)
	for k, vs := range headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func hdr(id, tok string) map[string][]string {
	return map[string][]string{workers.HeaderID: {id}, workers.HeaderToken: {tok}}
}

func TestRegisterAuthenticateRotateRevoke(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	w, tok, err := f.svc.Register(ctx, "alice", "build-runner-1")
	if err != nil {
		t.Fatal(err)
	}
	if st, body := f.call(hdr(w.ID, tok)); st != 200 || body != w.ID+" alice" {
		t.Fatalf("registered worker: %d %q", st, body)
	}
	// Only the hash is stored.
	stored, _ := f.store.GetWorker(ctx, w.ID)
	if bytes.Contains(stored.TokenHash, []byte(tok)) || len(stored.TokenHash) != 32 {
		t.Fatalf("stored token hash %x", stored.TokenHash)
	}
	// Rotation: the old token stops at once.
	_, tok2, err := f.svc.Rotate(ctx, "alice", w.ID)
	if err != nil || tok2 == tok {
		t.Fatal(err)
	}
	if st, _ := f.call(hdr(w.ID, tok)); st != 401 {
		t.Fatalf("old token after rotation: %d", st)
	}
	if st, _ := f.call(hdr(w.ID, tok2)); st != 200 {
		t.Fatalf("new token: %d", st)
	}
	// Only the owner manages a worker.
	if _, _, err := f.svc.Rotate(ctx, "bob", w.ID); !errors.Is(err, workers.ErrNotFound) {
		t.Fatalf("bob rotating alice's worker: %v", err)
	}
	if err := f.svc.Revoke(ctx, "bob", w.ID); !errors.Is(err, workers.ErrNotFound) {
		t.Fatalf("bob revoking alice's worker: %v", err)
	}
	if _, err := f.svc.Rename(ctx, "alice", w.ID, "runner-one"); err != nil {
		t.Fatal(err)
	}
	if list, _ := f.svc.List(ctx, "alice"); len(list) != 1 || list[0].Name != "runner-one" {
		t.Fatalf("list: %+v", list)
	}
	if err := f.svc.Revoke(ctx, "alice", w.ID); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.call(hdr(w.ID, tok2)); st != 401 {
		t.Fatalf("revoked worker: %d", st)
	}
	// A deleted user's workers stop working.
	w3, tok3, _ := f.svc.Register(ctx, "bob", "bobs-runner")
	if err := f.store.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.call(hdr(w3.ID, tok3)); st != 401 {
		t.Fatalf("worker of a deleted user: %d", st)
	}
}

func TestBadInputIsAlways401(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, tokA, _ := f.svc.Register(ctx, "alice", "a")
	b, tokB, _ := f.svc.Register(ctx, "bob", "b")
	cases := map[string]map[string][]string{
		"no headers":          {},
		"id only":             {workers.HeaderID: {a.ID}},
		"token only":          {workers.HeaderToken: {tokA}},
		"swapped pair":        hdr(a.ID, tokB),
		"swapped pair 2":      hdr(b.ID, tokA),
		"token as id":         hdr(tokA, a.ID),
		"upper-case id":       hdr(string(bytes.ToUpper([]byte(a.ID))), tokA),
		"duplicated id":       {workers.HeaderID: {a.ID, a.ID}, workers.HeaderToken: {tokA}},
		"duplicated token":    {workers.HeaderID: {a.ID}, workers.HeaderToken: {tokA, tokA}},
		"oversized token":     hdr(a.ID, tokA+string(bytes.Repeat([]byte("A"), 2000))),
		"non-ASCII token":     hdr(a.ID, tokA[:len(tokA)-1]+"é"),
		"truncated token":     hdr(a.ID, tokA[:len(tokA)-1]),
		"unknown id":          hdr("00000000-0000-4000-8000-000000000000", tokA),
		"empty values":        hdr("", ""),
		"prefix only":         hdr(a.ID, "arbw_"),
		"other user's worker": hdr(b.ID, tokA),
	}
	for name, h := range cases {
		if st, _ := f.call(h); st != 401 {
			t.Errorf("%s: %d, want 401", name, st)
		}
	}
	// 10,000 random tokens against a real worker id, concurrently.
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for w := range 20 {
		wg.Go(func() {
			for i := w; i < 10000; i += 20 {
				var raw [32]byte
				rand.Read(raw[:])
				tok := "arbw_" + base64.RawURLEncoding.EncodeToString(raw[:]) + fmt.Sprintf("_%06x", i)
				if st, _ := f.call(hdr(a.ID, tok)); st != 401 {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if accepted != 0 {
		t.Fatalf("%d random tokens accepted", accepted)
	}
	if st, _ := f.call(hdr(a.ID, tokA)); st != 200 {
		t.Fatalf("the real token after the probing: %d", st)
	}
}

func TestLastUsedIsBatched(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	w, tok, _ := f.svc.Register(ctx, "alice", "a")
	for range 5 {
		f.call(hdr(w.ID, tok))
	}
	if got, _ := f.store.GetWorker(ctx, w.ID); !got.LastUsedAt.IsZero() {
		t.Fatal("last used written per request")
	}
	f.svc.Flush(ctx)
	got, _ := f.store.GetWorker(ctx, w.ID)
	if got.LastUsedAt.IsZero() || got.LastAddr != "127.0.0.1" {
		t.Fatalf("after flush: %+v", got)
	}
}

func TestLastUsedKeptToTheSecond(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	f := newFixtureAt(t, now)
	ctx := context.Background()
	w, tok, _ := f.svc.Register(ctx, "alice", "a")
	lastUsed := func() time.Time {
		t.Helper()
		list, err := f.svc.List(ctx, "alice")
		if err != nil || len(list) != 1 {
			t.Fatalf("List: %v, %d workers", err, len(list))
		}
		return list[0].LastUsedAt
	}
	t0 := now()
	steps := []struct {
		after time.Duration // since the previous step
		want  time.Time     // last use afterwards
	}{
		{0, t0},
		{600 * time.Millisecond, t0},                      // within the second: not updated
		{399 * time.Millisecond, t0},                      // still within it
		{time.Millisecond, t0.Add(time.Second)},           // a second on: updated
		{5 * time.Second, t0.Add(6 * time.Second)},        // and later uses too
		{999 * time.Millisecond, t0.Add(6 * time.Second)}, // not within the second
	}
	for i, st := range steps {
		advance(st.after)
		if code, _ := f.call(hdr(w.ID, tok)); code != 200 {
			t.Fatalf("step %d: %d", i, code)
		}
		if got := lastUsed(); !got.Equal(st.want) {
			t.Fatalf("step %d: last used %v, want %v", i, got, st.want)
		}
	}
	f.svc.Flush(ctx)
	if got, _ := f.store.GetWorker(ctx, w.ID); !got.LastUsedAt.Equal(t0.Add(6*time.Second)) || got.LastAddr != "127.0.0.1" {
		t.Fatalf("after flush: last used %v from %q", got.LastUsedAt, got.LastAddr)
	}
}

func TestTokenNeverStored(t *testing.T) {
	f := newFixture(t)
	_, tok, _ := f.svc.Register(context.Background(), "alice", "a")
	f.svc.Flush(context.Background())
	raw, err := os.ReadFile(f.store.Path())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(tok)) || bytes.Contains(raw, []byte(tok[5:])) {
		t.Fatal("the plaintext token is in the store file")
	}
}

// A worker that authenticated once is answered from the cache: later
// requests read nothing from the store.
func TestCachedWorkerNeedsNoStoreRead(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	w, tok, err := f.svc.Register(ctx, "alice", "a")
	if err != nil {
		t.Fatal(err)
	}
	before := f.reads.n.Load()
	for range 20 {
		if st, body := f.call(hdr(w.ID, tok)); st != 200 || body != w.ID+" alice" {
			t.Fatalf("registered worker: %d %q", st, body)
		}
	}
	if n := f.reads.n.Load() - before; n != 1 {
		t.Fatalf("20 requests read the worker %d times, want 1 (then cached)", n)
	}
	// A wrong token is refused from the cache too, without a read.
	wrong, err := client.NewWorkerToken()
	if err != nil {
		t.Fatal(err)
	}
	before = f.reads.n.Load()
	if st, _ := f.call(hdr(w.ID, wrong)); st != 401 {
		t.Fatalf("wrong token: %d", st)
	}
	// Unknown ids are never cached: each one is a read.
	unknown := "00000000-0000-4000-8000-000000000000"
	for range 3 {
		if st, _ := f.call(hdr(unknown, tok)); st != 401 {
			t.Fatalf("unknown id: %d", st)
		}
	}
	if n := f.reads.n.Load() - before; n != 3 {
		t.Fatalf("a wrong token and 3 requests for an unknown id read the store %d times, want 3 (the unknown id is not cached)", n)
	}
	// A worker registered after its id was asked for is found at once.
	w2, tok2, err := f.svc.Register(ctx, "alice", "b")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := f.call(hdr(w2.ID, tok2)); st != 200 {
		t.Fatalf("new worker: %d", st)
	}
}

// Writes made straight to the store, not through the Service, reach the
// cache through the store's watch: the next request sees them.
func TestStoreWritesDropCachedWorkers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cached := func(name string) (data.Worker, string) {
		t.Helper()
		w, tok, err := f.svc.Register(ctx, "alice", name)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if st, _ := f.call(hdr(w.ID, tok)); st != 200 {
				t.Fatalf("%s before the write: %d", name, st)
			}
		}
		return w, tok
	}

	// DeleteWorker.
	w1, tok1 := cached("deleted")
	if err := f.store.DeleteWorker(ctx, w1.ID); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.call(hdr(w1.ID, tok1)); st != 401 {
		t.Fatalf("worker deleted in the store: %d", st)
	}

	// UpdateWorker changing the token hash (a rotation by another path).
	w2, tok2 := cached("rotated")
	newTok := "not the old token"
	if _, err := f.store.UpdateWorker(ctx, w2.ID, func(w data.Worker) (data.Worker, error) {
		h := sha256.Sum256([]byte(newTok))
		w.TokenHash = h[:]
		return w, nil
	}); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.call(hdr(w2.ID, tok2)); st != 401 {
		t.Fatalf("old token after the hash changed in the store: %d", st)
	}

	// UpdateWorker changing the name: the identity follows.
	w3, tok3 := cached("old-name")
	if _, err := f.store.UpdateWorker(ctx, w3.ID, func(w data.Worker) (data.Worker, error) {
		w.Name = "new-name"
		return w, nil
	}); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.call(hdr(w3.ID, tok3)); st != 200 {
		t.Fatalf("renamed worker: %d", st)
	}

	// DeleteUser: every worker of the user.
	w4, tok4 := cached("with-its-user-a")
	w5, tok5 := cached("with-its-user-b")
	if err := f.store.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, tok string }{{w3.ID, tok3}, {w4.ID, tok4}, {w5.ID, tok5}} {
		if st, _ := f.call(hdr(c.id, c.tok)); st != 401 {
			t.Fatalf("worker of a deleted user: %d", st)
		}
	}
}

// A read that began before a write and finishes after the write's watch
// call must not leave the old record cached. Authenticate runs
// concurrently with rotations; once a rotation has returned, the old
// token must never be accepted again.
func TestCacheNeverServesARecordOlderThanAWrite(t *testing.T) {
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "w.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := workers.New(st, workers.Options{FlushInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(svc.Close)
	ctx := context.Background()
	if err := st.CreateUser(ctx, data.User{ID: "alice", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	w, tok, err := svc.Register(ctx, "alice", "a")
	if err != nil {
		t.Fatal(err)
	}
	auth := func(tok string) error {
		_, err := svc.Authenticate(ctx, []byte(w.ID), []byte(tok), loopback)
		return err
	}
	var stale atomic.Int64
	var retired sync.Map // tokens whose rotation has returned
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var old []string
				retired.Range(func(k, _ any) bool { old = append(old, k.(string)); return len(old) < 3 })
				for _, o := range old {
					if auth(o) == nil {
						stale.Add(1)
					}
				}
			}
		})
	}
	for range 50 {
		// Warm the cache, then rotate by a direct store write.
		auth(tok)
		next, err := client.NewWorkerToken()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.UpdateWorker(ctx, w.ID, func(v data.Worker) (data.Worker, error) {
			h := sha256.Sum256([]byte(next))
			v.TokenHash = h[:]
			return v, nil
		}); err != nil {
			t.Fatal(err)
		}
		retired.Store(tok, true)
		if auth(tok) == nil {
			t.Fatal("the old token was accepted after its rotation returned")
		}
		tok = next
		if err := auth(tok); err != nil {
			t.Fatalf("new token: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	if n := stale.Load(); n != 0 {
		t.Fatalf("retired tokens accepted %d times", n)
	}
}

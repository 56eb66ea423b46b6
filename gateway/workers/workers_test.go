package workers_test

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/workers"
)

type fixture struct {
	t     *testing.T
	store *boltdb.Store
	svc   *workers.Service
	base  string
	logs  *bytes.Buffer
}

// newFixture serves GET /w on a real Fiber server: 200 with the worker's
// ids when Authenticate accepts, 401 otherwise.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "w.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, store: st, logs: &bytes.Buffer{}}
	f.svc = workers.New(st, workers.Options{FlushInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(f.svc.Close)
	for _, u := range []string{"alice", "bob"} {
		if err := st.CreateUser(context.Background(), data.User{ID: u, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/w", func(c *fiber.Ctx) error {
		id, err := f.svc.Authenticate(c)
		if errors.Is(err, workers.ErrUnauthorized) {
			return c.Status(401).SendString("unauthorized")
		}
		if err != nil {
			return err
		}
		return c.SendString(id.WorkerID + " " + id.UserID)
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

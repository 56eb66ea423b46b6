package authz

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/authn/sessiontoken"
	"github.com/vintner/arbor/gateway/authz/access"
	"github.com/vintner/arbor/service/workers"
)

// BenchmarkGuard is the guard's work on one proxied request, on a real
// bbolt store with the session and the worker cached (as in steady state):
// a signed-in browser on a session route, an anonymous request on a public
// route, and a worker on a worker route.
func BenchmarkGuard(b *testing.B) {
	ctx := context.Background()
	st, err := boltdb.Open(filepath.Join(b.TempDir(), "g.db"), boltdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	if err := st.CreateUser(ctx, data.User{ID: "alice", Email: "a@example.test", Login: "alice", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	if err := st.CreateSession(ctx, data.Session{ID: "s1", UserID: "alice", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	sessions, cookie := benchSession(b, st)
	ws := workers.New(st, workers.Options{FlushInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b.Cleanup(ws.Close)
	wk, wtok, err := ws.Register(ctx, "alice", "runner")
	if err != nil {
		b.Fatal(err)
	}
	policy, err := access.New(access.Session, []access.Rule{{Prefix: "/public/", Class: access.Public}})
	if err != nil {
		b.Fatal(err)
	}
	workerRoutes, err := access.New(access.Public, []access.Rule{{Prefix: "/api/tendril/", Class: access.API}})
	if err != nil {
		b.Fatal(err)
	}
	chain, err := authn.New(authn.Config{Session: sessions.Cookies(), Worker: authn.Workers(ws)})
	if err != nil {
		b.Fatal(err)
	}
	w, err := NewGate(GateOptions{Policy: policy, WorkerRoutes: workerRoutes, Chain: chain,
		SignInPath: "/auth/sign-in", SessionCookie: sessions.CookieName(), FlowCookie: "arbor_flow"})
	if err != nil {
		b.Fatal(err)
	}
	app := fiber.New()
	for _, tc := range []struct {
		name, path string
		headers    string // header lines, each ending in \r\n
	}{
		{"session", "/app/page", "Cookie: " + sessions.CookieName() + "=" + cookie + "\r\n"},
		{"anonymous-public", "/public/page", ""},
		{"worker", "/api/tendril/jobs", workers.HeaderID + ": " + wk.ID + "\r\n" + workers.HeaderToken + ": " + wtok + "\r\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			// Read from the wire, as the server reads a request (SetCookie
			// would hand fasthttp the cookies already parsed).
			fctx := &fasthttp.RequestCtx{}
			raw := "GET " + tc.path + " HTTP/1.1\r\nHost: app.example.com\r\n" + tc.headers + "\r\n"
			if err := fctx.Request.Header.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
				b.Fatal(err)
			}
			c := app.AcquireCtx(fctx)
			defer app.ReleaseCtx(c)
			if ok, err := w.Guard(c); !ok || err != nil {
				b.Fatalf("Guard: %v %v", ok, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := w.Guard(c); !ok || err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchSession is the session manager of the benchmarks, on st, and the
// cookie of session s1 of user alice (a@example.test), which st holds.
func benchSession(b testing.TB, st session.Store) (*session.Manager, string) {
	key := []byte("0123456789abcdef0123456789abcdef-bench")
	signer, err := sessiontoken.NewSigner(key, sessiontoken.Options{Issuer: "bench", Audience: "arbor-session"})
	if err != nil {
		b.Fatal(err)
	}
	sessions, err := session.New(st, session.Options{Signer: signer, CSRFKey: key})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sessions.Close)
	cookie, _, err := signer.Mint("s1", "alice", "a@example.test")
	if err != nil {
		b.Fatal(err)
	}
	return sessions, cookie
}

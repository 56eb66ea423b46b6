package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/authn/sessiontoken"
)

// The benchmarks measure the per-request session check in its steady state:
// the cookie's token is in the signer's verification cache and the session
// record in the manager's cache (both are filled by the first request of a
// session and kept until the token's exp and the profile's TTL). They run
// against a real bbolt store, which only the first lookup reads.
//
// fasthttp parses a request's Cookie header once and keeps the result, so
// after the first iteration c.Cookies costs a lookup, as it does for the
// second reader of the cookie within one real request.

type benchEnv struct {
	app    *fiber.App
	mgr    *session.Manager
	cookie string // the Cookie header value
	userID string
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := boltdb.Open(filepath.Join(b.TempDir(), "arbor.db"), boltdb.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	signer, err := sessiontoken.NewSigner([]byte("0123456789abcdef0123456789abcdef-bench-session-key"), sessiontoken.Options{
		Issuer:   "http://127.0.0.1:8080",
		Audience: "arbor-session",
		TTL:      time.Hour, // no re-issue while the benchmark runs
	})
	if err != nil {
		b.Fatal(err)
	}
	mgr, err := session.New(store, session.Options{
		Signer:  signer,
		CSRFKey: []byte("0123456789abcdef0123456789abcdef-bench-csrf-key"),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(mgr.Close)

	ctx := context.Background()
	now := time.Now().UTC()
	user := data.User{ID: "u-bench-1", Email: "octocat@example.com", Name: "The Octocat", Login: "octocat", CreatedAt: now, UpdatedAt: now}
	if err := store.CreateUser(ctx, user); err != nil {
		b.Fatal(err)
	}
	sess := data.Session{
		ID: "s-bench-0123456789abcdef0123456789abcdef01234", UserID: user.ID,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(7 * 24 * time.Hour),
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0", IP: "203.0.113.77",
	}
	if err := store.CreateSession(ctx, sess); err != nil {
		b.Fatal(err)
	}
	tok, _, err := signer.Mint(sess.ID, user.ID, user.Email)
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{
		app:    fiber.New(fiber.Config{DisableStartupMessage: true}),
		mgr:    mgr,
		cookie: mgr.CookieName() + "=" + tok + "; theme=dark",
		userID: user.ID,
	}
}

// ctx returns a fiber.Ctx whose request carries the session cookie, after
// one Authenticate that fills the caches.
func (e *benchEnv) ctx() (*fiber.Ctx, error) {
	c := e.app.AcquireCtx(&fasthttp.RequestCtx{})
	c.Request().Header.SetMethod(fiber.MethodGet)
	c.Request().SetRequestURI("/dashboard")
	c.Request().Header.Set(fiber.HeaderCookie, e.cookie)
	id, err := e.mgr.Authenticate(c)
	if err == nil && (id.UserID != e.userID || id.Login != "octocat") {
		err = fmt.Errorf("Authenticate returned %+v", id)
	}
	if err == nil && len(c.Response().Header.PeekCookie(e.mgr.CookieName())) != 0 {
		err = errors.New("the cookie was re-issued: not the steady state")
	}
	if err != nil {
		e.app.ReleaseCtx(c)
		return nil, err
	}
	return c, nil
}

// BenchmarkAuthenticate is one request's session check: cached token
// verification and cached session lookup.
func BenchmarkAuthenticate(b *testing.B) {
	e := newBenchEnv(b)
	c, err := e.ctx()
	if err != nil {
		b.Fatal(err)
	}
	defer e.app.ReleaseCtx(c)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.mgr.Authenticate(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateParallel checks the same session from GOMAXPROCS
// goroutines, each with its own request, as parallel requests of one
// browser do.
func BenchmarkAuthenticateParallel(b *testing.B) {
	e := newBenchEnv(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, err := e.ctx()
		if err != nil {
			b.Error(err)
			return
		}
		defer e.app.ReleaseCtx(c)
		for pb.Next() {
			if _, err := e.mgr.Authenticate(c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

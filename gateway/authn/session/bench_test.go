package session_test

import (
	"bufio"
	"bytes"
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

// wire is a request as it comes in on a connection.
type wire struct {
	raw []byte
	r   bytes.Reader
	br  *bufio.Reader
}

func (e *benchEnv) wire() *wire {
	raw := "GET /dashboard HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: bench\r\nCookie: " + e.cookie + "\r\n\r\n"
	return &wire{raw: []byte(raw), br: bufio.NewReaderSize(nil, 4096)}
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
func (e *benchEnv) ctx(w *wire) (*fiber.Ctx, error) {
	c := e.app.AcquireCtx(&fasthttp.RequestCtx{})
	w.read(c)
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

// read gives c the request as the server reads it from a connection:
// its header parsed from the wire, the Cookie header not yet taken apart
// (Header.Set would hand fasthttp the cookies already parsed, and the
// benchmark would leave out what each real request pays).
func (w *wire) read(c *fiber.Ctx) {
	w.r.Reset(w.raw)
	w.br.Reset(&w.r)
	c.Request().Header.Reset()
	if err := c.Request().Header.Read(w.br); err != nil {
		panic(err)
	}
}

// BenchmarkAuthenticate is one request's session check: the cookie read
// from the request's header as it came in, cached token verification and
// cached session lookup. Each iteration parses the header again (a fixed
// cost in the figure), so that the cookie is read as on a live request.
func BenchmarkAuthenticate(b *testing.B) {
	e := newBenchEnv(b)
	w := e.wire()
	c, err := e.ctx(w)
	if err != nil {
		b.Fatal(err)
	}
	defer e.app.ReleaseCtx(c)
	b.ReportAllocs()
	for b.Loop() {
		w.read(c)
		if _, err := e.mgr.Authenticate(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateParallel checks the same session from GOMAXPROCS
// goroutines, each with its own request read as BenchmarkAuthenticate
// reads it, as parallel requests of one browser do.
func BenchmarkAuthenticateParallel(b *testing.B) {
	e := newBenchEnv(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := e.wire()
		c, err := e.ctx(w)
		if err != nil {
			b.Error(err)
			return
		}
		defer e.app.ReleaseCtx(c)
		for pb.Next() {
			w.read(c)
			if _, err := e.mgr.Authenticate(c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

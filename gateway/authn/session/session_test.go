package session_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/authn/sessiontoken"
)

type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// fixture is a Manager on a real bbolt store behind a real Fiber server on
// loopback: /start/:user signs the user in, /check authenticates.
type fixture struct {
	t     *testing.T
	store *boltdb.Store
	m     *session.Manager
	clock *clock
	base  string
}

func newFixture(t *testing.T, opts session.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: &clock{}}
	f.clock.ns.Store(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).UnixNano())
	var err error
	f.store, err = boltdb.Open(filepath.Join(t.TempDir(), "s.db"), boltdb.Options{Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	signer, err := sessiontoken.NewSigner([]byte("0123456789abcdef0123456789abcdef-key"), sessiontoken.Options{
		Issuer: "test", Audience: "arbor-session", TTL: 10 * time.Minute, Now: f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.Signer, opts.Now = signer, f.clock.Now
	opts.CSRFKey = []byte("0123456789abcdef0123456789abcdef-csrf")
	f.m, err = session.New(f.store, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.m.Close)

	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/start/:user", func(c *fiber.Ctx) error {
		u, err := f.store.GetUser(c.UserContext(), c.Params("user"))
		if err != nil {
			return err
		}
		s, err := f.m.Start(c, u)
		if err != nil {
			return err
		}
		return c.SendString(s.ID)
	})
	app.Get("/check", func(c *fiber.Ctx) error {
		id, err := f.m.Authenticate(c)
		switch {
		case errors.Is(err, session.ErrNoSession), errors.Is(err, session.ErrInvalid), errors.Is(err, session.ErrEnded):
			return c.Status(401).SendString(err.Error())
		case err != nil:
			return c.Status(503).SendString(err.Error())
		}
		return c.SendString(id.UserID + " " + id.Email)
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

func (f *fixture) user(id, email string) {
	f.t.Helper()
	if err := f.store.CreateUser(context.Background(), data.User{ID: id, Email: email, CreatedAt: f.clock.Now()}); err != nil {
		f.t.Fatal(err)
	}
}

// signIn returns the session cookie and session id for user.
func (f *fixture) signIn(user string) (*http.Cookie, string) {
	f.t.Helper()
	res, err := http.Get(f.base + "/start/" + user)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	var sid [64]byte
	n, _ := res.Body.Read(sid[:])
	for _, c := range res.Cookies() {
		if c.Name == f.m.CookieName() {
			return c, string(sid[:n])
		}
	}
	f.t.Fatalf("no session cookie from /start: %d", res.StatusCode)
	return nil, ""
}

func (f *fixture) check(c *http.Cookie) int {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.base+"/check", nil)
	if c != nil {
		req.AddCookie(c)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// Every way a session can end outside the manager reaches its cache.
func TestCacheFollowsTheStore(t *testing.T) {
	f := newFixture(t, session.Options{})
	ctx := context.Background()
	tests := []struct {
		name string
		end  func(sid string)
	}{
		{"DeleteSession", func(sid string) { f.store.DeleteSession(ctx, sid) }},
		{"DeleteUser", func(string) { f.store.DeleteUser(ctx, "u-DeleteUser") }},
		{"UpdateSession", func(sid string) {
			f.store.UpdateSession(ctx, sid, func(s data.Session) (data.Session, error) {
				s.ExpiresAt = f.clock.Now().Add(time.Nanosecond)
				return s, nil
			})
			f.clock.Advance(time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.t = t
			f.user("u-"+tt.name, "a@example.com")
			c, sid := f.signIn("u-" + tt.name)
			for range 3 { // cached after the first
				if got := f.check(c); got != 200 {
					t.Fatalf("fresh session: %d", got)
				}
			}
			tt.end(sid)
			if got := f.check(c); got != 401 {
				t.Fatalf("after %s: %d, want 401", tt.name, got)
			}
		})
	}
}

// A lookup racing with a delete never leaves the session usable once the
// delete has returned.
func TestNoStaleEntryAfterConcurrentDelete(t *testing.T) {
	f := newFixture(t, session.Options{})
	for round := range 20 {
		uid := "u" + string(rune('a'+round))
		f.user(uid, "")
		c, sid := f.signIn(uid)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						f.check(c)
					}
				}
			}()
		}
		time.Sleep(5 * time.Millisecond)
		if err := f.store.DeleteSession(context.Background(), sid); err != nil {
			t.Fatal(err)
		}
		close(stop)
		wg.Wait()
		if got := f.check(c); got != 401 {
			t.Fatalf("round %d: session usable after delete: %d", round, got)
		}
	}
}

func TestAbsoluteLifetimeIsNotExtendedByActivity(t *testing.T) {
	f := newFixture(t, session.Options{IdleTimeout: time.Hour, AbsoluteLifetime: 3 * time.Hour})
	f.user("u1", "")
	c, sid := f.signIn("u1")
	for i := range 5 { // active every 50 minutes for over 4 hours
		f.clock.Advance(50 * time.Minute)
		res, err := http.Get(f.base + "/check")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		req, _ := http.NewRequest("GET", f.base+"/check", nil)
		req.AddCookie(c)
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		for _, nc := range res.Cookies() {
			if nc.Name == f.m.CookieName() && nc.Value != "" {
				c = nc
			}
		}
		wantOK := f.clock.Now().Before(time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC))
		if (res.StatusCode == 200) != wantOK {
			t.Fatalf("step %d at %v: %d (want ok=%v)", i, f.clock.Now(), res.StatusCode, wantOK)
		}
	}
	if _, err := f.store.GetSession(context.Background(), sid); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("session after its absolute lifetime: %v", err)
	}
}

func TestCSRFTokens(t *testing.T) {
	f := newFixture(t, session.Options{})
	a, b := f.m.CSRFToken("s1"), f.m.CSRFToken("s2")
	if a == b || len(a) < 40 {
		t.Fatalf("CSRF tokens %q %q", a, b)
	}
	for _, tt := range []struct {
		sid, tok string
		ok       bool
	}{{"s1", a, true}, {"s2", b, true}, {"s1", b, false}, {"s1", "", false}, {"s1", a[:len(a)-1], false}, {"s1", a + "x", false}} {
		if got := f.m.CheckCSRF(tt.sid, tt.tok); got != tt.ok {
			t.Errorf("CheckCSRF(%q, %q) = %v", tt.sid, tt.tok, got)
		}
	}
}

func TestNewRejectsMissingOptions(t *testing.T) {
	f := newFixture(t, session.Options{})
	if _, err := session.New(f.store, session.Options{}); err == nil {
		t.Fatal("New without a signer succeeded")
	}
}

package tunnelwatch_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/edge/edgetest"
	"github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/gateway/edge/tunnelwatch"
)

// TestTunnelsEndWithTheirSignIn runs a real gateway in front of a
// WebSocket echo upstream, on a real bbolt store. A session's tunnels
// close when the session is deleted (logout: the store's watch, with the
// periodic check far away), a CLI login's when it is revoked (the
// periodic check); other tunnels stay open.
func TestTunnelsEndWithTheirSignIn(t *testing.T) {
	ctx := context.Background()
	store, err := boltdb.Open(filepath.Join(t.TempDir(), "arbor.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	now := time.Now().UTC()
	if err := store.CreateUser(ctx, data.User{ID: "u1", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, sid := range []string{"s-gone", "s-stays"} {
		if err := store.CreateSession(ctx, data.Session{ID: sid, UserID: "u1", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.CreateRefreshFamily(ctx, data.RefreshFamily{ID: "f1", UserID: "u1", CurrentJTI: "j1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			mt, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			_ = conn.WriteMessage(mt, msg)
		}
	}))
	t.Cleanup(up.Close)
	srv, err := gateway.New(gateway.Options{
		Upstream: proxy.Upstream{URL: up.URL},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		// The test's stand-in for the guard: the identity comes from the
		// query.
		TunnelOwner: func(c *fiber.Ctx) string {
			id := authn.Identity{Kind: authn.KindSession, SessionID: c.Query("session")}
			if id.SessionID == "" {
				id = authn.Identity{Kind: authn.KindCLI, LoginID: c.Query("login")}
			}
			return tunnelwatch.Owner(id)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})

	w := tunnelwatch.Start(srv, store, tunnelwatch.Options{Interval: time.Hour})
	defer w.Close()

	open := func(query string) *websocket.Conn {
		conn, _, err := (&websocket.Dialer{HandshakeTimeout: 5 * time.Second}).Dial("ws://"+ln.Addr().String()+"/ws?"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := edgetest.WSEcho(conn, "hi"); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	gone, stays, anon := open("session=s-gone"), open("session=s-stays"), open("")
	cli := open("login=f1")

	// Logout: the session record is deleted.
	if err := store.DeleteSession(ctx, "s-gone"); err != nil {
		t.Fatal(err)
	}
	if !edgetest.WSClosed(gone) {
		t.Fatal("the logged-out session's tunnel is still open")
	}
	// A write that does not end a session (a renewal) closes nothing.
	if _, err := store.UpdateSession(ctx, "s-stays", func(s data.Session) (data.Session, error) {
		s.LastSeenAt = time.Now().UTC()
		return s, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*websocket.Conn{stays, anon, cli} {
		if err := edgetest.WSEcho(c, "still here"); err != nil {
			t.Fatalf("a tunnel of a live sign-in: %v", err)
		}
	}

	// A revoked CLI login is found by the periodic check.
	if _, err := store.UpdateRefreshFamily(ctx, "f1", func(f data.RefreshFamily) (data.RefreshFamily, error) {
		f.RevokedAt = time.Now().UTC()
		return f, nil
	}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = tunnelwatch.Start(srv, store, tunnelwatch.Options{Interval: 100 * time.Millisecond})
	defer w.Close()
	if !edgetest.WSClosed(cli) {
		t.Fatal("the revoked CLI login's tunnel is still open")
	}
	for _, c := range []*websocket.Conn{stays, anon} {
		if err := edgetest.WSEcho(c, "still here"); err != nil {
			t.Fatalf("a tunnel of a live sign-in: %v", err)
		}
	}
}

func TestOwner(t *testing.T) {
	for _, tc := range []struct {
		id   authn.Identity
		want string
	}{
		{authn.Identity{Kind: authn.KindSession, SessionID: "s", UserID: "u"}, "session:s"},
		{authn.Identity{Kind: authn.KindCLI, LoginID: "f", UserID: "u"}, "cli:f"},
		{authn.Identity{Kind: authn.KindWorker, WorkerID: "w", UserID: "u"}, ""},
		{authn.Identity{Kind: authn.KindService, Service: "argocd"}, ""},
		{authn.Identity{}, ""},
	} {
		if got := tunnelwatch.Owner(tc.id); got != tc.want {
			t.Errorf("Owner(%+v) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

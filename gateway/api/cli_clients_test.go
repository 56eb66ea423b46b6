package api_test

// Registered device clients are checked on every use against the
// configuration of the moment: the same logins, in one bbolt store, seen
// by Arbor processes configured with a client kept, narrowed and removed.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/api"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/authn/sessiontoken"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/service/clilogin"
	"github.com/vintner/arbor/service/clilogin/clitoken"
)

type clientsEnv struct {
	t        *testing.T
	store    *boltdb.Store
	toks     *clitoken.Signer
	sessions *session.Manager
	key      []byte
}

func newClientsEnv(t *testing.T) *clientsEnv {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "arbor.db"), boltdb.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := []byte("0123456789abcdef0123456789abcdef-clients-test")
	toks, err := clitoken.NewSigner(key, clitoken.Options{Issuer: "clients-test"})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := sessiontoken.NewSigner(key, sessiontoken.Options{Issuer: "clients-test", Audience: "arbor-session"})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.New(st, session.Options{Signer: ss, CSRFKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sessions.Close)
	now := time.Now().UTC()
	if err := st.CreateUser(context.Background(), data.User{ID: "u1", Email: "u1@example.test", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return &clientsEnv{t: t, store: st, toks: toks, sessions: sessions, key: key}
}

// login stores a refresh family and returns its access and refresh tokens,
// the access token minted with scopes.
func (e *clientsEnv) login(fid, clientID string, rfc8628 bool, familyScope string, scopes scope.Set) (access, refresh string) {
	e.t.Helper()
	now := time.Now().UTC()
	f := data.RefreshFamily{ID: fid, UserID: "u1", ClientID: clientID, CurrentJTI: fid + "-j1", Generation: 1,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), Scope: familyScope}
	if rfc8628 {
		f.ClientInfo = map[string]string{"flow": "device authorization"} // how service/clilogin marks RFC 8628 logins
	}
	if err := e.store.CreateRefreshFamily(context.Background(), f); err != nil {
		e.t.Fatal(err)
	}
	sub := clitoken.Subject{UserID: "u1", Email: "u1@example.test", Scopes: scopes}
	access, _, err := e.toks.Mint(clitoken.TypeAccess, sub, fid, fid+"-a1")
	if err != nil {
		e.t.Fatal(err)
	}
	refresh, _, err = e.toks.Mint(clitoken.TypeRefresh, sub, fid, fid+"-j1")
	if err != nil {
		e.t.Fatal(err)
	}
	return access, refresh
}

// serve runs an Arbor process's CLI routes configured with clients on
// 127.0.0.1, plus /scopes, which answers the scopes Authenticate finds.
func (e *clientsEnv) serve(clients ...clilogin.DeviceClient) string {
	e.t.Helper()
	svc, _, cliAPI := newCLIParts(e.t, e.store, e.sessions, "http://127.0.0.1", clilogin.Options{Tokens: e.toks, CodeKey: e.key, DeviceClients: clients})
	bearer := authn.CLI(svc)
	// A real gateway, so that the routes read their bodies as in Arbor
	// (reqbody: the gateway checks and caps a body before a handler reads it).
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := gateway.New(gateway.Options{Logger: quiet, AccessLogger: quiet})
	if err != nil {
		e.t.Fatal(err)
	}
	scopes := func(r fiber.Router) {
		r.Get("/scopes", func(c *fiber.Ctx) error {
			id, out, err := bearer.Authenticate(c)
			if out == authn.Refused && errors.Is(err, clilogin.ErrBadBearer) {
				return c.Status(401).SendString("refused")
			}
			if out != authn.Authenticated {
				return fmt.Errorf("outcome %d: %v", out, err)
			}
			return c.SendString(id.Scopes.String())
		})
	}
	for _, routes := range []func(fiber.Router){cliAPI.Routes, scopes} {
		if err := srv.Mount(gateway.ClassAPI, routes); err != nil {
			e.t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	go srv.Serve(ln)
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

func scopesOf(t *testing.T, base, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/scopes", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func refreshAt(t *testing.T, base, refresh string) (int, map[string]any) {
	t.Helper()
	res, err := http.PostForm(base+api.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body
}

func TestDeviceClientConfigChanges(t *testing.T) {
	e := newClientsEnv(t)
	access, refresh := e.login("f1", "trellis", true, "providers proxy", scope.Providers|scope.Proxy)
	grape, _ := e.login("f2", clilogin.GrapeClientID, false, scope.All.String(), scope.All)
	// A login from before scopes: no Scope recorded (the access token here
	// carries every scope, as a scope-less claim counts).
	oldRFC, _ := e.login("f3", "trellis", true, "", scope.All)
	oldGrape, _ := e.login("f4", "my laptop", false, "", scope.All)

	for _, c := range []struct {
		name    string
		clients []clilogin.DeviceClient
		want    map[string]string // token name -> scopes, or "refused"
	}{
		{"kept", []clilogin.DeviceClient{{ID: "trellis", Name: "Trellis", Scopes: scope.Providers | scope.Proxy}},
			map[string]string{"access": "providers proxy", "grape": "providers workers proxy", "oldRFC": "providers proxy", "oldGrape": "providers workers proxy"}},
		{"narrowed", []clilogin.DeviceClient{{ID: "trellis", Name: "Trellis", Scopes: scope.Proxy}},
			map[string]string{"access": "proxy", "grape": "providers workers proxy", "oldRFC": "proxy", "oldGrape": "providers workers proxy"}},
		{"narrowed to another scope", []clilogin.DeviceClient{{ID: "trellis", Name: "Trellis", Scopes: scope.Workers}},
			map[string]string{"access": "refused", "grape": "providers workers proxy", "oldRFC": "workers", "oldGrape": "providers workers proxy"}},
		{"removed", nil,
			map[string]string{"access": "refused", "grape": "providers workers proxy", "oldRFC": "refused", "oldGrape": "providers workers proxy"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := e.serve(c.clients...)
			for name, tok := range map[string]string{"access": access, "grape": grape, "oldRFC": oldRFC, "oldGrape": oldGrape} {
				status, got := scopesOf(t, base, tok)
				if c.want[name] == "refused" {
					if status != 401 {
						t.Errorf("%s: %d %q, want refused", name, status, got)
					}
					continue
				}
				if status != 200 || got != c.want[name] {
					t.Errorf("%s: %d %q, want %q", name, status, got, c.want[name])
				}
			}
		})
	}
	// Removed, the client's refresh token is refused without rotating; kept,
	// the refresh mints the recorded scopes.
	status, body := refreshAt(t, e.serve(), refresh)
	if status != 400 || body["error"] != "invalid_grant" || !strings.Contains(body["error_description"].(string), "no longer registered") {
		t.Fatalf("refresh of a removed client's login: %d %v", status, body)
	}
	status, body = refreshAt(t, e.serve(clilogin.DeviceClient{ID: "trellis", Name: "Trellis", Scopes: scope.All}), refresh)
	if status != 200 || body["scope"] != "providers proxy" {
		t.Fatalf("refresh with the client registered again: %d %v, want scope \"providers proxy\"", status, body)
	}
}

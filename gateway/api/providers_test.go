package api_test

// End-to-end tests of the provider API (and the Integrations page where
// a test needs it: gateway/pages' integrations_test.go) through
// the whole of Arbor as `arbor serve` builds it (app/apptest): real Fiber
// on loopback, bbolt, the built-in plugins and the fake providers.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/service/connections"
)

type tokenJSON struct {
	Provider    string  `json:"provider"`
	AccessToken string  `json:"access_token"`
	ExpiresAt   *string `json:"expires_at"`
}

func TestProviderAPIRequiresASession(t *testing.T) {
	e := apptest.New(t)
	anon := e.Browser()
	for _, p := range []string{"/api/providers", "/api/providers/github/token", "/api/providers/github/repos"} {
		if res := anon.Get(p); res.StatusCode != 401 || apptest.ErrorCode(res.Body) != "unauthenticated" {
			t.Errorf("anonymous GET %s: %d %s", p, res.StatusCode, res.Body)
		}
	}
	if res := anon.Do(http.MethodDelete, "/api/providers/github", nil); res.StatusCode != 401 {
		t.Errorf("anonymous DELETE: %d", res.StatusCode)
	}
	if res := anon.Get("/integrations"); res.StatusCode != 302 || !strings.Contains(res.Location(), "/auth/sign-in?return_to=%2Fintegrations") {
		t.Errorf("anonymous Integrations page: %d %q", res.StatusCode, res.Location())
	}
	// A forged cookie is no better.
	anon.SetCookie(e.Cookie, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	if res := anon.Get("/api/providers"); res.StatusCode != 401 {
		t.Errorf("forged cookie: %d", res.StatusCode)
	}
}

func TestUsersReachOnlyTheirOwnConnections(t *testing.T) {
	e := apptest.New(t)
	alice, bob := e.Browser(), e.Browser()
	alice.MustSignIn("github")
	bob.MustSignIn("gitlab")
	apptest.ConnectProvider(t, alice, "gitlab")
	var tok tokenJSON
	if res := getJSON(t, alice, "/api/providers/gitlab/token", &tok); res.StatusCode != 200 {
		t.Fatalf("alice's token: %d", res.StatusCode)
	}
	if res := bob.Get("/api/providers/gitlab/token"); res.StatusCode != 404 || strings.Contains(res.Body, tok.AccessToken) {
		t.Fatalf("bob reached alice's connection: %d %s", res.StatusCode, res.Body)
	}
	var list struct{ Providers []connections.Status }
	getJSON(t, bob, "/api/providers", &list)
	for _, s := range list.Providers {
		if s.Connected {
			t.Fatalf("bob sees a connection: %+v", s)
		}
	}
	// A cross-site DELETE is refused even with alice's cookie.
	alice.Header.Set("Origin", "https://evil.example")
	if res := alice.Do(http.MethodDelete, "/api/providers/gitlab", nil); res.StatusCode != 403 {
		t.Fatalf("cross-site DELETE: %d", res.StatusCode)
	}
	alice.Header.Del("Origin")
	if res := alice.Do(http.MethodDelete, "/api/providers/gitlab", nil); res.StatusCode != 200 {
		t.Fatalf("DELETE: %d %s", res.StatusCode, res.Body)
	}
}

func TestExpiredTokenIsRefreshedAndBrokenGrantIsShown(t *testing.T) {
	e := apptest.New(t)
	b := e.Browser()
	b.MustSignIn("github")
	apptest.ConnectProvider(t, b, "gitlab")
	apptest.ConnectProvider(t, b, "github")
	var first, second tokenJSON
	getJSON(t, b, "/api/providers/gitlab/token", &first)
	e.Clock.Advance(3 * time.Hour) // GitLab tokens live 2 hours
	// The session's cookie is renewed on the way; the token is refreshed.
	if res := getJSON(t, b, "/api/providers/gitlab/token", &second); res.StatusCode != 200 || second.AccessToken == first.AccessToken || !e.Fakes.Fakes["gitlab"].ValidAccessToken(second.AccessToken) {
		t.Fatalf("after expiry: %d %s", res.StatusCode, res.Body)
	}
	// The user revokes the app at GitHub; the next refresh is refused.
	e.Fakes.Fakes["github"].RevokeAll()
	e.Clock.Advance(9 * time.Hour)
	res := b.Get("/api/providers/github/token")
	if res.StatusCode != http.StatusConflict || apptest.ErrorCode(res.Body) != connections.CodeReconnectRequired {
		t.Fatalf("after the grant was revoked: %d %s", res.StatusCode, res.Body)
	}
	page := b.Get("/integrations").Body
	if apptest.IntegrationCards(t, b)["github"] != "needs_reconnect" || !strings.Contains(page, `class="reason"`) || !strings.Contains(page, "Reconnect GitHub") {
		t.Fatalf("page after the grant was revoked:\n%s", page)
	}
	apptest.ConnectProvider(t, b, "github")
	if apptest.IntegrationCards(t, b)["github"] != "active" {
		t.Fatal("reconnecting did not repair the connection")
	}
}

func TestServiceRoute(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-argocd"
	e := apptest.New(t, apptest.Env(config.EnvServiceTokens+"=argocd-sync:"+secret))
	b := e.Browser()
	b.MustSignIn("github")
	apptest.ConnectProvider(t, b, "gitlab")
	uid := e.UserID(b)
	svc := e.Browser()
	path := "/api/service/users/" + uid + "/providers/gitlab/token"
	for _, auth := range []string{"", "Bearer ", "Bearer wrong", "Basic " + secret, "Bearer " + secret + "x"} {
		svc.Header.Set("Authorization", auth)
		if res := svc.Get(path); res.StatusCode != 401 || apptest.ErrorCode(res.Body) != "invalid_service_token" {
			t.Fatalf("Authorization %q: %d %s", auth, res.StatusCode, res.Body)
		}
	}
	svc.Header.Set("Authorization", "Bearer "+secret)
	var tok tokenJSON
	if res := getJSON(t, svc, path, &tok); res.StatusCode != 200 || !e.Fakes.Fakes["gitlab"].ValidAccessToken(tok.AccessToken) {
		t.Fatalf("service token request: %d %s", res.StatusCode, res.Body)
	}
	if res := svc.Get("/api/service/users/usr_nobody/providers/gitlab/token"); res.StatusCode != 404 {
		t.Fatalf("unknown user: %d", res.StatusCode)
	}
	audit, _ := e.App.Store().ListAudit(t.Context(), data.AuditQuery{})
	n := 0
	for _, a := range audit {
		if a.Action == "connection.token.service" && a.Actor == "service:argocd-sync" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d audited service calls, want 2", n)
	}
	// Without configured services the route does not exist.
	e2 := apptest.New(t)
	c := e2.Browser()
	c.Header.Set("Authorization", "Bearer "+secret)
	if res := c.Get(path); res.StatusCode != 404 {
		t.Fatalf("service route without services: %d", res.StatusCode)
	}
}

package integrations_test

// End-to-end tests of the Integrations page and the provider API through
// the whole of Arbor as `arbor serve` builds it (app/apptest): real Fiber
// on loopback, bbolt, the built-in plugins and the fake providers.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/service/connections"
)

// csrfRE finds the CSRF token of a form.
var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

var stateRE = regexp.MustCompile(`id="card-([a-z0-9_-]+)" data-provider="[^"]*" data-state="([a-z_]+)"`)

// cards returns provider → state from the Integrations page.
func cards(t *testing.T, b *apptest.Browser) map[string]string {
	t.Helper()
	res := b.Get("/integrations")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("Integrations page: %d\n%s", res.StatusCode, res.Body)
	}
	out := map[string]string{}
	for _, m := range stateRE.FindAllStringSubmatch(res.Body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// connectProvider runs "Connect" on the Integrations page through the fake.
func connectProvider(t *testing.T, b *apptest.Browser, provider string) {
	t.Helper()
	res := b.Get("/integrations/" + provider + "/connect")
	if res.StatusCode != http.StatusFound {
		t.Fatalf("connect %s: %d %s", provider, res.StatusCode, res.Body)
	}
	res = b.Get(b.Approve(res.Location(), ""))
	if res.StatusCode != http.StatusFound || !strings.HasSuffix(res.Location(), "/integrations?notice=connected") {
		t.Fatalf("connect callback: %d → %q\n%s", res.StatusCode, res.Location(), res.Body)
	}
}

func getJSON(t *testing.T, b *apptest.Browser, path string, into any) *apptest.Response {
	t.Helper()
	res := b.Get(path)
	if into != nil && res.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(res.Body), into); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, res.Body)
		}
	}
	return res
}

type tokenJSON struct {
	Provider    string  `json:"provider"`
	AccessToken string  `json:"access_token"`
	ExpiresAt   *string `json:"expires_at"`
}

func TestIntegrationsConnectUseDisconnect(t *testing.T) {
	e := apptest.New(t)
	b := e.Browser()
	b.MustSignIn("google")
	// Git providers only: Google signs in but hosts no repositories.
	if got := cards(t, b); len(got) != 3 || got["github"] != "not_connected" || got["gitlab"] != "not_connected" || got["bitbucket"] != "not_connected" {
		t.Fatalf("cards before connecting: %v", got)
	}
	// Connect asks for the repository scopes.
	res := b.Get("/integrations/github/connect")
	au, _ := url.Parse(res.Location())
	if !strings.Contains(au.Query().Get("scope"), "repo") || au.Query().Get("redirect_uri") != e.PublicURL+"/auth/callback/github" {
		t.Fatalf("connect authorization URL %s", res.Location())
	}
	res = b.Get(b.Approve(res.Location(), ""))
	if res.StatusCode != http.StatusFound {
		t.Fatalf("connect callback: %d %s", res.StatusCode, res.Body)
	}
	page := b.Get("/integrations").Body
	if cards(t, b)["github"] != "active" || !strings.Contains(page, `class="account">octocat<`) {
		t.Fatalf("after connecting:\n%s", page)
	}

	var list struct{ Providers []connections.Status }
	getJSON(t, b, "/api/providers", &list)
	if len(list.Providers) != 3 || !list.Providers[1].Connected || list.Providers[1].AccountLogin != "octocat" {
		t.Fatalf("/api/providers: %+v", list)
	}
	var tok tokenJSON
	res = getJSON(t, b, "/api/providers/github/token", &tok)
	if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "no-store" || tok.ExpiresAt == nil || !e.Fakes.Fakes["github"].ValidAccessToken(tok.AccessToken) {
		t.Fatalf("token: %d %+v", res.StatusCode, res.Header)
	}
	// Repositories, paginated through the plugin.
	var page1, page2 struct {
		Repos []struct {
			FullName string `json:"full_name"`
		}
		NextCursor string `json:"next_cursor"`
	}
	getJSON(t, b, "/api/providers/github/repos?per_page=5", &page1)
	if len(page1.Repos) != 5 || page1.NextCursor == "" {
		t.Fatalf("repos page 1: %+v", page1)
	}
	getJSON(t, b, "/api/providers/github/repos?per_page=5&cursor="+url.QueryEscape(page1.NextCursor), &page2)
	if len(page2.Repos) != 5 || page2.Repos[0].FullName == page1.Repos[0].FullName {
		t.Fatalf("repos page 2: %+v", page2)
	}
	if res := b.Get("/api/providers/github/repos?per_page=1000"); res.StatusCode != 400 || apptest.ErrorCode(res.Body) != "bad_per_page" {
		t.Fatalf("per_page=1000: %d %s", res.StatusCode, res.Body)
	}

	// Disconnect: a confirmation that warns about ArgoCD, a CSRF-checked
	// form, a revocation at the provider.
	confirm := b.Get("/integrations/github/disconnect")
	if !strings.Contains(confirm.Body, "ArgoCD") {
		t.Fatalf("confirmation page:\n%s", confirm.Body)
	}
	if res := b.Do(http.MethodPost, "/integrations/github/disconnect", url.Values{"csrf": {"nope"}}); res.StatusCode != 403 {
		t.Fatalf("disconnect without CSRF: %d", res.StatusCode)
	}
	csrf := csrfRE.FindStringSubmatch(confirm.Body)[1]
	res = b.Do(http.MethodPost, "/integrations/github/disconnect", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("disconnect: %d %s", res.StatusCode, res.Body)
	}
	if !strings.HasSuffix(res.Location(), "/integrations?notice=disconnected_revoked") {
		t.Fatalf("disconnect redirects to %q", res.Location())
	}
	notice := b.Get(res.Location()).Body
	if !strings.Contains(notice, "revoked at the provider") || cards(t, b)["github"] != "not_connected" {
		t.Fatalf("after disconnecting:\n%s", notice)
	}
	if e.Fakes.Fakes["github"].ValidAccessToken(tok.AccessToken) || len(e.Fakes.Fakes["github"].CallsTo(fakeprovider.EndpointRevoke)) != 1 {
		t.Fatal("the grant was not revoked at the fake")
	}
	if res := b.Get("/api/providers/github/token"); res.StatusCode != 404 || apptest.ErrorCode(res.Body) != connections.CodeNotConnected {
		t.Fatalf("token after disconnect: %d %s", res.StatusCode, res.Body)
	}
	// The events reach the receiver (connections.webhook_url) signed.
	var events []string
	for _, ev := range e.Webhooks.WaitFor(2) {
		events = append(events, ev.Type+":"+ev.Provider)
	}
	if strings.Join(events, ",") != "connection.connected:github,connection.disconnected:github" {
		t.Fatalf("events: %v", events)
	}
	audit, _ := e.App.Store().ListAudit(t.Context(), data.AuditQuery{})
	var actions []string
	for _, a := range audit {
		if strings.HasPrefix(a.Action, "connection.") {
			actions = append(actions, a.Action+"/"+a.Outcome)
		}
	}
	if strings.Join(actions, ",") != "connection.connect/ok,connection.disconnect/revoked" {
		t.Fatalf("audit: %v", actions)
	}
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
	connectProvider(t, alice, "gitlab")
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
	connectProvider(t, b, "gitlab")
	connectProvider(t, b, "github")
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
	if cards(t, b)["github"] != "needs_reconnect" || !strings.Contains(page, `class="reason"`) || !strings.Contains(page, "Reconnect GitHub") {
		t.Fatalf("page after the grant was revoked:\n%s", page)
	}
	connectProvider(t, b, "github")
	if cards(t, b)["github"] != "active" {
		t.Fatal("reconnecting did not repair the connection")
	}
}

func TestServiceRoute(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-argocd"
	e := apptest.New(t, apptest.Env(config.EnvServiceTokens+"=argocd-sync:"+secret))
	b := e.Browser()
	b.MustSignIn("github")
	connectProvider(t, b, "gitlab")
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

func TestIntegrationsCardShowsScopesAsText(t *testing.T) {
	// A GitHub OAuth app: its tokens carry scopes (a GitHub App's carry
	// none, so its card shows none).
	e := apptest.New(t, apptest.EditFake(func(name string, c *fakeprovider.Config) {
		if name == "github" {
			o := fakeprovider.GitHubOAuthApp()
			o.Name, o.RedirectURIs = c.Name, c.RedirectURIs
			*c = o
		}
	}))
	b := e.Browser()
	b.MustSignIn("github")
	connectProvider(t, b, "github")
	if page := b.Get("/integrations").Body; !strings.Contains(page, `<dd class="scopes">repo read:user user:email</dd>`) {
		t.Fatalf("scopes on the card:\n%s", page)
	}
}

var noticeRE = regexp.MustCompile(`(?s)<p class="notice[^"]*" id="notice">(.*?)</p>`)

// Notices on the Integrations page come from fixed codes: text in the
// query never reaches the page, and an unknown code shows nothing.
func TestIntegrationsNoticesAreArborsOwn(t *testing.T) {
	e := apptest.New(t)
	b := e.Browser()
	b.MustSignIn("github")
	const bait = "Your account is suspended. Call +1 555 0100 now"
	for _, tc := range []struct{ query, want string }{
		{"", ""},
		{"?notice=connected", "Connected."},
		{"?notice=disconnected", "Disconnected."},
		{"?notice=disconnected_revoked", "Disconnected, and the access was revoked at the provider."},
		{"?notice=disconnected_revoke_pending", "Disconnected in Trellis. The provider could not be reached to revoke the access; Arbor keeps trying in the background."},
		// The old free-text form, and hostile codes: nothing.
		{"?disconnected=github&message=" + url.QueryEscape(bait), ""},
		{"?connected=github&message=" + url.QueryEscape(bait), ""},
		{"?notice=" + url.QueryEscape(bait), ""},
		{"?notice=Connected.", ""},
		{"?notice=connected%00", ""},
		{"?notice=disconnected_", ""},
		{"?notice=connected&message=" + url.QueryEscape(bait), "Connected."},
	} {
		res := b.Get("/integrations" + tc.query)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /integrations%s: %d\n%s", tc.query, res.StatusCode, res.Body)
		}
		got := ""
		if m := noticeRE.FindStringSubmatch(res.Body); m != nil {
			got = m[1]
		}
		if got != tc.want || strings.Contains(res.Body, "suspended") {
			t.Fatalf("GET /integrations%s shows notice %q, want %q", tc.query, got, tc.want)
		}
	}
}

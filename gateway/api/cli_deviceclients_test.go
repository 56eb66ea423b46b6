package api_test

// Registered device clients and token scopes (issue 15, item 7): the
// RFC 8628 remote-phishing defence, end to end through the real gateway,
// bbolt and plugins, with golang.org/x/oauth2 as the device client.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/vintner/arbor/gateway/api"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/service/clilogin"
	"github.com/vintner/arbor/service/clilogin/clitoken"
)

// scopedClients are registered in the tests below.
var scopedClients = []clilogin.DeviceClient{
	{ID: "viewer", Name: "Trellis viewer", Scopes: scope.Proxy},
	{ID: "repo-tool", Name: "Repo tool", Scopes: scope.Providers},
	{ID: "worker-tool", Name: "Worker tool", Scopes: scope.Workers | scope.Proxy},
}

func deviceConfig(e *cliEnv, clientID string, scopes ...string) *oauth2.Config {
	c := oauthConfig(e)
	c.ClientID, c.Scopes = clientID, scopes
	return c
}

// deviceLogin runs RFC 8628 for clientID, approved by the signed-in b.
func deviceLogin(t *testing.T, e *cliEnv, b *browser, clientID string, scopes ...string) (*oauth2.Config, *oauth2.Token) {
	t.Helper()
	cfg := deviceConfig(e, clientID, scopes...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("device authorization for %s: %v", clientID, err)
	}
	page := b.Get("/device?user_code=" + url.QueryEscape(da.UserCode))
	m := deviceCSRF.FindStringSubmatch(page.Body)
	if page.StatusCode != 200 || m == nil {
		t.Fatalf("/device: %d\n%s", page.StatusCode, page.Body)
	}
	if res := b.Do(http.MethodPost, "/device/approve", url.Values{"csrf": {m[1]}, "user_code": {da.UserCode}, "decision": {"approve"}}); res.StatusCode != 200 {
		t.Fatalf("approve: %d\n%s", res.StatusCode, res.Body)
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("device token for %s: %v", clientID, err)
	}
	return cfg, tok
}

// bearerSend sends method path with token as the bearer and v as JSON.
func bearerSend(t *testing.T, b *browser, method, path, token string, v any) *response {
	t.Helper()
	res, err := sendJSON(b, method, path, v, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// wantInsufficient checks a 403 insufficient_scope naming need, with
// RFC 6750's header.
func wantInsufficient(t *testing.T, what string, res *response, need string) {
	t.Helper()
	wantError(t, what, res, http.StatusForbidden, scope.CodeInsufficient)
	h := res.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(h, "Bearer ") || !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="`+need+`"`) {
		t.Fatalf("%s: WWW-Authenticate %q, want Bearer error=\"insufficient_scope\", scope=%q", what, h, need)
	}
}

// claimsOf reads a JWT's claims without verifying it.
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err != nil || json.Unmarshal(raw, &m) != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return m
}

func storeSnapshot(t *testing.T, e *cliEnv) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := e.store.Backup(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func postForm(t *testing.T, e *cliEnv, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	res, err := http.PostForm("http://"+e.addr+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body
}

// An unregistered client_id is refused at both endpoints, and the store is
// not written.
func TestDeviceClientUnknown(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	before := storeSnapshot(t, e)
	for _, id := range []string{"Trellis Web (official)", "STOCK-CLI", "stock-cli ", "grape"} {
		status, body := postForm(t, e, api.PathDeviceCode, url.Values{"client_id": {id}, "scope": {"proxy"}})
		if status != 400 || body["error"] != "invalid_client" {
			t.Fatalf("device code for client_id %q: %d %v, want 400 invalid_client", id, status, body)
		}
		status, body = postForm(t, e, api.PathToken, url.Values{"client_id": {id}, "grant_type": {api.GrantDeviceCode}, "device_code": {"x"}})
		if status != 400 || body["error"] != "invalid_client" {
			t.Fatalf("token for client_id %q: %d %v, want 400 invalid_client", id, status, body)
		}
	}
	if !bytes.Equal(before, storeSnapshot(t, e)) {
		t.Fatal("requests of an unregistered client wrote to the store")
	}
	// x/oauth2 sees the RFC 6749 error.
	_, err := deviceConfig(e, "phisher").DeviceAuth(context.Background())
	var re *oauth2.RetrieveError
	if !errorsAs(err, &re) || re.ErrorCode != "invalid_client" {
		t.Fatalf("x/oauth2 DeviceAuth of an unregistered client: %v", err)
	}
}

// A requested scope must be within the client's; none asked means all of
// the client's.
func TestDeviceClientScopeRequest(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{deviceClients: scopedClients})
	before := storeSnapshot(t, e)
	for _, s := range []string{"providers", "proxy providers", "workers", "admin", "proxy admin"} {
		status, body := postForm(t, e, api.PathDeviceCode, url.Values{"client_id": {"viewer"}, "scope": {s}})
		if status != 400 || body["error"] != "invalid_scope" {
			t.Fatalf("viewer asking for %q: %d %v, want 400 invalid_scope", s, status, body)
		}
	}
	if !bytes.Equal(before, storeSnapshot(t, e)) {
		t.Fatal("refused scope requests wrote to the store")
	}
	for _, c := range []struct{ client, ask, want string }{
		{"viewer", "", "proxy"}, {"viewer", "proxy", "proxy"},
		{"worker-tool", "", "workers proxy"}, {"worker-tool", "workers", "workers"},
	} {
		status, body := postForm(t, e, api.PathDeviceCode, url.Values{"client_id": {c.client}, "scope": {c.ask}})
		if status != 200 || body["scope"] != c.want {
			t.Fatalf("%s asking for %q: %d %v, want scope %q", c.client, c.ask, status, body, c.want)
		}
	}
}

// Each use checks its own scope; refresh keeps the scopes; Grape keeps
// every scope.
func TestDeviceScopesEnforced(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{deviceClients: scopedClients})
	b := e.browser()
	b.MustSignIn("github")
	uid := e.MustUserID(b)
	cli := cliClient(e)

	viewerCfg, viewer := deviceLogin(t, e, b, "viewer")
	if got := claimsOf(t, viewer.AccessToken)["scope"]; got != "proxy" {
		t.Fatalf("viewer's access token scope claim %v, want \"proxy\"", got)
	}
	if got := viewer.Extra("scope"); got != "proxy" {
		t.Fatalf("viewer's token response scope %v, want \"proxy\"", got)
	}
	wantInsufficient(t, "viewer: provider list", bearerSend(t, cli, "GET", "/api/providers", viewer.AccessToken, nil), "providers")
	wantInsufficient(t, "viewer: provider token", bearerSend(t, cli, "GET", "/api/providers/github/token", viewer.AccessToken, nil), "providers")
	wantInsufficient(t, "viewer: repositories", bearerSend(t, cli, "GET", "/api/providers/github/repos", viewer.AccessToken, nil), "providers")
	wantInsufficient(t, "viewer: worker registration", bearerSend(t, cli, "POST", "/api/workers", viewer.AccessToken, map[string]string{"name": "backdoor"}), "workers")
	wantInsufficient(t, "viewer: worker list", bearerSend(t, cli, "GET", "/api/workers", viewer.AccessToken, nil), "workers")
	if ws, err := e.workers.List(context.Background(), uid); err != nil || len(ws) != 0 {
		t.Fatalf("workers after the refused registration: %v %v", ws, err)
	}
	if res := bearerSend(t, cli, "GET", "/api/data/items", viewer.AccessToken, nil); res.StatusCode != 200 {
		t.Fatalf("viewer on a proxied route: %d %s", res.StatusCode, res.Body)
	}
	if h, _, _ := e.upstream.Last(); h.Get("X-Arbor-User-Id") != uid {
		t.Fatalf("upstream saw user %q, want %q", h.Get("X-Arbor-User-Id"), uid)
	}
	if res := bearerSend(t, cli, "GET", api.PathMe, viewer.AccessToken, nil); res.StatusCode != 200 {
		t.Fatalf("viewer on /api/auth/me: %d %s", res.StatusCode, res.Body)
	}

	// Refresh keeps the scopes (x/oauth2's refresh_token grant).
	viewer.Expiry = time.Now().Add(-time.Minute)
	fresh, err := viewerCfg.TokenSource(context.Background(), viewer).Token()
	if err != nil || fresh.AccessToken == viewer.AccessToken {
		t.Fatalf("refresh: %v", err)
	}
	if got := claimsOf(t, fresh.AccessToken)["scope"]; got != "proxy" {
		t.Fatalf("refreshed access token scope %v, want \"proxy\"", got)
	}
	if got := claimsOf(t, fresh.RefreshToken)["scope"]; got != "proxy" {
		t.Fatalf("refreshed refresh token scope %v, want \"proxy\"", got)
	}
	wantInsufficient(t, "viewer after refresh: provider token", bearerSend(t, cli, "GET", "/api/providers/github/token", fresh.AccessToken, nil), "providers")
	// A refresh token presented by another registered client is refused.
	status, body := postForm(t, e, api.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {fresh.RefreshToken}, "client_id": {"repo-tool"}})
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("viewer's refresh token sent as repo-tool: %d %v", status, body)
	}

	// providers only: the provider API, not the app, not workers.
	_, repo := deviceLogin(t, e, b, "repo-tool")
	if res := bearerSend(t, cli, "GET", "/api/providers", repo.AccessToken, nil); res.StatusCode != 200 {
		t.Fatalf("repo-tool: provider list: %d %s", res.StatusCode, res.Body)
	}
	if res := bearerSend(t, cli, "GET", "/api/providers/github/token", repo.AccessToken, nil); errorCode(res.Body) == scope.CodeInsufficient {
		t.Fatalf("repo-tool: provider token refused for its scope: %s", res.Body)
	}
	_, _, n := e.upstream.Last()
	wantInsufficient(t, "repo-tool on a proxied route", bearerSend(t, cli, "GET", "/api/data/items", repo.AccessToken, nil), "proxy")
	if _, _, n2 := e.upstream.Last(); n2 != n {
		t.Fatal("a token without the proxy scope reached the upstream")
	}
	wantInsufficient(t, "repo-tool: worker registration", bearerSend(t, cli, "POST", "/api/workers", repo.AccessToken, map[string]string{"name": "w"}), "workers")

	// workers: may register one.
	_, wt := deviceLogin(t, e, b, "worker-tool", "workers")
	if res := bearerSend(t, cli, "POST", "/api/workers", wt.AccessToken, map[string]string{"name": "w1"}); res.StatusCode != http.StatusCreated {
		t.Fatalf("worker-tool: worker registration: %d %s", res.StatusCode, res.Body)
	}
	wantInsufficient(t, "worker-tool with workers only, on a proxied route", bearerSend(t, cli, "GET", "/api/data/items", wt.AccessToken, nil), "proxy")

	// Grape: the built-in client keeps every scope.
	grape := cliLogin(t, b, cli)
	if got := claimsOf(t, grape.AccessToken)["scope"]; got != "providers workers proxy" {
		t.Fatalf("Grape access token scope %v", got)
	}
	for _, c := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/api/providers", nil, 200},
		{"POST", "/api/workers", map[string]string{"name": "w2"}, http.StatusCreated},
		{"GET", "/api/data/items", nil, 200},
	} {
		if res := bearerSend(t, cli, c.method, c.path, grape.AccessToken, c.body); res.StatusCode != c.want {
			t.Fatalf("Grape %s %s: %d %s", c.method, c.path, res.StatusCode, res.Body)
		}
	}
	// A Grape refresh keeps every scope.
	res := postJSON(cli, api.PathCLIRefresh, map[string]string{"refresh_token": grape.RefreshToken})
	again := decodeTokens(t, "Grape refresh", res)
	if got := claimsOf(t, again.AccessToken)["scope"]; got != "providers workers proxy" {
		t.Fatalf("Grape refreshed access token scope %v", got)
	}
}

// A token minted before scopes existed (no scope claim) keeps its full
// power: it counts as Grape's set.
func TestLegacyTokenWithoutScopeClaim(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	b := e.browser()
	b.MustSignIn("github")
	cli := cliClient(e)
	tk := cliLogin(t, b, cli)
	// Re-sign the same claims without "scope", as an older Arbor did.
	c := claimsOf(t, tk.AccessToken)
	delete(c, "scope")
	legacy := signHS256(t, e, c)
	for _, p := range []string{"/api/providers", "/api/data/items"} {
		if res := bearerSend(t, cli, "GET", p, legacy, nil); res.StatusCode != 200 {
			t.Fatalf("legacy token on %s: %d %s", p, res.StatusCode, res.Body)
		}
	}
}

// cli.issuer and cli.audience: minted into the token, required of it.
func TestCLIAudienceConfigured(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{cliAudience: "trellis-cli"})
	b := e.browser()
	b.MustSignIn("github")
	cli := cliClient(e)
	tk := cliLogin(t, b, cli)
	c := claimsOf(t, tk.AccessToken)
	if aud, _ := c["aud"].([]any); len(aud) != 1 || aud[0] != "trellis-cli" || c["iss"] != e.publicURL {
		t.Fatalf("iss %v aud %v, want %q and [trellis-cli]", c["iss"], c["aud"], e.publicURL)
	}
	if res := bearerSend(t, cli, "GET", api.PathMe, tk.AccessToken, nil); res.StatusCode != 200 {
		t.Fatalf("the token on /api/auth/me: %d %s", res.StatusCode, res.Body)
	}
	// The same claims for the default audience, signed with the same key.
	c["aud"] = []string{clitoken.Audience}
	other := signHS256(t, e, c)
	wantError(t, "a token for another audience", bearerSend(t, cli, "GET", api.PathMe, other, nil), 401, "unauthenticated")
	wantError(t, "a token for another audience on the provider API", bearerSend(t, cli, "GET", "/api/providers", other, nil), 401, "unauthenticated")
}

// The approval pages show the registered name, the requesting machine,
// the scopes in words and the warning; nothing the request named itself;
// no script, and a pre-filled code still needs the user's button presses.
func TestDeviceApprovalPages(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{deviceClients: []clilogin.DeviceClient{{ID: "trellis-desktop", Name: "Trellis desktop", Scopes: scope.Proxy}}})
	b := e.browser()
	b.MustSignIn("github")
	form := url.Values{"client_id": {"trellis-desktop"}, "client_name": {"Trellis Web (official)"}, "scope": {"proxy"}}
	req, _ := http.NewRequest("POST", "http://"+e.addr+api.PathDeviceCode, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", `PhishKit/1.0 <b>"Trellis Web (official)"</b>`)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var da struct {
		DeviceCode              string `json:"device_code"`
		UserCode                string `json:"user_code"`
		VerificationURIComplete string `json:"verification_uri_complete"`
	}
	json.NewDecoder(res.Body).Decode(&da)
	res.Body.Close()
	if res.StatusCode != 200 || da.UserCode == "" {
		t.Fatalf("device code: %d %+v", res.StatusCode, da)
	}
	// The pre-filled link only fills the form: nothing is decided by
	// opening it.
	u, _ := url.Parse(da.VerificationURIComplete)
	enter := b.Get(u.RequestURI())
	if enter.StatusCode != 200 || !strings.Contains(enter.Body, `value="`+da.UserCode+`"`) || !strings.Contains(enter.Body, `id="phishing-warning"`) {
		t.Fatalf("/device with a pre-filled code: %d\n%s", enter.StatusCode, enter.Body)
	}
	noAutoSubmit(t, "/device", enter.Body)
	pollAs := func() any {
		_, body := postForm(t, e, api.PathToken, url.Values{"grant_type": {api.GrantDeviceCode}, "device_code": {da.DeviceCode}, "client_id": {"trellis-desktop"}})
		return body["error"]
	}
	if got := pollAs(); got != "authorization_pending" {
		t.Fatalf("poll after opening the link: %q", got)
	}
	m := deviceCSRF.FindStringSubmatch(enter.Body)
	confirm := b.Do(http.MethodPost, "/device", url.Values{"csrf": {m[1]}, "user_code": {da.UserCode}})
	for _, want := range []string{
		`<strong id="client-name">Trellis desktop</strong>`, "<code>trellis-desktop</code>",
		`id="phishing-warning"`, "If someone sent you this link or code",
		"use the app as you", `<dd id="machine-address">127.0.0.1</dd>`,
		"User-Agent (reported by the device)", "PhishKit/1.0 &lt;b&gt;",
	} {
		if !strings.Contains(confirm.Body, want) {
			t.Fatalf("the confirmation page lacks %q:\n%s", want, confirm.Body)
		}
	}
	for _, bad := range []string{"<b>", "Git provider access tokens", "Tendril workers"} {
		if strings.Contains(confirm.Body, bad) {
			t.Fatalf("the confirmation page shows %q:\n%s", bad, confirm.Body)
		}
	}
	// The only mention of the phisher's name is inside the escaped,
	// labelled User-Agent.
	if strings.Count(confirm.Body, "Trellis Web (official)") != 1 || strings.Contains(confirm.Body, "<h1>Allow Trellis Web") {
		t.Fatalf("request text shown as the client's name:\n%s", confirm.Body)
	}
	noAutoSubmit(t, "/device confirmation", confirm.Body)
	e.clock.Advance(10 * time.Second) // past the interval: not slow_down
	if got := pollAs(); got != "authorization_pending" {
		t.Fatalf("poll after the confirmation page: %q", got)
	}

	// Grape's page: the fixed name, never client= or client_name.
	cli := cliClient(e)
	dc := newDeviceCode(t)
	page := b.Get(api.PathCLILogin + "?device_code=" + dc + "&client=" + url.QueryEscape("Trellis Web (official)"))
	if page.StatusCode != 200 || !strings.Contains(page.Body, "<h1>Sign in to Grape?</h1>") || strings.Contains(page.Body, "Trellis Web") ||
		!strings.Contains(page.Body, `id="phishing-warning"`) || !strings.Contains(page.Body, `id="machine-address">127.0.0.1<`) {
		t.Fatalf("Grape page from a link with client=: %d\n%s", page.StatusCode, page.Body)
	}
	noAutoSubmit(t, "/cli/login", page.Body)
	dc2 := newDeviceCode(t)
	if res := postJSON(cli, api.PathCLIStart, map[string]any{"device_code": dc2, "client_name": "Trellis Web (official)",
		"client_info": map[string]string{"hostname": "box", "arbor:address": "10.9.9.9"}}); res.StatusCode != http.StatusCreated {
		t.Fatalf("start: %d %s", res.StatusCode, res.Body)
	}
	page = openLogin(b, dc2)
	if !strings.Contains(page.Body, "<h1>Sign in to Grape?</h1>") || strings.Contains(page.Body, "Trellis Web") || strings.Contains(page.Body, "10.9.9.9") ||
		!strings.Contains(page.Body, "hostname (reported by the device)") {
		t.Fatalf("Grape page after a start naming itself: %d\n%s", page.StatusCode, page.Body)
	}
}

// noAutoSubmit fails if a page could decide anything by itself.
func noAutoSubmit(t *testing.T, what, body string) {
	t.Helper()
	low := strings.ToLower(body)
	for _, bad := range []string{"<script", "onload", "http-equiv=\"refresh\"", "autofocus onfocus", ".submit("} {
		if strings.Contains(low, bad) {
			t.Fatalf("%s contains %q:\n%s", what, bad, body)
		}
	}
}

// signHS256 signs claims with the CLI key, as Arbor (or an older Arbor)
// would.
func signHS256(t *testing.T, e *cliEnv, c map[string]any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(c)).SignedString(e.CLITokenKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }

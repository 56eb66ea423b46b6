package api_test

// RFC 8628 (service/clilogin, gateway/api, gateway/pages) end to end: golang.org/x/oauth2's unchanged
// device flow client against Arbor, and each error the RFC defines.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func oauthConfig(e *cliEnv) *oauth2.Config {
	return &oauth2.Config{
		ClientID: "stock-cli",
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: "http://" + e.addr + "/oauth/device/code",
			TokenURL:      "http://" + e.addr + "/oauth/token",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
}

var deviceCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// decide enters the user code on /device as the signed-in browser and
// approves or denies.
func decide(t *testing.T, b *browser, userCode string, approve bool) *response {
	t.Helper()
	page := b.Get("/device?user_code=" + url.QueryEscape(userCode))
	m := deviceCSRF.FindStringSubmatch(page.Body)
	if page.StatusCode != 200 || m == nil || !strings.Contains(page.Body, userCode) {
		t.Fatalf("/device: %d\n%s", page.StatusCode, page.Body)
	}
	confirm := b.Do(http.MethodPost, "/device", url.Values{"csrf": {m[1]}, "user_code": {strings.ToLower(userCode)}})
	if confirm.StatusCode != 200 || !strings.Contains(confirm.Body, "stock-cli") {
		t.Fatalf("/device lookup: %d\n%s", confirm.StatusCode, confirm.Body)
	}
	d := "deny"
	if approve {
		d = "approve"
	}
	return b.Do(http.MethodPost, "/device/approve", url.Values{"csrf": {m[1]}, "user_code": {userCode}, "decision": {d}})
}

func TestDeviceFlowWithXOAuth2(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	b := e.browser()
	b.MustSignIn("github")
	cfg := oauthConfig(e)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`).MatchString(da.UserCode) ||
		da.VerificationURI != e.publicURL+"/device" || !strings.HasSuffix(da.VerificationURIComplete, "?user_code="+da.UserCode) || da.Interval != 5 {
		t.Fatalf("device authorization response: %+v", da)
	}
	if res := decide(t, b, da.UserCode, true); res.StatusCode != 200 || !strings.Contains(res.Body, "Device connected") {
		t.Fatalf("approve: %d\n%s", res.StatusCode, res.Body)
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.Expiry.IsZero() {
		t.Fatalf("token: %+v", tok)
	}
	// The token works as Bearer, for the user who approved.
	req, _ := http.NewRequest("GET", "http://"+e.addr+"/api/auth/me", nil)
	tok.SetAuthHeader(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var me map[string]string
	json.NewDecoder(res.Body).Decode(&me)
	res.Body.Close()
	if res.StatusCode != 200 || me["user_id"] != e.MustUserID(b) {
		t.Fatalf("/api/auth/me: %d %v", res.StatusCode, me)
	}
	// x/oauth2 refreshes through the refresh_token grant.
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(ctx, tok).Token()
	if err != nil || fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %v", err)
	}
	// The device code works once.
	if _, err := cfg.DeviceAccessToken(ctx, da); err == nil {
		t.Fatal("a used device code gave a second token")
	}
}

// poll posts the device code grant and returns the RFC error code ("" on
// success).
func poll(t *testing.T, e *cliEnv, deviceCode string) string {
	t.Helper()
	res, err := http.PostForm("http://"+e.addr+"/oauth/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}, "client_id": {"stock-cli"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	json.NewDecoder(res.Body).Decode(&body)
	if res.StatusCode == 200 {
		if body["access_token"] == "" || body["token_type"] != "Bearer" {
			t.Fatalf("token response %v", body)
		}
		return ""
	}
	code, _ := body["error"].(string)
	if res.StatusCode != 400 || code == "" {
		t.Fatalf("token error: %d %v", res.StatusCode, body)
	}
	return code
}

func TestDeviceTokenErrors(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	b := e.browser()
	b.MustSignIn("gitlab")
	ctx := context.Background()
	cfg := oauthConfig(e)

	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := poll(t, e, da.DeviceCode); got != "authorization_pending" {
		t.Fatalf("first poll: %q", got)
	}
	if got := poll(t, e, da.DeviceCode); got != "slow_down" {
		t.Fatalf("immediate second poll: %q", got)
	}
	e.clock.Advance(11 * time.Second) // past the interval, grown by 5 s
	if got := poll(t, e, da.DeviceCode); got != "authorization_pending" {
		t.Fatalf("poll after waiting: %q", got)
	}
	decide(t, b, da.UserCode, true)
	e.clock.Advance(11 * time.Second)
	if got := poll(t, e, da.DeviceCode); got != "" {
		t.Fatalf("poll after approval: %q", got)
	}
	if got := poll(t, e, da.DeviceCode); got != "invalid_grant" {
		t.Fatalf("poll after the token was issued: %q", got)
	}

	denied, _ := cfg.DeviceAuth(ctx)
	if res := decide(t, b, denied.UserCode, false); res.StatusCode != 200 {
		t.Fatalf("deny: %d", res.StatusCode)
	}
	if got := poll(t, e, denied.DeviceCode); got != "access_denied" {
		t.Fatalf("denied: %q", got)
	}

	late, _ := cfg.DeviceAuth(ctx)
	e.clock.Advance(10*time.Minute + time.Second)
	if got := poll(t, e, late.DeviceCode); got != "expired_token" {
		t.Fatalf("expired: %q", got)
	}
	if got := poll(t, e, "no-such-device-code"); got != "invalid_grant" {
		t.Fatalf("unknown: %q", got)
	}
	res, _ := http.PostForm("http://"+e.addr+"/oauth/token", url.Values{"grant_type": {"password"}})
	if res.StatusCode != 400 {
		t.Fatalf("password grant: %d", res.StatusCode)
	}
	// A wrong user code shows the form again; nothing is approved.
	page := b.Get("/device")
	csrf := deviceCSRF.FindStringSubmatch(page.Body)[1]
	if r := b.Do(http.MethodPost, "/device", url.Values{"csrf": {csrf}, "user_code": {"BCDF-GHJK"}}); r.StatusCode != 400 || !strings.Contains(r.Body, "No pending request") {
		t.Fatalf("unknown user code: %d", r.StatusCode)
	}
	if r := b.Do(http.MethodPost, "/device", url.Values{"user_code": {late.UserCode}}); r.StatusCode != 403 {
		t.Fatalf("without CSRF: %d", r.StatusCode)
	}
}

func TestAuthorizationServerMetadata(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	var md map[string]any
	res := getJSON(t, e.browser(), "/.well-known/oauth-authorization-server", &md)
	if res.StatusCode != 200 || md["device_authorization_endpoint"] != e.publicURL+"/oauth/device/code" || md["token_endpoint"] != e.publicURL+"/oauth/token" {
		t.Fatalf("metadata: %d %v", res.StatusCode, md)
	}
}

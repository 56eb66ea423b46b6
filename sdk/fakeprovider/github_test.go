package fakeprovider_test

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// codeFor runs an auto-approved authorization without PKCE and returns the
// code.
func codeFor(t *testing.T, p *fakeprovider.Provider, scope, user string) string {
	t.Helper()
	oc := oauthConfig(p, oauth2.AuthStyleInParams, strings.Fields(scope)...)
	q := authorize(t, oc.AuthCodeURL("s"), user)
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	return q.Get("code")
}

// TestGitHubTokenFormats: without Accept the answer is form-encoded,
// with Accept: application/json it is JSON; errors come with HTTP 200 in
// the same format. The GitHub App's answer has an empty scope.
func TestGitHubTokenFormats(t *testing.T) {
	p := start(t, fakeprovider.GitHub())
	tokenURL := p.Endpoints().TokenURL
	form := func(code string) url.Values {
		return url.Values{"client_id": {"fake-client-id"}, "client_secret": {"fake-client-secret"}, "code": {code}}
	}

	// No Accept header, no grant_type (GitHub does not require it).
	resp, body := postForm(t, tokenURL, form(codeFor(t, p, "repo gist", "")), nil, nil)
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != 200 || mt != "application/x-www-form-urlencoded" {
		t.Fatalf("status %d, content type %q, want 200 form", resp.StatusCode, mt)
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatalf("parse %q: %v", body, err)
	}
	if !strings.HasPrefix(v.Get("access_token"), "ghu_") || !strings.HasPrefix(v.Get("refresh_token"), "ghr_") ||
		v.Get("expires_in") != "28800" || v.Get("refresh_token_expires_in") != "15897600" ||
		!v.Has("scope") || v.Get("scope") != "" || v.Get("token_type") != "bearer" {
		t.Errorf("form token response = %v", v)
	}

	// Accept: application/json.
	resp, body = postForm(t, tokenURL, form(codeFor(t, p, "repo", "")), nil, map[string]string{"Accept": "application/json"})
	var j map[string]any
	if err := json.Unmarshal(body, &j); err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("JSON response: %v, %q: %s", err, resp.Header.Get("Content-Type"), body)
	}
	if scope, ok := j["scope"]; j["expires_in"] != float64(28800) || !ok || scope != "" {
		t.Errorf("JSON token response = %v", j)
	}

	// Errors: HTTP 200 with an error field, in both formats.
	resp, body = postForm(t, tokenURL, form("not-a-code"), nil, nil)
	v, _ = url.ParseQuery(string(body))
	if resp.StatusCode != 200 || v.Get("error") != "bad_verification_code" || v.Get("error_uri") == "" {
		t.Errorf("form error: %d %s", resp.StatusCode, body)
	}
	resp, body = postForm(t, tokenURL, form("not-a-code"), nil, map[string]string{"Accept": "application/json"})
	j = nil
	json.Unmarshal(body, &j)
	if resp.StatusCode != 200 || j["error"] != "bad_verification_code" || j["error_description"] != "The code passed is incorrect or expired." {
		t.Errorf("JSON error: %d %s", resp.StatusCode, body)
	}

	// golang.org/x/oauth2 sees the 200-with-error as a RetrieveError.
	oc := oauthConfig(p, oauth2.AuthStyleInParams)
	_, err = oc.Exchange(ctxTimeout(t, 5*time.Second), "not-a-code")
	retrieveError(t, err, "bad_verification_code", 200)
}

// TestGitHubClassicApp: an OAuth app's gho_ tokens never expire, come
// without a refresh token and carry the granted scopes, comma-separated.
// A GitHub App that opted out of expiring tokens issues non-expiring ghu_
// tokens, still without scopes.
func TestGitHubClassicApp(t *testing.T) {
	p := start(t, fakeprovider.GitHubOAuthApp())
	oc := oauthConfig(p, oauth2.AuthStyleInParams, "read:user")
	tok, err := oc.Exchange(ctxTimeout(t, 5*time.Second), codeFor(t, p, "repo read:user", ""))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "gho_") || tok.RefreshToken != "" || !tok.Expiry.IsZero() || tok.Extra("scope") != "repo,read:user" {
		t.Errorf("classic token = %q refresh %q expiry %v scope %v", tok.AccessToken, tok.RefreshToken, tok.Expiry, tok.Extra("scope"))
	}
	if it := p.IssuedTokens(); len(it) != 1 || !it[0].ExpiresAt.IsZero() || !it[0].AccessValid {
		t.Errorf("IssuedTokens = %+v", it)
	}

	app := start(t, fakeprovider.GitHubApp())
	app.SetAccessTokenLifetime(0)
	tok, err = oauthConfig(app, oauth2.AuthStyleInParams).Exchange(ctxTimeout(t, 5*time.Second), codeFor(t, app, "repo", ""))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "ghu_") || tok.RefreshToken != "" || !tok.Expiry.IsZero() || tok.Extra("scope") != "" {
		t.Errorf("non-expiring GitHub App token = %q refresh %q expiry %v scope %v", tok.AccessToken, tok.RefreshToken, tok.Expiry, tok.Extra("scope"))
	}
}

// TestGitHubAPI: both auth schemes, null e-mail for a private address,
// scope headers and the 404 a token without user:email gets for
// /user/emails.
func TestGitHubAPI(t *testing.T) {
	p := start(t, fakeprovider.GitHubOAuthApp())
	oc := oauthConfig(p, oauth2.AuthStyleInParams)
	ctx := ctxTimeout(t, 5*time.Second)
	e := p.Endpoints()

	tok, err := oc.Exchange(ctx, codeFor(t, p, "read:user", "hubot"))
	if err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []string{"Bearer ", "token ", "bearer "} {
		status, h, body := apiGet(t, e.UserURL, scheme+tok.AccessToken)
		if status != 200 || field(body, "login") != "hubot" || h.Get("X-OAuth-Scopes") != "read:user" {
			t.Errorf("%q: %d %v scopes %q", scheme, status, body, h.Get("X-OAuth-Scopes"))
		}
		if m := body.(map[string]any); m["email"] != nil || m["name"] != nil {
			t.Errorf("private e-mail and empty name must be null: %v", m)
		}
	}
	status, _, body := apiGet(t, e.EmailsURL, "Bearer "+tok.AccessToken)
	if status != 404 || field(body, "message") != "Not Found" {
		t.Errorf("emails without user:email: %d %v", status, body)
	}
	status, _, body = apiGet(t, e.UserURL, "Basic "+tok.AccessToken)
	if status != 401 || field(body, "message") != "Requires authentication" {
		t.Errorf("unsupported scheme: %d %v", status, body)
	}
	status, _, body = apiGet(t, e.UserURL, "Bearer gho_nonsense")
	if status != 401 || field(body, "message") != "Bad credentials" || field(body, "documentation_url") == nil {
		t.Errorf("bad token: %d %v", status, body)
	}

	tok, err = oc.Exchange(ctx, codeFor(t, p, "user:email", "octocat"))
	if err != nil {
		t.Fatal(err)
	}
	status, _, body = apiGet(t, e.EmailsURL, "token "+tok.AccessToken)
	list, _ := body.([]any)
	if status != 200 || len(list) != 2 || field(list[0], "primary") != true || field(list[0], "verified") != true ||
		field(list[1], "verified") != false || field(list[0], "email") != "octocat@example.com" {
		t.Errorf("emails: %d %v", status, body)
	}
	status, _, body = apiGet(t, e.UserURL, "Bearer "+tok.AccessToken)
	if status != 200 || field(body, "email") != "octocat@example.com" || field(body, "id") != float64(583231) {
		t.Errorf("user: %d %v", status, body)
	}
}

// TestAuthorizeValidation: errors about the client or redirect URI are
// pages (GitHub redirects a redirect_uri mismatch to the registered
// callback); the others go back to the client.
func TestAuthorizeValidation(t *testing.T) {
	gh := start(t, fakeprovider.GitHub())
	gl := start(t, fakeprovider.GitLab())
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	q := func(p *fakeprovider.Provider, kv ...string) string {
		v := url.Values{"client_id": {"fake-client-id"}, "redirect_uri": {callback}, "response_type": {"code"},
			"state": {"xyz"}, "fake_auto": {"approve"}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return p.Endpoints().AuthURL + "?" + v.Encode()
	}
	cases := []struct {
		name      string
		url       string
		status    int
		wantError string // error in the redirect; "" with status 302 = code
	}{
		{"ok", q(gl), 302, ""},
		{"redirect_uri omitted, one registered", q(gl, "redirect_uri", ""), 302, ""},
		{"unknown client", q(gl, "client_id", "who"), 400, ""},
		{"GitLab unregistered redirect", q(gl, "redirect_uri", "http://evil.example/cb"), 400, ""},
		{"GitHub unregistered redirect", q(gh, "redirect_uri", "http://evil.example/cb"), 302, "redirect_uri_mismatch"},
		{"response_type token", q(gl, "response_type", "token"), 302, "unsupported_response_type"},
		{"plain PKCE", q(gl, "code_challenge", challenge, "code_challenge_method", "plain"), 302, "invalid_request"},
		{"S256 PKCE", q(gl, "code_challenge", challenge, "code_challenge_method", "S256"), 302, ""},
		{"deny", q(gl, "fake_auto", "deny"), 302, "access_denied"},
		{"unknown fake user", q(gl, "fake_user", "nobody"), 400, ""},
	}
	for _, tc := range cases {
		resp, err := noFollow.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
			continue
		}
		if tc.status != 302 {
			continue
		}
		loc, _ := resp.Location()
		lq := loc.Query()
		if !strings.HasPrefix(loc.String(), callback) || lq.Get("error") != tc.wantError || lq.Get("state") != "xyz" ||
			(tc.wantError == "") != (lq.Get("code") != "") {
			t.Errorf("%s: redirected to %s", tc.name, loc)
		}
	}
}

// TestConsentPage renders the interactive page and submits its form
// without JavaScript: Deny → access_denied, Approve as another user → a
// code for that user.
func TestConsentPage(t *testing.T) {
	p := start(t, fakeprovider.GitHubOAuthApp())
	oc := oauthConfig(p, oauth2.AuthStyleInParams, "read:user", "user:email")
	authURL := oc.AuthCodeURL("state-42")
	resp, err := noFollow.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(t, resp)
	for _, want := range []string{
		"<title>GitHub (fake) — Authorize Arbor?</title>",
		`<form method="post">`,
		`name="decision" value="approve">Approve</button>`,
		`name="decision" value="deny">Deny</button>`,
		`<option value="octocat" selected>octocat (The Octocat)</option>`,
		`<option value="hubot">hubot</option>`,
		`<input type="hidden" name="state" value="state-42">`,
		"<code>read:user</code>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if resp.StatusCode != 200 || strings.Contains(page, "<script") {
		t.Errorf("status %d; page must work without JavaScript", resp.StatusCode)
	}

	// Submit the form as a browser would: hidden fields + select + button.
	submit := func(decision, user string) *url.URL {
		f := url.Values{"decision": {decision}, "fake_user": {user}}
		for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
			f.Add(m[1], htmlUnescape(m[2]))
		}
		resp, body := postForm(t, authURL, f, nil, nil)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%s: status %d: %s", decision, resp.StatusCode, body)
		}
		loc, _ := resp.Location()
		return loc
	}
	loc := submit("deny", "octocat")
	if lq := loc.Query(); lq.Get("error") != "access_denied" || lq.Get("state") != "state-42" || lq.Get("code") != "" ||
		lq.Get("error_description") != "The user has denied your application access." {
		t.Errorf("deny redirected to %s", loc)
	}
	loc = submit("approve", "hubot")
	if loc.Query().Get("state") != "state-42" {
		t.Fatalf("approve redirected to %s", loc)
	}
	tok, err := oc.Exchange(ctxTimeout(t, 5*time.Second), loc.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, body := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken); field(body, "login") != "hubot" {
		t.Errorf("approved as hubot, API says %v", body)
	}
}

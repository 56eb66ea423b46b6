package fakeprovider_test

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
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
		v.Get("expires_in") != "28800" || v.Get("refresh_token_expires_in") != "15811200" ||
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

// appToken signs login in at a GitHub App fake and returns its ghu_ token.
func appToken(t *testing.T, p *fakeprovider.Provider, login string) string {
	t.Helper()
	tok, err := oauthConfig(p, oauth2.AuthStyleInParams).Exchange(ctxTimeout(t, 5*time.Second), codeFor(t, p, "", login))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "ghu_") {
		t.Fatalf("GitHub App token %q", tok.AccessToken)
	}
	return tok.AccessToken
}

// linkPages follows Link next from first and returns every page's body and
// headers.
func linkPages(t *testing.T, first, auth string) (bodies []any, headers []http.Header) {
	t.Helper()
	next := first
	for next != "" {
		if len(bodies) > 50 {
			t.Fatal("pagination does not end")
		}
		status, h, body := apiGet(t, next, auth)
		if status != 200 {
			t.Fatalf("GET %s: %d %v", next, status, body)
		}
		bodies, headers = append(bodies, body), append(headers, h)
		next = links(h)["next"]
	}
	return bodies, headers
}

// TestGitHubAppInstallations: a GitHub App user token sees the app's
// installation on the user's account and, on both
// /user/installations/{id}/repositories and /user/repos, only its
// repositories (all, a selected subset, none), as VisibleRepos says. The
// OAuth app has no installation endpoints and sees every repository.
func TestGitHubAppInstallations(t *testing.T) {
	p := start(t, fakeprovider.GitHubApp())
	e := p.Endpoints()
	if e.InstallationsURL != p.URL()+"/user/installations" {
		t.Errorf("InstallationsURL %q", e.InstallationsURL)
	}
	for _, tc := range []struct {
		login     string
		install   float64 // 0: none
		selection string
		repos     int
	}{
		{"octocat", 41000001, "all", 250},
		{"monalisa", 41000002, "selected", 45},
		{"hubot", 0, "", 0},
	} {
		t.Run(tc.login, func(t *testing.T) {
			auth := "Bearer " + appToken(t, p, tc.login)
			status, h, body := apiGet(t, e.InstallationsURL, auth)
			list, _ := field(body, "installations").([]any)
			if status != 200 || h.Get("X-Ratelimit-Limit") != "5000" {
				t.Fatalf("installations: %d %v", status, body)
			}
			if tc.install == 0 {
				if field(body, "total_count") != float64(0) || list == nil || len(list) != 0 {
					t.Errorf("no installation: %v", body)
				}
				// Someone else's installation: 404.
				if status, _, _ := apiGet(t, p.URL()+"/user/installations/41000001/repositories", auth); status != 404 {
					t.Errorf("foreign installation: %d, want 404", status)
				}
			} else if field(body, "total_count") != float64(1) || len(list) != 1 || field(list[0], "id") != tc.install ||
				field(list[0], "repository_selection") != tc.selection || field(list[0], "account", "login") != tc.login ||
				field(list[0], "target_type") != "User" {
				t.Errorf("installations: %v", body)
			}
			var fromInst []string
			if tc.install != 0 {
				first := fmt.Sprintf("%s/user/installations/%d/repositories?per_page=20", p.URL(), int64(tc.install))
				bodies, _ := linkPages(t, first, auth)
				for _, b := range bodies {
					if field(b, "total_count") != float64(tc.repos) || field(b, "repository_selection") != tc.selection {
						t.Errorf("installation repositories page: total %v selection %v", field(b, "total_count"), field(b, "repository_selection"))
					}
					rs, _ := field(b, "repositories").([]any)
					if len(rs) > 20 {
						t.Errorf("page of %d, per_page 20", len(rs))
					}
					for _, r := range rs {
						fromInst = append(fromInst, field(r, "full_name").(string))
					}
				}
				if want := (tc.repos + 19) / 20; len(bodies) != want {
					t.Errorf("%d pages, want %d", len(bodies), want)
				}
			}
			var fromUser []string
			bodies, _ := linkPages(t, e.ReposURL+"?per_page=100", auth)
			for _, b := range bodies {
				for _, r := range b.([]any) {
					fromUser = append(fromUser, field(r, "full_name").(string))
				}
			}
			var want []string
			for _, r := range p.VisibleRepos(tc.login) {
				want = append(want, r.FullName)
			}
			slices.Sort(want)
			slices.Sort(fromUser)
			slices.Sort(fromInst)
			if len(want) != tc.repos || !slices.Equal(fromUser, want) || (tc.install != 0 && !slices.Equal(fromInst, want)) {
				t.Errorf("VisibleRepos %d, /user/repos %d, installation %d; want %d the same", len(want), len(fromUser), len(fromInst), tc.repos)
			}
		})
	}

	o := start(t, fakeprovider.GitHubOAuthApp())
	if o.Endpoints().InstallationsURL != "" || len(o.VisibleRepos("hubot")) != 2 || len(o.VisibleRepos("monalisa")) != 60 {
		t.Errorf("OAuth app: installations URL %q, hubot sees %d, monalisa %d", o.Endpoints().InstallationsURL, len(o.VisibleRepos("hubot")), len(o.VisibleRepos("monalisa")))
	}
	tok, err := oauthConfig(o, oauth2.AuthStyleInParams).Exchange(ctxTimeout(t, 5*time.Second), codeFor(t, o, "repo", "hubot"))
	if err != nil {
		t.Fatal(err)
	}
	if status, _, _ := apiGet(t, o.URL()+"/user/installations", "Bearer "+tok.AccessToken); status != 404 {
		t.Errorf("OAuth app /user/installations: %d, want 404", status)
	}
}

// TestGitHubAppNoScopes: a GitHub App token has no OAuth scopes and the
// API does not ask for any: /user/emails answers although no scope was
// granted, without X-OAuth-Scopes.
func TestGitHubAppNoScopes(t *testing.T) {
	p := start(t, fakeprovider.GitHubApp())
	auth := "Bearer " + appToken(t, p, "hubot")
	status, h, body := apiGet(t, p.Endpoints().EmailsURL, auth)
	if status != 200 || len(body.([]any)) != 1 || h.Get("X-OAuth-Scopes") != "" {
		t.Errorf("emails: %d %v scopes %q", status, body, h.Get("X-OAuth-Scopes"))
	}
	for _, k := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Used", "X-Ratelimit-Reset", "X-Ratelimit-Resource"} {
		if h.Get(k) == "" || h.Get("X-Ratelimit-Remaining") == "0" {
			t.Errorf("%s = %q (remaining %q)", k, h.Get(k), h.Get("X-Ratelimit-Remaining"))
		}
	}
}

// TestRateLimitNext: each flavor's documented rate-limit answer, and that
// it applies to the next n calls only.
func TestRateLimitNext(t *testing.T) {
	type want struct {
		status             int
		remaining          string // x-ratelimit-remaining (GitHub) or RateLimit-Remaining (GitLab); "-" absent
		retryAfter         string // "" absent
		message, errorCode string
	}
	cases := []struct {
		name string
		cfg  func() fakeprovider.Config
		kind fakeprovider.RateLimitKind
		want want
	}{
		{"GitHub primary", fakeprovider.GitHubApp, fakeprovider.RateLimitPrimary, want{403, "0", "", "API rate limit exceeded for user ID 583231.", "rate_limited"}},
		{"GitHub primary 429", fakeprovider.GitHubOAuthApp, fakeprovider.RateLimitPrimary429, want{429, "0", "", "API rate limit exceeded for user ID 583231.", "rate_limited"}},
		{"GitHub secondary", fakeprovider.GitHubApp, fakeprovider.RateLimitSecondary, want{403, "not 0", "60", "You have exceeded a secondary rate limit.", "secondary_rate_limited"}},
		{"GitHub secondary 429", fakeprovider.GitHubApp, fakeprovider.RateLimitSecondary429, want{429, "not 0", "60", "You have exceeded a secondary rate limit.", "secondary_rate_limited"}},
		{"GitLab", fakeprovider.GitLab, fakeprovider.RateLimitSecondary, want{429, "0", "60", "Retry later", "rate_limited"}},
		{"Bitbucket", fakeprovider.Bitbucket, fakeprovider.RateLimitPrimary, want{429, "-", "", "Rate limit for this resource has been exceeded.", "rate_limited"}},
		{"Generic", func() fakeprovider.Config { return fakeprovider.Config{} }, fakeprovider.RateLimitPrimary, want{429, "-", "60", "Too many requests", "rate_limited"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, tc.cfg())
			var auth string
			switch p.Config().Flavor {
			case fakeprovider.FlavorGitHub:
				tok, err := oauthConfig(p, oauth2.AuthStyleInParams).Exchange(ctxTimeout(t, 5*time.Second), codeFor(t, p, "user:email", "octocat"))
				if err != nil {
					t.Fatal(err)
				}
				auth = "Bearer " + tok.AccessToken
			default:
				auth = "Bearer whatever" // the limit answers before authentication
			}
			p.RateLimitNext(fakeprovider.EndpointUser, 2, tc.kind)
			for i := range 3 {
				req, _ := http.NewRequest(http.MethodGet, p.Endpoints().UserURL, nil)
				req.Header.Set("Authorization", auth)
				resp, err := noFollow.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body := readAll(t, resp)
				if i == 2 {
					if resp.StatusCode == tc.want.status {
						t.Errorf("the third call was limited too: %d %s", resp.StatusCode, body)
					}
					break
				}
				h := resp.Header
				if resp.StatusCode != tc.want.status || !strings.Contains(body, tc.want.message) || h.Get("Retry-After") != tc.want.retryAfter {
					t.Errorf("call %d: %d retry-after %q %s", i, resp.StatusCode, h.Get("Retry-After"), body)
				}
				remaining := h.Get("X-Ratelimit-Remaining")
				if p.Config().Flavor == fakeprovider.FlavorGitLab {
					remaining = h.Get("RateLimit-Remaining")
					if h.Get("RateLimit-Reset") == "" || h.Get("RateLimit-Limit") == "" || h.Get("RateLimit-Name") == "" {
						t.Errorf("GitLab RateLimit-* headers missing: %v", h)
					}
				}
				switch tc.want.remaining {
				case "-":
					if remaining != "" {
						t.Errorf("remaining %q, want none", remaining)
					}
				case "not 0":
					if remaining == "" || remaining == "0" {
						t.Errorf("secondary limit with remaining %q: GitHub's secondary limits do not exhaust the primary", remaining)
					}
				default:
					if remaining != tc.want.remaining {
						t.Errorf("remaining %q, want %q", remaining, tc.want.remaining)
					}
				}
				if tc.want.remaining == "0" && p.Config().Flavor == fakeprovider.FlavorGitHub && h.Get("X-Ratelimit-Reset") == "" {
					t.Error("primary limit without x-ratelimit-reset")
				}
			}
			c := p.CallsTo(fakeprovider.EndpointUser)
			if len(c) != 3 || !c[0].Injected || c[0].Error != tc.want.errorCode || c[2].Injected {
				t.Errorf("calls %+v", c)
			}
		})
	}
}

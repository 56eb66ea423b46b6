package fakeprovider_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// TestExpiry uses the injected clock: short access-token lifetimes, the
// provider's "expired" error, ExpireAccessTokens, and refresh tokens that
// expire (GitHub's refresh_token_expires_in).
func TestExpiry(t *testing.T) {
	clk := newClock()
	cfg := fakeprovider.GitLab()
	cfg.Now = clk.Now
	p := start(t, cfg)
	pc := presetNamed("GitLab")
	p.SetAccessTokenLifetime(2 * time.Second)
	tok := connect(t, p, pc)
	if got := tok.Extra("expires_in"); got != float64(2) {
		t.Errorf("expires_in = %v, want 2", got)
	}
	if got := tok.Extra("created_at"); got != float64(clk.Now().Unix()) {
		t.Errorf("created_at = %v, want %d", got, clk.Now().Unix())
	}
	clk.Advance(3 * time.Second)
	if p.ValidAccessToken(tok.AccessToken) {
		t.Error("token valid after its lifetime")
	}
	status, h, body := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken)
	if status != 401 || field(body, "error") != "invalid_token" ||
		field(body, "error_description") != "Token is expired. You can either do re-authorization or token refresh." ||
		!strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("expired token: %d %v %q", status, body, h.Get("WWW-Authenticate"))
	}
	if status, _, body := apiGet(t, p.Endpoints().UserURL, ""); status != 401 || field(body, "message") != "401 Unauthorized" {
		t.Errorf("no token: %d %v", status, body)
	}

	// ExpireAccessTokens also expires tokens that would never expire.
	p.SetAccessTokenLifetime(0)
	forever := connect(t, p, pc)
	if !forever.Expiry.IsZero() || !p.ValidAccessToken(forever.AccessToken) {
		t.Fatalf("lifetime 0: expiry %v", forever.Expiry)
	}
	p.ExpireAccessTokens()
	if p.ValidAccessToken(forever.AccessToken) || !p.ValidRefreshToken(forever.RefreshToken) {
		t.Error("ExpireAccessTokens: access still valid or refresh killed")
	}

	// GitHub refresh tokens expire after refresh_token_expires_in.
	gclk := newClock()
	gcfg := fakeprovider.GitHub()
	gcfg.Now = gclk.Now
	g := start(t, gcfg)
	gpc := presetNamed("GitHub")
	gt := connect(t, g, gpc)
	gclk.Advance(15811200*time.Second + time.Second)
	_, err := oauthConfig(g, gpc.style).TokenSource(ctxTimeout(t, 5*time.Second), &oauth2.Token{RefreshToken: gt.RefreshToken}).Token()
	retrieveError(t, err, "bad_refresh_token", 200)
}

// TestConcurrentRotation: two refreshes with the same rotating refresh
// token race; exactly one wins — why Arbor refreshes single-flight.
func TestConcurrentRotation(t *testing.T) {
	pc := presetNamed("Bitbucket")
	p := start(t, pc.cfg())
	tok := connect(t, p, pc)
	oc := oauthConfig(p, pc.style)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := oc.TokenSource(ctxTimeout(t, 5*time.Second), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent refreshes succeeded, want exactly 1", ok, n)
	}
}

// TestIssuedTokens: IssuedTokens tracks every response and rotation.
func TestIssuedTokens(t *testing.T) {
	pc := presetNamed("GitLab")
	p := start(t, pc.cfg())
	tok := connect(t, p, pc)
	fresh, err := oauthConfig(p, pc.style).TokenSource(ctxTimeout(t, 5*time.Second), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	it := p.IssuedTokens()
	if len(it) != 2 || it[0].GrantType != "authorization_code" || it[1].GrantType != "refresh_token" ||
		// GitLab's refresh kills the old access token too (InvalidateAccessOnRefresh).
		it[0].RefreshValid || !it[1].RefreshValid || it[0].AccessValid || !it[1].AccessValid || it[1].AccessToken != fresh.AccessToken ||
		it[0].User != "jsmith" || strings.Join(it[0].Scopes, " ") != "read_user api" {
		t.Errorf("IssuedTokens = %+v", it)
	}

}

// TestAllowRedirectAndReset checks AllowRedirect, AllowAnyRedirect and
// that Reset forgets tokens, calls and added redirect URIs.
func TestAllowRedirectAndReset(t *testing.T) {
	cfg := fakeprovider.GitLab()
	p := fakeprovider.StartForTest(t, cfg) // nothing registered
	authURL := func(redirect string) string {
		return p.Endpoints().AuthURL + "?" + url.Values{"client_id": {"fake-client-id"}, "response_type": {"code"},
			"redirect_uri": {redirect}, "fake_auto": {"approve"}}.Encode()
	}
	status := func(u string) int {
		resp, err := noFollow.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status(authURL(callback)); s != 400 {
		t.Errorf("unregistered: %d, want 400", s)
	}
	p.AllowRedirect(callback)
	if s := status(authURL(callback)); s != 302 {
		t.Errorf("after AllowRedirect: %d, want 302", s)
	}
	if s := status(authURL(callback + "/")); s != 400 {
		t.Errorf("trailing slash must not match: %d", s)
	}
	tok := connect(t, p, presetNamed("GitLab"))
	p.Reset()
	if len(p.Calls()) != 0 || len(p.IssuedTokens()) != 0 || p.ValidAccessToken(tok.AccessToken) {
		t.Error("Reset kept calls or tokens")
	}
	if s := status(authURL(callback)); s != 400 {
		t.Errorf("after Reset: %d, want 400", s)
	}

	cfg.AllowAnyRedirect = true
	open := fakeprovider.StartForTest(t, cfg)
	resp, err := noFollow.Get(open.Endpoints().AuthURL + "?" + url.Values{"client_id": {"fake-client-id"}, "response_type": {"code"},
		"redirect_uri": {"http://localhost:5555/cb"}, "fake_auto": {"approve"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); resp.StatusCode != 302 || loc == nil || loc.Host != "localhost:5555" {
		t.Errorf("AllowAnyRedirect: %d %v", resp.StatusCode, loc)
	}
}

// TestCallsHoldNoSecrets runs every kind of request and checks that no
// secret value appears anywhere in Calls.
func TestCallsHoldNoSecrets(t *testing.T) {
	for _, pc := range presets {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, pc.cfg())
			oc := oauthConfig(p, pc.style, pc.scopes...)
			verifier := oauth2.GenerateVerifier()
			code := login(t, oc, verifier, "", pc.authOpts...)
			tok, err := oc.Exchange(ctxTimeout(t, 5*time.Second), code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := oc.TokenSource(ctxTimeout(t, 5*time.Second), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatal(err)
			}
			apiGet(t, p.Endpoints().UserURL+"?access_token="+fresh.AccessToken, "Bearer "+fresh.AccessToken)
			if e := p.Endpoints(); e.RevokeURL != "" {
				postForm(t, e.RevokeURL+"?token="+fresh.AccessToken, url.Values{"token": {fresh.AccessToken},
					"client_secret": {"fake-client-secret"}, "client_id": {"fake-client-id"}}, nil, nil)
			}
			dump := fmt.Sprintf("%+v", p.Calls())
			for _, secret := range []string{"fake-client-secret", code, verifier, tok.AccessToken, tok.RefreshToken, fresh.AccessToken, fresh.RefreshToken} {
				if secret != "" && strings.Contains(dump, secret) {
					t.Errorf("Calls contain a secret (%.8s…)", secret)
				}
			}
			if !strings.Contains(dump, fakeprovider.Fingerprint(fresh.AccessToken)) {
				t.Error("Calls do not identify the access token by its fingerprint")
			}
		})
	}
}

// TestGoogle: refresh tokens only with access_type=offline, the unsigned
// id_token, scope-dependent userinfo claims, login_hint and unverified
// addresses.
func TestGoogle(t *testing.T) {
	p := start(t, fakeprovider.Google())
	ctx := ctxTimeout(t, 5*time.Second)

	oc := oauthConfig(p, oauth2.AuthStyleInParams, "openid", "email")
	verifier := oauth2.GenerateVerifier()
	code := login(t, oc, verifier, "", oauth2.SetAuthURLParam("nonce", "n-0S6"), oauth2.SetAuthURLParam("login_hint", "sam@example.net"))
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" {
		t.Errorf("refresh token without access_type=offline: %q", tok.RefreshToken)
	}
	idt, _ := tok.Extra("id_token").(string)
	parts := strings.Split(idt, ".")
	if len(parts) != 3 || parts[2] != "" {
		t.Fatalf("id_token %q is not an unsigned JWT", idt)
	}
	var hdr, claims map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(hb, &hdr)
	json.Unmarshal(cb, &claims)
	if hdr["alg"] != "none" || claims["nonce"] != "n-0S6" || claims["aud"] != "fake-client-id" ||
		claims["email"] != "sam@example.net" || claims["email_verified"] != false || claims["sub"] != "100000000000000000002" {
		t.Errorf("id_token header %v claims %v", hdr, claims)
	}
	status, _, body := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken)
	if status != 200 || field(body, "email_verified") != false || field(body, "name") != nil || field(body, "sub") != "100000000000000000002" {
		t.Errorf("userinfo with openid email: %d %v", status, body)
	}

	oc = oauthConfig(p, oauth2.AuthStyleInParams, "openid")
	tok, err = oc.Exchange(ctx, login(t, oc, verifier, "jane"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, body := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken); field(body, "email") != nil || field(body, "sub") == nil {
		t.Errorf("userinfo with openid only must have sub and no email: %v", body)
	}
}

// TestSwitches exercises generic switches on the zero Config: PKCE
// required/ignored, code reuse revocation, refusing two client auth
// methods at once, and the generic API.
func TestSwitches(t *testing.T) {
	ctx := ctxTimeout(t, 10*time.Second)

	t.Run("zero config", func(t *testing.T) {
		p := start(t, fakeprovider.Config{AccessTokenLifetime: time.Hour, IssueRefreshTokens: true})
		oc := oauthConfig(p, oauth2.AuthStyleInHeader)
		verifier := oauth2.GenerateVerifier()
		tok, err := oc.Exchange(ctx, login(t, oc, verifier, ""), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, body := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken); field(body, "login") != "fakeuser" {
			t.Errorf("generic user: %v", body)
		}
		status, h, body := apiGet(t, p.Endpoints().ReposURL, "Bearer "+tok.AccessToken)
		if l, _ := body.([]any); status != 200 || len(l) != 3 || h.Get("Link") != "" {
			t.Errorf("generic repos: %d %v", status, body)
		}
		status, _, body = apiGet(t, p.Endpoints().UserURL, "Bearer nope")
		if status != 401 || field(body, "error") != "invalid_token" {
			t.Errorf("generic 401: %d %v", status, body)
		}
	})

	t.Run("PKCE required", func(t *testing.T) {
		cfg := fakeprovider.Config{PKCE: fakeprovider.PKCERequired}
		p := start(t, cfg)
		oc := oauthConfig(p, oauth2.AuthStyleInParams)
		if q := authorize(t, oc.AuthCodeURL("s"), ""); q.Get("error") != "invalid_request" {
			t.Errorf("without challenge: %v", q)
		}
	})

	t.Run("PKCE ignored", func(t *testing.T) {
		p := start(t, fakeprovider.Config{PKCE: fakeprovider.PKCEIgnore})
		oc := oauthConfig(p, oauth2.AuthStyleInParams)
		code := login(t, oc, oauth2.GenerateVerifier(), "")
		if _, err := oc.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err != nil {
			t.Errorf("a server without PKCE must ignore the verifier: %v", err)
		}
	})

	t.Run("verifier without challenge", func(t *testing.T) {
		p := start(t, fakeprovider.Config{})
		oc := oauthConfig(p, oauth2.AuthStyleInParams)
		q := authorize(t, oc.AuthCodeURL("s"), "")
		_, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
		retrieveError(t, err, "invalid_grant", 400)
	})

	t.Run("code reuse revokes", func(t *testing.T) {
		p := start(t, fakeprovider.Config{RevokeOnCodeReuse: true})
		oc := oauthConfig(p, oauth2.AuthStyleInParams)
		code := authorize(t, oc.AuthCodeURL("s"), "").Get("code")
		tok, err := oc.Exchange(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		_, err = oc.Exchange(ctx, code)
		retrieveError(t, err, "invalid_grant", 400)
		if p.ValidAccessToken(tok.AccessToken) {
			t.Error("token of a replayed code still valid")
		}
	})

	t.Run("two auth methods", func(t *testing.T) {
		p := start(t, fakeprovider.Config{})
		oc := oauthConfig(p, oauth2.AuthStyleInParams)
		code := authorize(t, oc.AuthCodeURL("s"), "").Get("code")
		resp, body := postForm(t, p.Endpoints().TokenURL, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {callback}, "client_id": {"fake-client-id"}, "client_secret": {"fake-client-secret"}},
			[]string{"fake-client-id", "fake-client-secret"}, nil)
		if resp.StatusCode != 400 || !strings.Contains(string(body), `"error":"invalid_request"`) {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
		if c := p.CallsTo(fakeprovider.EndpointToken); len(c) != 1 || c[0].ClientAuth != "both" {
			t.Errorf("calls %+v", c)
		}
	})

	t.Run("GitLab scopes", func(t *testing.T) {
		p := start(t, fakeprovider.GitLab())
		oc := oauthConfig(p, oauth2.AuthStyleInParams, "read_user")
		tok, err := oc.Exchange(ctx, authorize(t, oc.AuthCodeURL("s"), "").Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		status, _, body := apiGet(t, p.Endpoints().ReposURL, "Bearer "+tok.AccessToken)
		if status != 403 || field(body, "error") != "insufficient_scope" || field(body, "scope") != "api read_api" {
			t.Errorf("projects with read_user: %d %v", status, body)
		}
	})
}

// TestApproveHelpers: Provider.Approve and FollowAuthorize, the
// non-interactive helpers for plugin tests.
func TestApproveHelpers(t *testing.T) {
	p := start(t, fakeprovider.GitLab())
	ctx := ctxTimeout(t, 5*time.Second)
	oc := oauthConfig(p, oauth2.AuthStyleInParams, "read_user")
	verifier := oauth2.GenerateVerifier()
	code, state, err := p.Approve(ctx, oc.AuthCodeURL("abc", oauth2.S256ChallengeOption(verifier)), "mwagner")
	if err != nil || state != "abc" || code == "" {
		t.Fatalf("Approve: %q %q %v", code, state, err)
	}
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, body := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken); field(body, "username") != "mwagner" {
		t.Errorf("approved as mwagner, API says %v", body)
	}
	if _, _, err := p.Approve(ctx, oc.AuthCodeURL("abc"), "nobody"); err == nil {
		t.Error("Approve for an unknown user succeeded")
	}
	loc, err := fakeprovider.FollowAuthorize(ctx, nil, oc.AuthCodeURL("abc")+"&fake_auto=deny")
	if err != nil || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "abc" {
		t.Errorf("deny: %v %v", loc, err)
	}
}

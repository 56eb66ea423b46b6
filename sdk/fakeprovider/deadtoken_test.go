package fakeprovider_test

import (
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// refreshNow refreshes tok's refresh token (the TokenSource sees it
// expired) and returns the new token.
func refreshNow(t *testing.T, p *fakeprovider.Provider, pc preset, tok *oauth2.Token) *oauth2.Token {
	t.Helper()
	old := *tok
	old.Expiry = time.Now().Add(-time.Minute)
	fresh, err := oauthConfig(p, pc.style, pc.scopes...).TokenSource(ctxTimeout(t, 5*time.Second), &old).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return fresh
}

// TestInvalidateAccessOnRefresh: with the switch a refresh kills the
// grant's earlier access tokens (and only that grant's); using one is
// refused like a revoked token and recorded as "replaced". Without it the
// old access token lives on.
func TestInvalidateAccessOnRefresh(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfg        func() fakeprovider.Config
		invalidate bool
	}{
		{"GitLab", fakeprovider.GitLab, true},
		{"GitLab without the switch", func() fakeprovider.Config {
			c := fakeprovider.GitLab()
			c.InvalidateAccessOnRefresh = false
			return c
		}, false},
		{"GitHub", fakeprovider.GitHub, true},
		{"GitHub OAuth app", fakeprovider.GitHubOAuthApp, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg().InvalidateAccessOnRefresh; got != tc.invalidate {
				t.Fatalf("InvalidateAccessOnRefresh = %v, want %v", got, tc.invalidate)
			}
			p := start(t, tc.cfg())
			pc := presetNamed("GitLab")
			if tc.cfg().Flavor == fakeprovider.FlavorGitHub {
				pc = presetNamed("GitHub")
			}
			tok := connect(t, p, pc)
			other := connect(t, p, pc) // another grant of the same user
			if tok.RefreshToken == "" {
				// A provider without refresh tokens has nothing to
				// invalidate; the switch must be off.
				if tc.invalidate {
					t.Fatal("no refresh token")
				}
				return
			}
			fresh := refreshNow(t, p, pc, tok)
			status, _, _ := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken)
			if got := p.ValidAccessToken(tok.AccessToken); got == tc.invalidate || (status == 200) != !tc.invalidate {
				t.Errorf("old access token after refresh: valid %v, API status %d", got, status)
			}
			if !p.ValidAccessToken(fresh.AccessToken) || !p.ValidAccessToken(other.AccessToken) {
				t.Error("the new access token or another grant's token died")
			}
			dead := p.DeadTokenCalls()
			if !tc.invalidate {
				if len(dead) != 0 {
					t.Errorf("dead-token calls %+v, want none", dead)
				}
				return
			}
			if len(dead) != 1 || dead[0].DeadToken != "replaced" || dead[0].Endpoint != fakeprovider.EndpointUser ||
				dead[0].Token != fakeprovider.Fingerprint(tok.AccessToken) || dead[0].Status != 401 {
				t.Errorf("dead-token calls %+v, want the user call with the replaced token", dead)
			}
			if it := p.IssuedTokens(); it[0].AccessValid || it[0].RefreshValid {
				t.Errorf("IssuedTokens still says the first grant's tokens are valid: %+v", it[0])
			}
		})
	}
}

// TestDeadTokenCalls: each way a token dies is recorded when the token is
// presented again — at the API, at the refresh grant and at revocation —
// while tokens the fake never issued are not "dead".
func TestDeadTokenCalls(t *testing.T) {
	clk := newClock()
	cfg := fakeprovider.GitLab()
	cfg.Now = clk.Now
	p := start(t, cfg)
	pc := presetNamed("GitLab")
	e := p.Endpoints()
	creds := url.Values{"client_id": {"fake-client-id"}, "client_secret": {"fake-client-secret"}}
	revoke := func(tok string) {
		f := url.Values{"token": {tok}}
		for k, v := range creds {
			f[k] = v
		}
		if resp, body := postForm(t, e.RevokeURL, f, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("revoke: %d %s", resp.StatusCode, body)
		}
	}

	// Unknown tokens are not dead.
	apiGet(t, e.UserURL, "Bearer never-issued")
	refreshWith := func(rt string) {
		f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		for k, v := range creds {
			f[k] = v
		}
		postForm(t, e.TokenURL, f, nil, nil)
	}
	refreshWith("never-issued")
	revoke("never-issued")
	if d := p.DeadTokenCalls(); len(d) != 0 {
		t.Fatalf("unknown tokens recorded as dead: %+v", d)
	}

	// Expired access token at the API.
	tok := connect(t, p, pc)
	clk.Advance(2*time.Hour + time.Second)
	apiGet(t, e.UserURL, "Bearer "+tok.AccessToken)
	// Rotated refresh token at the token endpoint.
	fresh := refreshNow(t, p, pc, tok)
	refreshWith(tok.RefreshToken)
	// Revoked tokens at the API and at revocation.
	revoke(fresh.AccessToken)
	apiGet(t, e.ReposURL, "Bearer "+fresh.AccessToken)
	revoke(fresh.AccessToken)

	want := []struct {
		ep    fakeprovider.Endpoint
		token string
		why   string
	}{
		{fakeprovider.EndpointUser, tok.AccessToken, "expired"},
		{fakeprovider.EndpointToken, tok.RefreshToken, "replaced"},
		{fakeprovider.EndpointRepos, fresh.AccessToken, "revoked"},
		{fakeprovider.EndpointRevoke, fresh.AccessToken, "revoked"},
	}
	dead := p.DeadTokenCalls()
	if len(dead) != len(want) {
		t.Fatalf("dead-token calls %+v, want %d", dead, len(want))
	}
	for i, w := range want {
		if d := dead[i]; d.Endpoint != w.ep || d.Token != fakeprovider.Fingerprint(w.token) || d.DeadToken != w.why {
			t.Errorf("dead-token call %d: %s %s %q, want %s %q", i, d.Endpoint, d.Token, d.DeadToken, w.ep, w.why)
		}
	}
	for _, c := range p.Calls() {
		if c.DeadToken != "" && c.Status < 400 && c.Endpoint != fakeprovider.EndpointRevoke {
			t.Errorf("a dead token was accepted: %+v", c)
		}
	}
}

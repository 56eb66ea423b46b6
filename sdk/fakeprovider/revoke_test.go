package fakeprovider_test

import (
	"bytes"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// connect returns a fresh token pair for the preset.
func connect(t *testing.T, p *fakeprovider.Provider, pc preset) *oauth2.Token {
	t.Helper()
	oc := oauthConfig(p, pc.style, pc.scopes...)
	verifier := oauth2.GenerateVerifier()
	tok, err := oc.Exchange(ctxTimeout(t, 5*time.Second), login(t, oc, verifier, "", pc.authOpts...), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func presetNamed(name string) preset {
	for _, pc := range presets {
		if pc.name == name {
			return pc
		}
	}
	panic(name)
}

func githubRevoke(t *testing.T, p *fakeprovider.Provider, basic []string, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, p.Endpoints().RevokeURL, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/vnd.github+json")
	if basic != nil {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRevoke revokes with each provider's documented mechanism and checks
// that the API then answers 401 in the provider's error format and that
// the refresh token died too.
func TestRevoke(t *testing.T) {
	creds := []string{"fake-client-id", "fake-client-secret"}
	cases := []struct {
		name   string
		revoke func(t *testing.T, p *fakeprovider.Provider, tok *oauth2.Token)
		check  func(body any) bool
	}{
		{"GitHub", func(t *testing.T, p *fakeprovider.Provider, tok *oauth2.Token) {
			// Not documented (only 204 and 422 are): wrong or missing
			// client credentials get the same 404 as an unknown token.
			if s := githubRevoke(t, p, nil, `{"access_token":"`+tok.AccessToken+`"}`); s != 404 {
				t.Errorf("without Basic: %d, want 404", s)
			}
			if s := githubRevoke(t, p, []string{creds[0], "wrong-secret"}, `{"access_token":"`+tok.AccessToken+`"}`); s != 404 {
				t.Errorf("wrong client secret: %d, want 404", s)
			}
			if !p.ValidAccessToken(tok.AccessToken) {
				t.Fatal("a refused revocation killed the token")
			}
			if s := githubRevoke(t, p, creds, `{}`); s != 422 {
				t.Errorf("without access_token: %d, want 422", s)
			}
			if s := githubRevoke(t, p, creds, `{"access_token":"ghu_unknown"}`); s != 404 {
				t.Errorf("unknown token: %d, want 404", s)
			}
			if s := githubRevoke(t, p, creds, `{"access_token":"`+tok.AccessToken+`"}`); s != 204 {
				t.Fatalf("revoke: %d, want 204", s)
			}
			if s := githubRevoke(t, p, creds, `{"access_token":"`+tok.AccessToken+`"}`); s != 404 {
				t.Errorf("revoking again: %d, want 404", s)
			}
			if d := p.DeadTokenCalls(); len(d) != 1 || d[0].Endpoint != fakeprovider.EndpointRevoke || d[0].DeadToken != "revoked" {
				t.Errorf("dead-token calls %+v, want the second revocation", d)
			}
		}, func(body any) bool { return field(body, "message") == "Bad credentials" }},

		{"GitLab", func(t *testing.T, p *fakeprovider.Provider, tok *oauth2.Token) {
			resp, body := postForm(t, p.Endpoints().RevokeURL, url.Values{"token": {tok.AccessToken}}, nil, nil)
			if resp.StatusCode != 401 {
				t.Errorf("without client credentials: %d %s", resp.StatusCode, body)
			}
			resp, body = postForm(t, p.Endpoints().RevokeURL, url.Values{"token": {tok.AccessToken},
				"client_id": {creds[0]}, "client_secret": {creds[1]}}, nil, nil)
			if resp.StatusCode != 200 || string(body) != "{}" {
				t.Fatalf("revoke: %d %s", resp.StatusCode, body)
			}
		}, func(body any) bool {
			return field(body, "error") == "invalid_token" &&
				field(body, "error_description") == "Token was revoked. You have to re-authorize from the user."
		}},

		{"Google", func(t *testing.T, p *fakeprovider.Provider, tok *oauth2.Token) {
			u := p.Endpoints().RevokeURL + "?token=" + url.QueryEscape(tok.AccessToken)
			resp, body := postForm(t, u, nil, nil, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("revoke: %d %s", resp.StatusCode, body)
			}
			resp, body = postForm(t, u, nil, nil, nil)
			if resp.StatusCode != 400 {
				t.Errorf("second revoke: %d %s, want 400 invalid_token", resp.StatusCode, body)
			}
		}, func(body any) bool {
			return field(body, "error") == "invalid_request" && field(body, "error_description") == "Invalid Credentials"
		}},

		{"Bitbucket", func(t *testing.T, p *fakeprovider.Provider, tok *oauth2.Token) {
			// No documented revocation endpoint: nothing there.
			if p.Endpoints().RevokeURL != "" {
				t.Errorf("Bitbucket fake has a revoke URL %q", p.Endpoints().RevokeURL)
			}
			for _, path := range []string{"/site/oauth2/revoke", "/site/oauth2/access_token/revoke"} {
				resp, _ := postForm(t, p.URL()+path, url.Values{"token": {tok.AccessToken}}, creds, nil)
				if resp.StatusCode != 404 {
					t.Errorf("%s: %d, want 404", path, resp.StatusCode)
				}
			}
			p.RevokeAll() // the user revoking access in Bitbucket's settings
		}, func(body any) bool {
			return field(body, "type") == "error" &&
				field(body, "error", "message") == "Token is invalid, expired, or not supported for this endpoint."
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pc := presetNamed(tc.name)
			p := start(t, pc.cfg())
			tok := connect(t, p, pc)
			other := connect(t, p, pc) // a second authorization of the same user
			tc.revoke(t, p, tok)

			status, _, body := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken)
			if status != 401 || !tc.check(body) {
				t.Errorf("API after revoke: %d %v", status, body)
			}
			if p.ValidAccessToken(tok.AccessToken) || p.ValidRefreshToken(tok.RefreshToken) {
				t.Error("access or refresh token still valid after revoke")
			}
			oc := oauthConfig(p, pc.style, pc.scopes...)
			_, err := oc.TokenSource(ctxTimeout(t, 5*time.Second), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
			retrieveError(t, err, pc.badRefresh, pc.badStatus)

			// GitHub and Google revoke the app's whole grant for the user;
			// GitLab only that authorization.
			wantOther := tc.name == "GitLab"
			if got := p.ValidAccessToken(other.AccessToken); got != wantOther {
				t.Errorf("other authorization's token valid = %v, want %v", got, wantOther)
			}
		})
	}
}

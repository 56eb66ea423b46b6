package fakeprovider_test

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// preset describes what a client of each fake must see.
type preset struct {
	name          string
	cfg           func() fakeprovider.Config
	style         oauth2.AuthStyle // what the provider's documentation asks for
	wantAuth      string           // as recorded in Calls
	scopes        []string
	authOpts      []oauth2.AuthCodeOption
	user          string // login to approve as
	accessPrefix  string
	refreshPrefix string
	expiresIn     time.Duration
	rotates       bool
	badRefresh    string // error code for a dead refresh token
	badStatus     int    // HTTP status of token errors
	wantScope     [2]string
	userField     string // identity field of the user endpoint, and its value
	userValue     string
}

var presets = []preset{
	{
		name: "GitHub", cfg: fakeprovider.GitHub, style: oauth2.AuthStyleInParams, wantAuth: "body",
		scopes: []string{"read:user", "user:email", "repo"}, user: "octocat",
		accessPrefix: "ghu_", refreshPrefix: "ghr_", expiresIn: 8 * time.Hour, rotates: true,
		badRefresh: "bad_refresh_token", badStatus: 200,
		wantScope: [2]string{"scope", ""}, // a GitHub App's token has no scopes
		userField: "login", userValue: "octocat",
	},
	{
		name: "GitLab", cfg: fakeprovider.GitLab, style: oauth2.AuthStyleInParams, wantAuth: "body",
		scopes: []string{"read_user", "api"}, user: "jsmith",
		expiresIn: 2 * time.Hour, rotates: true,
		badRefresh: "invalid_grant", badStatus: 400,
		wantScope: [2]string{"scope", "read_user api"},
		userField: "username", userValue: "jsmith",
	},
	{
		name: "Bitbucket", cfg: fakeprovider.Bitbucket, style: oauth2.AuthStyleInHeader, wantAuth: "basic",
		scopes: nil, user: "atlas",
		expiresIn: 2 * time.Hour, rotates: true,
		badRefresh: "invalid_grant", badStatus: 400,
		wantScope: [2]string{"scope", "account email repository"}, // "scope" since 4 May 2026
		userField: "username", userValue: "atlas",
	},
	{
		name: "Google", cfg: fakeprovider.Google, style: oauth2.AuthStyleInParams, wantAuth: "body",
		scopes: []string{"openid", "email", "profile"}, authOpts: []oauth2.AuthCodeOption{oauth2.AccessTypeOffline},
		user:         "jane.doe@example.com",
		accessPrefix: "ya29.", refreshPrefix: "1//", expiresIn: 3599 * time.Second, rotates: false,
		badRefresh: "invalid_grant", badStatus: 400,
		wantScope: [2]string{"scope", "openid email profile"},
		userField: "email", userValue: "jane.doe@example.com",
	},
}

// TestPresetFlow drives every preset with golang.org/x/oauth2: authorize
// with PKCE, exchange, call the user endpoint, refresh with an expired
// token, and check rotation.
func TestPresetFlow(t *testing.T) {
	for _, pc := range presets {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, pc.cfg())
			oc := oauthConfig(p, pc.style, pc.scopes...)
			ctx := ctxTimeout(t, 10*time.Second)

			verifier := oauth2.GenerateVerifier()
			code := login(t, oc, verifier, pc.user, pc.authOpts...)
			tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if !strings.HasPrefix(tok.AccessToken, pc.accessPrefix) || !strings.HasPrefix(tok.RefreshToken, pc.refreshPrefix) || tok.RefreshToken == "" {
				t.Errorf("tokens %q / %q, want prefixes %q / %q", tok.AccessToken, tok.RefreshToken, pc.accessPrefix, pc.refreshPrefix)
			}
			if d := time.Until(tok.Expiry); d < pc.expiresIn-time.Minute || d > pc.expiresIn+time.Minute {
				t.Errorf("expires in %v, want about %v", d, pc.expiresIn)
			}
			if got := tok.Extra(pc.wantScope[0]); got != pc.wantScope[1] {
				t.Errorf("%s = %v, want %q", pc.wantScope[0], got, pc.wantScope[1])
			}
			if !p.ValidAccessToken(tok.AccessToken) {
				t.Error("ValidAccessToken(issued token) = false")
			}

			calls := p.CallsTo(fakeprovider.EndpointToken)
			if len(calls) != 1 || calls[0].ClientAuth != pc.wantAuth || !calls[0].PKCEVerifier ||
				calls[0].GrantType != "authorization_code" || calls[0].Status != 200 || calls[0].User == "" {
				t.Errorf("token calls = %+v, want one %s-authenticated code grant with a verifier", calls, pc.wantAuth)
			}
			if a := p.CallsTo(fakeprovider.EndpointAuthorize); len(a) != 1 || !a[0].CodeChallenge {
				t.Errorf("authorize calls = %+v, want one with a code_challenge", a)
			}

			status, _, body := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken)
			if status != 200 || field(body, pc.userField) != pc.userValue {
				t.Fatalf("user endpoint: %d %v, want %s=%s", status, body, pc.userField, pc.userValue)
			}

			// Refresh: hand the TokenSource an expired token.
			old := *tok
			old.Expiry = time.Now().Add(-time.Minute)
			fresh, err := oc.TokenSource(ctx, &old).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if fresh.AccessToken == tok.AccessToken || !p.ValidAccessToken(fresh.AccessToken) {
				t.Errorf("refresh did not issue a new valid access token")
			}
			rc := p.CallsTo(fakeprovider.EndpointToken)
			if last := rc[len(rc)-1]; last.GrantType != "refresh_token" || last.ClientAuth != pc.wantAuth || last.Token != fakeprovider.Fingerprint(tok.RefreshToken) {
				t.Errorf("refresh call = %+v", last)
			}

			_, err = oc.TokenSource(ctx, &old).Token() // the old refresh token again
			if pc.rotates {
				if fresh.RefreshToken == tok.RefreshToken {
					t.Fatal("refresh token was not rotated")
				}
				if p.ValidRefreshToken(tok.RefreshToken) {
					t.Error("old refresh token still valid after rotation")
				}
				retrieveError(t, err, pc.badRefresh, pc.badStatus)
			} else {
				if fresh.RefreshToken != tok.RefreshToken {
					t.Errorf("non-rotating provider changed the refresh token")
				}
				if err != nil {
					t.Errorf("reusing a non-rotated refresh token: %v", err)
				}
			}
		})
	}
}

// TestExchangeRejections covers the checks every preset makes on a code
// exchange: PKCE, redirect_uri, single use and code lifetime.
func TestExchangeRejections(t *testing.T) {
	for _, pc := range presets {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			cfg := pc.cfg()
			cfg.Now = clk.Now
			cfg.CodeLifetime = time.Minute
			p := start(t, cfg)
			oc := oauthConfig(p, pc.style, pc.scopes...)
			ctx := ctxTimeout(t, 10*time.Second)
			e := p.Config().Errors

			cases := []struct {
				name   string
				before func()
				opts   func(verifier string) []oauth2.AuthCodeOption
				want   string
			}{
				{"wrong verifier", nil, func(string) []oauth2.AuthCodeOption {
					return []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}
				}, e.BadVerifier.Code},
				{"missing verifier", nil, func(string) []oauth2.AuthCodeOption { return nil }, e.BadVerifier.Code},
				{"redirect_uri mismatch", nil, func(v string) []oauth2.AuthCodeOption {
					return []oauth2.AuthCodeOption{oauth2.VerifierOption(v), oauth2.SetAuthURLParam("redirect_uri", callback+"/other")}
				}, e.RedirectMismatch.Code},
				{"expired code", func() { clk.Advance(2 * time.Minute) }, func(v string) []oauth2.AuthCodeOption {
					return []oauth2.AuthCodeOption{oauth2.VerifierOption(v)}
				}, e.BadCode.Code},
			}
			for _, tc := range cases {
				verifier := oauth2.GenerateVerifier()
				code := login(t, oc, verifier, "", pc.authOpts...)
				if tc.before != nil {
					tc.before()
				}
				_, err := oc.Exchange(ctx, code, tc.opts(verifier)...)
				if err == nil {
					t.Errorf("%s: exchange succeeded", tc.name)
					continue
				}
				retrieveError(t, err, tc.want, pc.badStatus)
			}

			// Single use: the second exchange of a good code fails.
			verifier := oauth2.GenerateVerifier()
			code := login(t, oc, verifier, "", pc.authOpts...)
			if _, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err != nil {
				t.Fatalf("first exchange: %v", err)
			}
			_, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			retrieveError(t, err, e.BadCode.Code, pc.badStatus)
		})
	}
}

// TestClientAuthStyles: Bitbucket wants Basic and refuses body credentials
// with 401; GitHub wants the body and refuses Basic; GitLab takes both.
// Calls records which style each request used.
func TestClientAuthStyles(t *testing.T) {
	cases := []struct {
		name       string
		cfg        func() fakeprovider.Config
		style      oauth2.AuthStyle
		recorded   string
		wantCode   string // "" = accepted
		wantStatus int
	}{
		{"Bitbucket basic", fakeprovider.Bitbucket, oauth2.AuthStyleInHeader, "basic", "", 200},
		{"Bitbucket body", fakeprovider.Bitbucket, oauth2.AuthStyleInParams, "body", "invalid_client", 401},
		{"GitHub body", fakeprovider.GitHub, oauth2.AuthStyleInParams, "body", "", 200},
		{"GitHub basic", fakeprovider.GitHub, oauth2.AuthStyleInHeader, "basic", "incorrect_client_credentials", 200},
		{"GitLab basic", fakeprovider.GitLab, oauth2.AuthStyleInHeader, "basic", "", 200},
		{"GitLab body", fakeprovider.GitLab, oauth2.AuthStyleInParams, "body", "", 200},
		{"Google basic", fakeprovider.Google, oauth2.AuthStyleInHeader, "basic", "", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, tc.cfg())
			oc := oauthConfig(p, tc.style)
			verifier := oauth2.GenerateVerifier()
			code := login(t, oc, verifier, "")
			_, err := oc.Exchange(ctxTimeout(t, 5*time.Second), code, oauth2.VerifierOption(verifier))
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
			} else {
				retrieveError(t, err, tc.wantCode, tc.wantStatus)
			}
			calls := p.CallsTo(fakeprovider.EndpointToken)
			if len(calls) != 1 || calls[0].ClientAuth != tc.recorded || calls[0].Status != tc.wantStatus {
				t.Errorf("calls = %+v, want one %s call answered %d", calls, tc.recorded, tc.wantStatus)
			}
		})
	}

	t.Run("wrong secret", func(t *testing.T) {
		p := start(t, fakeprovider.GitLab())
		oc := oauthConfig(p, oauth2.AuthStyleInHeader)
		oc.ClientSecret = "nope"
		verifier := oauth2.GenerateVerifier()
		_, err := oc.Exchange(ctxTimeout(t, 5*time.Second), login(t, oc, verifier, ""), oauth2.VerifierOption(verifier))
		retrieveError(t, err, "invalid_client", 401)
	})
}

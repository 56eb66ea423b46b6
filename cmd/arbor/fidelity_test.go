package main

// Provider fidelity through the whole stack (issue 16): the real `arbor
// serve` with the built-in plugins against the faithful fakes, driven as a
// user's browser and the app's API calls would: connect each Git provider,
// list every repository with paging, refresh each token several times,
// and disconnect; the fakes refuse every token a real provider would no
// longer accept and record any call made with one.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

func TestProviderFidelityFullStack(t *testing.T) {
	e := newTestEnv(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s as %q", r.URL.Path, r.Header.Get("X-Arbor-User-Id"))
	}))
	defer upstream.Close()
	addr := freeAddr(t)
	base := "http://" + addr
	opts := fakes.Options{Edit: func(name string, c *fakeprovider.Config) {
		// Access tokens that expire within the broker's refresh margin
		// (5 minutes): every token request refreshes, so that a few
		// requests rotate a token several times without waiting hours.
		if c.AccessTokenLifetime > 0 {
			c.AccessTokenLifetime = 2 * time.Minute
		}
	}}
	env, set := e.withFakes(t, base, upstream.URL, opts,
		// Many API calls from one address in a short time; the limits
		// have tests of their own (hostile_ratelimit_test.go).
		"ARBOR_LIMITS_ENABLED=false",
	)
	startServeAt(t, addr, "/readyz", env)

	user := newAgent(t, 60*time.Second)
	if _, err := user.signIn(base); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"github", "gitlab", "bitbucket"} {
		t.Run(p, func(t *testing.T) {
			f := set.Fakes[p]
			login := f.Config().Users[0].Login
			// Tokens issued before (GitHub's sign-in) belong to other
			// grants.
			before := len(f.IssuedTokens())
			connectProvider(t, user, base, p)

			// Every repository the provider lists for the user, each once,
			// in pages of 40.
			got := listRepos(t, user, base, p, 40)
			want := f.VisibleRepos(login)
			if len(want) < 100 {
				t.Fatalf("the fake lists %d repositories for %s: too few to exercise paging", len(want), login)
			}
			var names []string
			for _, r := range want {
				names = append(names, r.FullName)
			}
			slices.Sort(got)
			slices.Sort(names)
			if !slices.Equal(got, names) {
				t.Fatalf("listed %d repositories, the provider has %d (first listed %v, first expected %v)", len(got), len(names), head(got, 3), head(names, 3))
			}

			// The provider's rate limit on the listing: Arbor answers 429
			// provider_rate_limited with the provider's wait, and the
			// listing works again after it.
			f.RateLimitNext(fakeprovider.EndpointRepos, 1, fakeprovider.RateLimitSecondary)
			rl, err := expect(user.get(base+"/api/providers/"+p+"/repos?per_page=100", nil))(http.StatusTooManyRequests, "rate-limited listing")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(rl.body, `"error":"provider_rate_limited"`) || rl.header.Get("Retry-After") == "" {
				t.Fatalf("rate-limited listing: Retry-After %q, body %s", rl.header.Get("Retry-After"), rl.body)
			}
			if _, err := expect(user.get(base+"/api/providers/"+p+"/repos?per_page=100", nil))(http.StatusOK, "listing after the limit"); err != nil {
				t.Fatal(err)
			}

			// Several refreshes: each answer is a new token that works at
			// the provider; rotated refresh tokens are dead; where the
			// provider kills the old access token at refresh, the token
			// handed out before had told its holder to stop using it by
			// then (expires_at).
			var prev providerTok
			for i := range 3 {
				asked := time.Now()
				tok := providerToken(t, user, base, p)
				if tok.AccessToken == prev.AccessToken {
					t.Fatalf("refresh %d returned the previous token again", i+1)
				}
				if !f.ValidAccessToken(tok.AccessToken) {
					t.Fatalf("refresh %d: Arbor handed out a token the provider does not accept", i+1)
				}
				if prev.AccessToken != "" && f.Config().InvalidateAccessOnRefresh {
					if f.ValidAccessToken(prev.AccessToken) {
						t.Fatalf("refresh %d: the provider still accepts the token it replaced; the fake is kinder than %s", i+1, p)
					}
					if prev.useUntil.After(asked.Add(time.Second)) {
						t.Fatalf("refresh %d: the replaced token was handed out with expires_at %v, after the refresh at %v", i+1, prev.useUntil, asked)
					}
				}
				prev = tok
			}

			// A rate-limited refresh: the still valid token keeps being
			// handed out and the connection stays active.
			f.FailNext(fakeprovider.EndpointToken, 1, http.StatusTooManyRequests)
			if tok := providerToken(t, user, base, p); tok.AccessToken != prev.AccessToken || !f.ValidAccessToken(tok.AccessToken) {
				t.Fatal("during the provider's rate limit Arbor did not hand out the still valid token")
			}
			if r, err := expect(user.get(base+"/api/providers", nil))(http.StatusOK, "connections"); err != nil || !strings.Contains(r.body, `"provider":"`+p+`","display_name":`) || strings.Contains(r.body, "needs_reconnect") {
				t.Fatalf("connections after a rate-limited refresh: %v %s", err, r.body)
			}

			// No call reached the provider with a token it no longer
			// accepts (a replaced, revoked or expired one).
			if dead := f.DeadTokenCalls(); len(dead) > 0 {
				t.Fatalf("%d calls with a dead token, the first %s %s (%s)", len(dead), dead[0].Method, dead[0].Path, dead[0].DeadToken)
			}
			issued := f.IssuedTokens()[before:]
			if n := countGrant(issued, "refresh_token"); n < 3 {
				t.Fatalf("%d refreshes at the provider, want at least 3", n)
			}
			for i, it := range issued[:len(issued)-1] {
				if it.RefreshToken != "" && it.RefreshValid && f.Config().RotateRefreshTokens {
					t.Errorf("token pair %d: its refresh token still works after rotation", i)
				}
			}

			// Disconnect revokes at the provider where it can.
			r, err := expect(user.do(http.MethodDelete, base+"/api/providers/"+p, nil, http.Header{"Sec-Fetch-Site": {"same-origin"}}))(http.StatusOK, "disconnect")
			if err != nil {
				t.Fatal(err)
			}
			var res struct{ Outcome string }
			if err := json.Unmarshal([]byte(r.body), &res); err != nil {
				t.Fatal(err)
			}
			if f.Config().Revoke == fakeprovider.RevokeNone {
				if res.Outcome != "revoke_unsupported" {
					t.Fatalf("disconnect outcome %q, want revoke_unsupported", res.Outcome)
				}
			} else {
				if res.Outcome != "revoked" {
					t.Fatalf("disconnect outcome %q, want revoked", res.Outcome)
				}
				for i, it := range f.IssuedTokens()[before:] {
					if it.AccessValid || it.RefreshValid {
						t.Errorf("token pair %d still valid at the provider after disconnect", i)
					}
				}
			}
			if dead := f.DeadTokenCalls(); len(dead) > 0 {
				t.Fatalf("disconnect: %d calls with a dead token, the first %s %s (%s)", len(dead), dead[0].Method, dead[0].Path, dead[0].DeadToken)
			}
		})
	}
}

// connectProvider connects provider for the signed-in user through the
// Integrations page, approving on the fake.
func connectProvider(t *testing.T, user *agent, base, provider string) {
	t.Helper()
	r, err := expect(user.get(base+"/integrations/"+provider+"/connect", nil))(http.StatusFound, "connect")
	if err != nil {
		t.Fatal(err)
	}
	r, err = expect(user.get(r.header.Get("Location")+"&fake_auto=approve", nil))(http.StatusFound, "fake authorize")
	if err != nil {
		t.Fatal(err)
	}
	if r, err = expect(user.get(r.header.Get("Location"), nil))(http.StatusFound, "callback"); err != nil {
		t.Fatal(err)
	}
	if loc := r.header.Get("Location"); !strings.Contains(loc, "notice=connected") {
		t.Fatalf("the callback sent the browser to %q, not back to the Integrations page as connected", loc)
	}
}

// listRepos pages through /api/providers/{p}/repos and returns the full
// names.
func listRepos(t *testing.T, user *agent, base, provider string, perPage int) []string {
	t.Helper()
	var out []string
	cursor := ""
	for page := 1; ; page++ {
		if page > 200 {
			t.Fatal("more than 200 pages")
		}
		u := base + "/api/providers/" + provider + "/repos?per_page=" + fmt.Sprint(perPage)
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		r, err := expect(user.get(u, nil))(http.StatusOK, fmt.Sprintf("repos page %d", page))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Repos []struct {
				FullName string `json:"full_name"`
			} `json:"repos"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal([]byte(r.body), &body); err != nil {
			t.Fatal(err)
		}
		if len(body.Repos) > perPage {
			t.Fatalf("page %d has %d repositories, %d were asked for", page, len(body.Repos), perPage)
		}
		for _, r := range body.Repos {
			out = append(out, r.FullName)
		}
		if body.NextCursor == "" {
			return out
		}
		if body.NextCursor == cursor {
			t.Fatalf("page %d repeats its cursor", page)
		}
		cursor = body.NextCursor
	}
}

type providerTok struct {
	AccessToken string `json:"access_token"`
	ExpiresAt   string `json:"expires_at"`
	useUntil    time.Time
}

// providerToken fetches the user's provider token through the API.
func providerToken(t *testing.T, user *agent, base, provider string) providerTok {
	t.Helper()
	r, err := expect(user.get(base+"/api/providers/"+provider+"/token", nil))(http.StatusOK, "provider token")
	if err != nil {
		t.Fatal(err)
	}
	var tok providerTok
	if err := json.Unmarshal([]byte(r.body), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token answer without a token: %v", err)
	}
	if tok.useUntil, err = time.Parse(time.RFC3339, tok.ExpiresAt); err != nil {
		t.Fatalf("expires_at %q: %v", tok.ExpiresAt, err)
	}
	return tok
}

func countGrant(its []fakeprovider.IssuedToken, grant string) int {
	n := 0
	for _, it := range its {
		if it.GrantType == grant {
			n++
		}
	}
	return n
}

func head(s []string, n int) []string { return s[:min(n, len(s))] }

package api_test

// Provider rate limits and permanent refusals as Arbor's callers see them,
// through the full stack (real plugins, the fakes' injected answers: a
// 429 from a fake carries Retry-After: 1).

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/service/connections"
)

// wantRetryAfter checks the status, code and Retry-After of res.
func wantRetryAfter(t *testing.T, what string, res *apptest.Response, status int, code, retryAfter string) {
	t.Helper()
	wantError(t, what, res, status, code)
	if got := res.Header.Get("Retry-After"); got != retryAfter {
		t.Fatalf("%s: Retry-After %q, want %q", what, got, retryAfter)
	}
}

func TestReposRateLimitedAndRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.MustSignIn("google")
	for _, p := range []string{"github", "gitlab"} {
		t.Run(p, func(t *testing.T) {
			apptest.ConnectProvider(t, b, p)
			path := "/api/providers/" + p + "/repos?per_page=5"
			// The user's own token's quota: 429, with the provider's wait.
			e.fakes.Fakes[p].FailNext(fakeprovider.EndpointRepos, 1, http.StatusTooManyRequests)
			wantRetryAfter(t, "rate limited listing", b.Get(path), http.StatusTooManyRequests, connections.CodeProviderRateLimited, "1")
			// A permanent refusal (Bitbucket's removed listing answers
			// 410): not "try again", and not the provider's words.
			e.fakes.Fakes[p].FailNext(fakeprovider.EndpointRepos, 1, http.StatusGone)
			res := b.Get(path)
			wantRetryAfter(t, "410 listing", res, http.StatusBadGateway, connections.CodeProviderRefused, "")
			if !strings.Contains(res.Body, "retrying will not help") || strings.Contains(res.Body, "injected") || strings.Contains(res.Body, "Gone") {
				t.Fatalf("410 listing says:\n%s", res.Body)
			}
			// A server error is still worth retrying.
			e.fakes.Fakes[p].FailNext(fakeprovider.EndpointRepos, 1, http.StatusBadGateway)
			wantRetryAfter(t, "502 listing", b.Get(path), http.StatusBadGateway, connections.CodeProviderUnavailable, "")
			if res := b.Get(path); res.StatusCode != http.StatusOK {
				t.Fatalf("listing afterwards: %d %s", res.StatusCode, res.Body)
			}
			if apptest.IntegrationCards(t, b)[p] != "active" {
				t.Fatalf("%s is no longer active", p)
			}
		})
	}
}

// A due refresh the provider rate limits: every route that hands out the
// token (session, CLI bearer, service) answers 503 provider_rate_limited
// with Retry-After, the connection stays active, and the token is served
// once the wait is over.
func TestRefreshRateLimited(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-argocd"
	e := newEnv(t, envOptions{serviceTokens: []authn.ServiceToken{{Name: "argocd-sync", Token: secret}}})
	b := e.browser()
	b.MustSignIn("github")
	apptest.ConnectProvider(t, b, "gitlab")
	uid := e.MustUserID(b)
	svc := e.browser()
	svc.Header.Set("Authorization", "Bearer "+secret)
	svc.Header.Set("Accept", "application/json")

	e.clock.Advance(3 * time.Hour) // GitLab tokens live 2 hours
	cli := e.browser()
	tk := apptest.CLILogin(t, b, cli)
	e.fakes.Fakes["gitlab"].FailNext(fakeprovider.EndpointToken, 1, http.StatusTooManyRequests)
	wantRetryAfter(t, "token during a rate limited refresh", b.Get("/api/providers/gitlab/token"),
		http.StatusServiceUnavailable, connections.CodeProviderRateLimited, "1")
	// Within the wait, the other routes answer the same without asking
	// the provider again.
	wantRetryAfter(t, "service token within the wait", svc.Get("/api/service/users/"+uid+"/providers/gitlab/token"),
		http.StatusServiceUnavailable, connections.CodeProviderRateLimited, "1")
	wantRetryAfter(t, "CLI token within the wait", cli.BearerGet("/api/providers/gitlab/token", tk.AccessToken),
		http.StatusServiceUnavailable, connections.CodeProviderRateLimited, "1")
	wantRetryAfter(t, "repos within the wait", b.Get("/api/providers/gitlab/repos"),
		http.StatusServiceUnavailable, connections.CodeProviderRateLimited, "1")
	refreshes := 0
	for _, c := range e.fakes.Fakes["gitlab"].CallsTo(fakeprovider.EndpointToken) {
		if c.GrantType != "authorization_code" {
			refreshes++
		}
	}
	if refreshes != 1 {
		t.Fatalf("%d refresh calls, want 1", refreshes)
	}
	if c, err := e.store.GetConnection(t.Context(), uid, "gitlab"); err != nil || c.Status != data.ConnectionActive {
		t.Fatalf("connection after the rate limit: %q %v", c.Status, err)
	}
	if apptest.IntegrationCards(t, b)["gitlab"] != "active" {
		t.Fatal("the card is no longer active")
	}
	e.clock.Advance(2 * time.Second)
	var tok tokenJSON
	if res := getJSON(t, b, "/api/providers/gitlab/token", &tok); res.StatusCode != 200 || !e.fakes.Fakes["gitlab"].ValidAccessToken(tok.AccessToken) {
		t.Fatalf("after the wait: %d %s", res.StatusCode, res.Body)
	}
}

// A sign-in or connect the provider rate limits (at the code exchange or
// the user lookup) answers 503 provider_rate_limited with Retry-After, as
// a page or as JSON, and signs nobody in and connects nothing.
func TestSignInRateLimited(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, c := range []struct {
		name string
		ep   fakeprovider.Endpoint
		json bool
	}{
		{"user lookup, page", fakeprovider.EndpointUser, false},
		{"user lookup, json", fakeprovider.EndpointUser, true},
		{"code exchange, page", fakeprovider.EndpointToken, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := e.browser()
			cb := b.Approve(b.Start("github", ""), "")
			if c.json {
				b.Header.Set("Accept", "application/json")
			}
			e.fakes.Fakes["github"].FailNext(c.ep, 1, http.StatusTooManyRequests)
			res := b.Get(cb)
			wantRetryAfter(t, "callback", res, http.StatusServiceUnavailable, "provider_rate_limited", "1")
			if setsSession(e, res) {
				t.Fatal("a rate limited sign-in set a session cookie")
			}
			b.Header.Del("Accept")
			assertNoSession(t, e, b)
		})
	}
	users, err := e.store.ListUsers(t.Context())
	if err != nil || len(users) != 0 {
		t.Fatalf("users after rate limited sign-ins: %d %v", len(users), err)
	}

	// Connect: the same answer, and no connection.
	b := e.browser()
	b.MustSignIn("google")
	res := b.Get("/integrations/gitlab/connect")
	cb := b.Approve(res.Location(), "")
	e.fakes.Fakes["gitlab"].FailNext(fakeprovider.EndpointUser, 1, http.StatusTooManyRequests)
	wantRetryAfter(t, "connect callback", b.Get(cb), http.StatusServiceUnavailable, "provider_rate_limited", "1")
	if apptest.IntegrationCards(t, b)["gitlab"] != "not_connected" {
		t.Fatal("a rate limited connect stored a connection")
	}
}

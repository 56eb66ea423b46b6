package connections

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

// A refresh the provider rate limits (the fake's 429 carries Retry-After:
// 1) answers 503 provider_rate_limited with that Retry-After, is not
// retried within the refresh (1 s is longer than the backoff allows), does
// not mark the connection broken, and is not asked again before the wait
// is over; the current token is still served while valid.
func TestRateLimitedRefresh(t *testing.T) {
	e := newEnv(t, nil, Options{Retries: 3})
	ctx := context.Background()
	e.connect("gitlab")
	e.clock.Advance(3 * time.Hour) // expired
	e.fakes.Fakes["gitlab"].FailNext(fakeprovider.EndpointToken, 1, http.StatusTooManyRequests)
	_, err := e.b.ValidProviderToken(ctx, "u1", "gitlab")
	var he *httperr.Error
	if !errors.As(answer(err), &he) || he.Status != http.StatusServiceUnavailable || he.Code != CodeProviderRateLimited || he.RetryAfter != time.Second {
		t.Fatalf("rate limited refresh: %#v", err)
	}
	if n := len(e.refreshCalls("gitlab")); n != 1 {
		t.Fatalf("%d refresh attempts, want 1 (a rate limit longer than the backoff is not retried)", n)
	}
	if c, _ := e.store.GetConnection(ctx, "u1", "gitlab"); c.Status != data.ConnectionActive {
		t.Fatalf("a rate limit marked the connection %q", c.Status)
	}
	// Within the provider's wait: answered without asking the provider.
	e.clock.Advance(500 * time.Millisecond)
	if _, err := e.b.ValidProviderToken(ctx, "u1", "gitlab"); codeOf(err) != CodeProviderRateLimited || httperr.From(answer(err)).RetryAfter != time.Second {
		t.Fatalf("within the wait: %v", err)
	}
	if n := len(e.refreshCalls("gitlab")); n != 1 {
		t.Fatalf("the provider was asked again within its wait: %d refresh calls", n)
	}
	// After it: refreshed.
	e.clock.Advance(time.Second)
	tok, err := e.b.ValidProviderToken(ctx, "u1", "gitlab")
	if err != nil || !e.fakes.Fakes["gitlab"].ValidAccessToken(tok.AccessToken) {
		t.Fatalf("after the wait: %v", err)
	}
	// Early refresh (token still valid) rate limited: the current token.
	cur := e.sealed("gitlab")
	e.clock.Advance(cur.Expiry().Sub(e.clock.Now()) - 2*time.Minute)
	e.fakes.Fakes["gitlab"].FailNext(fakeprovider.EndpointToken, 1, http.StatusTooManyRequests)
	if tok, err := e.b.ValidProviderToken(ctx, "u1", "gitlab"); err != nil || tok.AccessToken != cur.AccessToken {
		t.Fatalf("early refresh rate limited: %v", err)
	}
}

// A rate limit whose wait fits the backoff is waited out and retried.
func TestRateLimitedRefreshWithinBackoffIsRetried(t *testing.T) {
	e := newEnv(t, nil, Options{Retries: 2, RetryBackoff: time.Second})
	e.connect("gitlab")
	e.clock.Advance(3 * time.Hour)
	e.fakes.Fakes["gitlab"].FailNext(fakeprovider.EndpointToken, 1, http.StatusTooManyRequests)
	if _, err := e.b.ValidProviderToken(context.Background(), "u1", "gitlab"); err != nil {
		t.Fatalf("a 1 s rate limit within a 1 s backoff: %v", err)
	}
	if n := len(e.refreshCalls("gitlab")); n != 2 {
		t.Fatalf("%d refresh attempts, want 2", n)
	}
}

// Repos maps the provider's answers: a rate limit is the user's own quota
// (429 with Retry-After), a permanent refusal says retrying will not help
// and does not repeat the provider's text, a server error stays "try
// again".
func TestReposErrors(t *testing.T) {
	e := newEnv(t, nil, Options{})
	ctx := context.Background()
	e.connect("gitlab")
	for _, c := range []struct {
		status     int
		httpStatus int
		code       string
		retryAfter time.Duration
		says       string
	}{
		{http.StatusTooManyRequests, http.StatusTooManyRequests, CodeProviderRateLimited, time.Second, "try again in 1 second"},
		{http.StatusGone, http.StatusBadGateway, CodeProviderRefused, 0, "retrying will not help"},
		{http.StatusForbidden, http.StatusBadGateway, CodeProviderRefused, 0, "retrying will not help"},
		{http.StatusBadGateway, http.StatusBadGateway, CodeProviderUnavailable, 0, "try again in a moment"},
	} {
		e.fakes.Fakes["gitlab"].FailNext(fakeprovider.EndpointRepos, 1, c.status)
		_, err := e.b.Repos(ctx, "u1", "gitlab", "", 10)
		var he *httperr.Error
		if !errors.As(answer(err), &he) || he.Status != c.httpStatus || he.Code != c.code || he.RetryAfter != c.retryAfter || !strings.Contains(he.Message, c.says) {
			t.Errorf("provider %d: %#v", c.status, err)
			continue
		}
		if strings.Contains(strings.ToLower(he.Message), "injected") || strings.Contains(he.Message, http.StatusText(c.status)) {
			t.Errorf("provider %d: the provider's text reached the message %q", c.status, he.Message)
		}
	}
	if _, err := e.b.Repos(ctx, "u1", "gitlab", "", 10); err != nil {
		t.Fatalf("after the failures: %v", err)
	}
	if c, _ := e.store.GetConnection(ctx, "u1", "gitlab"); c.Status != data.ConnectionActive {
		t.Fatalf("connection %q", c.Status)
	}
}

package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway/api"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/gateway/pages"
	"github.com/vintner/arbor/service/connections"
	"github.com/vintner/arbor/service/workers"
)

// TestAnswer: every error of the broker maps to today's status, stable
// code, message and Retry-After; the cause is kept for the log only.
func TestAnswer(t *testing.T) {
	cause := errors.New("cause")
	ce := func(e connections.Error) error {
		e.Provider = "gitlab"
		if e.Err == nil {
			e.Err = cause
		}
		return fmt.Errorf("wrapped: %w", &e)
	}
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter time.Duration
		message    string
	}{
		{"not connected", ce(connections.Error{Kind: connections.ErrNotConnected}), 404, "provider_not_connected", 0,
			"No gitlab connection: connect it on the Integrations page"},
		{"reconnect required", ce(connections.Error{Kind: connections.ErrReconnectRequired, Reason: "the grant was revoked"}), 409, "provider_reconnect_required", 0,
			"The gitlab connection must be reconnected on the Integrations page: the grant was revoked"},
		{"reconnect required, no reason", ce(connections.Error{Kind: connections.ErrReconnectRequired}), 409, "provider_reconnect_required", 0,
			"The gitlab connection must be reconnected on the Integrations page"},
		{"token refused", ce(connections.Error{Kind: connections.ErrTokenRefused, Op: connections.OpRepos}), 409, "provider_reconnect_required", 0,
			"The provider refused the token; reconnect gitlab on the Integrations page"},
		{"refresh rate limited", ce(connections.Error{Kind: connections.ErrRateLimited, Op: connections.OpRefresh, RetryAfter: time.Second}), 503, "provider_rate_limited", time.Second,
			"The provider is rate limiting requests; try again in 1 second"},
		{"refresh rate limited, rounded up", ce(connections.Error{Kind: connections.ErrRateLimited, Op: connections.OpRefresh, RetryAfter: 1500 * time.Millisecond}), 503, "provider_rate_limited", 2 * time.Second,
			"The provider is rate limiting requests; try again in 2 seconds"},
		{"repos rate limited", ce(connections.Error{Kind: connections.ErrRateLimited, Op: connections.OpRepos, RetryAfter: 60 * time.Second}), 429, "provider_rate_limited", time.Minute,
			"The provider is rate limiting requests; try again in 60 seconds"},
		{"provider refused", ce(connections.Error{Kind: connections.ErrProviderRefused, Op: connections.OpRepos, Status: 410}), 502, "provider_refused", 0,
			"The provider refused to list the repositories (HTTP 410); retrying will not help. Arbor's operator can find the details in the log under this request id"},
		{"provider refused, no status", ce(connections.Error{Kind: connections.ErrProviderRefused, Op: connections.OpRepos}), 502, "provider_refused", 0,
			"The provider refused to list the repositories; retrying will not help. Arbor's operator can find the details in the log under this request id"},
		{"invalid request", ce(connections.Error{Kind: connections.ErrInvalidRequest, Op: connections.OpRepos}), 400, "bad_request", 0,
			"The provider refused the request (a stale page cursor?)"},
		{"refresh unavailable", ce(connections.Error{Kind: connections.ErrProviderUnavailable, Op: connections.OpRefresh}), 503, "provider_unavailable", 0,
			"The provider did not refresh the token; try again in a moment"},
		{"repos unavailable", ce(connections.Error{Kind: connections.ErrProviderUnavailable, Op: connections.OpRepos}), 502, "provider_unavailable", 0,
			"The provider did not list the repositories; try again in a moment"},
		{"unknown provider, refresh", ce(connections.Error{Kind: connections.ErrUnknownProvider, Op: connections.OpRefresh}), 503, "unknown_provider", 0,
			"The gitlab plugin is not loaded or not configured; the token cannot be refreshed"},
		{"unknown provider, repos", ce(connections.Error{Kind: connections.ErrUnknownProvider, Op: connections.OpRepos}), 503, "unknown_provider", 0,
			"The gitlab plugin is not loaded or not configured"},
		{"store unavailable", ce(connections.Error{Kind: connections.ErrStoreUnavailable, Err: data.ErrUnavailable}), 503, "store_unavailable", 0,
			"Arbor could not read or write the connection; try again in a moment"},
		{"refresh timeout", ce(connections.Error{Kind: connections.ErrRefreshTimeout, Op: connections.OpRefresh, Err: context.DeadlineExceeded}), 504, "gateway_timeout", 0,
			"The token refresh took longer than the request could wait; it goes on and the next request will get its result"},
		{"lock timeout", ce(connections.Error{Kind: connections.ErrLockTimeout, Op: connections.OpRefresh}), 504, "gateway_timeout", 0,
			"Another replica's refresh of this token took longer than the refresh may wait; try again in a moment"},
		{"not the broker's (a sealed token that cannot be opened)", cause, 500, "internal_error", 0,
			"Arbor failed to handle the request; quote the request id when reporting it"},
		{"an unknown kind", ce(connections.Error{Kind: errors.New("new kind")}), 500, "internal_error", 0,
			"Arbor failed to handle the request; quote the request id when reporting it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := httperr.From(api.Answer(tc.err))
			if e.Status != tc.status || e.Code != tc.code || e.RetryAfter != tc.retryAfter || e.Message != tc.message {
				t.Errorf("Answer = %d %s Retry-After %v %q\nwant %d %s Retry-After %v %q", e.Status, e.Code, e.RetryAfter, e.Message,
					tc.status, tc.code, tc.retryAfter, tc.message)
			}
			if !errors.Is(e, tc.err) && !errors.Is(e.Err, cause) {
				t.Errorf("the cause is lost: %v", e.Err)
			}
		})
	}
	if err := api.Answer(nil); err != nil {
		t.Errorf("Answer(nil) = %v", err)
	}
}

// Each constructor's kind is what errors.Is finds, through wrapping.
func TestErrorKinds(t *testing.T) {
	err := fmt.Errorf("outer: %w", &connections.Error{Kind: connections.ErrRateLimited, Provider: "github", Err: data.ErrUnavailable})
	if !errors.Is(err, connections.ErrRateLimited) || errors.Is(err, connections.ErrNotConnected) || !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("errors.Is through %v", err)
	}
	if got, want := err.Error(), "outer: connections: github: the provider is rate limiting requests: "+data.ErrUnavailable.Error(); got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	err = &connections.Error{Kind: connections.ErrReconnectRequired, Provider: "gitlab", Op: connections.OpRefresh, Reason: "revoked"}
	if got, want := err.Error(), "connections: gitlab: refresh: the connection must be reconnected: revoked"; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
}

// TestAnswerWorkers (was workerpages' TestProblem): the worker service's
// errors map to their answers in one place, and a browser gets the error
// page every Arbor error gets: the layout's (pages.HTTPErrorPage) as the
// app configures httperr, and, from httperr without a page, its plain
// page byte for byte as before.
func TestAnswerWorkers(t *testing.T) {
	page, err := pages.HTTPErrorPage(pages.Names{})
	if err != nil {
		t.Fatal(err)
	}
	newApp := func(page httperr.Page) *fiber.App {
		app := fiber.New(fiber.Config{DisableStartupMessage: true, ErrorHandler: httperr.Handler(httperr.HandlerConfig{Page: page})})
		app.Get("/missing", func(c *fiber.Ctx) error { return api.Answer(fmt.Errorf("get: %w", workers.ErrNotFound)) })
		app.Get("/bad", func(c *fiber.Ctx) error { return api.Answer(workers.ErrBadName) })
		return app
	}
	withPage, plain := newApp(page), newApp(nil)
	for _, tc := range []struct {
		app          *fiber.App
		path, accept string
		status       int
		body         string
	}{
		{withPage, "/missing", "text/html", 404, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>404 Not Found · Arbor</title><link rel="stylesheet" href="/auth/assets/arbor.css"></head>
<body><header class="bar"><a class="brand" href="/">Trellis</a></header>
<main class="card arbor-error" data-error="worker_not_found">
<h1>404 Not Found</h1>
<p>You have no worker with that id</p>
</main>
<footer>Protected by Arbor</footer></body></html>`},
		{plain, "/missing", "text/html", 404, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>404 Not Found</title><style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#f2f2f2;padding:.1rem .3rem}</style></head><body><main class="arbor-error" data-error="worker_not_found"><h1>404 Not Found</h1><p>You have no worker with that id</p></main></body></html>`},
		{withPage, "/missing", "", 404, `{"error":"worker_not_found","message":"You have no worker with that id"}`},
		{plain, "/missing", "", 404, `{"error":"worker_not_found","message":"You have no worker with that id"}`},
		{withPage, "/bad", "", 400, fmt.Sprintf(`{"error":"invalid_name","message":"A worker name has 1 to %d characters and no control characters"}`, workers.MaxName)},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		res, err := tc.app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || string(body) != tc.body {
			t.Errorf("GET %s (Accept %q): %d\n%s\nwant %d\n%s", tc.path, tc.accept, res.StatusCode, body, tc.status, tc.body)
		}
	}
}

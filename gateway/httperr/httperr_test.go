package httperr_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway/httperr"
)

func TestFrom(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	own := httperr.Wrap(cause, http.StatusBadGateway, "provider_unavailable", "GitHub is not answering")
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		cause  bool
	}{
		{"own error", own, 502, "provider_unavailable", true},
		{"own error wrapped", fmt.Errorf("callback: %w", own), 502, "provider_unavailable", true},
		{"fiber 404", fiber.ErrNotFound, 404, httperr.CodeNotFound, true},
		{"fiber 413", fiber.ErrRequestEntityTooLarge, 413, httperr.CodeBodyTooLarge, true},
		{"fiber 431", fiber.ErrRequestHeaderFieldsTooLarge, 431, httperr.CodeHeaderTooLarge, true},
		{"fiber 408", fiber.ErrRequestTimeout, 408, httperr.CodeRequestTimeout, true},
		{"fiber 400", fiber.NewError(400, "error when parsing request headers: \"secret\""), 400, httperr.CodeBadRequest, true},
		{"fiber odd 4xx", fiber.NewError(418, "teapot"), 418, httperr.CodeBadRequest, true},
		{"store unavailable", fmt.Errorf("etcd: reading session: %w", data.ErrUnavailable), 503, httperr.CodeStoreUnavailable, true},
		{"store not found is not a 503", fmt.Errorf("reading: %w", data.ErrNotFound), 500, httperr.CodeInternal, true},
		{"plain error", cause, 500, httperr.CodeInternal, true},
		{"nil", nil, 500, httperr.CodeInternal, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := httperr.From(tc.err)
			if e.Status != tc.status || e.Code != tc.code {
				t.Fatalf("From = %d %s, want %d %s", e.Status, e.Code, tc.status, tc.code)
			}
			if e.Message == "" || strings.Contains(e.Message, "secret") || strings.Contains(e.Message, "10.0.0.7") {
				t.Fatalf("message %q is empty or leaks the cause", e.Message)
			}
			if tc.cause && e.Unwrap() == nil {
				t.Fatalf("cause lost")
			}
		})
	}
	if !errors.Is(own, cause) {
		t.Errorf("errors.Is does not see through Error")
	}
	if !strings.Contains(own.Error(), "connection refused") {
		t.Errorf("Error() should carry the cause for logs: %q", own.Error())
	}
}

func TestHandlerRendering(t *testing.T) {
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler:          httperr.Handler(httperr.HandlerConfig{RequestID: func(*fiber.Ctx) string { return "rid-1" }}),
	})
	app.Get("/fail", func(c *fiber.Ctx) error {
		return httperr.Wrap(errors.New("token=abc"), 401, httperr.CodeUnauthorized, "Sign in <first>")
	})
	app.Get("/git", func(c *fiber.Ctx) error {
		e := httperr.Wrap(errors.New("token=abc"), 403, "provider_reconnect_required", "Reconnect GitHub")
		e.Fix, e.Plain = "Open https://arbor.example/integrations", true
		return e
	})
	app.Get("/later", func(c *fiber.Ctx) error {
		return httperr.New(503, "provider_rate_limited", "later").WithRetryAfter(1500 * time.Millisecond)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	defer func() { _ = app.Shutdown() }()
	url := "http://" + ln.Addr().String()

	tests := []struct {
		path, accept string
		status       int
		ctype        string
		want         string
		retryAfter   string
	}{
		{"/fail", "", 401, "application/json", `{"error":"unauthorized","message":"Sign in \u003cfirst\u003e","request_id":"rid-1"}`, ""},
		{"/fail", "application/json, text/html;q=0.5", 401, "application/json", `"error":"unauthorized"`, ""},
		{"/fail", "text/html,*/*;q=0.8", 401, "text/html", "Sign in &lt;first&gt;", ""},
		{"/missing", "", 404, "application/json", `"error":"not_found"`, ""},
		// Retry-After in whole seconds, rounded up, on JSON and pages.
		{"/later", "", 503, "application/json", `"error":"provider_rate_limited"`, "2"},
		{"/later", "text/html", 503, "text/html", `data-error="provider_rate_limited"`, "2"},
		// Plain: text for git, whatever Accept says.
		{"/git", "text/html", 403, "text/plain", "Reconnect GitHub\nOpen https://arbor.example/integrations\n(arbor: provider_reconnect_required, request id rid-1)\n", ""},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(http.MethodGet, url+tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s (Accept %q) = %d %s %s", tc.path, tc.accept, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
			t.Errorf("%s (Accept %q): Retry-After %q, want %q", tc.path, tc.accept, got, tc.retryAfter)
		}
		if strings.Contains(string(body), "token=abc") {
			t.Errorf("cause leaked: %s", body)
		}
		if tc.ctype == "application/json" && !json.Valid(body) {
			t.Errorf("invalid JSON: %s", body)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		time.Nanosecond: 1, time.Second: 1, time.Second + 1: 2, 59500 * time.Millisecond: 60, time.Hour: 3600, -time.Second: 1,
	} {
		if got := httperr.RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

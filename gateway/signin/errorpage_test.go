package signin

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/pages"
)

// TestErrorPageLooksAsBefore: the sign-in error page, now the shared
// layout's (pages.Error), is byte for byte what webauth's own template
// rendered, for a browser and as JSON, with Retry-After.
func TestErrorPageLooksAsBefore(t *testing.T) {
	tmpl, err := pages.Templates(pages.Names{}, assets, "assets/pages.html")
	if err != nil {
		t.Fatal(err)
	}
	w := &SignIn{pages: tmpl}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/store", func(c *fiber.Ctx) error {
		return w.showError(c, storeFailed("Sign-out failed", "Arbor could not end your session. Please try again in a moment.", errors.New("injected")))
	})
	app.Get("/limited", func(c *fiber.Ctx) error {
		fe := fail(http.StatusServiceUnavailable, "provider_rate_limited", "Sign-in failed", "The provider <is> busy.", nil)
		fe.retryAfter = 1500 * time.Millisecond
		return w.showError(c, fe)
	})
	for _, tc := range []struct {
		path, accept string
		status       int
		retryAfter   string
		body         string
	}{
		{"/store", "text/html", 503, "", `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sign-out failed · Arbor</title><link rel="stylesheet" href="/auth/assets/arbor.css"></head>
<body><header class="bar"><a class="brand" href="/">Trellis</a></header>
<main class="card arbor-error" data-error="store_unavailable">
<h1>Sign-out failed</h1>
<p>Arbor could not end your session. Please try again in a moment.</p>
<p><a class="button" href="/auth/sign-in">Back to sign-in</a></p>
</main>
<footer>Protected by Arbor</footer></body></html>`},
		{"/store", "application/json", 503, "", `{"error":"store_unavailable","message":"Arbor could not end your session. Please try again in a moment."}`},
		{"/limited", "text/html", 503, "2", `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sign-in failed · Arbor</title><link rel="stylesheet" href="/auth/assets/arbor.css"></head>
<body><header class="bar"><a class="brand" href="/">Trellis</a></header>
<main class="card arbor-error" data-error="provider_rate_limited">
<h1>Sign-in failed</h1>
<p>The provider &lt;is&gt; busy.</p>
<p><a class="button" href="/auth/sign-in">Back to sign-in</a></p>
</main>
<footer>Protected by Arbor</footer></body></html>`},
		{"/limited", "", 503, "2", `{"error":"provider_rate_limited","message":"The provider \u003cis\u003e busy."}`},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		res, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || res.Header.Get("Retry-After") != tc.retryAfter || string(body) != tc.body {
			t.Errorf("GET %s (Accept %q): %d Retry-After %q\n%s\nwant %d Retry-After %q\n%s", tc.path, tc.accept,
				res.StatusCode, res.Header.Get("Retry-After"), body, tc.status, tc.retryAfter, tc.body)
		}
		if tc.accept == "text/html" && res.Header.Get("Content-Security-Policy") != pages.CSP {
			t.Errorf("GET %s: the page headers are missing", tc.path)
		}
	}
}

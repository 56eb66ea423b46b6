package pages

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/httperr"
)

// TestError: one error page for every page set; a browser gets the
// layout's page with the status, Retry-After and page headers, the app's
// name and every value escaped; any other client the error as JSON.
func TestError(t *testing.T) {
	tpl, err := Templates(Names{App: "Acme"}, fstest.MapFS{"p.html": {Data: []byte(`{{define "p"}}{{end}}`)}}, "p.html")
	if err != nil {
		t.Fatal(err)
	}
	e := httperr.New(http.StatusServiceUnavailable, "busy", "JSON <text>").WithRetryAfter(2500 * time.Millisecond)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/", func(c *fiber.Ctx) error {
		return Error(c, tpl, e, ErrorPage{Title: "Busy", Who: "octo<cat>", RequestID: "r1", Code: e.Code,
			Back: &Link{Href: "/back", Text: "Back"}})
	})
	app.Get("/plain", func(c *fiber.Ctx) error {
		return Error(c, tpl, e, ErrorPage{Title: "Busy", Message: "Page <text>", ID: "x"})
	})
	get := func(path, accept string) (*http.Response, string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}
	res, body := get("/", "text/html")
	want := `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Busy · Arbor</title><link rel="stylesheet" href="/auth/assets/arbor.css"></head>
<body><header class="bar"><a class="brand" href="/">Acme</a><a class="who" href="/auth/account">octo&lt;cat&gt;</a></header>
<main class="card arbor-error" data-error="busy">
<h1>Busy</h1>
<p>JSON &lt;text&gt;</p>
<p><a class="button" href="/back">Back</a></p>
</main>
<footer>Protected by Arbor · request <code>r1</code></footer></body></html>`
	if res.StatusCode != 503 || res.Header.Get("Retry-After") != "3" || res.Header.Get("Content-Security-Policy") != CSP || body != want {
		t.Errorf("page: %d Retry-After %q CSP %q\n%s\nwant\n%s", res.StatusCode, res.Header.Get("Retry-After"), res.Header.Get("Content-Security-Policy"), body, want)
	}
	if _, body := get("/plain", "text/html"); !strings.Contains(body, "<main class=\"card\" id=\"x\">\n<h1>Busy</h1>\n<p>Page &lt;text&gt;</p>\n</main>") {
		t.Errorf("a page without code or link:\n%s", body)
	}
	res, body = get("/", "application/json")
	if res.StatusCode != 503 || res.Header.Get("Retry-After") != "3" || body != `{"error":"busy","message":"JSON \u003ctext\u003e","request_id":"r1"}` {
		t.Errorf("JSON: %d Retry-After %q %s", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
}

// TestHTTPErrorPage: httperr's answer to a browser is the layout's error
// page, titled with the status, with the page headers (CSP and the rest),
// Retry-After, the app's name and every value escaped; JSON answers stay
// byte for byte httperr's.
func TestHTTPErrorPage(t *testing.T) {
	page, err := HTTPErrorPage(Names{App: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	newApp := func(p httperr.Page) *fiber.App {
		app := fiber.New(fiber.Config{DisableStartupMessage: true, ErrorHandler: httperr.Handler(httperr.HandlerConfig{
			RequestID: func(*fiber.Ctx) string { return "r<1>" }, Page: p,
		})})
		app.Get("/busy", func(c *fiber.Ctx) error {
			return httperr.New(http.StatusTooManyRequests, "rate_limited", "Slow <down>").WithRetryAfter(2 * time.Second)
		})
		return app
	}
	get := func(app *fiber.App, accept string) (*http.Response, string) {
		req := httptest.NewRequest(http.MethodGet, "/busy", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}
	withPage, plain := newApp(page), newApp(nil)
	res, body := get(withPage, "text/html")
	want := `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>429 Too Many Requests · Arbor</title><link rel="stylesheet" href="/auth/assets/arbor.css"></head>
<body><header class="bar"><a class="brand" href="/">Acme</a></header>
<main class="card arbor-error" data-error="rate_limited">
<h1>429 Too Many Requests</h1>
<p>Slow &lt;down&gt;</p>
</main>
<footer>Protected by Arbor · request <code>r&lt;1&gt;</code></footer></body></html>`
	if res.StatusCode != 429 || body != want {
		t.Errorf("page: %d\n%s\nwant\n%s", res.StatusCode, body, want)
	}
	for h, v := range map[string]string{
		"Content-Type": "text/html; charset=utf-8", "Retry-After": "2", "Cache-Control": "no-store",
		"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
	} {
		if got := res.Header.Get(h); got != v {
			t.Errorf("page header %s: %q, want %q", h, got, v)
		}
	}
	for _, accept := range []string{"", "application/json"} {
		res, body := get(withPage, accept)
		pres, pbody := get(plain, accept)
		if body != pbody || res.StatusCode != pres.StatusCode || res.Header.Get("Retry-After") != "2" ||
			body != `{"error":"rate_limited","message":"Slow \u003cdown\u003e","request_id":"r\u003c1\u003e"}` {
			t.Errorf("JSON (Accept %q): %d %s, without the page %d %s", accept, res.StatusCode, body, pres.StatusCode, pbody)
		}
	}
}

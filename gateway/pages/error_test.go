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

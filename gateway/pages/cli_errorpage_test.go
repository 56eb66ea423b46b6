package pages

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/service/clilogin"
)

// TestErrorPageLooksAsBefore: the approval flow's error pages, now the
// shared layout's (Error), are byte for byte what the "done"
// template rendered, for a browser and as JSON; the busy page keeps its
// Retry-After.
func TestErrorPageLooksAsBefore(t *testing.T) {
	tmpl, err := Templates(Names{}, assets, "assets/cli.html")
	if err != nil {
		t.Fatal(err)
	}
	a := &CLI{tmpl: tmpl}
	id := authn.Identity{Login: "octocat"}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/expired", func(c *fiber.Ctx) error {
		return a.done(c, 410, id, "Login request expired", "This login request is more than 10 minutes old. Run the login command again.")
	})
	app.Get("/busy", func(c *fiber.Ctx) error {
		return a.busyPage(c, id, &clilogin.BusyError{Global: true, RetryAfter: 30 * time.Second})
	})
	app.Get("/done", func(c *fiber.Ctx) error {
		return a.done(c, 200, id, "Login <approved>", "You can close this page.")
	})
	const head = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>%s · Arbor</title><link rel="stylesheet" href="/auth/assets/arbor.css"></head>
<body><header class="bar"><a class="brand" href="/">Trellis</a><a class="who" href="/auth/account">octocat</a></header>
`
	page := func(title, heading, msg string) string {
		return strings.Replace(head, "%s", title, 1) + `<main class="card" id="cli-done">
<h1>` + heading + `</h1>
<p>` + msg + `</p>
</main>
<footer>Protected by Arbor</footer></body></html>`
	}
	for _, tc := range []struct {
		path, accept string
		status       int
		retryAfter   string
		body         string
	}{
		{"/expired", "text/html", 410, "", page("Login request expired", "Login request expired", "This login request is more than 10 minutes old. Run the login command again.")},
		{"/expired", "", 410, "", `{"error":"login_request_gone","message":"Login request expired: This login request is more than 10 minutes old. Run the login command again."}`},
		{"/busy", "text/html", 503, "30", page("Too many login requests", "Too many login requests", "Arbor has too many login requests waiting for approval right now. Wait a minute, then run the login command again.")},
		{"/busy", "application/json", 503, "30", `{"error":"busy","message":"Too many device login requests are pending; try again in a moment"}`},
		{"/done", "text/html", 200, "", page("Login &lt;approved&gt;", "Login &lt;approved&gt;", "You can close this page.")},
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
		if tc.accept == "text/html" && res.Header.Get("Content-Security-Policy") != CSP {
			t.Errorf("GET %s: the page headers are missing", tc.path)
		}
	}
}

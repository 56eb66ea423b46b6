package pages_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/vintner/arbor/gateway/pages"
)

// TestAppErrorPagesAreTheLayouts: in a whole Arbor, an error the gateway
// answers (a route's error, a refused request) is the layout's error page
// for a browser, with the pages' headers, the handler's own headers kept
// and the request id in the footer; JSON for anyone else, as before.
func TestAppErrorPagesAreTheLayouts(t *testing.T) {
	e := newEnv(t)
	anon := e.Browser() // sends a browser's Accept
	res := anon.Get("/api/providers")
	rid := res.Header.Get("X-Request-Id")
	if res.StatusCode != http.StatusUnauthorized || rid == "" ||
		!strings.HasPrefix(res.Body, "<!doctype html>\n<html lang=\"en\"><head>") ||
		!strings.Contains(res.Body, "<title>401 Unauthorized · Arbor</title>") ||
		!strings.Contains(res.Body, `<a class="brand" href="/">Trellis</a></header>`) ||
		!strings.Contains(res.Body, `<main class="card arbor-error" data-error="unauthenticated">`) ||
		!strings.Contains(res.Body, "<footer>Protected by Arbor · request <code>"+rid+"</code></footer>") {
		t.Fatalf("anonymous HTML answer: %d (request id %q)\n%s", res.StatusCode, rid, res.Body)
	}
	for h, v := range map[string]string{
		"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", "Content-Security-Policy": pages.CSP,
		"X-Frame-Options": "DENY", "WWW-Authenticate": `Cookie realm="arbor"`,
	} {
		if got := res.Header.Get(h); got != v {
			t.Errorf("header %s: %q, want %q", h, got, v)
		}
	}
	b := e.Browser()
	b.MustSignIn("github")
	if res := b.Get("/api/workers/nope"); res.StatusCode != http.StatusNotFound ||
		!strings.Contains(res.Body, `<main class="card arbor-error" data-error="worker_not_found">`+"\n<h1>404 Not Found</h1>\n<p>You have no worker with that id</p>") {
		t.Fatalf("a route's error: %d\n%s", res.StatusCode, res.Body)
	}
	// Not a browser: JSON, with the request id.
	b.Header.Set("Accept", "application/json")
	if res := b.Get("/api/workers/nope"); res.StatusCode != http.StatusNotFound || res.Header.Get("Content-Security-Policy") != "" ||
		res.Body != `{"error":"worker_not_found","message":"You have no worker with that id","request_id":"`+res.Header.Get("X-Request-Id")+`"}` {
		t.Fatalf("JSON: %d %v\n%s", res.StatusCode, res.Header, res.Body)
	}
}

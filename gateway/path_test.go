package gateway_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/gateway/httperr"
)

// urlUpstream is an upstream that reads the request target as a URL, the
// way Node's new URL(req.url, base) does, and reports what it read.
func urlUpstream(t *testing.T) (string, <-chan *url.URL) {
	t.Helper()
	seen := make(chan *url.URL, 16)
	base, _ := url.Parse("http://app.internal")
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		ref, err := url.Parse(r.RequestURI)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		seen <- base.ResolveReference(ref)
	})
	return up.URL, seen
}

// TestOnePathReading: whatever the spelling of repeated slashes, in
// origin-form or absolute-form, Arbor's own routes see the merged path and
// the upstream receives it; a URL-parsing upstream never reads a host out
// of the path.
func TestOnePathReading(t *testing.T) {
	upURL, seen := urlUpstream(t)
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: upURL}}, mountRoutes(t, gateway.ClassAPI, func(r fiber.Router) {
		r.Get("/api/own", func(c *fiber.Ctx) error { return c.SendString("own " + c.Path()) })
	}))
	for _, tc := range []struct{ target, want string }{
		{"//static/admin", "/static/admin"},
		{"///static/admin", "/static/admin"},
		{"//static//admin", "/static/admin"},
		{"//evil.example/admin?next=http://x", "/evil.example/admin"},
		{"http://arbor.example//static/admin", "/static/admin"},
		{"http://arbor.example///evil.example/admin", "/evil.example/admin"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			resp, body := rawRequest(t, g.addr, "GET "+tc.target+" HTTP/1.1\r\nHost: arbor.example\r\nConnection: close\r\n\r\n")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			u := <-seen
			if u.Host != "app.internal" || u.Path != tc.want {
				t.Fatalf("the upstream read host %q path %q; want app.internal %q", u.Host, u.Path, tc.want)
			}
		})
	}
	for _, target := range []string{"//api/own", "///api//own", "http://arbor.example//api/own"} {
		resp, body := rawRequest(t, g.addr, "GET "+target+" HTTP/1.1\r\nHost: arbor.example\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 || string(body) != "own /api/own" {
			t.Fatalf("GET %s: %d %q, want Arbor's own route", target, resp.StatusCode, body)
		}
	}
	resp, body := rawRequest(t, g.addr, "GET x://static//admin HTTP/1.1\r\nHost: arbor.example\r\nConnection: close\r\n\r\n")
	wantError(t, resp, body, http.StatusBadRequest, httperr.CodeBadPath)
	resp, body = rawRequest(t, g.addr, "CONNECT arbor.example:443 HTTP/1.1\r\nHost: arbor.example:443\r\nConnection: close\r\n\r\n")
	wantError(t, resp, body, http.StatusMethodNotAllowed, httperr.CodeMethodNotAllowed)
	select {
	case u := <-seen:
		t.Fatalf("the upstream got a request it should not: %v", u)
	default:
	}
}

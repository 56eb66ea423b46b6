package signin_test

import (
	"net/http"
	"testing"

	"github.com/vintner/arbor/gateway/authz/access"
)

// TestEdgeStripsRewriteAndWorkerHeaders: headers through which a framework
// may read another URL than the one Arbor classified, and worker
// credentials on routes that are not worker routes, never reach the
// upstream, for an anonymous visitor as for a signed-in one.
func TestEdgeStripsRewriteAndWorkerHeaders(t *testing.T) {
	e := newEnv(t, envOptions{rules: []access.Rule{{Prefix: "/static/", Class: access.Public}}})
	anon := e.browser()
	user := e.browser()
	user.MustSignIn("github")
	owner := mustUserID(t, e, user)
	w, tok, err := e.workers.Register(t.Context(), owner, "runner-1")
	if err != nil {
		t.Fatal(err)
	}
	forged := map[string]string{
		"X-Original-URL":        "/admin",
		"X-Rewrite-URL":         "/admin",
		"X-Original-URI":        "/admin",
		"X-Envoy-Original-Path": "/admin",
		"X-Worker-ID":           w.ID,
		"X-Worker-Token":        tok,
	}
	for _, b := range []*browser{anon, user} {
		for k, v := range forged {
			b.Header.Set(k, v)
		}
		b.Header.Set("X_Original_URL", "/admin")
		for _, path := range []string{"/static/app.js", "/dashboard"} {
			if b == anon && path == "/dashboard" {
				continue // refused before the proxy: nothing to check upstream
			}
			res := b.Get(path)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, res.StatusCode, res.Body)
			}
			h, got, _ := e.upstream.Last()
			if got != path {
				t.Fatalf("upstream saw %q, want %q", got, path)
			}
			for k := range forged {
				if v := h.Values(k); len(v) > 0 {
					t.Errorf("GET %s: %s reached the upstream: %q", path, k, v)
				}
			}
			if v := h.Values("X_Original_URL"); len(v) > 0 {
				t.Errorf("GET %s: X_Original_URL reached the upstream", path)
			}
			if h.Get("X-Arbor-Worker-Id") != "" {
				t.Errorf("GET %s: a worker identity was asserted on a non-worker route", path)
			}
		}
	}
}

package webauth_test

// Tendril workers through the full stack: worker routes (/api/tendril/ in
// the harness) accept only worker credentials, and the upstream receives
// the worker's identity, never its token.

import (
	"net/http"
	"strings"
	"testing"
)

func TestWorkerRoutes(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.MustSignIn("github")
	owner := mustUserID(t, e, b)
	w, tok, err := e.workers.Register(t.Context(), owner, "runner-1")
	if err != nil {
		t.Fatal(err)
	}
	wk := e.browser()
	wk.header.Set("X-Worker-ID", w.ID)
	wk.header.Set("X-Worker-Token", tok)
	wk.header.Set("X-Arbor-Worker-Id", "spoofed")
	if res := wk.Get("/api/tendril/jobs/next"); res.StatusCode != http.StatusOK {
		t.Fatalf("worker call: %d %s", res.StatusCode, res.Body)
	}
	h, path, _ := e.upstream.Last()
	if path != "/api/tendril/jobs/next" || h.Get("X-Arbor-Worker-Id") != w.ID || h.Get("X-Arbor-User-Id") != owner ||
		h.Get("X-Worker-Token") != "" || h.Get("X-Worker-Id") != "" || len(h.Values("X-Arbor-Worker-Id")) != 1 {
		t.Fatalf("upstream headers: %v", h)
	}
	claims := verifyAssertion(t, b, h.Get("X-Arbor-Assertion"))
	if claims["worker_id"] != w.ID || claims["sub"] != owner {
		t.Fatalf("assertion claims: %v", claims)
	}
	if strings.Contains(strings.Join(h.Values("X-Worker-Token"), ""), tok) {
		t.Fatal("the upstream saw the token")
	}
	// A session is not a worker credential on worker routes.
	if res := b.Get("/api/tendril/jobs/next"); res.StatusCode != 401 || errorCode(res.Body) != "worker_unauthorized" {
		t.Fatalf("session on a worker route: %d %s", res.StatusCode, res.Body)
	}
	// Rotation refuses the old token at once.
	_, tok2, err := e.workers.Rotate(t.Context(), owner, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res := wk.Get("/api/tendril/jobs/next"); res.StatusCode != 401 || errorCode(res.Body) != "worker_unauthorized" {
		t.Fatalf("old token after rotation: %d", res.StatusCode)
	}
	wk.header.Set("X-Worker-Token", tok2)
	if res := wk.Get("/api/tendril/jobs/next"); res.StatusCode != 200 {
		t.Fatalf("new token: %d", res.StatusCode)
	}
	// Worker headers mean nothing outside worker routes.
	if res := wk.Get("/dashboard"); res.StatusCode != http.StatusFound {
		t.Fatalf("worker headers on a session route: %d", res.StatusCode)
	}
	if err := e.workers.Revoke(t.Context(), owner, w.ID); err != nil {
		t.Fatal(err)
	}
	if res := wk.Get("/api/tendril/jobs/next"); res.StatusCode != 401 {
		t.Fatalf("revoked worker: %d", res.StatusCode)
	}
}

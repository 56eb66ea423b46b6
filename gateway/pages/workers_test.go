package pages_test

// The Workers page through the full stack (the workers API and the worker
// routes: gateway/api's workers_test.go).

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/sdk/client"
)

// callAsWorker calls a worker route with a worker's credentials.
func callAsWorker(e *apptest.Harness, id, token string) *apptest.Response {
	wk := e.Browser()
	wk.Header.Set("X-Worker-ID", id)
	wk.Header.Set("X-Worker-Token", token)
	return wk.Get("/api/tendril/jobs/next")
}

var (
	tokenRE    = regexp.MustCompile(`<code id="worker-token">(arbw_[A-Za-z0-9_-]+)</code>`)
	workerIDRE = regexp.MustCompile(`id="worker-token-view" data-id="([0-9a-f-]{36})"`)
)

func TestWorkersPage(t *testing.T) {
	e := newEnv(t)
	b := e.Browser()

	// Without a session the page sends people to sign in and back.
	if res := b.Get("/workers"); res.StatusCode != http.StatusFound || !strings.Contains(res.Header.Get("Location"), "return_to=%2Fworkers") {
		t.Fatalf("anonymous: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	b.MustSignIn("github")
	page := b.Get("/workers")
	if page.StatusCode != 200 || !strings.Contains(page.Body, `id="no-workers"`) || !strings.Contains(page.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
		strings.Contains(page.Header.Get("Content-Security-Policy"), "script-src") {
		t.Fatalf("empty page: %d %v", page.StatusCode, page.Header)
	}
	csrf := apptest.CSRFRE.FindStringSubmatch(page.Body)[1]

	// Registering without the CSRF token, or from another site, changes nothing.
	if res := b.Do(http.MethodPost, "/workers", url.Values{"name": {"runner"}}); res.StatusCode != 403 || !strings.Contains(res.Body, "csrf_invalid") {
		t.Fatalf("no csrf: %d", res.StatusCode)
	}
	b.Header.Set("Sec-Fetch-Site", "cross-site")
	if res := b.Do(http.MethodPost, "/workers", url.Values{"name": {"runner"}, "csrf": {csrf}}); res.StatusCode != 403 {
		t.Fatalf("cross-site: %d", res.StatusCode)
	}
	b.Header.Del("Sec-Fetch-Site")
	if res := b.Do(http.MethodPost, "/workers", url.Values{"name": {" "}, "csrf": {csrf}}); res.StatusCode != 400 || !strings.Contains(res.Body, `id="notice"`) {
		t.Fatalf("blank name: %d %s", res.StatusCode, res.Body)
	}
	if list, _ := e.App.Workers().List(t.Context(), e.MustUserID(b)); len(list) != 0 {
		t.Fatalf("refused posts registered %d workers", len(list))
	}

	// The token view: shown once, uncached, with the copy script allowed.
	view := b.Do(http.MethodPost, "/workers", url.Values{"name": {"runner <1>"}, "csrf": {csrf}})
	m, mid := tokenRE.FindStringSubmatch(view.Body), workerIDRE.FindStringSubmatch(view.Body)
	if view.StatusCode != 200 || m == nil || mid == nil || !client.ValidWorkerToken(m[1]) ||
		view.Header.Get("Cache-Control") != "no-store" || !strings.Contains(view.Header.Get("Content-Security-Policy"), "script-src 'self'") ||
		!strings.Contains(view.Body, "will not be shown again") || !strings.Contains(view.Body, "runner &lt;1&gt;") ||
		!strings.Contains(view.Body, "TENDRIL_WORKER_TOKEN="+m[1]) {
		t.Fatalf("token view: %d %v\n%s", view.StatusCode, view.Header, view.Body)
	}
	tok, id := m[1], mid[1]
	if res := b.Get("/workers/assets/copy.js"); res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Type"), "javascript") {
		t.Fatalf("copy.js: %d", res.StatusCode)
	}
	if res := callAsWorker(e, id, tok); res.StatusCode != 200 {
		t.Fatalf("registered worker: %d", res.StatusCode)
	}
	// The list shows the worker and never the token again.
	page = b.Get("/workers")
	if !strings.Contains(page.Body, `id="worker-`+id+`"`) || strings.Contains(page.Body, tok[5:25]) {
		t.Fatalf("list after registering:\n%s", page.Body)
	}

	// Rename and rotate from the page.
	if res := b.Do(http.MethodPost, "/workers/"+id+"/rename", url.Values{"name": {"runner-2"}, "csrf": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("rename: %d %s", res.StatusCode, res.Body)
	}
	if page = b.Get("/workers?renamed=1"); !strings.Contains(page.Body, `value="runner-2"`) {
		t.Fatal("rename not shown")
	}
	rot := b.Do(http.MethodPost, "/workers/"+id+"/rotate", url.Values{"csrf": {csrf}})
	m2 := tokenRE.FindStringSubmatch(rot.Body)
	if rot.StatusCode != 200 || m2 == nil || m2[1] == tok || !strings.Contains(rot.Body, "previous token has stopped working") {
		t.Fatalf("rotate: %d %s", rot.StatusCode, rot.Body)
	}
	if res := callAsWorker(e, id, tok); res.StatusCode != 401 {
		t.Fatalf("old token after rotating on the page: %d", res.StatusCode)
	}

	// Another user's forms reach nothing.
	other := e.Browser()
	other.MustSignIn("gitlab")
	otherCSRF := apptest.CSRFRE.FindStringSubmatch(other.Get("/workers").Body)[1]
	for _, path := range []string{"/workers/" + id + "/rotate", "/workers/" + id + "/revoke", "/workers/" + id + "/rename"} {
		if res := other.Do(http.MethodPost, path, url.Values{"csrf": {otherCSRF}, "name": {"x"}}); res.StatusCode != 404 || !strings.Contains(res.Body, "worker_not_found") {
			t.Fatalf("other user %s: %d", path, res.StatusCode)
		}
	}
	if res := callAsWorker(e, id, m2[1]); res.StatusCode != 200 {
		t.Fatalf("worker after another user's attempts: %d", res.StatusCode)
	}

	// Revoke, through the confirmation page.
	confirm := b.Get("/workers/" + id + "/revoke")
	if confirm.StatusCode != 200 || !strings.Contains(confirm.Body, `id="revoke-form"`) {
		t.Fatalf("confirm: %d", confirm.StatusCode)
	}
	if res := b.Do(http.MethodPost, "/workers/"+id+"/revoke", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	if res := callAsWorker(e, id, m2[1]); res.StatusCode != 401 {
		t.Fatalf("revoked on the page: %d", res.StatusCode)
	}
	if page = b.Get("/workers?revoked=1"); strings.Contains(page.Body, id) || !strings.Contains(page.Body, "Revoked") {
		t.Fatal("revoked worker still listed")
	}
}

// A repository credential (registered through the API) is listed on the
// Workers page with its scopes and patterns.
func TestWorkersPageListsRepoCredentials(t *testing.T) {
	e := newEnv(t)
	b := e.Browser()
	b.MustSignIn("github")
	if res := b.PostJSON("/api/workers", map[string]any{"name": "argocd", "scopes": []string{"git:read"}, "repos": []string{"octocat/*"}}); res.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %s", res.StatusCode, res.Body)
	}
	page := b.Get("/workers")
	if !strings.Contains(page.Body, `Repository credential (Git proxy): <code>git:read</code> on <code>octocat/*</code>`) {
		t.Fatalf("the page does not show the credential's grant:\n%s", page.Body)
	}
}

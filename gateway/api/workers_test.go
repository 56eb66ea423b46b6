package api_test

// Tendril workers through the full stack: worker routes (/api/tendril/ in
// the harness) accept only worker credentials, and the upstream receives
// the worker's identity, never its token.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/client"
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
	wk.Header.Set("X-Worker-ID", w.ID)
	wk.Header.Set("X-Worker-Token", tok)
	wk.Header.Set("X-Arbor-Worker-Id", "spoofed")
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
	wk.Header.Set("X-Worker-Token", tok2)
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

// workerJSON is one worker as the API returns it.
type workerJSON struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Scopes      []string `json:"scopes"`
	Repos       []string `json:"repos"`
	CreatedAt   string   `json:"created_at"`
	RotatedAt   string   `json:"rotated_at"`
	LastUsedAt  string   `json:"last_used_at"`
	LastAddress string   `json:"last_address"`
}

type workerReply struct {
	Worker workerJSON `json:"worker"`
	Token  string     `json:"token"`
}

// workerAPI calls the workers API, with a bearer token if one is given
// (else the browser's session cookie), and records every response body.
type workerAPI struct {
	t      *testing.T
	b      *browser
	bearer string
	seen   *[]string
}

func (a workerAPI) do(method, path string, body any, hdr http.Header) *response {
	a.t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	if a.bearer != "" {
		hdr.Set("Authorization", "Bearer "+a.bearer)
	}
	res, err := a.b.SendJSON(method, path, body, hdr)
	if err != nil {
		a.t.Fatal(err)
	}
	if a.seen != nil {
		*a.seen = append(*a.seen, res.Body)
	}
	if cc := res.Header.Get("Cache-Control"); res.StatusCode < 300 && cc != "no-store" {
		a.t.Fatalf("%s %s: Cache-Control %q", method, path, cc)
	}
	return res
}

func (a workerAPI) want(res *response, status int, code string) {
	a.t.Helper()
	if res.StatusCode != status || (code != "" && errorCode(res.Body) != code) {
		a.t.Fatalf("want %d %s, got %d %s", status, code, res.StatusCode, res.Body)
	}
}

func (a workerAPI) reply(res *response, status int) workerReply {
	a.t.Helper()
	a.want(res, status, "")
	var r workerReply
	if err := json.Unmarshal([]byte(res.Body), &r); err != nil || r.Worker.ID == "" {
		a.t.Fatalf("reply: %v %s", err, res.Body)
	}
	return r
}

// callAsWorker calls a worker route with a worker's credentials.
func callAsWorker(e *env, id, token string) *response {
	wk := e.browser()
	wk.Header.Set("X-Worker-ID", id)
	wk.Header.Set("X-Worker-Token", token)
	return wk.Get("/api/tendril/jobs/next")
}

func TestWorkersAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	alice := e.browser()
	alice.MustSignIn("github")
	aliceID := mustUserID(t, e, alice)
	cli := cliLogin(t, alice, e.browser())

	var bodies []string // every response after a registration
	var tokens []string
	web := workerAPI{t: t, b: alice, seen: &bodies}
	bearer := workerAPI{t: t, b: e.browser(), bearer: cli.AccessToken, seen: &bodies}

	// Register through the session and through the CLI bearer token.
	r1 := web.reply(web.do(http.MethodPost, "/api/workers", map[string]string{"name": "build-01"}, nil), http.StatusCreated)
	r2 := bearer.reply(bearer.do(http.MethodPost, "/api/workers", map[string]string{"name": "  build-02 "}, nil), http.StatusCreated)
	bodies = bodies[:0] // the two registration answers are the only places a token may be
	for _, r := range []workerReply{r1, r2} {
		if !client.ValidWorkerToken(r.Token) || r.Worker.CreatedAt == "" || r.Worker.LastUsedAt != "" {
			t.Fatalf("registration: %+v", r)
		}
		tokens = append(tokens, r.Token)
	}
	if r2.Worker.Name != "build-02" {
		t.Fatalf("name not trimmed: %q", r2.Worker.Name)
	}

	// Both are alice's: listed by either credential, never with a hash or token.
	for _, a := range []workerAPI{web, bearer} {
		res := a.do(http.MethodGet, "/api/workers", nil, nil)
		var list struct{ Workers []workerJSON }
		if res.StatusCode != 200 || json.Unmarshal([]byte(res.Body), &list) != nil || len(list.Workers) != 2 ||
			list.Workers[0].ID != r1.Worker.ID || list.Workers[1].ID != r2.Worker.ID || strings.Contains(res.Body, "hash") {
			t.Fatalf("list: %d %s", res.StatusCode, res.Body)
		}
	}

	// The token works through Arbor; the upstream sees the worker, not the token.
	if res := callAsWorker(e, r1.Worker.ID, r1.Token); res.StatusCode != 200 {
		t.Fatalf("worker call: %d %s", res.StatusCode, res.Body)
	}
	if h, _, _ := e.upstream.Last(); h.Get("X-Arbor-Worker-Id") != r1.Worker.ID || h.Get("X-Arbor-User-Id") != aliceID {
		t.Fatalf("upstream: %v", h)
	}
	// Last use is batched, but the list already shows it.
	res := web.do(http.MethodGet, "/api/workers", nil, nil)
	if !strings.Contains(res.Body, `"last_used_at"`) || !strings.Contains(res.Body, `"last_address":"127.0.0.1"`) {
		t.Fatalf("last use not shown: %s", res.Body)
	}

	// Rename, with bad names and bodies refused and nothing changed.
	ren := bearer.reply(bearer.do(http.MethodPatch, "/api/workers/"+r1.Worker.ID, map[string]string{"name": "builder-one"}, nil), 200)
	if ren.Worker.Name != "builder-one" || ren.Token != "" {
		t.Fatalf("rename: %+v", ren)
	}
	for _, bad := range []string{"", "   ", strings.Repeat("x", 65), "tab\there", "bell\a"} {
		web.want(web.do(http.MethodPatch, "/api/workers/"+r1.Worker.ID, map[string]string{"name": bad}, nil), 400, "invalid_name")
		web.want(web.do(http.MethodPost, "/api/workers", map[string]string{"name": bad}, nil), 400, "invalid_name")
	}
	for _, raw := range []string{"", "{", `"name"`, `{"name": 7}`} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+e.addr+"/api/workers", strings.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+cli.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bodies = append(bodies, string(b))
		if resp.StatusCode != 400 || errorCode(string(b)) != "invalid_body" {
			t.Fatalf("body %q: %d %s", raw, resp.StatusCode, b)
		}
	}
	if g := web.reply(web.do(http.MethodGet, "/api/workers/"+r1.Worker.ID, nil, nil), 200); g.Worker.Name != "builder-one" {
		t.Fatalf("after refused renames: %+v", g)
	}

	// Another user reaches none of it: 404, the answer for an unknown id.
	bob := e.browser()
	bob.MustSignIn("gitlab")
	bobAPI := workerAPI{t: t, b: bob, seen: &bodies}
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/api/workers/" + r1.Worker.ID, nil},
		{http.MethodPatch, "/api/workers/" + r1.Worker.ID, map[string]string{"name": "mine"}},
		{http.MethodPost, "/api/workers/" + r1.Worker.ID + "/rotate", nil},
		{http.MethodDelete, "/api/workers/" + r1.Worker.ID, nil},
		{http.MethodGet, "/api/workers/00000000-0000-4000-8000-000000000000", nil},
		{http.MethodGet, "/api/workers/not-a-uuid", nil},
	} {
		bobAPI.want(bobAPI.do(tc.method, tc.path, tc.body, nil), 404, "worker_not_found")
	}
	if res := bobAPI.do(http.MethodGet, "/api/workers", nil, nil); res.StatusCode != 200 || !strings.Contains(res.Body, `"workers":[]`) {
		t.Fatalf("bob's list: %s", res.Body)
	}

	// No credentials, a forged bearer, and a cross-site browser request.
	anon := workerAPI{t: t, b: e.browser(), seen: &bodies}
	anon.want(anon.do(http.MethodGet, "/api/workers", nil, nil), 401, "unauthenticated")
	anon.want(anon.do(http.MethodPost, "/api/workers", map[string]string{"name": "x"}, nil), 401, "unauthenticated")
	forged := workerAPI{t: t, b: e.browser(), bearer: cli.AccessToken + "x", seen: &bodies}
	forged.want(forged.do(http.MethodGet, "/api/workers", nil, nil), 401, "unauthenticated")
	web.want(web.do(http.MethodPost, "/api/workers", map[string]string{"name": "evil"}, http.Header{"Origin": {"https://evil.example"}}), 403, "cross_origin")
	web.want(web.do(http.MethodDelete, "/api/workers/"+r1.Worker.ID, nil, http.Header{"Sec-Fetch-Site": {"cross-site"}}), 403, "cross_origin")

	// Rotate: the old token is refused at once, the new one works.
	rot := bearer.do(http.MethodPost, "/api/workers/"+r1.Worker.ID+"/rotate", nil, nil)
	bodies = bodies[:len(bodies)-1]
	r3 := bearer.reply(rot, 200)
	if !client.ValidWorkerToken(r3.Token) || r3.Token == r1.Token || r3.Worker.RotatedAt == "" {
		t.Fatalf("rotate: %+v", r3)
	}
	tokens = append(tokens, r3.Token)
	if res := callAsWorker(e, r1.Worker.ID, r1.Token); res.StatusCode != 401 || errorCode(res.Body) != "worker_unauthorized" {
		t.Fatalf("old token after rotation: %d %s", res.StatusCode, res.Body)
	}
	if res := callAsWorker(e, r1.Worker.ID, r3.Token); res.StatusCode != 200 {
		t.Fatalf("new token: %d", res.StatusCode)
	}

	// Revoke.
	web.want(web.do(http.MethodDelete, "/api/workers/"+r1.Worker.ID, nil, nil), http.StatusNoContent, "")
	if res := callAsWorker(e, r1.Worker.ID, r3.Token); res.StatusCode != 401 {
		t.Fatalf("revoked: %d", res.StatusCode)
	}
	web.want(web.do(http.MethodGet, "/api/workers/"+r1.Worker.ID, nil, nil), 404, "worker_not_found")
	web.want(web.do(http.MethodDelete, "/api/workers/"+r1.Worker.ID, nil, nil), 404, "worker_not_found")

	// Deleting the user stops their remaining workers.
	if res := callAsWorker(e, r2.Worker.ID, r2.Token); res.StatusCode != 200 {
		t.Fatalf("second worker: %d", res.StatusCode)
	}
	if err := e.store.DeleteUser(t.Context(), aliceID); err != nil {
		t.Fatal(err)
	}
	if res := callAsWorker(e, r2.Worker.ID, r2.Token); res.StatusCode != 401 {
		t.Fatalf("worker of a deleted user: %d", res.StatusCode)
	}

	// The plaintext tokens are nowhere but in their one answer: not in the
	// store file, the logs, any later response or what the upstream got.
	e.workers.Flush(t.Context())
	file, err := os.ReadFile(e.store.Path())
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ := e.upstream.Last()
	upstreamSaw := fmt.Sprint(h)
	logs := e.logs.String()
	if !strings.Contains(logs, "/api/workers") {
		t.Fatalf("the access log did not record the API calls; the search below would prove nothing:\n%.2000s", logs)
	}
	for _, tok := range tokens {
		secret := tok[len(client.WorkerTokenPrefix) : len(client.WorkerTokenPrefix)+20] // a distinctive part is enough
		for what, hay := range map[string]string{"store file": string(file), "logs": logs, "upstream": upstreamSaw, "responses": strings.Join(bodies, "\n")} {
			if strings.Contains(hay, secret) {
				t.Errorf("a worker token appears in the %s", what)
			}
		}
	}
}

// Repository credentials are registered through the same API, with
// scopes and repository patterns, normalized; bad ones say what to write.
func TestRepoCredentialsAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	alice := e.browser()
	alice.MustSignIn("github")
	var bodies []string
	web := workerAPI{t: t, b: alice, seen: &bodies}
	r := web.reply(web.do(http.MethodPost, "/api/workers", map[string]any{
		"name": "argocd", "scopes": []string{"git:write"}, "repos": []string{"OctoCat/*", "group/**"},
	}, nil), http.StatusCreated)
	if !client.ValidWorkerToken(r.Token) || fmt.Sprint(r.Worker.Scopes) != "[git:read git:write]" || fmt.Sprint(r.Worker.Repos) != "[octocat/* group/**]" {
		t.Fatalf("registration: %+v", r)
	}
	if g := web.reply(web.do(http.MethodGet, "/api/workers/"+r.Worker.ID, nil, nil), 200); fmt.Sprint(g.Worker.Scopes) != "[git:read git:write]" {
		t.Fatalf("get: %+v", g)
	}
	// A repository credential is no worker on worker routes.
	if res := callAsWorker(e, r.Worker.ID, r.Token); res.StatusCode != 401 {
		t.Fatalf("as a worker: %d %s", res.StatusCode, res.Body)
	}
	for _, tc := range []struct {
		body map[string]any
		code string
	}{
		{map[string]any{"name": "x", "scopes": []string{"repo"}}, "invalid_scope"},
		{map[string]any{"name": "x", "repos": []string{"octocat/*"}}, "invalid_scope"},
		{map[string]any{"name": "x", "scopes": []string{"git:read"}, "repos": []string{"octocat"}}, "invalid_repo_pattern"},
		{map[string]any{"name": "x", "scopes": []string{"git:read"}, "repos": []string{"../x"}}, "invalid_repo_pattern"},
		{map[string]any{"name": "x", "scopes": "git:read"}, "invalid_body"},
	} {
		res := web.do(http.MethodPost, "/api/workers", tc.body, nil)
		web.want(res, 400, tc.code)
		if !strings.Contains(res.Body, "write") && tc.code != "invalid_body" {
			t.Errorf("%v: the message does not say what to write: %s", tc.body, res.Body)
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/examples/demoupstream"
	"github.com/vintner/arbor/sdk/client"
)

// TestBrowserGrapeWorkers is the workers API end to end through grape:
// the real grape binary against the `arbor dev` of the browser tests (see
// useBrowserEnv), whose demo upstream serves the worker route
// demoupstream.WorkerPath, logged in as TestBrowserGrapeLogin does
// (approval in Chromium, the code typed on a pseudo-terminal). Then:
//
//  1. `workers register build-01 --env` prints exactly the two
//     TENDRIL_WORKER_* lines; `workers list --json` shows the worker.
//  2. With those credentials, client.NewWorkerTransport reaches the worker
//     route (the upstream sees X-Arbor-Worker-Id and the owner, not the
//     token); without them the route is 401 worker_unauthorized.
//  3. `workers rename`, then `workers list` (the table) shows the name.
//  4. `workers rotate --env`: the old token is 401 worker_unauthorized at
//     once, the new one works; so does the one of a plain `workers rotate`.
//  5. `workers revoke` on a terminal asks, and "n" keeps the worker;
//     without a terminal or --yes it refuses (exit 2); `workers revoke
//     --yes` deletes it: its token is 401, the list no longer has it, and
//     renaming it is "no such worker" (exit 1).
//  6. After `grape logout`, `workers list` says to log in first.
//
// No token ever appears in grape's stderr or in Arbor's (debug) log.
func TestBrowserGrapeWorkers(t *testing.T) {
	findChromium(t) // skip (or fail on CI) before starting a build
	grape := startGrapeBuild(t)
	env := useBrowserEnv(t)
	bin := grape.wait(t)
	start := time.Now()
	grapeWorkersFlow(t, env.browserCtx, env.dev, bin)
	t.Logf("whole flow took %v", time.Since(start).Round(time.Millisecond))
}

// grapeRun is one grape run without a terminal.
type grapeRun struct {
	args           []string
	stdout, stderr string
	code           int
}

func grapeWorkersFlow(t *testing.T, browserCtx context.Context, dev *devServer, grape string) {
	grapeEnv, authFile := grapeHome(t)
	var tokens []string // every worker token seen, for the leak checks
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := func(args ...string) grapeRun {
		t.Helper()
		stepCtx, cancel := context.WithTimeout(ctx, grapeStepLimit)
		defer cancel()
		stdout, stderr, err := runGrape(stepCtx, grape, grapeEnv, append(args, "--config-file", authFile)...)
		r := grapeRun{args: args, stdout: stdout, stderr: stderr}
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			r.code = ee.ExitCode()
		case err != nil:
			t.Fatalf("grape %s: %v", strings.Join(args, " "), err)
		}
		for _, tok := range tokens {
			if strings.Contains(stderr, tok) {
				t.Errorf("grape %s printed a worker token on stderr", strings.Join(args, " "))
			}
		}
		return r
	}
	mustRun := func(args ...string) grapeRun {
		t.Helper()
		r := run(args...)
		if r.code != 0 {
			t.Fatalf("grape %s: exit %d\nstdout: %q\nstderr: %q", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}
	// find lists the workers (the other browser tests' user is the same
	// octocat) and returns the one with this id.
	find := func(id string) (client.Worker, bool) {
		t.Helper()
		r := mustRun("workers", "list", "--json")
		var out struct {
			Workers []client.Worker `json:"workers"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Workers == nil {
			t.Fatalf("grape workers list --json printed %q: want {\"workers\": [...]} (%v)", r.stdout, err)
		}
		for _, w := range out.Workers {
			if w.ID == id {
				return w, true
			}
		}
		return client.Worker{}, false
	}
	// envLines parses --env output: exactly the id and token lines.
	envLines := func(r grapeRun) (id, token string) {
		t.Helper()
		m := regexp.MustCompile(`^` + client.DefaultWorkerIDEnv + `=([0-9a-f-]{36})\n` + client.DefaultWorkerTokenEnv + `=(\S+)\n$`).FindStringSubmatch(r.stdout)
		if m == nil {
			t.Fatalf("grape %s printed %d bytes on stdout: want only %s=<uuid> and %s=<token>", strings.Join(r.args, " "), len(r.stdout), client.DefaultWorkerIDEnv, client.DefaultWorkerTokenEnv)
		}
		if !client.ValidWorkerToken(m[2]) {
			t.Fatalf("grape %s printed a malformed worker token", strings.Join(r.args, " "))
		}
		tokens = append(tokens, m[2])
		if !strings.Contains(r.stderr, "not be shown again") {
			t.Errorf("grape %s: stderr %q does not warn that the token is not shown again", strings.Join(r.args, " "), r.stderr)
		}
		return m[1], m[2]
	}
	route := dev.base + demoupstream.WorkerPath + "ping"
	// asWorker calls the worker route with these credentials, through
	// client.NewWorkerTransport as a Tendril worker would.
	asWorker := func(id, token string) (int, string) {
		t.Helper()
		return workerGet(t, ctx, workerTransport(t, id, token), route)
	}

	func() { // a tab of its own, closed once grape is logged in
		b, step, closeTab := newGrapeTab(t, browserCtx, dev)
		defer closeTab()
		grapeLoginViaBrowser(t, b, step, grape, grapeEnv, authFile, "")
	}()

	// The route exists: without credentials it is the worker 401.
	if status, body := workerGet(t, ctx, &http.Transport{Proxy: nil}, route); status != 401 || !strings.Contains(body, client.CodeWorkerUnauthorized) {
		t.Fatalf("GET %s without credentials: %d %s; want 401 %s (is %s a worker route of arbor dev, workers.paths?)",
			route, status, snippet(body), client.CodeWorkerUnauthorized, demoupstream.WorkerPath)
	}

	// 0. A repository credential for the Git proxy: the two lines git's
	// credential helper answers, listed with its grant, never a worker.
	t.Log("step: grape workers register argocd --scope git:read --repo octocat/*")
	cred := mustRun("workers", "register", "argocd", "--scope", "git:read", "--repo", "octocat/*")
	cm := regexp.MustCompile(`(?m)^username=([0-9a-f-]{36})\npassword=(arbw_[A-Za-z0-9_-]+)$`).FindStringSubmatch(cred.stdout)
	if cm == nil {
		t.Fatalf("grape workers register --scope printed %q; want username= and password= lines", cred.stdout)
	}
	if w, ok := find(cm[1]); !ok || w.Name != "argocd" || !slices.Equal(w.Scopes, []string{"git:read"}) || !slices.Equal(w.Repos, []string{"octocat/*"}) {
		t.Fatalf("the list has %+v (found %v); want argocd with git:read on octocat/*", w, ok)
	}
	if status, body := asWorker(cm[1], cm[2]); status != 401 || !strings.Contains(body, client.CodeWorkerUnauthorized) {
		t.Errorf("a repository credential on the worker route: %d %s; want 401 %s (a credential is never a worker)", status, snippet(body), client.CodeWorkerUnauthorized)
	}
	mustRun("workers", "revoke", cm[1], "--yes")

	// 1. Register; the list shows the worker.
	t.Log("step: grape workers register build-01 --env")
	id, token := envLines(mustRun("workers", "register", "build-01", "--env"))
	t.Cleanup(func() { // leave nothing for the other browser tests
		if t.Failed() {
			runGrape(context.Background(), grape, grapeEnv, "workers", "revoke", id, "--yes", "--config-file", authFile)
			runGrape(context.Background(), grape, grapeEnv, "logout", "--config-file", authFile)
		}
	})
	if w, ok := find(id); !ok || w.Name != "build-01" || time.Since(w.CreatedAt).Abs() > time.Minute || !w.RotatedAt.IsZero() {
		t.Fatalf("after register the list has %+v (found %v); want %s build-01, created now", w, ok, id)
	}

	// 2. The worker route with the registered credentials.
	t.Log("step: the worker route with the registered token")
	status, body := asWorker(id, token)
	var seen struct {
		Identity map[string]string `json:"identity"`
	}
	if err := json.Unmarshal([]byte(body), &seen); status != 200 || err != nil ||
		seen.Identity["X-Arbor-Worker-Id"] != id || seen.Identity["X-Arbor-User-Id"] == "" {
		t.Errorf("GET %s as the worker: %d %s (%v); want 200 and the upstream seeing X-Arbor-Worker-Id %s and the owner's X-Arbor-User-Id", route, status, snippet(body), err, id)
	}
	if strings.Contains(body, token) {
		t.Errorf("the upstream received the worker token")
	}

	// 3. Rename; the table shows the new name.
	t.Log("step: grape workers rename")
	mustRun("workers", "rename", strings.ToUpper(id), "build-02")
	r := mustRun("workers", "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 2 || !regexp.MustCompile(`^ID\s+NAME\s+CREATED\s+LAST USED\s+LAST ADDRESS$`).MatchString(lines[0]) ||
		!slices.ContainsFunc(lines[1:], func(l string) bool { return strings.HasPrefix(l, id+" ") && strings.Contains(l, " build-02 ") }) {
		t.Errorf("grape workers list after rename:\n%s\nwant a header and a row for %s build-02", r.stdout, id)
	}
	t.Logf("grape workers list:\n%s", r.stdout)

	// 4. Rotate: the old token stops working at once.
	t.Log("step: grape workers rotate --env")
	id2, token2 := envLines(mustRun("workers", "rotate", id, "--env"))
	if id2 != id || token2 == token {
		t.Fatalf("rotate printed id %s (want %s), new token %v", id2, id, token2 != token)
	}
	if status, body := asWorker(id, token); status != 401 || !strings.Contains(body, client.CodeWorkerUnauthorized) {
		t.Errorf("GET %s with the rotated-out token: %d %s; want 401 %s", route, status, snippet(body), client.CodeWorkerUnauthorized)
	}
	if status, body := asWorker(id, token2); status != 200 || !strings.Contains(body, id) {
		t.Errorf("GET %s with the new token: %d %s; want 200", route, status, snippet(body))
	}
	if w, ok := find(id); !ok || w.RotatedAt.IsZero() || w.Name != "build-02" {
		t.Errorf("after rotate the list has %+v (found %v); want build-02 with rotated_at", w, ok)
	}
	r = mustRun("workers", "rotate", id) // the human form
	if !strings.Contains(r.stdout, "shown only this once") || !strings.Contains(r.stdout, client.DefaultWorkerIDEnv+"="+id+"\n") {
		t.Errorf("grape workers rotate printed no warning or no %s line (%d bytes)", client.DefaultWorkerIDEnv, len(r.stdout))
	}
	m := regexp.MustCompile(client.DefaultWorkerTokenEnv + `=(\S+)\n`).FindStringSubmatch(r.stdout)
	if m == nil || !client.ValidWorkerToken(m[1]) {
		t.Fatalf("grape workers rotate printed no valid %s line", client.DefaultWorkerTokenEnv)
	}
	token3 := m[1]
	tokens = append(tokens, token3)
	if status, _ := asWorker(id, token3); status != 200 {
		t.Errorf("GET %s with the third token: %d; want 200", route, status)
	}
	if status, _ := asWorker(id, token2); status != 401 {
		t.Errorf("GET %s with the second token after the third: %d; want 401", route, status)
	}

	// 5. Revoke: asked on a terminal, "n" keeps it; --yes deletes it.
	t.Log("step: grape workers revoke, answered n on a terminal")
	stepCtx, cancelStep := context.WithTimeout(ctx, grapeStepLimit)
	defer cancelStep()
	g := startGrapeOnPTY(t, grape, grapeEnv, "workers", "revoke", id, "--config-file", authFile)
	g.waitFor(t, stepCtx, "the confirmation question", regexp.MustCompile(`Revoke worker build-02 \(id `+id+`\)\? .*\[y/N\] `))
	if _, err := g.master.Write([]byte("n\r")); err != nil {
		t.Fatal(err)
	}
	err := g.wait(stepCtx)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("grape workers revoke answered n: %v; want exit status 1", err)
	}
	if tr := plainTerminal(g.transcript(stepCtx)); !strings.Contains(tr, "not revoked") {
		t.Errorf("grape workers revoke answered n printed:\n%s", tr)
	}
	if _, ok := find(id); !ok {
		t.Fatalf("after answering n the worker is gone")
	}
	if status, _ := asWorker(id, token3); status != 200 {
		t.Errorf("after answering n the worker gets %d; want 200", status)
	}

	t.Log("step: grape workers revoke --yes")
	if r := run("workers", "revoke", id); r.code != 2 || !strings.Contains(r.stderr, "--yes") {
		t.Errorf("grape workers revoke without a terminal or --yes: exit %d, %q; want 2 asking for --yes", r.code, r.stderr)
	}
	mustRun("workers", "revoke", id, "--yes")
	if status, body := asWorker(id, token3); status != 401 || !strings.Contains(body, client.CodeWorkerUnauthorized) {
		t.Errorf("GET %s after revoke: %d %s; want 401 %s", route, status, snippet(body), client.CodeWorkerUnauthorized)
	}
	if w, ok := find(id); ok {
		t.Errorf("after revoke the list still has %+v", w)
	}
	if r := run("workers", "rename", id, "x"); r.code != 1 || !strings.Contains(r.stderr, "no such worker") || !strings.Contains(r.stderr, client.CodeWorkerNotFound) {
		t.Errorf("grape workers rename of the revoked worker: exit %d, %q; want 1 and no such worker", r.code, r.stderr)
	}
	if r := run("workers", "register", strings.Repeat("x", 65)); r.code != 2 || !strings.Contains(r.stderr, client.CodeInvalidName) {
		t.Errorf("grape workers register with a 65-character name: exit %d, %q; want 2 and %s", r.code, r.stderr, client.CodeInvalidName)
	}

	// 6. Logged out: log in first.
	t.Log("step: grape logout, then workers list")
	mustRun("logout")
	if r := run("workers", "list"); r.code != 1 || !strings.Contains(r.stderr, "grape login") || !strings.Contains(r.stderr, "first") {
		t.Errorf("grape workers list after logout: exit %d, %q; want 1 and run grape login first", r.code, r.stderr)
	}

	logs := dev.logs.String()
	for i, tok := range tokens {
		if strings.Contains(logs, tok) {
			t.Errorf("arbor dev's log contains worker token #%d", i+1)
		}
	}
}

// workerTransport is client.NewWorkerTransport reading id and token from
// the environment, as a Tendril worker does. The variables have names of
// this process's own (the test runs in parallel, so no t.Setenv) and are
// removed again at once: the transport reads them only when it is made.
func workerTransport(t *testing.T, id, token string) *client.WorkerTransport {
	t.Helper()
	cfg := client.WorkerConfig{
		IDEnv:    fmt.Sprintf("ARBOR_TEST_%d_WORKER_ID", os.Getpid()),
		TokenEnv: fmt.Sprintf("ARBOR_TEST_%d_WORKER_TOKEN", os.Getpid()),
	}
	os.Setenv(cfg.IDEnv, id)
	os.Setenv(cfg.TokenEnv, token)
	defer os.Unsetenv(cfg.IDEnv)
	defer os.Unsetenv(cfg.TokenEnv)
	tr, err := client.NewWorkerTransport(cfg, &http.Transport{Proxy: nil})
	if err != nil {
		t.Fatalf("NewWorkerTransport with the printed credentials: %v", err)
	}
	return tr
}

// workerGet sends GET through rt (a WorkerTransport, or a plain one) and
// returns the status and body.
func workerGet(t *testing.T, ctx context.Context, rt http.RoundTripper, target string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	hc := &http.Client{Transport: rt, Timeout: grapeStepLimit,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", target, err)
	}
	return resp.StatusCode, string(b)
}

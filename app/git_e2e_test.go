package app_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/gateway/edge/gitproxy"
	"github.com/vintner/arbor/internal/fakegit"
	"github.com/vintner/arbor/internal/fakegit/gittest"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

// gitHost is the fake GitHub's Git host (package fakegit: git
// http-backend behind HTTP Basic with x-access-token and a live token of
// the fake GitHub), with what the tests watch and a few answers of their
// own.
type gitHost struct {
	fake *fakegit.Host
	root string
	url  string // where it serves

	mu        sync.Mutex
	protocols []string // Git-Protocol of each request
	afterRefs func()   // if set, called once after an advertisement
	// hold, if set, is where each request waits before it is served
	// (counted in waiting), until hold is closed.
	hold    chan struct{}
	waiting atomic.Int32
}

func (g *gitHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.protocols = append(g.protocols, r.Header.Get("Git-Protocol"))
	hold := g.hold
	g.mu.Unlock()
	if hold != nil {
		g.waiting.Add(1)
		<-hold
		g.waiting.Add(-1)
	}
	if big, ok := strings.CutPrefix(r.URL.Path, "/octocat/big.git/"); ok && big == "info/refs" {
		// An answer of declared length too large to be read whole.
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		w.Header().Set("Content-Length", "100000")
		_, _ = w.Write([]byte(strings.Repeat("x", 100000)))
		return
	}
	g.fake.ServeHTTP(w, r)
	if strings.HasSuffix(r.URL.Path, "/info/refs") {
		g.mu.Lock()
		after := g.afterRefs
		g.afterRefs = nil
		g.mu.Unlock()
		if after != nil {
			after()
		}
	}
}

// gitEnv is a signed-in octocat with a GitHub connection, the fake Git
// host with octocat/hello-world (a README.md) and octocat/other, and a home
// directory for the git client.
type gitEnv struct {
	*apptest.Harness
	t       *testing.T
	browser *apptest.Browser
	host    *gitHost
	home    string
}

func newGitEnv(t *testing.T, env ...string) *gitEnv {
	t.Helper()
	gittest.NeedGit(t)
	var github atomic.Pointer[fakeprovider.Provider]
	fake, err := fakegit.Start(fakegit.Options{
		User: "x-access-token",
		ValidToken: func(tok string) bool {
			f := github.Load()
			return f != nil && f.ValidAccessToken(tok)
		},
		Repos: map[string]map[string]string{
			"octocat/hello-world": {"README.md": "# Hello World\n"},
			"octocat/other":       {"README.md": "# Other\n"},
		},
		Dir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	g := &gitHost{fake: fake, root: fake.Dir()}
	e := &gitEnv{t: t, host: g, home: t.TempDir()}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	g.url = srv.URL
	e.Harness = apptest.New(t, apptest.Env(append([]string{"ARBOR_PROVIDERS_GITHUB_GIT_URL=" + srv.URL}, env...)...))
	github.Store(e.Fakes.Fakes["github"])
	e.browser = e.Browser()
	e.browser.MustSignIn("github")
	apptest.ConnectProvider(t, e.browser, "github")
	return e
}

// git runs git in dir (the home directory for "") as the test's user:
// no system or global configuration but the identity, never a prompt.
func (e *gitEnv) git(dir string, args ...string) (string, error) {
	if dir == "" {
		dir = e.home
	}
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"HOME=" + e.home, "PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Octo", "GIT_AUTHOR_EMAIL=octo@example.test", "GIT_COMMITTER_NAME=Octo", "GIT_COMMITTER_EMAIL=octo@example.test",
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *gitEnv) mustGit(dir string, args ...string) string {
	e.t.Helper()
	out, err := e.git(dir, args...)
	if err != nil {
		e.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// cred is a repository credential.
type cred struct{ id, token string }

// helper is the -c options that make git send c through a credential
// helper, as docs/git-proxy.md shows.
func (c cred) helper() []string {
	return []string{"-c", "credential.helper=", "-c",
		fmt.Sprintf("credential.helper=!f() { test \"$1\" = get && echo username=%s && echo password=%s; }; f", c.id, c.token)}
}

// as runs git with c's credentials.
func (e *gitEnv) as(c cred, dir string, args ...string) (string, error) {
	return e.git(dir, append(c.helper(), args...)...)
}

func (e *gitEnv) url(repo string) string { return e.PublicURL + "/git/github/" + repo + ".git" }

// newCred registers a repository credential through the API, as a user's
// script does.
func (e *gitEnv) newCred(body map[string]any) cred {
	e.t.Helper()
	res := e.browser.PostJSON("/api/workers", body)
	if res.StatusCode != http.StatusCreated {
		e.t.Fatalf("POST /api/workers %v: %d %s", body, res.StatusCode, res.Body)
	}
	var out struct {
		Worker struct {
			ID     string   `json:"id"`
			Scopes []string `json:"scopes"`
			Repos  []string `json:"repos"`
		} `json:"worker"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(res.Body), &out); err != nil || out.Token == "" || len(out.Worker.Scopes) == 0 {
		e.t.Fatalf("registration answer %s (%v)", res.Body, err)
	}
	return cred{out.Worker.ID, out.Token}
}

func (e *gitEnv) refreshes() int {
	n := 0
	for _, it := range e.Fakes.Fakes["github"].IssuedTokens() {
		if it.GrantType == "refresh_token" {
			n++
		}
	}
	return n
}

func mustContain(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Fatalf("%s: output lacks %q:\n%s", what, w, out)
		}
	}
}

// The story of a deployment that clones through Arbor: the real git
// clones, fetches and ls-remotes octocat/hello-world from git
// http-backend behind a fake GitHub Git host, with protocol v2; the
// provider token expires between two fetches and the second still works
// (one refresh); a push without git:write is refused, a credential limited
// to one repository cannot read another, a wrong or revoked credential is
// asked for again; a disconnected or "needs reconnect" connection gives
// git a message that says what to do, and reconnecting restores the same
// credential. No secret reaches the log.
func TestGitProxyStory(t *testing.T) {
	e := newGitEnv(t)
	argo := e.newCred(map[string]any{"name": "argocd", "scopes": []string{"git:read"}, "repos": []string{"octocat/*"}})
	clone := filepath.Join(e.home, "hello-world")

	out, err := e.as(argo, "", "clone", e.url("octocat/hello-world"), clone)
	if err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(clone, "README.md")); err != nil || string(b) != "# Hello World\n" {
		t.Fatalf("README.md after clone: %q, %v", b, err)
	}
	e.host.mu.Lock()
	v2 := len(e.host.protocols) > 0 && e.host.protocols[0] == "version=2"
	e.host.mu.Unlock()
	if !v2 {
		t.Fatalf("the Git host saw Git-Protocol %q, want version=2 passed through", e.host.protocols)
	}
	out, err = e.as(argo, "", "ls-remote", e.url("octocat/hello-world"))
	if err != nil || !strings.Contains(out, "refs/heads/main") {
		t.Fatalf("ls-remote: %v\n%s", err, out)
	}
	// An answer of declared length too large to be read whole is streamed
	// whole.
	status, body := rawRequest(t, e.Addr, "GET /git/github/octocat/big.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "+basicAuth(argo.id, argo.token)+"\r\n\r\n")
	if status != http.StatusOK || len(body) != 100000 {
		t.Fatalf("a 100000-byte answer: %d, %d bytes", status, len(body))
	}

	t.Run("token expires between fetches", func(t *testing.T) {
		before := e.refreshes()
		e.Clock.Advance(9 * time.Hour) // GitHub App user tokens live 8 hours
		e.Fakes.Fakes["github"].ExpireAccessTokens()
		for i := range 2 {
			if out, err := e.as(argo, clone, "fetch", "origin"); err != nil {
				t.Fatalf("fetch %d after expiry: %v\n%s", i, err, out)
			}
		}
		if n := e.refreshes() - before; n != 1 {
			t.Fatalf("%d refreshes for two fetches after expiry, want 1", n)
		}
		if calls := e.Fakes.Fakes["github"].DeadTokenCalls(); len(calls) != 0 {
			t.Fatalf("Arbor used dead tokens at the provider: %+v", calls)
		}
	})

	t.Run("push refused without git:write", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(clone, "x.txt"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		e.mustGit(clone, "add", "x.txt")
		e.mustGit(clone, "commit", "-q", "-m", "x")
		out, err := e.as(argo, clone, "push", "origin", "main")
		if err == nil {
			t.Fatalf("push with git:read succeeded:\n%s", out)
		}
		mustContain(t, "push", out, "remote: This repository credential may not push", "git:write")
		writer := e.newCred(map[string]any{"name": "release-bot", "scopes": []string{"git:write"}, "repos": []string{"octocat/hello-world"}})
		if out, err := e.as(writer, clone, "push", "origin", "main"); err != nil {
			t.Fatalf("push with git:write: %v\n%s", err, out)
		}
	})

	t.Run("limited to one repository", func(t *testing.T) {
		one := e.newCred(map[string]any{"name": "one", "scopes": []string{"git:read"}, "repos": []string{"octocat/hello-world"}})
		if out, err := e.as(one, "", "ls-remote", e.url("octocat/hello-world")); err != nil {
			t.Fatalf("its repository: %v\n%s", err, out)
		}
		out, err := e.as(one, "", "ls-remote", e.url("octocat/other"))
		if err == nil {
			t.Fatalf("another repository:\n%s", out)
		}
		mustContain(t, "another repository", out, "remote: This repository credential may not access github/octocat/other", "403")
	})

	t.Run("wrong and revoked credentials are asked for", func(t *testing.T) {
		tmp := e.newCred(map[string]any{"name": "tmp", "scopes": []string{"git:read"}})
		out, err := e.as(cred{tmp.id, argo.token}, "", "ls-remote", e.url("octocat/hello-world"))
		if err == nil {
			t.Fatalf("another credential's token:\n%s", out)
		}
		mustContain(t, "wrong token", out, "Authentication failed")
		if res, err := e.browser.SendJSON(http.MethodDelete, "/api/workers/"+tmp.id, nil, nil); err != nil || res.StatusCode != http.StatusNoContent {
			t.Fatalf("revoke: %v %v", res, err)
		}
		out, err = e.as(tmp, "", "ls-remote", e.url("octocat/hello-world"))
		if err == nil {
			t.Fatalf("revoked credential:\n%s", out)
		}
		mustContain(t, "revoked", out, "Authentication failed")
	})

	t.Run("disconnect, then reconnect", func(t *testing.T) {
		if res, err := e.browser.SendJSON(http.MethodDelete, "/api/providers/github", nil, nil); err != nil || res.StatusCode >= 300 {
			t.Fatalf("disconnect: %v %v", res, err)
		}
		out, err := e.as(argo, clone, "fetch", "origin")
		if err == nil {
			t.Fatalf("fetch after disconnect:\n%s", out)
		}
		mustContain(t, "disconnected", out, "remote: The owner of this repository credential has no github connection", e.PublicURL+"/integrations", "403")
		apptest.ConnectProvider(t, e.browser, "github")
		if out, err := e.as(argo, clone, "fetch", "origin"); err != nil {
			t.Fatalf("fetch after reconnecting: %v\n%s", err, out)
		}
	})

	t.Run("connection lost between advertisement and fetch", func(t *testing.T) {
		uid := e.MustUserID(e.browser)
		// A new commit, so that the fetch has something to negotiate.
		pusher := e.newCred(map[string]any{"name": "pusher", "scopes": []string{"git:write"}})
		if err := os.WriteFile(filepath.Join(clone, "y.txt"), []byte("y"), 0o644); err != nil {
			t.Fatal(err)
		}
		e.mustGit(clone, "add", "y.txt")
		e.mustGit(clone, "commit", "-q", "-m", "y")
		if out, err := e.as(pusher, clone, "push", "origin", "main"); err != nil {
			t.Fatalf("push: %v\n%s", err, out)
		}
		e.host.mu.Lock()
		e.host.afterRefs = func() {
			if err := e.Bolt().DeleteConnection(context.Background(), uid, "github"); err != nil {
				t.Error(err)
			}
		}
		e.host.mu.Unlock()
		fresh := filepath.Join(e.home, "fresh")
		out, err := e.as(argo, "", "clone", e.url("octocat/hello-world"), fresh)
		if err == nil {
			t.Fatalf("clone whose fetch lost the connection:\n%s", out)
		}
		mustContain(t, "lost connection", out, "fatal: remote error: The owner of this repository credential has no github connection")
		apptest.ConnectProvider(t, e.browser, "github")
	})

	t.Run("needs reconnect, then reconnect", func(t *testing.T) {
		e.Fakes.Fakes["github"].RevokeAll() // the user revoked the app at GitHub
		e.Clock.Advance(9 * time.Hour)
		out, err := e.as(argo, "", "ls-remote", e.url("octocat/hello-world"))
		if err == nil {
			t.Fatalf("ls-remote with a revoked grant:\n%s", out)
		}
		mustContain(t, "needs reconnect", out, "remote: The github connection of this repository credential's owner needs reconnecting", "Reconnect")
		apptest.ConnectProvider(t, e.browser, "github")
		if out, err := e.as(argo, "", "ls-remote", e.url("octocat/hello-world")); err != nil {
			t.Fatalf("ls-remote after reconnecting: %v\n%s", err, out)
		}
	})

	e.App.FlushLogs()
	logs := e.Logs.String()
	if !strings.Contains(logs, "git request refused") {
		t.Error("no log line for refused git requests")
	}
	for _, secret := range []string{argo.token} {
		if strings.Contains(logs, secret) {
			t.Fatal("a repository credential's token is in the log")
		}
	}
	for _, it := range e.Fakes.Fakes["github"].IssuedTokens() {
		if strings.Contains(logs, it.AccessToken) || (it.RefreshToken != "" && strings.Contains(logs, it.RefreshToken)) {
			t.Fatal("a provider token is in the log")
		}
	}
}

// rawRequest sends a request as written (request line, headers) to Arbor
// and returns the status and body.
func rawRequest(t *testing.T, addr, head string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(head, "POST") {
		// A body, as a client sends it while Arbor answers.
		go func() { _, _ = conn.Write(make([]byte, 1<<20)) }()
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(res.Body).WriteTo(&b)
	return res.StatusCode, b.String()
}

// Bad input, from a client that is not git: each a status and a JSON
// error code; git itself gets the same status with the message as text.
func TestGitProxyBadInput(t *testing.T) {
	e := newGitEnv(t)
	c := e.newCred(map[string]any{"name": "argocd", "scopes": []string{"git:read"}})
	auth := "Authorization: Basic " + basicAuth(c.id, c.token) + "\r\n"
	refs := "/info/refs?service=git-upload-pack"
	for _, tc := range []struct {
		name, head string
		status     int
		code       string
	}{
		{"dot dot", "GET /git/github/octocat/../other.git" + refs + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 400, "bad_path"},
		{"encoded slash", "GET /git/github/octocat%2Fhello-world.git" + refs + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 400, "bad_path"},
		{"encoded dot dot", "GET /git/github/octocat/%2e%2e/other.git" + refs + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 400, "bad_path"},
		{"URL in the path", "GET /git/github/https://evil.example/x.git" + refs + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 400, "bad_path"},
		{"one segment", "GET /git/github/hello-world.git" + refs + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 400, "bad_path"},
		{"dumb HTTP", "GET /git/github/octocat/hello-world.git/HEAD HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 403, gitproxy.CodeNotSmartHTTP},
		{"no service", "GET /git/github/octocat/hello-world.git/info/refs HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 403, gitproxy.CodeNotSmartHTTP},
		{"unknown provider", "GET /git/nope/octocat/hello-world.git" + refs + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 404, "unknown_provider"},
		{"provider without Git", "GET /git/google/octocat/hello-world.git" + refs + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 404, "unknown_provider"},
		{"no credentials", "GET /git/github/octocat/hello-world.git" + refs + " HTTP/1.1\r\nHost: x\r\n\r\n", 401, "repo_unauthorized"},
		{"revoked-looking token", "GET /git/github/octocat/hello-world.git" + refs + " HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + basicAuth(c.id, "arbw_nope") + "\r\n\r\n", 401, "repo_unauthorized"},
		{"oversized", "POST /git/github/octocat/hello-world.git/git-upload-pack HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: " + fmt.Sprint(gitproxy.DefaultFetchBodyLimit+1) + "\r\n" + auth + "\r\n", 413, "body_too_large"},
		{"absolute-form target", "GET http://evil.example/git/github/octocat/hello-world.git/HEAD HTTP/1.1\r\nHost: evil.example\r\n" + auth + "\r\n", 403, gitproxy.CodeNotSmartHTTP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawRequest(t, e.Addr, tc.head)
			if status != tc.status || apptest.ErrorCode(body) != tc.code {
				t.Fatalf("%d %s, want %d %s", status, body, tc.status, tc.code)
			}
		})
	}
	// The same refusal to git: the status, and the message as text.
	status, body := rawRequest(t, e.Addr, "GET /git/github/octocat/hello-world.git/info/refs HTTP/1.1\r\nHost: x\r\nUser-Agent: git/2.39.5\r\n"+auth+"\r\n")
	if status != 403 || !strings.HasPrefix(body, "Arbor relays Git's smart HTTP protocol only") || !strings.Contains(body, "(arbor: "+gitproxy.CodeNotSmartHTTP) {
		t.Fatalf("to git: %d %q", status, body)
	}
	e.App.FlushLogs()
	if !strings.Contains(e.Logs.String(), "git request refused") {
		t.Fatal("no log line for refused requests")
	}
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// A 48 MiB repository (random, so incompressible) cloned with the real
// git through Arbor: the packfile streams through. Run with -v for the
// figure.
func TestGitProxyLargeClone(t *testing.T) {
	if testing.Short() {
		t.Skip("clones 48 MiB")
	}
	e := newGitEnv(t)
	work := filepath.Join(t.TempDir(), "big")
	e.mustGit("", "clone", "-q", filepath.Join(e.host.root, "octocat/hello-world.git"), work)
	blob := make([]byte, 48<<20)
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "blob.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustGit(work, "add", "blob.bin")
	e.mustGit(work, "commit", "-q", "-m", "blob")
	e.mustGit(work, "push", "-q", "origin", "main")
	c := e.newCred(map[string]any{"name": "argocd", "scopes": []string{"git:read"}})
	dst := filepath.Join(e.home, "big")
	start := time.Now()
	if out, err := e.as(c, "", "clone", "-q", e.url("octocat/hello-world"), dst); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	d := time.Since(start)
	got, err := os.ReadFile(filepath.Join(dst, "blob.bin"))
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("blob.bin after clone: %d bytes, %v", len(got), err)
	}
	// The same clone straight from the Git host, with a live token.
	var live string
	for _, it := range e.Fakes.Fakes["github"].IssuedTokens() {
		if it.AccessValid {
			live = it.AccessToken
		}
	}
	start = time.Now()
	if out, err := e.as(cred{"x-access-token", live}, "", "clone", "-q", e.host.url+"/octocat/hello-world.git", filepath.Join(e.home, "direct")); err != nil {
		t.Fatalf("direct clone: %v\n%s", err, out)
	}
	t.Logf("cloned a 48 MiB repository through Arbor in %v, straight from the Git host in %v",
		d.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// GitLab: another Basic user name (oauth2) and a repository in a
// subgroup, reached by a credential limited to the group.
func TestGitProxyGitLabSubgroup(t *testing.T) {
	gittest.NeedGit(t)
	var gitlab atomic.Pointer[fakeprovider.Provider]
	host, err := fakegit.Start(fakegit.Options{
		User: "oauth2",
		ValidToken: func(tok string) bool {
			f := gitlab.Load()
			return f != nil && f.ValidAccessToken(tok)
		},
		Repos: map[string]map[string]string{"vintner/platform/app": {"README.md": "# App\n"}},
		Dir:   t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(host.Close)
	h := apptest.New(t, apptest.Env("ARBOR_PROVIDERS_GITLAB_GIT_URL="+host.URL()))
	gitlab.Store(h.Fakes.Fakes["gitlab"])
	e := &gitEnv{Harness: h, t: t, browser: h.Browser(), home: t.TempDir()}
	e.browser.MustSignIn("github")
	apptest.ConnectProvider(t, e.browser, "gitlab")
	c := e.newCred(map[string]any{"name": "argocd", "scopes": []string{"git:read"}, "repos": []string{"gitlab:vintner/**"}})
	url := h.PublicURL + "/git/gitlab/vintner/platform/app.git"
	dst := filepath.Join(e.home, "app")
	if out, err := e.as(c, "", "clone", url, dst); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "README.md")); err != nil || string(b) != "# App\n" {
		t.Fatalf("README.md: %q %v", b, err)
	}
	out, err := e.as(c, "", "ls-remote", h.PublicURL+"/git/github/vintner/platform/app.git")
	if err == nil {
		t.Fatalf("the same path on github, outside gitlab:vintner/**:\n%s", out)
	}
	mustContain(t, "other provider", out, "may not access github/vintner/platform/app")
}

// A person registers a repository credential on the Workers page, as
// `arbor dev`'s banner suggests, and the real git clones with the two
// lines the page shows. A bad pattern is explained on the page, and the
// read-only credential cannot push.
func TestGitProxyCredentialFromWorkersPage(t *testing.T) {
	e := newGitEnv(t)
	csrf := apptest.CSRFRE.FindStringSubmatch(e.browser.Get("/workers").Body)[1]

	bad := e.browser.Do(http.MethodPost, "/workers/repo-credentials", url.Values{"csrf": {csrf}, "name": {"argocd"}, "access": {"read"}, "repos": {"octocat/../x"}})
	if bad.StatusCode != http.StatusBadRequest || !strings.Contains(bad.Body, `id="notice"`) || !strings.Contains(bad.Body, "owner/repo") {
		t.Fatalf("bad pattern: %d\n%s", bad.StatusCode, bad.Body)
	}
	if res := e.browser.Do(http.MethodPost, "/workers/repo-credentials", url.Values{"name": {"argocd"}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("without the CSRF token: %d", res.StatusCode)
	}

	view := e.browser.Do(http.MethodPost, "/workers/repo-credentials", url.Values{"csrf": {csrf}, "name": {"argocd"}, "access": {"read"}, "repos": {"octocat/hello-world, octocat/other"}})
	m := regexp.MustCompile(`(?s)<pre class="secret" id="credential-basic">username=([0-9a-f-]{36})\npassword=(arbw_[A-Za-z0-9_-]+)</pre>`).FindStringSubmatch(view.Body)
	if view.StatusCode != http.StatusOK || m == nil || view.Header.Get("Cache-Control") != "no-store" ||
		!strings.Contains(view.Body, "<code>octocat/hello-world</code>, <code>octocat/other</code>") || !strings.Contains(view.Body, e.PublicURL+"/git/") {
		t.Fatalf("token view: %d %v\n%s", view.StatusCode, view.Header, view.Body)
	}
	c := cred{m[1], m[2]}
	clone := filepath.Join(e.home, "from-page")
	if out, err := e.as(c, "", "clone", e.url("octocat/hello-world"), clone); err != nil {
		t.Fatalf("clone with the page's credential: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(clone, "README.md")); err != nil || string(b) != "# Hello World\n" {
		t.Fatalf("README.md: %q, %v", b, err)
	}
	if page := e.browser.Get("/workers"); !strings.Contains(page.Body, `Repository credential (Git proxy): <code>git:read</code> on <code>octocat/hello-world</code>, <code>octocat/other</code>`) {
		t.Fatalf("the list does not show the credential:\n%s", page.Body)
	}
	e.mustGit(clone, "commit", "--allow-empty", "-m", "try")
	if out, err := e.as(c, clone, "push", "origin", "HEAD:main"); err == nil || !strings.Contains(out, "git:write") {
		t.Fatalf("push with a read-only credential from the page: %v\n%s", err, out)
	}
}

package app_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitRequest is an advertisement request (GET info/refs of upload-pack)
// for repo with Basic credentials (none when c is zero), from the loopback
// address from ("" for the default, 127.0.0.1), as git or not.
type gitRequest struct {
	repo string
	c    cred
	from string
	git  bool
}

type gitAnswer struct {
	status             int
	ctype, retry, body string
	code               string // the JSON error's code, if JSON
}

func (e *gitEnv) do(r gitRequest) gitAnswer {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url(r.repo)+"/info/refs?service=git-upload-pack", nil)
	if r.c != (cred{}) {
		req.SetBasicAuth(r.c.id, r.c.token)
	}
	if r.git {
		req.Header.Set("User-Agent", "git/2.39.5")
		req.Header.Set("Git-Protocol", "version=2")
	}
	tr := &http.Transport{DisableKeepAlives: true}
	if r.from != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(r.from)}, Timeout: 5 * time.Second}
		tr.DialContext = d.DialContext
	}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		e.t.Fatalf("GET info/refs of %s: %v", r.repo, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := gitAnswer{status: res.StatusCode, ctype: res.Header.Get("Content-Type"), retry: res.Header.Get("Retry-After"), body: string(b)}
	var j struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &j) == nil {
		a.code = j.Error
	}
	return a
}

// TestGitProxyFailedAuthLimit: with limits.git_failed_auth at 3 a
// minute, burst 3, three clones with a wrong token are refused 401 by
// the real git; the fourth, and then a clone with the right credential
// from the same address, get 429 with a text/plain message that git
// shows as "remote:" lines; an API client gets the JSON rate_limited with
// Retry-After; another address (127.0.0.2) still clones; and requests
// without credentials (git's first try) never count. The bucket is not
// failed_auth's: a worker's failures do not touch it.
func TestGitProxyFailedAuthLimit(t *testing.T) {
	e := newGitEnv(t, "ARBOR_LIMITS_GIT_FAILED_AUTH_PER_MINUTE=3", "ARBOR_LIMITS_GIT_FAILED_AUTH_BURST=3",
		"ARBOR_LIMITS_FAILED_AUTH_PER_MINUTE=1", "ARBOR_LIMITS_FAILED_AUTH_BURST=1")
	good := e.newCred(map[string]any{"name": "argocd", "scopes": []string{"git:read"}})
	bad := cred{good.id, "arbw_" + strings.Repeat("A", 43)}
	// Anonymous requests (git's first, before it asks the helper) are
	// not failures.
	for range 5 {
		if a := e.do(gitRequest{repo: "octocat/hello-world", git: true}); a.status != http.StatusUnauthorized {
			t.Fatalf("without credentials: %d %s", a.status, a.body)
		}
	}
	for i := range 3 {
		out, err := e.as(bad, "", "ls-remote", e.url("octocat/hello-world"))
		if err == nil || !strings.Contains(out, "401") && !strings.Contains(out, "Authentication failed") {
			t.Fatalf("wrong token, try %d: want a 401, got %v\n%s", i+1, err, out)
		}
		if strings.Contains(out, "429") {
			t.Fatalf("wrong token, try %d: limited within the burst\n%s", i+1, out)
		}
	}
	for _, c := range []cred{bad, good} {
		out, err := e.as(c, "", "ls-remote", e.url("octocat/hello-world"))
		if err == nil {
			t.Fatalf("after the burst, %s: git succeeded\n%s", c.token[:8], out)
		}
		mustContain(t, "git after the burst", out, "remote: Too many failed Git authentications from your address",
			"remote: (arbor: rate_limited, request id", "429")
	}
	a := e.do(gitRequest{repo: "octocat/hello-world", c: good, git: true})
	if a.status != http.StatusTooManyRequests || !strings.HasPrefix(a.ctype, "text/plain") || a.retry == "" {
		t.Fatalf("a git client after the burst: %d %q Retry-After %q\n%s", a.status, a.ctype, a.retry, a.body)
	}
	a = e.do(gitRequest{repo: "octocat/hello-world", c: good})
	if a.status != http.StatusTooManyRequests || a.code != "rate_limited" || a.retry == "" {
		t.Fatalf("an API client after the burst: %d %q Retry-After %q\n%s", a.status, a.ctype, a.retry, a.body)
	}
	// Another address has its own bucket.
	if a := e.do(gitRequest{repo: "octocat/hello-world", c: good, from: "127.0.0.2", git: true}); a.status != http.StatusOK {
		t.Fatalf("from 127.0.0.2: %d %s", a.status, a.body)
	}
	// A worker's failed authentication is counted in failed_auth (burst
	// 1 here) and did not share the Git bucket: its first failure is a
	// 401, not a 429.
	req, _ := http.NewRequest(http.MethodGet, e.PublicURL+"/api/tendril/jobs", nil)
	req.Header.Set("X-Worker-ID", good.id)
	req.Header.Set("X-Worker-Token", good.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusTooManyRequests {
		t.Fatalf("a worker request from the limited address: 429; the Git bucket is not failed_auth's")
	}
}

// TestGitProxyConcurrencyCap: with server.git_max_per_client 2, two
// advertisements held at the Git host fill the address's slots: a third
// is 429 too_many_concurrent_requests with Retry-After 1, text/plain for
// git; another address still gets through; once the two end, the slots
// are free again; and three real clones in a row (their packs streamed
// after the handler returned) each give their slot back.
func TestGitProxyConcurrencyCap(t *testing.T) {
	e := newGitEnv(t, "ARBOR_SERVER_GIT_MAX_PER_CLIENT=2")
	c := e.newCred(map[string]any{"name": "argocd", "scopes": []string{"git:read"}})
	// 8 MiB of random bytes in octocat/other: its pack is streamed (no
	// Content-Length, over the size relayed whole), so the slot is given
	// back when the body ends, after the handler returned; and it is
	// larger than the sockets' buffers, so a client that goes away
	// mid-pack makes the relay's write fail.
	work := filepath.Join(t.TempDir(), "other")
	e.mustGit("", "clone", "-q", filepath.Join(e.host.root, "octocat/other.git"), work)
	blob := make([]byte, 8<<20)
	_, _ = rand.Read(blob)
	if err := os.WriteFile(filepath.Join(work, "blob.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustGit(work, "add", "blob.bin")
	e.mustGit(work, "commit", "-q", "-m", "blob")
	e.mustGit(work, "push", "-q", "origin", "main")
	for i := range 3 {
		if out, err := e.as(c, "", "clone", "-q", e.url("octocat/other"), "clone-"+string(rune('a'+i))); err != nil {
			t.Fatalf("clone %d under a cap of 2: %v\n%s", i+1, err, out)
		}
	}
	// Three fetches abandoned after the first 64 KiB of their pack (more
	// than the cap): each slot comes back when the relay's write fails.
	head := strings.TrimSpace(e.mustGit("", "--git-dir", filepath.Join(e.host.root, "octocat/other.git"), "rev-parse", "main"))
	for i := range 3 {
		e.abandonFetch(c, "octocat/other", head)
		if a := e.waitOK(gitRequest{repo: "octocat/other", c: c, git: true}); a.status != http.StatusOK {
			t.Fatalf("after abandoned fetch %d: %d %s", i+1, a.status, a.body)
		}
	}
	hold := make(chan struct{})
	e.host.mu.Lock()
	e.host.hold = hold
	e.host.mu.Unlock()
	released := false
	release := func() {
		if !released {
			released = true
			e.host.mu.Lock()
			e.host.hold = nil
			e.host.mu.Unlock()
			close(hold)
		}
	}
	defer release()
	held := make(chan gitAnswer, 3)
	for range 2 {
		go func() { held <- e.do(gitRequest{repo: "octocat/hello-world", c: c, git: true}) }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.host.waiting.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the two requests did not reach the Git host (%d waiting)", e.host.waiting.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	tests := []struct {
		name   string
		r      gitRequest
		status int
		plain  bool
	}{
		{"git, third", gitRequest{repo: "octocat/hello-world", c: c, git: true}, http.StatusTooManyRequests, true},
		{"git, third, without credentials", gitRequest{repo: "octocat/hello-world", git: true}, http.StatusTooManyRequests, true},
		{"API client, third", gitRequest{repo: "octocat/hello-world", c: c}, http.StatusTooManyRequests, false},
	}
	for _, tc := range tests {
		a := e.do(tc.r)
		if a.status != tc.status || a.retry != "1" || strings.HasPrefix(a.ctype, "text/plain") != tc.plain {
			t.Fatalf("%s: %d %q Retry-After %q\n%s", tc.name, a.status, a.ctype, a.retry, a.body)
		}
		if tc.plain && !strings.Contains(a.body, "Too many Git requests from your address at once (at most 2)") ||
			!tc.plain && a.code != "too_many_concurrent_requests" {
			t.Fatalf("%s: body %s", tc.name, a.body)
		}
	}
	// Another address is not held to this one's slots: it reaches the
	// host (and waits there with the other two).
	go func() { held <- e.do(gitRequest{repo: "octocat/hello-world", c: c, from: "127.0.0.2", git: true}) }()
	for e.host.waiting.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the request from 127.0.0.2 did not reach the Git host (%d waiting)", e.host.waiting.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	release()
	for range 3 {
		if a := <-held; a.status != http.StatusOK {
			t.Fatalf("a held request: %d %s", a.status, a.body)
		}
	}
	for range 2 {
		if a := e.do(gitRequest{repo: "octocat/hello-world", c: c, git: true}); a.status != http.StatusOK {
			t.Fatalf("after the held requests ended: %d %s", a.status, a.body)
		}
	}
}

// abandonFetch asks for repo's pack at want (protocol v0: a want, a flush,
// done) and closes the connection after the first 64 KiB of the answer.
func (e *gitEnv) abandonFetch(c cred, repo, want string) {
	e.t.Helper()
	body := fmt.Sprintf("%04xwant %s\n0000%04xdone\n", len("want \n")+len(want)+4, want, len("done\n")+4)
	req, _ := http.NewRequest(http.MethodPost, e.url(repo)+"/git-upload-pack", strings.NewReader(body))
	req.SetBasicAuth(c.id, c.token)
	req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
	req.Header.Set("User-Agent", "git/2.39.5")
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		e.t.Fatalf("POST git-upload-pack: %v", err)
	}
	n, _ := io.CopyN(io.Discard, res.Body, 64<<10)
	res.Body.Close() // before the end: the connection is closed
	if res.StatusCode != http.StatusOK || n != 64<<10 {
		e.t.Fatalf("POST git-upload-pack: %d, %d bytes read", res.StatusCode, n)
	}
}

// waitOK repeats r until it is answered 200, for up to 10 s (a slot comes
// back when the relay notices the client has gone), and returns the last
// answer.
func (e *gitEnv) waitOK(r gitRequest) gitAnswer {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := e.do(r)
		if a.status == http.StatusOK || time.Now().After(deadline) {
			return a
		}
		time.Sleep(20 * time.Millisecond)
	}
}

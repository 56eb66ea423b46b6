package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/sdk/client"
)

// The workers commands against the real Arbor are tested in cmd/arbor
// (grape_workers_test.go); these are the answers given before any request.

func TestWorkersUsage(t *testing.T) {
	e := env(t, "")
	tok, err := client.NewWorkerToken()
	if err != nil {
		t.Fatal(err)
	}
	const id = "0b6f8e2a-4c1d-4e5f-9a7b-3c2d1e0f9a8b"
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"workers"}, 2, "subcommand"},
		{[]string{"workers", "delete"}, 2, `unknown command "delete"`},
		{[]string{"workers", "register"}, 2, "usage: grape workers register NAME"},
		{[]string{"workers", "rename", id}, 2, "usage: grape workers rename ID NAME"},
		{[]string{"workers", "list", "x"}, 2, "usage: grape workers list"},
		{[]string{"workers", "rotate", "build-01"}, 2, "not a worker id"},
		{[]string{"workers", "rename", "nope", "x"}, 2, "not a worker id"},
		{[]string{"workers", "revoke", "--yes", tok}, 2, "worker token, not a worker id"},
		// Not a terminal (stdin is a pipe here) and no --yes.
		{[]string{"workers", "revoke", id}, 2, "pass --yes"},
		{[]string{"workers", "list"}, 1, "run `grape login --server URL` first"},
		{[]string{"workers", "register", "build-01", "--env"}, 1, "run `grape login --server URL` first"},
		{[]string{"workers", "revoke", "--yes", id}, 1, "run `grape login --server URL` first"},
	} {
		r := grape(t, e, "", c.args...)
		if r.code != c.code || r.stdout != "" || !strings.Contains(r.stderr, c.want) {
			t.Errorf("grape %s: exit %d, stdout %q, stderr %q; want exit %d and %q", strings.Join(c.args, " "), r.code, r.stdout, r.stderr, c.code, c.want)
		}
		if strings.Contains(r.stderr, tok) {
			t.Errorf("grape %s printed the token", strings.Join(c.args, " "))
		}
	}
}

// TestWorkersRegisterRepoCredential: `grape workers register NAME --scope
// … --repo …` posts the scopes and patterns to the workers API (a small
// fake here; the real API is tested in app and cmd/arbor) and prints the
// id and token as git's credential helper lines; Arbor's refusals of a
// scope are usage errors (exit 2) with its message; --repo without
// --scope sends nothing.
func TestWorkersRegisterRepoCredential(t *testing.T) {
	const id = "0b6f8e2a-4c1d-4e5f-9a7b-3c2d1e0f9a8b"
	tok, err := client.NewWorkerToken()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(string(b), "git:admin") {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_scope","message":"unknown scope \"git:admin\": use git:read or git:write"}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"worker":{"id":"`+id+`","name":"argocd","created_at":"2026-12-07T12:00:00Z","scopes":["git:read"],"repos":["octocat/*"]},"token":"`+tok+`"}`)
	}))
	defer srv.Close()
	e := env(t, "")
	authFile := filepath.Join(t.TempDir(), "auth.json")
	if err := (client.FileStore{Path: authFile}).Save(&client.Token{AccessToken: "access-1", RefreshToken: "refresh-1",
		Expiry: time.Now().Add(time.Hour), Server: srv.URL}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args           []string
		code           int
		stdout, stderr string
		body           string // the request's, "" for none
	}{
		{[]string{"--scope", "git:read", "--repo", "octocat/*"}, 0,
			"username=" + id + "\npassword=" + tok + "\n", "", `POST /api/workers {"name":"argocd","scopes":["git:read"],"repos":["octocat/*"]}`},
		{[]string{"--scope", "git:read", "--repo", "octocat/*", "--env"}, 0,
			"username=" + id + "\npassword=" + tok + "\n", "Registered repository credential argocd (id " + id + "), scopes git:read, repositories octocat/*.",
			`POST /api/workers {"name":"argocd","scopes":["git:read"],"repos":["octocat/*"]}`},
		{[]string{"--scope", "git:admin"}, 2, "", "use git:read or git:write", `POST /api/workers {"name":"argocd","scopes":["git:admin"]}`},
		{[]string{"--repo", "octocat/*"}, 2, "", "--repo is for a repository credential: add --scope git:read", ""},
	} {
		mu.Lock()
		bodies = nil
		mu.Unlock()
		args := append([]string{"workers", "register", "argocd", "--config-file", authFile}, c.args...)
		r := grape(t, e, "", args...)
		if r.code != c.code || !strings.Contains(r.stdout, c.stdout) || !strings.Contains(r.stderr, c.stderr) {
			t.Errorf("grape %s: exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout with %q, stderr with %q",
				strings.Join(args, " "), r.code, r.stdout, r.stderr, c.code, c.stdout, c.stderr)
		}
		if c.code != 0 && r.stdout != "" || strings.Contains(r.stderr, tok) {
			t.Errorf("grape %s: stdout %q; the token belongs on stdout only, after a success", strings.Join(args, " "), r.stdout)
		}
		mu.Lock()
		got := strings.Join(bodies, "\n")
		mu.Unlock()
		if got != c.body {
			t.Errorf("grape %s sent %q, want %q", strings.Join(args, " "), got, c.body)
		}
	}
}

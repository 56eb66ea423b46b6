package main

import (
	"strings"
	"testing"

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

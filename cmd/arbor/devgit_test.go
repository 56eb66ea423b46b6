package main

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/vintner/arbor/internal/fakegit/gittest"
	"github.com/vintner/arbor/plugins/builtin/fakes"
)

// TestDevGitHosts: `arbor dev` serves octocat/hello-world behind the fake
// GitHub, and repositories behind the fake GitLab (one in a subgroup) and
// Bitbucket, each refusing a token its provider did not issue; the
// providers' git_url points at them.
func TestDevGitHosts(t *testing.T) {
	gittest.NeedGit(t)
	set, err := fakes.Start("http://127.0.0.1:1", fakes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	stop, env, banner := startDevGitHosts(set, io.Discard)
	defer stop()
	want := []string{"/git/bitbucket/atlas/hello-world.git", "/git/github/octocat/hello-world.git",
		"/git/gitlab/jsmith/hello-world.git", "/git/gitlab/vintner/platform/hello-world.git"}
	if !slices.Equal(banner, want) || len(env) != 3 {
		t.Fatalf("banner %q, env %q", banner, env)
	}
	for _, kv := range env {
		k, u, _ := strings.Cut(kv, "=")
		name := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(k, "ARBOR_PROVIDERS_"), "_GIT_URL"))
		user := devGitHosts[name].user
		for repo := range devGitHosts[name].repos {
			req, _ := http.NewRequest("GET", u+"/"+repo+".git/info/refs?service=git-upload-pack", nil)
			req.SetBasicAuth(user, "not-a-token-of-"+name)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s %s with a made-up token: %s", name, repo, res.Status)
			}
		}
	}
}

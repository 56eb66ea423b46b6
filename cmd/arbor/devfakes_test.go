package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

// TestDevFakeMemberships: the fakes of `arbor dev` know memberships
// (octocat in organisation vintner and team vintner/platform, hubot in
// none, acme restricting OAuth apps; a user with groups at every other
// fake), and their control endpoint changes them over HTTP.
func TestDevFakeMemberships(t *testing.T) {
	set, err := fakes.Start("http://127.0.0.1:1", fakes.Options{Edit: devFakeMemberships})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	gh := set.Fakes["github"]
	if got := gh.VisibleGroups("octocat"); !slices.Equal(got, []string{"vintner", "vintner/platform"}) {
		t.Errorf("octocat's visible groups %q", got)
	}
	if got := gh.Memberships("octocat"); !slices.Contains(got, "acme") || !slices.Contains(gh.Config().RestrictedOrgs, "acme") {
		t.Errorf("octocat's memberships %q, restricted %q", got, gh.Config().RestrictedOrgs)
	}
	if got := gh.VisibleGroups("hubot"); len(got) != 0 {
		t.Errorf("hubot's groups %q", got)
	}
	for _, name := range []string{"gitlab", "bitbucket", "google"} {
		f := set.Fakes[name]
		if got := f.VisibleGroups(f.Config().Users[0].Login); len(got) == 0 {
			t.Errorf("%s: the first user belongs to no group", name)
		}
	}

	resp, err := http.Post(gh.URL()+fakeprovider.ControlMembershipsPath, "application/json",
		strings.NewReader(`{"user": "octocat", "groups": ["vintner"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("control endpoint: %s", resp.Status)
	}
	if got := gh.VisibleGroups("octocat"); !slices.Equal(got, []string{"vintner"}) {
		t.Errorf("after leaving the team: %q", got)
	}
}

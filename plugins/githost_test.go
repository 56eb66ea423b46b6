package plugins_test

import (
	"context"
	"testing"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
)

// TestGitHostOnPluginBuiltBefore: a v1 plugin built before the git_host
// operation (testdata/v1-before-groups predates it too) keeps loading and
// working; GitHost answers unsupported without calling it, so the app
// falls back to the operator's git_url and git_user.
func TestGitHostOnPluginBuiltBefore(t *testing.T) {
	p, f := loadBeforeGroups(t)
	ctx := context.Background()
	if p.Implements(abi.OpGitHost) || !p.Implements(abi.OpRepos) {
		t.Errorf("Implements: git_host %v repos %v", p.Implements(abi.OpGitHost), p.Implements(abi.OpRepos))
	}
	calls := p.Stats().Calls
	h, err := p.GitHost(ctx)
	if h != nil || plugins.CodeOf(err) != abi.CodeUnsupported {
		t.Fatalf("GitHost = %+v, %v; want unsupported", h, err)
	}
	if got := p.Stats().Calls; got != calls {
		t.Errorf("GitHost on a plugin without it called the plugin (%d calls, want %d)", got, calls)
	}
	// What it has still works.
	if v, err := p.AuthorizeParams(ctx, plugins.AuthorizeInput{Purpose: abi.PurposeGit}); err != nil || v.Get("client_id") == "" {
		t.Errorf("AuthorizeParams = %v, %v", v, err)
	}
	if calls := f.called(); len(calls) != 0 {
		t.Errorf("the provider was called: %v", calls)
	}
}

// TestGitHostUnsupportedByTestPlugin: a plugin built with today's SDK
// whose provider declares no Git host (testdata/good) reports no git_host
// in its marker, and GitHost answers unsupported.
func TestGitHostUnsupportedByTestPlugin(t *testing.T) {
	h, _ := newHost(t, plugins.Policy{})
	f := newFake(t)
	p := load(t, h, "good", f.config())
	if p.Implements(abi.OpGitHost) {
		t.Error("testdata/good implements git_host")
	}
	if _, err := p.GitHost(context.Background()); plugins.CodeOf(err) != abi.CodeUnsupported {
		t.Fatalf("GitHost: %v, want unsupported", err)
	}
}

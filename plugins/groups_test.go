package plugins_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/plugins/internal/wasmbin"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/abi/manifest"
)

// loadBeforeGroups loads testdata/v1-before-groups: the built-in GitHub
// plugin as committed before ABI v1 had the groups and git_host
// operations, answering the fake provider it returns.
func loadBeforeGroups(t *testing.T) (*plugins.Plugin, *fake) {
	t.Helper()
	dir := t.TempDir()
	gz, err := os.ReadFile(filepath.Join("testdata", "v1-before-groups", "github.wasm.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	man, err := os.ReadFile(filepath.Join("testdata", "v1-before-groups", manifest.File))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "github.wasm"), mod, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, manifest.File), man, 0o644); err != nil {
		t.Fatal(err)
	}
	// It really is from before: no arbor_groups or arbor_git_host export.
	bin, err := wasmbin.Parse(mod)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []abi.Op{abi.OpGroups, abi.OpGitHost} {
		if _, ok := bin.Funcs[op.Export()]; ok {
			t.Fatalf("the fixture exports %s: it is not a module built before the operation existed", op.Export())
		}
	}

	h, _ := newHost(t, plugins.Policy{})
	f := newFake(t)
	p, err := h.LoadDir(context.Background(), dir, f.config())
	if err != nil {
		t.Fatalf("a v1 plugin built before groups does not load: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p, f
}

// TestGroupsOnPluginBuiltBefore: testdata/v1-before-groups is the built-in
// GitHub plugin exactly as it was committed before ABI v1 had the groups
// operation (module gzipped, manifest unchanged). It must keep loading and
// working, and Groups answers unsupported without calling it.
func TestGroupsOnPluginBuiltBefore(t *testing.T) {
	p, f := loadBeforeGroups(t)
	ctx := context.Background()

	if p.Implements(abi.OpGroups) || !p.Implements(abi.OpUser) || !p.Implements(abi.OpRepos) {
		t.Errorf("Implements: groups %v user %v repos %v", p.Implements(abi.OpGroups), p.Implements(abi.OpUser), p.Implements(abi.OpRepos))
	}
	before := len(f.called())
	g, err := p.Groups(ctx, plugins.GroupsInput{AccessToken: "at-1", Wanted: []string{"vintner"}})
	if g != nil || plugins.CodeOf(err) != abi.CodeUnsupported {
		t.Fatalf("Groups = %+v, %v; want unsupported", g, err)
	}
	if calls := f.called(); len(calls) != before {
		t.Errorf("Groups on a plugin without it reached the provider: %v", calls[before:])
	}
	// The operations it has still work, and WithGroups asks for nothing
	// more from a plugin that cannot use it.
	for _, withGroups := range []bool{false, true} {
		v, err := p.AuthorizeParams(ctx, plugins.AuthorizeInput{Purpose: abi.PurposeLogin, WithGroups: withGroups})
		if err != nil {
			t.Fatal(err)
		}
		if got := v.Get("scope"); got != "read:user user:email" {
			t.Errorf("WithGroups %v: scope %q, want the login scopes only", withGroups, got)
		}
	}
	if st := p.Stats(); st.Discarded != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestGroupsUnsupportedByTestPlugin: a plugin built with today's SDK whose
// provider has no Groups method (testdata/good) reports no groups in its
// marker, and Groups answers unsupported, as Repos does on a login-only
// plugin.
func TestGroupsUnsupportedByTestPlugin(t *testing.T) {
	h, _ := newHost(t, plugins.Policy{})
	f := newFake(t)
	p := load(t, h, "good", f.config())
	if p.Implements(abi.OpGroups) || !p.Implements(abi.OpExchange) {
		t.Errorf("Implements groups %v exchange %v", p.Implements(abi.OpGroups), p.Implements(abi.OpExchange))
	}
	_, err := p.Groups(context.Background(), plugins.GroupsInput{AccessToken: "at-1"})
	if plugins.CodeOf(err) != abi.CodeUnsupported {
		t.Fatalf("Groups: %v, want unsupported", err)
	}
	p.Close()
	if p.Implements(abi.OpExchange) {
		t.Error("a closed plugin implements exchange")
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `arbor plugin test --fake-config FILE` runs the kit against a fake
// described in a file: the Gitea example plugin passes against the generic
// description (examples/fakes/gitea.yaml). A description whose paths do not
// fit the plugin, an unusable description and both flags at once are
// errors that say what to change.
func TestPluginTestFakeConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gitea")
	env := append(os.Environ(), "HOME="+t.TempDir())
	out, errOut, code := runArbor(t, append(env, "GOCACHE="+goCache(t)), "plugin", "build", filepath.Join("..", "..", "examples", "gitea"), "-o", dir)
	if code != 0 {
		t.Fatalf("plugin build: exit %d\n%s\n%s", code, out, errOut)
	}
	fakes := filepath.Join("..", "..", "examples", "fakes")
	gitea := filepath.Join(fakes, "gitea.yaml")
	out, errOut, code = runArbor(t, env, "plugin", "test", dir, "--fake-config", gitea, "--cache-dir", pluginCacheDir(t))
	if code != 0 || strings.Contains(out, "FAIL ") || !strings.Contains(out, "0 failed") || strings.Count(out, "PASS ") < 5 {
		t.Fatalf("plugin test --fake-config gitea.yaml: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "(fake: "+gitea+")") {
		t.Errorf("the summary does not name the description:\n%s", out)
	}

	// Gitee's paths are not the Gitea plugin's: the setup error names the
	// description's fields to change.
	_, errOut, code = runArbor(t, env, "plugin", "test", dir, "--fake-config", filepath.Join(fakes, "gitee.yaml"), "--cache-dir", pluginCacheDir(t))
	if code != 1 || !strings.Contains(errOut, "paths.token") || !strings.Contains(errOut, "--fake-config") {
		t.Fatalf("gitee.yaml against the Gitea plugin: exit %d, %s", code, errOut)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	for _, tc := range []struct {
		content string
		args    []string
		want    []string
	}{
		{"paging:\n  style: cursor\n", nil, []string{"--fake-config", "bad.yaml", "paging.style", `"cursor"`}},
		{"grants:\n  refresh_token:\n    client_auth: nobody\ntokens:\n  refresh: true\n", nil, []string{"grants.refresh_token.client_auth"}},
		{"paths:\n  token: /t\nextra: 1\n", nil, []string{"line 3", "extra"}},
		{"", []string{"--fake", "generic"}, []string{"not both"}},
	} {
		os.WriteFile(bad, []byte(tc.content), 0o644)
		args := append([]string{"plugin", "test", dir, "--fake-config", bad}, tc.args...)
		_, errOut, code := runArbor(t, env, args...)
		if code != 2 {
			t.Errorf("%q %v: exit %d, want 2 (usage): %s", tc.content, tc.args, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%q %v: error %q lacks %q", tc.content, tc.args, errOut, w)
			}
		}
	}
	if _, errOut, code := runArbor(t, env, "plugin", "test", dir); code != 2 || !strings.Contains(errOut, "--fake-config FILE") {
		t.Errorf("neither flag: exit %d, %s", code, errOut)
	}
}

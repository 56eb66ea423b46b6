package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `arbor plugin test examples/gitee --fake-config examples/fakes/gitee.yaml`
// builds the example from its source and passes every applicable case
// against the fake Gitee, leaving the source directory as it was; a source
// that does not compile is reported as such.
func TestPluginTestGiteeExample(t *testing.T) {
	env := append(os.Environ(), "HOME="+t.TempDir(), "GOCACHE="+goCache(t))
	src := filepath.Join("..", "..", "examples", "gitee")
	desc := filepath.Join("..", "..", "examples", "fakes", "gitee.yaml")
	out, errOut, code := runArbor(t, env, "plugin", "test", src, "--fake-config", desc, "--cache-dir", pluginCacheDir(t))
	if code != 0 || strings.Contains(out, "FAIL ") || !strings.Contains(out, " 0 failed") || strings.Count(out, "PASS ") < 15 {
		t.Fatalf("plugin test examples/gitee: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, c := range []string{"client_auth", "refresh", "user", "repos_per_page"} {
		if !strings.Contains(out, "PASS  "+c+" ") {
			t.Errorf("case %s did not pass:\n%s", c, out)
		}
	}
	if _, err := os.Stat(filepath.Join(src, "gitee.wasm")); !os.IsNotExist(err) {
		t.Errorf("the source directory got a module: %v", err)
	}

	broken := t.TempDir()
	manifest, err := os.ReadFile(filepath.Join(src, "plugin.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(broken, "plugin.json"), manifest, 0o644)
	os.WriteFile(filepath.Join(broken, "go.mod"), []byte("module broken\n"), 0o644)
	os.WriteFile(filepath.Join(broken, "main.go"), []byte("package main\n\nfunc main() { undefined() }\n"), 0o644)
	_, errOut, code = runArbor(t, env, "plugin", "test", broken, "--fake-config", desc)
	if code != 1 || !strings.Contains(errOut, "holds Go source") || !strings.Contains(errOut, "undefined") {
		t.Errorf("a plugin source that does not compile: exit %d, %s", code, errOut)
	}
}

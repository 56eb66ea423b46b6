package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vintner/arbor/plugins/builtin"
	"github.com/vintner/arbor/sdk/plugintest"
)

// pluginCacheDir is the wazero compilation cache these tests share with the
// rest of Arbor's tests, so that only the first run compiles the built-in
// plugins (which takes half a minute in a race-enabled binary).
func pluginCacheDir(t *testing.T) string {
	t.Helper()
	dir := plugintest.DefaultCacheDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// extractBuiltin copies the named built-in plugin into dir/name.
func extractBuiltin(t *testing.T, name, dir string) string {
	t.Helper()
	sub, ok := builtin.Plugin(name)
	if !ok {
		t.Fatalf("no built-in plugin %q", name)
	}
	out := filepath.Join(dir, name)
	err := fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(out, p), 0o755)
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(out, p), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// logLines returns the JSON log lines of s whose msg is msg.
func logLines(s, msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// waitLog waits until the server has logged a line with msg (and, if
// field is set, with field == value) and returns it.
func waitLog(t *testing.T, s *server, timeout time.Duration, msg, field, value string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, l := range logLines(s.logs.String(), msg) {
			if field == "" || l[field] == value {
				return l
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("arbor serve exited while waiting for %q: %v\n%s", msg, err, s.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("no %q log line (%s=%s) within %v\n%s", msg, field, value, timeout, s.logs.String())
	return nil
}

func TestPluginInspect(t *testing.T) {
	dir := extractBuiltin(t, "github", t.TempDir())
	out, errOut, code := runArbor(t, os.Environ(), "plugin", "inspect", dir)
	if code != 0 {
		t.Fatalf("inspect exit %d\n%s\n%s", code, out, errOut)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "plugin.json"))
	var m struct{ SHA256 string }
	json.Unmarshal(raw, &m)
	for _, want := range []string{"name:", "github", "kind:", "both", "manifest 1, module 1", m.SHA256 + " (matches the manifest)",
		"arbor_abi_v1", "arbor_exchange", "func(i32, i32) i64", "arbor_v1.http_do", "status: ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	// The module path works as well as the directory.
	if out2, _, code := runArbor(t, os.Environ(), "plugin", "inspect", filepath.Join(dir, "builtin.wasm")); code != 0 || out2 != out {
		t.Errorf("inspect of the module path: exit %d, output differs:\n%s", code, out2)
	}

	// A module changed after the manifest was written is refused, with both hashes.
	mod := filepath.Join(dir, "builtin.wasm")
	b, _ := os.ReadFile(mod)
	os.WriteFile(mod, append(b, 0, 0, 0, 0, 0, 0, 0, 0), 0o644) // trailing junk: a custom section would be valid; this is not
	out, errOut, code = runArbor(t, os.Environ(), "plugin", "inspect", dir)
	if code != 1 || !strings.Contains(out, "MISMATCH") || !strings.Contains(errOut, "would refuse") {
		t.Fatalf("tampered module: exit %d\n%s\n%s", code, out, errOut)
	}

	// Not a plugin at all.
	_, errOut, code = runArbor(t, os.Environ(), "plugin", "inspect", t.TempDir())
	if code == 0 || !strings.Contains(errOut, "plugin.json") {
		t.Fatalf("empty directory: exit %d, %s", code, errOut)
	}
}

func TestPluginTestBuiltin(t *testing.T) {
	dir := extractBuiltin(t, "gitlab", t.TempDir())
	env := append(os.Environ(), "HOME="+t.TempDir())
	out, errOut, code := runArbor(t, env, "plugin", "test", dir, "--fake", "gitlab", "--cache-dir", pluginCacheDir(t))
	if code != 0 {
		t.Fatalf("plugin test exit %d\n%s\n%s", code, out, errOut)
	}
	passed := strings.Count(out, "PASS ")
	if passed < 5 || strings.Contains(out, "FAIL ") || !strings.Contains(out, "0 failed") {
		t.Fatalf("plugin test output (%d passed):\n%s", passed, out)
	}
	for _, c := range plugintest.CaseNames() {
		if !strings.Contains(out, " "+c) {
			t.Errorf("no line for case %s:\n%s", c, out)
		}
	}

	_, errOut, code = runArbor(t, env, "plugin", "test", dir, "--fake", "nope")
	if code != 2 || !strings.Contains(errOut, "github") {
		t.Fatalf("unknown fake: exit %d, %s", code, errOut)
	}
}

// A plugin that fails the kit makes `arbor plugin test` exit 1 with FAIL
// lines: the GitHub plugin pointed at the generic (Gitea-like) fake, whose
// API paths differ.
func TestPluginTestReportsFailures(t *testing.T) {
	dir := extractBuiltin(t, "github", t.TempDir())
	env := append(os.Environ(), "HOME="+t.TempDir())
	out, errOut, code := runArbor(t, env, "plugin", "test", dir, "--fake", "generic", "--cache-dir", pluginCacheDir(t))
	if code != 1 || !strings.Contains(out, "FAIL ") || !strings.Contains(errOut, "cases failed") {
		t.Fatalf("mismatched fake: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestPluginReloadWithoutServer(t *testing.T) {
	e := newTestEnv(t)
	_, errOut, code := runArbor(t, e.env, "plugin", "reload")
	if code != 1 || !strings.Contains(errOut, "no 'arbor serve' is running") || !strings.Contains(errOut, e.dataDir) {
		t.Fatalf("reload without server: exit %d, %s", code, errOut)
	}
}

func TestServePluginsLoadReloadAndSurviveBrokenPlugins(t *testing.T) {
	e := newTestEnv(t)
	pluginsDir := filepath.Join(e.dataDir, "plugins")
	// A plugin with a broken manifest is in the directory from the start.
	os.MkdirAll(filepath.Join(pluginsDir, "junk"), 0o755)
	os.WriteFile(filepath.Join(pluginsDir, "junk", "plugin.json"), []byte(`{"name": "junk", "abi_version": 1, "bogus": true}`), 0o644)

	env := e.with("ARBOR_PLUGINS_CACHE_DIR=" + pluginCacheDir(t))
	srv := startServe(t, env)
	waitLog(t, srv, 3*time.Minute, "plugins loaded", "", "")
	logs := srv.logs.String()
	var serving []string
	for _, l := range logLines(logs, "plugin serving") {
		serving = append(serving, l["plugin"].(string))
		if l["version"] == "" || l["kind"] == nil {
			t.Errorf("plugin line without version or kind: %v", l)
		}
	}
	slices.Sort(serving)
	if !slices.Equal(serving, builtin.Names()) || len(serving) != 4 {
		t.Fatalf("plugins serving = %v, want the built-ins %v\n%s", serving, builtin.Names(), logs)
	}
	if l := logLines(logs, "some plugins failed to load; the others serve"); len(l) != 1 || !strings.Contains(l[0]["errors"].([]any)[0].(string), "junk") {
		t.Fatalf("broken plugin at start not reported: %v\n%s", l, logs)
	}
	resp, err := http.Get("http://" + srv.addr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz after plugins loaded: %v %v", resp, err)
	}
	resp.Body.Close()

	// arbor plugin reload through the admin socket: the broken one is
	// reported again and the built-ins keep serving.
	os.RemoveAll(filepath.Join(pluginsDir, "junk"))
	out, errOut, code := runArbor(t, env, "plugin", "reload")
	if code != 0 || !strings.Contains(out, "reloaded: 4 plugins serving") {
		t.Fatalf("plugin reload: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, n := range builtin.Names() {
		if !strings.Contains(out, n+" ") {
			t.Errorf("reload output lacks %s:\n%s", n, out)
		}
	}
	waitLog(t, srv, 10*time.Second, "plugins reloaded", "trigger", "admin")

	// SIGHUP reloads too, and does not kill the server.
	srv.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, srv, 30*time.Second, "plugins reloaded", "trigger", "SIGHUP")

	// A broken replacement of a built-in (module changed after its
	// manifest was written) is refused; the built-in keeps serving.
	gh := extractBuiltin(t, "github", pluginsDir)
	mod := filepath.Join(gh, "builtin.wasm")
	b, _ := os.ReadFile(mod)
	b[len(b)-1] ^= 0xff
	os.WriteFile(mod, b, 0o644)
	out, errOut, code = runArbor(t, env, "plugin", "reload")
	if code != 1 || !strings.Contains(out, "error: ") || !strings.Contains(out, "github") ||
		!strings.Contains(out, "previous version keeps serving") || !strings.Contains(errOut, "failed to load") {
		t.Fatalf("reload with a broken github: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, n := range builtin.Names() {
		if !strings.Contains(out, n+" ") {
			t.Errorf("after a failed reload %s is not serving:\n%s", n, out)
		}
	}
	resp, err = http.Get("http://" + srv.addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("gateway after a failed plugin reload: %v %v", resp, err)
	}
	resp.Body.Close()

	if err := srv.stop(t); err != nil {
		t.Fatalf("serve exited with %v\n%s", err, srv.logs.String())
	}
	logs = srv.logs.String()
	if pc, sc := strings.Index(logs, `"plugins closed"`), strings.LastIndex(logs, `"store closed"`); pc < 0 || sc < pc {
		t.Errorf("plugins not closed before the store:\n%s", logs)
	}
}

// `arbor plugin build` is reproducible: building the Gitee example's
// source twice gives the same module, byte for byte, and a manifest whose
// sha256 is the module's; the source directory is left alone with -o. (The
// built-in plugins are one module built by `make plugins`, whose test in
// plugins/builtin rebuilds it and compares it with the committed one.)
func TestPluginBuild(t *testing.T) {
	// The source must build inside this module, so build from its own
	// directory and write elsewhere.
	srcDir := filepath.Join("..", "..", "examples", "gitee")
	before, _ := os.ReadFile(filepath.Join(srcDir, "plugin.json"))
	var out string
	var mods [2][]byte
	var outDir string
	for i := range mods {
		outDir = t.TempDir()
		var errOut string
		var code int
		out, errOut, code = runArbor(t, os.Environ(), "plugin", "build", srcDir, "-o", outDir)
		if code != 0 {
			t.Fatalf("plugin build: exit %d\n%s\n%s", code, out, errOut)
		}
		var err error
		if mods[i], err = os.ReadFile(filepath.Join(outDir, "gitee.wasm")); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := os.ReadFile(filepath.Join(srcDir, "plugin.json"))
	if string(before) != string(after) {
		t.Fatal("plugin build -o changed the source manifest")
	}
	if len(mods[0]) == 0 || !bytes.Equal(mods[0], mods[1]) {
		t.Fatalf("two builds of the same source differ (%d and %d bytes)", len(mods[0]), len(mods[1]))
	}
	sum := sha256.Sum256(mods[1])
	gotMan, _ := os.ReadFile(filepath.Join(outDir, "plugin.json"))
	if !strings.Contains(string(gotMan), `"sha256": "`+hex.EncodeToString(sum[:])+`"`) {
		t.Fatalf("built manifest does not carry the module's sha256:\n%s", gotMan)
	}
	if !strings.Contains(out, "sha256 ") {
		t.Errorf("build output: %s", out)
	}
	if _, _, code := runArbor(t, os.Environ(), "plugin", "inspect", outDir); code != 0 {
		t.Fatal("the built plugin does not inspect clean")
	}
	// A directory without a plugin is an error naming the problem.
	if _, errOut, code := runArbor(t, os.Environ(), "plugin", "build", filepath.Join(t.TempDir(), "nope")); code == 0 || !strings.Contains(errOut, "plugin.json") {
		t.Fatalf("build of a missing dir: exit %d %s", code, errOut)
	}
}

// The Gitea example plugin, built with `arbor plugin build` into the
// plugins directory of a running server, serves after `arbor plugin
// reload`: no rebuild or restart of Arbor.
func TestServeLoadsExamplePluginWithoutRestart(t *testing.T) {
	e := newTestEnv(t)
	env := e.with("ARBOR_PLUGINS_CACHE_DIR=" + pluginCacheDir(t))
	srv := startServe(t, env)
	waitLog(t, srv, 3*time.Minute, "plugins loaded", "", "")

	dest := filepath.Join(e.dataDir, "plugins", "gitea")
	out, errOut, code := runArbor(t, append(env, "GOCACHE="+goCache(t)), "plugin", "build", filepath.Join("..", "..", "examples", "gitea"), "-o", dest)
	if code != 0 {
		t.Fatalf("plugin build: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = runArbor(t, env, "plugin", "reload")
	if code != 0 || !strings.Contains(out, "gitea ") || !strings.Contains(out, "reloaded: 5 plugins serving") {
		t.Fatalf("plugin reload: exit %d\n%s\n%s", code, out, errOut)
	}
	l := waitLog(t, srv, 10*time.Second, "plugin loaded", "plugin", "gitea")
	if l["version"] != "0.1.0" {
		t.Errorf("gitea loaded as %v", l)
	}
}

// goCache is the go build cache of the test's own environment (the test
// env's HOME is a fresh directory, which would make every build cold).
func goCache(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// The providers section reaches the plugins: an endpoint override the host
// refuses makes that plugin fail to load (reported, the others serve), and
// a client secret file other users can read stops the start (exit 2).
func TestServeProviderConfig(t *testing.T) {
	e := newTestEnv(t)
	secret := filepath.Join(e.dataDir, "gh-secret")
	os.WriteFile(secret, []byte("s3cret-value\n"), 0o644)
	env := e.with("ARBOR_PLUGINS_CACHE_DIR="+pluginCacheDir(t),
		"ARBOR_PROVIDERS_GITHUB_CLIENT_SECRET_FILE="+secret, "ARBOR_LISTEN="+freeAddr(t))
	_, errOut, code := runArbor(t, env, "serve")
	if code != 2 || !strings.Contains(errOut, "chmod 600") || strings.Contains(errOut, "s3cret-value") {
		t.Fatalf("world-readable client secret file: exit %d, %s", code, errOut)
	}
	os.Chmod(secret, 0o600)

	srv := startServe(t, e.with("ARBOR_PLUGINS_CACHE_DIR="+pluginCacheDir(t),
		"ARBOR_PROVIDERS_GITHUB_CLIENT_SECRET_FILE="+secret,
		"ARBOR_PROVIDERS_GITHUB_CLIENT_ID=Iv1.test",
		"ARBOR_PROVIDERS_GITLAB_TOKEN_URL=ftp://gitlab.example.com/token"))
	l := waitLog(t, srv, 3*time.Minute, "plugins loaded", "", "")
	if l["count"] != float64(3) {
		t.Fatalf("plugins loaded = %v, want the 3 whose configuration is valid\n%s", l, srv.logs.String())
	}
	errs := logLines(srv.logs.String(), "some plugins failed to load; the others serve")
	if len(errs) != 1 || !strings.Contains(errs[0]["errors"].([]any)[0].(string), `"gitlab"`) {
		t.Fatalf("bad gitlab configuration not reported: %v\n%s", errs, srv.logs.String())
	}
	if strings.Contains(srv.logs.String(), "s3cret-value") {
		t.Fatal("the client secret is in the log")
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/data/seal"
	"github.com/vintner/arbor/internal/freeport"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/plugintest"
)

// These tests run the real arbor binary, built once in TestMain.
var arborBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "arbor-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	arborBin = filepath.Join(dir, "arbor")
	build := exec.Command("go", "build", "-race", "-o", arborBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		// -race needs cgo; fall back to a plain build.
		build = exec.Command("go", "build", "-o", arborBin, ".")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building arbor:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type testEnv struct {
	dataDir string
	keyOld  string // id:base64
	keyNew  string
	env     []string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	// Keep the path short: Unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "arb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tok1, _ := config.GenerateToken()
	tok2, _ := config.GenerateToken()
	k1, _ := config.GenerateKeyringEntry(time.Now().Add(-48 * time.Hour))
	k2, _ := config.GenerateKeyringEntry(time.Now())
	return &testEnv{
		dataDir: dir,
		keyOld:  k1,
		keyNew:  k2,
		env: []string{
			"PATH=" + os.Getenv("PATH"),
			// Each server its own metrics port unless a test names one
			// (a later entry wins): the default, 127.0.0.1:9180, is shared
			// by every server on the host, other tests' and other
			// programs' alike.
			"ARBOR_SERVER_METRICS_LISTEN=127.0.0.1:0",
			"HOME=" + dir,
			"ARBOR_DATA_DIR=" + dir,
			"ARBOR_LOG_LEVEL=debug",
			config.EnvSessionKey + "=" + tok1,
			config.EnvCLIJWTSecret + "=" + tok2,
			config.EnvEncryptionKeys + "=" + k1,
		},
	}
}

func (e *testEnv) with(kv ...string) []string { return append(append([]string(nil), e.env...), kv...) }

func runArbor(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, arborBin, args...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("running arbor %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// server is a running `arbor serve`.
type server struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freeAddr returns a loopback address that was free a moment ago, for a
// server the test starts later (internal/freeport: below the kernel's
// ephemeral range, never twice).
func freeAddr(t *testing.T) string {
	t.Helper()
	a, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func startServe(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	return startServeAt(t, freeAddr(t), "/healthz", env, args...)
}

// startServeAt starts `arbor serve` listening on addr and waits until
// waitPath (/healthz: listening; /readyz: plugins loaded too) answers 200.
// A test picks addr itself when the public URL must be known before the
// server starts (fake providers redirect to it).
func startServeAt(t *testing.T, addr, waitPath string, env []string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(arborBin, append([]string{"serve"}, args...)...)
	// Tests run many servers at once: each gets its own metrics port
	// unless the test's env says otherwise.
	cmd.Env = append(append([]string{"ARBOR_SERVER_METRICS_LISTEN=127.0.0.1:0"}, env...), "ARBOR_LISTEN="+addr)
	s := &server{cmd: cmd, addr: addr, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("arbor serve log:\n%s", tail(s.logs.String(), 20000))
		}
	})
	// Readiness waits for the plugins, which are compiled on first use of
	// a module: on a loaded 2-core machine that compiles the rebuilt
	// built-ins for several servers at once, it has taken over a minute.
	// The bound is for a server that never gets ready, not a speed check.
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			t.Fatalf("arbor serve exited early: %v\n%s", err, s.logs.String())
		default:
		}
		resp, err := http.Get("http://" + addr + waitPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("arbor serve: %s did not answer 200\n%s", waitPath, s.logs.String())
	return nil
}

func (s *server) stop(t *testing.T) error {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("arbor serve did not stop after SIGTERM")
		return nil
	}
}

// seedConnection writes a user and a sealed connection into the store file.
func seedConnection(t *testing.T, path string, kr *seal.Keyring, token string) {
	t.Helper()
	st, err := boltdb.Open(path, boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now().UTC()
	if err := st.CreateUser(ctx, data.User{ID: "u1", Email: "ada@example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	env, err := kr.Seal([]byte(token), data.ConnectionAAD("u1", "github"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateConnection(ctx, data.Connection{UserID: "u1", Provider: "github", Sealed: env, Status: data.ConnectionActive, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

func keyring(t *testing.T, entries ...string) *seal.Keyring {
	t.Helper()
	keys, err := seal.ParseKeys(strings.Join(entries, ","))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func readConnection(t *testing.T, path string) data.Connection {
	t.Helper()
	st, err := boltdb.Open(path, boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.GetConnection(context.Background(), "u1", "github")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVersion(t *testing.T) {
	out, _, code := runArbor(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "arbor ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestKeysGenerateOutputIsUsable(t *testing.T) {
	out, _, code := runArbor(t, nil, "keys", "generate")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var environ []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		environ = append(environ, line)
	}
	if len(environ) != 3 {
		t.Fatalf("want 3 lines, got %q", out)
	}
	cfg, _ := config.Load(config.Source{})
	if _, err := config.LoadSecrets(cfg, environ, nil); err != nil {
		t.Fatalf("generated secrets do not load: %v", err)
	}
	out2, _, _ := runArbor(t, nil, "keys", "generate")
	if out == out2 {
		t.Fatal("two runs printed the same secrets")
	}
	if _, errOut, code := runArbor(t, nil, "keys", "generate", "--only", "bogus"); code != 2 || !strings.Contains(errOut, "--only") {
		t.Fatalf("bad --only: %d %q", code, errOut)
	}
}

func TestServeRefusesBadStart(t *testing.T) {
	e := newTestEnv(t)
	badYAML := filepath.Join(e.dataDir, "bad.yaml")
	os.WriteFile(badYAML, []byte("listen: 127.0.0.1:0\nupstreem:\n  url: http://x\n"), 0o600)
	inlineSecret := filepath.Join(e.dataDir, "secret.yaml")
	os.WriteFile(inlineSecret, []byte("secrets:\n  session_key: abcdefabcdefabcdefabcdefabcdefabcdef\n"), 0o600)
	corrupt := filepath.Join(e.dataDir, "corrupt.db")
	os.WriteFile(corrupt, bytes.Repeat([]byte("not a bbolt file "), 2048), 0o600)

	cases := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"no secrets", []string{"PATH=" + os.Getenv("PATH"), "ARBOR_DATA_DIR=" + e.dataDir}, nil,
			[]string{"ARBOR_SESSION_KEY is not set", "CLI_JWT_SECRET is not set", "ARBOR_ENCRYPTION_KEYS is not set", "arbor keys generate"}},
		{"short secret", e.with(config.EnvSessionKey + "=tooshort"), nil, []string{"ARBOR_SESSION_KEY is 8 bytes, want at least 32"}},
		{"unknown key", e.env, []string{"--config", badYAML}, []string{"bad.yaml:2", `unknown key "upstreem"`}},
		{"secret in yaml", e.env, []string{"--config", inlineSecret}, []string{"is a secret", "ARBOR_SESSION_KEY"}},
		{"missing config", e.env, []string{"--config", filepath.Join(e.dataDir, "nope.yaml")}, []string{"nope.yaml"}},
		{"corrupt store", e.with("ARBOR_STORE_PATH=" + corrupt), nil, []string{"corrupt.db"}},
		{"webhook without secret", e.with("ARBOR_CONNECTIONS_WEBHOOK_URL=http://127.0.0.1:9/hook"), nil,
			[]string{"connections.webhook_url is set but ARBOR_WEBHOOK_SECRET is not"}},
		{"short service token", e.with(config.EnvServiceTokens + "=argocd:abcdefabcdef"), nil,
			[]string{`service token "argocd"`, "at least 32 characters"}},
		{"malformed service tokens", e.with(config.EnvServiceTokens + "=abcdefabcdef"), nil,
			[]string{"ARBOR_SERVICE_TOKENS: each entry is name:token"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, code := runArbor(t, append(c.env, "ARBOR_LISTEN="+freeAddr(t)), append([]string{"serve"}, c.args...)...)
			if code == 0 {
				t.Fatalf("serve exited 0; stderr:\n%s", errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not say %q:\n%s", w, errOut)
				}
			}
			if strings.Contains(errOut, "tooshort") || strings.Contains(errOut, "abcdefabcdef") {
				t.Errorf("stderr echoes a secret:\n%s", errOut)
			}
		})
	}
	// The corrupt file is left as it was: nothing is lost.
	if b, _ := os.ReadFile(corrupt); !bytes.HasPrefix(b, []byte("not a bbolt file")) {
		t.Fatal("corrupt store file was modified")
	}
}

// One server run exercises the operator commands that must work while it
// serves: backup through the admin socket, key rotation, graceful shutdown.
func TestServeBackupRotateShutdown(t *testing.T) {
	e := newTestEnv(t)
	storePath := filepath.Join(e.dataDir, "arbor.db")
	const token = "gho_plaintextTokenThatMustNeverBeOnDisk"
	seedConnection(t, storePath, keyring(t, e.keyOld), token)

	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		fmt.Fprintf(w, "upstream saw %s", r.URL.Path)
	}))
	defer upstream.Close()

	// Public routes: this test is about serving, backup, rotation and
	// shutdown; sign-in has its own tests.
	env := e.with(config.EnvEncryptionKeys+"="+e.keyOld+","+e.keyNew, "ARBOR_UPSTREAM_URL="+upstream.URL, "ARBOR_AUTH_DEFAULT_ROUTE=public")
	srv := startServe(t, env)

	resp, err := http.Get("http://" + srv.addr + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "upstream saw /hello" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("proxy: %d %q %v", resp.StatusCode, body, resp.Header)
	}

	// Backup while serving: the store file is locked, so this goes through the server.
	backup := filepath.Join(e.dataDir, "backup.db")
	out, errOut, code := runArbor(t, env, "backup", "--to", backup)
	if code != 0 || !strings.Contains(out, "running server") {
		t.Fatalf("backup: %d\n%s\n%s", code, out, errOut)
	}
	if got := readConnection(t, backup); got.UserID != "u1" {
		t.Fatalf("backup lacks the connection: %+v", got)
	}
	if _, _, code := runArbor(t, env, "backup", "--to", backup); code != 2 {
		t.Fatalf("backup over an existing file without --force: exit %d", code)
	}

	// Rotate while serving.
	out, errOut, code = runArbor(t, env, "keys", "rotate")
	if code != 0 || !strings.Contains(out, "running server") || !strings.Contains(out, "re-sealed: 1") {
		t.Fatalf("rotate: %d\n%s\n%s", code, out, errOut)
	}

	// Graceful shutdown: a request in flight when SIGTERM arrives completes.
	type result struct {
		body string
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + srv.addr + "/slow")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- result{string(b), err}
	}()
	time.Sleep(300 * time.Millisecond) // let the request reach the upstream
	srv.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	close(release)
	r := <-inflight
	if r.err != nil || r.body != "upstream saw /slow" {
		t.Fatalf("in-flight request during shutdown: %q %v", r.body, r.err)
	}
	select {
	case err := <-srv.done:
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, srv.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	if !strings.Contains(srv.logs.String(), "store closed") {
		t.Errorf("no clean store close in the log:\n%s", srv.logs.String())
	}

	// After rotation the connection opens with the new key alone.
	c := readConnection(t, storePath)
	if id, _ := seal.KeyID(c.Sealed); id != strings.Split(e.keyNew, ":")[0] {
		t.Fatalf("connection sealed under %q after rotation", id)
	}
	pt, err := keyring(t, e.keyNew).Open(c.Sealed, data.ConnectionAAD("u1", "github"))
	if err != nil || string(pt) != token {
		t.Fatalf("open with new key: %q %v", pt, err)
	}
	// No token in plain bytes in the store file, the backup, or the log.
	for _, f := range []string{storePath, backup} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(token)) {
			t.Fatalf("%s contains the plaintext token", f)
		}
	}
	if strings.Contains(srv.logs.String(), token) {
		t.Fatal("the log contains the token")
	}
}

func TestKeysRotateWithoutServer(t *testing.T) {
	e := newTestEnv(t)
	storePath := filepath.Join(e.dataDir, "arbor.db")
	seedConnection(t, storePath, keyring(t, e.keyOld), "glpat-offline")
	env := e.with(config.EnvEncryptionKeys + "=" + e.keyOld + "," + e.keyNew)
	out, errOut, code := runArbor(t, env, "keys", "rotate")
	if code != 0 || !strings.Contains(out, "no server running") || !strings.Contains(out, "re-sealed: 1") {
		t.Fatalf("rotate: %d\n%s\n%s", code, out, errOut)
	}
	// A second run finds nothing to do.
	out, _, _ = runArbor(t, env, "keys", "rotate")
	if !strings.Contains(out, "re-sealed: 0, already current: 1") {
		t.Fatalf("second rotate: %s", out)
	}
	// Without the key that sealed the record, rotation stops and says why.
	_, errOut, code = runArbor(t, e.with(config.EnvEncryptionKeys+"="+mustEntry(t)), "keys", "rotate")
	if code == 0 || !strings.Contains(errOut, "not in the keyring") {
		t.Fatalf("rotate with a foreign key: %d %s", code, errOut)
	}
	if c := readConnection(t, storePath); len(c.Sealed) == 0 {
		t.Fatal("failed rotation lost the record")
	}
}

func mustEntry(t *testing.T) string {
	k, err := config.GenerateKeyringEntry(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestBackupWithoutServer(t *testing.T) {
	e := newTestEnv(t)
	storePath := filepath.Join(e.dataDir, "arbor.db")
	seedConnection(t, storePath, keyring(t, e.keyOld), "tok")
	backup := filepath.Join(e.dataDir, "b.db")
	out, errOut, code := runArbor(t, e.env, "backup", "--to", backup)
	if code != 0 || !strings.Contains(out, storePath) {
		t.Fatalf("backup: %d %s %s", code, out, errOut)
	}
	if c := readConnection(t, backup); c.Provider != "github" {
		t.Fatalf("backup content: %+v", c)
	}
	st, _ := os.Stat(backup)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("backup mode %v", st.Mode().Perm())
	}
}

// The dev command starts with no secrets at all and serves the demo app.
// Its policy is the one a person can try (docs/policy.md, "Try it"): the
// banner's one-liner takes octocat out of team vintner/platform, and
// /admin/, open to octocat before, is refused after the next re-check.
func TestDevStartsWithEmbeddedDefaults(t *testing.T) {
	dir, _ := os.MkdirTemp("", "arbdev")
	defer os.RemoveAll(dir)
	addr := freeAddr(t)
	cmd := exec.Command(arborBin, "dev", "--listen", addr, "--data", dir)
	// Everything at its default but the metrics port (127.0.0.1:9180),
	// which another test run on this machine may hold.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "ARBOR_SERVER_METRICS_LISTEN=127.0.0.1:0"}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	}()
	sc := bufio.NewScanner(stdout)
	var printed string
	for sc.Scan() {
		if strings.Contains(sc.Text(), "http://"+addr) {
			printed = sc.Text()
			break
		}
	}
	if printed == "" {
		t.Fatalf("dev did not print its URL")
	}
	var banner []string
	for sc.Scan() && !strings.Contains(sc.Text(), "Ctrl-C stops it.") {
		banner = append(banner, sc.Text())
	}
	go io.Copy(io.Discard, stdout)
	controlURL, controlBody := devBannerCurl(t, banner)
	base := "http://" + addr
	// The plugins load in the background; /readyz says when. This start is
	// cold (no compiled-plugin cache), with the race detector, while other
	// packages' tests run: it has taken 90 s on a busy CI machine.
	deadline := time.Now().Add(180 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev never became ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	get := func(u string) (int, string, string) {
		t.Helper()
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Request.URL.String(), string(body)
	}
	// A newcomer opens the URL, lands on the sign-in page with a button per
	// fake provider, …
	status, at, body := get(base + "/")
	if status != 200 || at != base+"/auth/sign-in?return_to=%2F" {
		t.Fatalf("opening %s/: %d at %s", base, status, at)
	}
	for _, p := range []string{"github", "gitlab", "bitbucket", "google"} {
		if !strings.Contains(body, `data-provider="`+p+`"`) {
			t.Fatalf("sign-in page has no %s button:\n%s", p, body)
		}
	}
	// … signs in with the fake GitHub (its consent page approved by the
	// fake's test switch) and sees the demo app with the identity.
	noFollow := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(base + "/auth/start/github")
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("start: %v %v", resp, err)
	}
	resp.Body.Close()
	authURL := resp.Header.Get("Location")
	if !strings.HasPrefix(authURL, "http://127.0.0.1:") || strings.HasPrefix(authURL, base) {
		t.Fatalf("authorization URL %q is not a loopback fake", authURL)
	}
	status, at, body = get(authURL + "&fake_auto=approve")
	if status != 200 || at != base+"/" || !strings.Contains(body, "Trellis demo upstream") ||
		!strings.Contains(body, "Signed in.") || !strings.Contains(body, "octocat") {
		t.Fatalf("after sign-in: %d at %s\n%s", status, at, body)
	}
	// The policy to try: /admin/ is octocat's while in the team, and
	// refused after the banner's one-liner and the next re-check (15s).
	status, _, body = get(base + "/admin/")
	if status != 200 || !strings.Contains(body, "Signed in.") || !strings.Contains(body, "<code>/admin/</code>") {
		t.Fatalf("octocat on /admin/: %d\n%s", status, body)
	}
	resp, err = http.Post(controlURL, "application/x-www-form-urlencoded", strings.NewReader(controlBody)) // as curl -d sends it
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("the banner's one-liner: POST %s %s: %v %v", controlURL, controlBody, resp, err)
	}
	resp.Body.Close()
	removed := time.Now()
	for {
		status, _, body = get(base + "/admin/")
		if status == http.StatusForbidden {
			break
		}
		if status != 200 || time.Since(removed) > 45*time.Second {
			t.Fatalf("/admin/ %v after octocat left the team (dev re-checks every 15s): %d\n%s", time.Since(removed).Round(time.Second), status, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("/admin/ refused %v after octocat left the team", time.Since(removed).Round(time.Millisecond))
	if !strings.Contains(body, `"error":"route_not_allowed"`) || !strings.Contains(body, "limited to members of the GitHub group vintner/platform") {
		t.Errorf("/admin/ after leaving the team:\n%s", body)
	}
	// A stock OAuth client may try RFC 8628 as the client dev mode
	// registers; an unregistered one is refused.
	for _, tc := range []struct {
		client string
		status int
		want   string
	}{{"example-cli", 200, `"user_code"`}, {"made-up", 400, `"invalid_client"`}} {
		resp, err := http.PostForm(base+"/oauth/device/code", url.Values{"client_id": {tc.client}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
			t.Fatalf("dev mode, RFC 8628 client %q: %d %s, want %d with %s", tc.client, resp.StatusCode, b, tc.status, tc.want)
		}
	}
	if !strings.Contains(logs.String(), "DEV MODE") {
		t.Fatal("dev mode did not warn about generated secrets")
	}
	st, err := os.Stat(filepath.Join(dir, "secrets", "session_key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("generated secret file: %v %v", err, st)
	}
}

// devBannerCurl finds the one-liner of `arbor dev`'s banner that changes
// a fake user's memberships and returns its URL and body.
func devBannerCurl(t *testing.T, banner []string) (target, body string) {
	t.Helper()
	for _, line := range banner {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "curl -X POST ")
		if !ok {
			continue
		}
		target, quoted, _ := strings.Cut(rest, " -d ")
		return target, strings.Trim(quoted, "'")
	}
	t.Fatalf("the banner of arbor dev has no curl one-liner:\n%s", strings.Join(banner, "\n"))
	return "", ""
}

// withFakes starts the fake providers for an Arbor that will serve at base
// and returns e's environment for it: the public URL, the upstream, the
// shared plugin compilation cache, extra, then the fakes' endpoints and
// client credentials. The fakes accept exactly base + /auth/callback/{name},
// so the address is chosen before the fakes and the server start. The
// fakes stop when the test ends.
func (e *testEnv) withFakes(t *testing.T, base, upstreamURL string, opts fakes.Options, extra ...string) ([]string, *fakes.Set) {
	t.Helper()
	set, err := fakes.Start(base, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	env := e.with(
		"ARBOR_PUBLIC_URL="+base,
		"ARBOR_UPSTREAM_URL="+upstreamURL,
		"ARBOR_PLUGINS_CACHE_DIR="+plugintest.DefaultCacheDir(),
	)
	return append(append(env, extra...), set.Environ()...), set
}

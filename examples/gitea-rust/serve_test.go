package gitearust

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/internal/freeport"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// The real arbor binary runs the kit on the Rust plugin (`arbor plugin
// test`), then `arbor serve` loads it from plugins.dir beside the built-in
// Go plugins and signs a user in through it: the authorization URL, the
// code exchange and the user lookup all run in the Rust module, and the
// upstream sees the user the fake provider knows.
func TestArborServesRustPlugin(t *testing.T) {
	plugin := buildRust(t)
	arbor := buildArbor(t)

	// arbor plugin test, as a plugin author runs it.
	cmd := exec.Command(arbor, "plugin", "test", plugin, "--fake", "generic", "--cache-dir", plugintest.DefaultCacheDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), " 0 failed") || !strings.Contains(string(out), "PASS  user ") {
		t.Fatalf("arbor plugin test: %v\n%s", err, out)
	}

	// arbor serve with the plugin in plugins.dir (<data_dir>/plugins).
	dataDir, err := os.MkdirTemp("", "arbrs") // short: the admin socket lives here
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dataDir) })
	copyDir(t, plugin, filepath.Join(dataDir, "plugins", "gitea"))

	addr := freeAddr(t)
	base := "http://" + addr
	fake := fakeprovider.New(fakeprovider.Config{
		IssueRefreshTokens: true,
		Users:              fakeUsers,
		RedirectURIs:       []string{base + "/auth/callback/gitea"},
	})
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "login="+r.Header.Get("X-Arbor-User-Login")+" email="+r.Header.Get("X-Arbor-User-Email"))
	}))
	t.Cleanup(upstream.Close)

	sessionKey, _ := config.GenerateToken()
	jwtSecret, _ := config.GenerateToken()
	sealKey, _ := config.GenerateKeyringEntry(time.Now())
	fc := fake.Config()
	host := strings.TrimPrefix(fake.URL(), "http://")
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dataDir,
		"ARBOR_DATA_DIR=" + dataDir, "ARBOR_LISTEN=" + addr, "ARBOR_PUBLIC_URL=" + base,
		"ARBOR_UPSTREAM_URL=" + upstream.URL, "ARBOR_SERVER_METRICS_LISTEN=127.0.0.1:0",
		"ARBOR_LOG_LEVEL=debug", "ARBOR_PLUGINS_CACHE_DIR=" + plugintest.DefaultCacheDir(),
		config.EnvSessionKey + "=" + sessionKey, config.EnvCLIJWTSecret + "=" + jwtSecret,
		config.EnvEncryptionKeys + "=" + sealKey,
		"ARBOR_PROVIDERS_GITEA_CLIENT_ID=" + fc.ClientID,
		"ARBOR_PROVIDERS_GITEA_AUTHORIZE_URL=" + fake.URL() + "/login/oauth/authorize",
		"ARBOR_PROVIDERS_GITEA_TOKEN_URL=" + fake.URL() + "/login/oauth/access_token",
		"ARBOR_PROVIDERS_GITEA_API_BASE=" + fake.URL() + "/api/v1",
		"ARBOR_PROVIDERS_GITEA_ALLOWED_HOSTS=" + host,
		"ARBOR_PROVIDERS_GITEA_ALLOW_PRIVATE_HOSTS=" + host,
		config.ProviderSecretEnv("gitea") + "=" + fc.ClientSecret,
	}
	logs := startServe(t, arbor, addr, env)
	// /readyz answers 200 just before the "plugins loaded" line is
	// written: wait for it (bounded; not a speed check).
	for i := 0; !strings.Contains(logs.String(), `"plugins loaded"`); i++ {
		if i == 600 {
			t.Fatalf("no \"plugins loaded\" line:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), `"plugin":"gitea"`) || strings.Contains(logs.String(), "failed to load") {
		t.Fatalf("the gitea plugin is not serving:\n%s", logs.String())
	}

	// Sign in as ferris through the fake's consent shortcut.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	step := func(what, u string) string {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: status %d, want a redirect: %s\n%s", what, resp.StatusCode, b, logs.String())
		}
		return resp.Header.Get("Location")
	}
	authorize := step("start", base+"/auth/start/gitea")
	if !strings.HasPrefix(authorize, fake.URL()+"/login/oauth/authorize?") || !strings.Contains(authorize, "code_challenge=") {
		t.Fatalf("start redirected to %s, want the fake's authorize endpoint with a PKCE challenge", authorize)
	}
	callback := step("fake authorize", authorize+"&fake_auto=approve&fake_user=ferris")
	step("callback", callback)
	resp, err := c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "login=ferris email=ferris@example.org"; resp.StatusCode != 200 || string(b) != want {
		t.Fatalf("upstream after sign-in: %d %q, want 200 %q\n%s", resp.StatusCode, b, want, logs.String())
	}
}

// buildArbor builds the arbor command into a temporary directory.
func buildArbor(t *testing.T) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	bin := filepath.Join(t.TempDir(), "arbor")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/vintner/arbor/cmd/arbor")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building arbor: %v\n%s", err, out)
	}
	return bin
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	a, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
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

// startServe starts `arbor serve` and waits until /readyz answers 200
// (plugins loaded). The server is stopped with SIGTERM when the test ends.
func startServe(t *testing.T, arbor, addr string, env []string) *syncBuffer {
	t.Helper()
	cmd := exec.Command(arbor, "serve")
	cmd.Env = env
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	// The bound is for a server that never gets ready (compiling the
	// built-in plugins on a loaded machine has taken over a minute), not a
	// speed check.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		select {
		case err := <-done:
			t.Fatalf("arbor serve exited early: %v\n%s", err, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return logs
			}
		}
	}
	t.Fatalf("arbor serve: /readyz did not answer 200\n%s", logs.String())
	return nil
}

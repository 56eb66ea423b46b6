package app

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/sdk/plugintest"
)

// testEnviron is a complete environment for New: secrets, a data
// directory of its own, an upstream nobody needs to reach, and a webhook
// receiver, so that every part New can build (the notifier included) is
// built.
func testEnviron(t *testing.T) []string {
	t.Helper()
	// Keep the path short: Unix socket paths (the admin socket) are
	// limited to 108 bytes.
	dir, err := os.MkdirTemp("", "arb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	session, _ := config.GenerateToken()
	cli, _ := config.GenerateToken()
	hook, _ := config.GenerateToken()
	key, _ := config.GenerateKeyringEntry(time.Now())
	return []string{
		"ARBOR_DATA_DIR=" + dir,
		"ARBOR_LISTEN=127.0.0.1:0",
		"ARBOR_UPSTREAM_URL=http://127.0.0.1:9",
		"ARBOR_SERVER_METRICS_LISTEN=",
		"ARBOR_PLUGINS_CACHE_DIR=" + plugintest.DefaultCacheDir(),
		"ARBOR_CONNECTIONS_WEBHOOK_URL=http://127.0.0.1:9/hook",
		config.EnvWebhookSecret + "=" + hook,
		config.EnvSessionKey + "=" + session,
		config.EnvCLIJWTSecret + "=" + cli,
		config.EnvEncryptionKeys + "=" + key,
	}
}

func testConfig(t *testing.T, environ []string) config.Config {
	t.Helper()
	cfg, err := config.Load(config.Source{Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// arborGoroutines returns the stacks of the goroutines running Arbor's
// code or started by it, other than the tests' own, by goroutine header
// ("goroutine 42 [select]:").
func arborGoroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		if strings.Contains(s, "github.com/vintner/arbor/") && !strings.Contains(s, "testing.tRunner") {
			id, _, _ := strings.Cut(s, " [")
			out[id] = s
		}
	}
	return out
}

// noArborGoroutines fails the test if goroutines of Arbor's that were not
// running before (by id) still run after a grace period (an abandoned
// plugin load finishes its compile before it notices; a closed part's
// goroutine may take a moment to return). It returns those that run now,
// the next call's before.
func noArborGoroutines(t *testing.T, after string, before map[string]string) map[string]string {
	t.Helper()
	var left []string
	for range 600 { // 30 s at most
		now := arborGoroutines()
		left = left[:0]
		for id, stack := range now {
			if _, ok := before[id]; !ok {
				left = append(left, stack)
			}
		}
		if len(left) == 0 {
			return now
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("%s: %d goroutine(s) of Arbor's left running:\n\n%s", after, len(left), strings.Join(left, "\n\n"))
	return arborGoroutines()
}

// TestStartFailureLeavesNothingRunning makes New fail at each of its
// start-up steps in turn (Options.FailAt) and checks that no goroutine of
// Arbor's is left running afterwards: each part built before the failure
// is closed. A successful New followed by Close must leave none either.
func TestStartFailureLeavesNothingRunning(t *testing.T) {
	environ := testEnviron(t)
	cfg := testConfig(t, environ)
	running := noArborGoroutines(t, "before the test", nil)

	a, err := New(t.Context(), cfg, Options{Environ: environ, Stderr: &strings.Builder{}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	steps := a.steps
	// Let the first plugin load finish: it fills the compilation cache, so
	// that the loads the failed starts below abandon end quickly even on a
	// cold cache under the race detector.
	for i := 0; a.plugins.ready(t.Context()) != nil; i++ {
		if i == 3000 { // 5 minutes
			t.Fatal("the plugins did not load")
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.Close()
	running = noArborGoroutines(t, "New then Close", running)
	// The steps New is known to take, so that a renamed or lost step call
	// is noticed; each is failed below.
	for _, want := range []string{"logs", "secrets", "store", "tls", "plugins", "sessions", "webhook", "broker", "cli", "workers", "membership", "signin", "limits", "gateway", "tunnel watch", "routes", "admin socket", "collector", "ready"} {
		if !slices.Contains(steps, want) {
			t.Errorf("New did not pass the step %q; steps: %q", want, steps)
		}
	}

	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			var logs strings.Builder
			a, err := New(t.Context(), cfg, Options{Environ: environ, Stderr: &logs, FailAt: step})
			if !errors.Is(err, ErrInjected) || a != nil {
				t.Fatalf("New with FailAt %q = %v, %v; want ErrInjected and no App", step, a, err)
			}
			running = noArborGoroutines(t, "start-up failed at "+step, running)
		})
	}
}

// TestConfigErrorLeavesNothingRunning: a real configuration error found
// after the worker service and the webhook notifier exist (a service token
// too short, refused by the Integrations service) leaves none of their
// goroutines running. Before New, `arbor serve` closed only the broker and
// the sessions on this path.
func TestConfigErrorLeavesNothingRunning(t *testing.T) {
	environ := append(testEnviron(t), config.EnvServiceTokens+"=argocd:abcdefabcdef")
	cfg := testConfig(t, environ)
	running := noArborGoroutines(t, "before the test", nil)
	a, err := New(t.Context(), cfg, Options{Environ: environ, Stderr: &strings.Builder{}})
	if _, ok := errors.AsType[*ConfigError](err); !ok || a != nil || !strings.Contains(err.Error(), `service token "argocd"`) {
		t.Fatalf("New = %v, %v; want a *ConfigError about the service token", a, err)
	}
	noArborGoroutines(t, "the configuration error", running)
}

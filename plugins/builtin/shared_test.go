package builtin_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/plugins/builtin"
	"github.com/vintner/arbor/sdk/plugintest"
)

// TestBuiltinsShareOneCompiledModule: the four built-in plugins are one
// module, compiled once; each instance still acts as its own plugin; the
// code goes when the last plugin holding it does, and a plugin that
// released its code while another kept it compiles nothing to come back.
func TestBuiltinsShareOneCompiledModule(t *testing.T) {
	ctx := context.Background()
	h, err := plugins.NewHost(ctx, plugins.HostOptions{
		CacheDir: plugintest.DefaultCacheDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Policy: plugins.Policy{IdleTimeout: 20 * time.Millisecond, CodeIdleTimeout: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	loaded := map[string]*plugins.Plugin{}
	for _, name := range builtin.Names() {
		p, err := h.Load(ctx, builtin.FS(), name, plugins.PluginConfig{ClientID: "id-" + name})
		if err != nil {
			t.Fatalf("loading %s: %v", name, err)
		}
		loaded[name] = p
	}
	if n := h.CompiledModules(); n != 1 {
		t.Fatalf("%d plugins hold %d compiled modules, want 1", len(loaded), n)
	}
	// Each answers as itself: its own authorize endpoint and client id.
	authorize := func(name string) {
		t.Helper()
		u, err := loaded[name].AuthorizeURL(ctx, plugins.AuthorizeInput{RedirectURI: "https://arbor.example/cb", State: "s"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := loaded[name].Endpoints().AuthorizeURL; !strings.HasPrefix(u, want+"?") || !strings.Contains(u, "client_id=id-"+name) {
			t.Errorf("%s answered %s, want its own endpoint %s and client id", name, u, want)
		}
	}
	for name := range loaded {
		authorize(name)
	}

	// GitHub alone is called while the others go idle: they release
	// their hold on the code (CodeIdleTimeout) and GitHub keeps it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		authorize("github")
		released := 0
		for name, p := range loaded {
			if name != "github" && !p.Stats().CodeLoaded {
				released++
			}
		}
		if released == len(loaded)-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle plugins did not release their code: %d of %d", released, len(loaded)-1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := h.CompiledModules(); n != 1 {
		t.Fatalf("with GitHub busy the host holds %d compiled modules, want 1", n)
	}
	// Coming back takes the code GitHub holds.
	loads := loaded["gitlab"].Stats().CodeLoads
	authorize("gitlab")
	if got := loaded["gitlab"].Stats().CodeLoads; got != loads+1 {
		t.Errorf("gitlab's code loads %d → %d, want one more", loads, got)
	}
	if n := h.CompiledModules(); n != 1 {
		t.Errorf("after gitlab came back the host holds %d compiled modules, want 1", n)
	}

	for _, p := range loaded {
		p.Close()
	}
	if n := h.CompiledModules(); n != 0 {
		t.Errorf("with every plugin closed the host holds %d compiled modules", n)
	}
}

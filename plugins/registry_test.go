package plugins_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/vintner/arbor/plugins"
)

func registry(t *testing.T, h *plugins.Host, f *fake, sources ...string) *plugins.Registry {
	t.Helper()
	opts := plugins.RegistryOptions{Config: func(string) plugins.PluginConfig { return f.config() }}
	for _, s := range sources {
		opts.Sources = append(opts.Sources, os.DirFS(s))
	}
	r, err := plugins.NewRegistry(context.Background(), h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func refreshBuild(ctx context.Context, p *plugins.Plugin) (string, error) {
	tok, err := p.Refresh(ctx, plugins.RefreshInput{RefreshToken: "rt"})
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(tok.TokenType, "bearer/"), nil
}

func TestHotReloadUnderLoad(t *testing.T) {
	h, logs := newHost(t, plugins.Policy{PoolSize: 4, Prewarm: 2, AcquireTimeout: 30 * time.Second})
	f := newFake(t)
	f.delay = 2 * time.Millisecond
	dir := t.TempDir()
	copyPlugin(t, "good", filepath.Join(dir, "good"))
	reg := registry(t, h, f, dir)
	p, ok := reg.Get("good")
	if !ok {
		t.Fatal("good not loaded")
	}
	// Compile v2 once so the reload below takes tens of milliseconds (the
	// compilation cache), not a cold compile.
	warm, err := h.LoadDir(context.Background(), pluginDir("good2"), f.config())
	if err != nil {
		t.Fatal(err)
	}
	warm.Close()

	const inFlight = 1000
	var (
		wg               sync.WaitGroup
		completed        atomic.Int64
		v1, v2, failures atomic.Int64
		errMu            sync.Mutex
		firstErr         error
	)
	call := func() {
		b, err := refreshBuild(context.Background(), p)
		switch {
		case err != nil:
			failures.Add(1)
			errMu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			errMu.Unlock()
		case b == "v1":
			v1.Add(1)
		case b == "v2":
			v2.Add(1)
		}
		completed.Add(1)
	}
	for range inFlight {
		wg.Go(call)
	}
	waitFor(t, func() bool { return completed.Load() >= 100 }, func() string { return "calls did not progress" })

	copyPlugin(t, "good2", filepath.Join(dir, "good"))
	start := time.Now()
	if err := reg.Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	reloadTook := time.Since(start)
	atSwap := completed.Load()
	if p2, _ := reg.Get("good"); p2 != p {
		t.Error("Get returned a different handle after the reload")
	}
	// Calls started after the swap run on v2.
	var after sync.WaitGroup
	var afterV1 atomic.Int64
	for range 200 {
		after.Go(func() {
			if b, err := refreshBuild(context.Background(), p); err != nil {
				failures.Add(1)
			} else if b != "v2" {
				afterV1.Add(1)
			}
		})
	}
	wg.Wait()
	after.Wait()

	t.Logf("reload took %v; %d of %d calls had completed at the swap; v1=%d v2=%d", reloadTook, atSwap, inFlight, v1.Load(), v2.Load())
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d calls failed during the reload, first: %v", n, firstErr)
	}
	if atSwap >= inFlight {
		t.Errorf("all calls had finished before the swap; the test did not overlap them")
	}
	if v1.Load()+v2.Load() != inFlight {
		t.Errorf("v1+v2 = %d, want %d", v1.Load()+v2.Load(), inFlight)
	}
	if afterV1.Load() != 0 {
		t.Errorf("%d calls started after the reload ran on the old version", afterV1.Load())
	}
	if s := p.Stats(); s.Version != "2.0.0" {
		t.Errorf("stats after reload: %+v", s)
	}
	if !strings.Contains(logs.String(), "plugin replaced") {
		t.Errorf("the reload was not logged:\n%s", logs)
	}
}

func TestReloadFailureKeepsOldVersion(t *testing.T) {
	h, _ := newHost(t, plugins.Policy{})
	f := newFake(t)
	dir := t.TempDir()
	pdir := filepath.Join(dir, "good")
	copyPlugin(t, "good", pdir)
	reg := registry(t, h, f, dir)
	p, _ := reg.Get("good")
	ctx := context.Background()

	serves := func(want string) {
		t.Helper()
		if b, err := refreshBuild(ctx, p); err != nil || b != want {
			t.Fatalf("serving %q, %v; want %q", b, err, want)
		}
	}
	serves("v1")

	// A module that does not match its manifest.
	wasm, _ := os.ReadFile(filepath.Join(pluginDir("good2"), "good.wasm"))
	os.WriteFile(filepath.Join(pdir, "good.wasm"), wasm, 0o644)
	err := reg.Reload(ctx)
	if err == nil || !strings.Contains(err.Error(), "SHA-256") || !strings.Contains(err.Error(), "previous version keeps serving") {
		t.Fatalf("reload with a bad hash: %v", err)
	}
	serves("v1")

	// A manifest that does not parse.
	os.WriteFile(filepath.Join(pdir, "plugin.json"), []byte("{"), 0o644)
	if err := reg.Reload(ctx); err == nil {
		t.Fatal("reload with a broken manifest succeeded")
	}
	serves("v1")
	if _, ok := reg.Get("good"); !ok {
		t.Fatal("a plugin with an unreadable manifest was removed")
	}

	// Fixed: the new version takes over.
	copyPlugin(t, "good2", pdir)
	if err := reg.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	serves("v2")
}

func TestRegistrySourcesAddRemove(t *testing.T) {
	h, _ := newHost(t, plugins.Policy{})
	f := newFake(t)
	ctx := context.Background()

	// The first source stands for the embedded built-ins.
	embedded := fstest.MapFS{}
	for _, name := range []string{"plugin.json", "good.wasm"} {
		b, err := os.ReadFile(filepath.Join(pluginDir("good"), name))
		if err != nil {
			t.Fatal(err)
		}
		embedded["good/"+name] = &fstest.MapFile{Data: b}
	}
	dir := t.TempDir()
	reg, err := plugins.NewRegistry(ctx, h, plugins.RegistryOptions{
		Sources: []fs.FS{embedded, os.DirFS(dir)},
		Config:  func(string) plugins.PluginConfig { return f.config() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if names := listNames(reg); names != "good" {
		t.Fatalf("plugins = %s", names)
	}
	p, _ := reg.Get("good")
	created := p.Stats().Created

	// Reloading unchanged sources does not rebuild anything.
	if err := reg.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Created != created || s.Version != "1.0.0" {
		t.Errorf("an unchanged plugin was rebuilt: %+v", s)
	}

	// The directory overrides the embedded build and adds a plugin.
	copyPlugin(t, "good2", filepath.Join(dir, "good"))
	copyPlugin(t, "hostile", filepath.Join(dir, "hostile"))
	if err := reg.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if names := listNames(reg); names != "good,hostile" {
		t.Fatalf("plugins = %s", names)
	}
	if b, err := refreshBuild(ctx, p); err != nil || b != "v2" {
		t.Errorf("the directory's build does not override the embedded one: %q %v", b, err)
	}

	// Removing a plugin's directory closes it.
	hp, _ := reg.Get("hostile")
	if err := os.RemoveAll(filepath.Join(dir, "hostile")); err != nil {
		t.Fatal(err)
	}
	if err := reg.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if names := listNames(reg); names != "good" {
		t.Fatalf("plugins = %s", names)
	}
	_, err = exchangeCmd(ctx, hp, "ok")
	if !errors.Is(err, plugins.ErrClosed) {
		t.Errorf("call on a removed plugin: %v, want ErrClosed", err)
	}
}

func listNames(r *plugins.Registry) string {
	var names []string
	for _, p := range r.List() {
		names = append(names, p.Name())
	}
	return strings.Join(names, ",")
}

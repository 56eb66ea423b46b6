package app

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/vintner/arbor/admin"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/plugins/builtin"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/service/providers"
)

// pluginRuntime is the plugin host and registry of a running `arbor serve`.
//
// The plugins load in the background once the host exists: a cold compile
// takes about a second per plugin (much longer in a race-enabled build),
// and the gateway should listen meanwhile. /readyz answers 503 until the
// first load has finished; reloads wait for it.
type pluginRuntime struct {
	host    *plugins.Host
	log     *slog.Logger
	cfg     config.Config
	configs map[string]plugins.PluginConfig

	cancel context.CancelFunc
	done   chan struct{} // closed when the first load has finished
	held   bool          // the first load was never started (TestOptions.PluginsLoading)
	reg    *plugins.Registry
}

// pluginConfigs turns the providers section into the registry's per-plugin
// configuration. Client secrets are read here, once, at start: a changed
// secret takes effect at the next restart.
func pluginConfigs(cfg config.Config, environ []string) (map[string]plugins.PluginConfig, error) {
	out := make(map[string]plugins.PluginConfig, len(cfg.Providers))
	for name, p := range cfg.Providers {
		secret, err := config.ProviderSecret(cfg, name, environ)
		if err != nil {
			return nil, err
		}
		out[name] = plugins.PluginConfig{
			ClientID:     p.ClientID,
			ClientSecret: secret,
			Endpoints: abi.Endpoints{
				AuthorizeURL: p.AuthorizeURL,
				TokenURL:     p.TokenURL,
				APIBase:      p.APIBase,
				RevokeURL:    p.RevokeURL,
			},
			LoginScopes:       p.LoginScopes,
			GitScopes:         p.GitScopes,
			GroupsScopes:      p.GroupsScopes,
			AllowedHosts:      p.AllowedHosts,
			AllowPrivateHosts: p.AllowPrivateHosts,
		}
	}
	return out, nil
}

// startPlugins creates the plugin host and starts loading the built-in
// plugins and then those of plugins.dir (which replace built-ins of the
// same name) in the background. A plugin that fails to load is logged and
// left out; the others serve. Only a host that cannot be created at all
// (an unusable cache directory) or a provider configuration error stops
// the start. hold (tests only, TestOptions.PluginsLoading) creates the
// host but never starts the load.
func startPlugins(ctx context.Context, cfg config.Config, environ []string, log *slog.Logger, hold bool) (*pluginRuntime, error) {
	configs, err := pluginConfigs(cfg, environ)
	if err != nil {
		return nil, usageErr(err)
	}
	host, err := plugins.NewHost(ctx, plugins.HostOptions{
		CacheDir: cfg.Plugins.CacheDir,
		Logger:   log,
		Policy: plugins.Policy{
			MaxMemoryPages:  uint32(cfg.Plugins.MaxMemoryPages),
			DefaultTimeout:  cfg.Plugins.DefaultTimeout,
			PoolSize:        cfg.Plugins.PoolSize,
			KeepWarm:        keepWarm(cfg.Plugins.KeepWarm),
			IdleTimeout:     cfg.Plugins.IdleTimeout,
			CodeIdleTimeout: codeIdleTimeout(cfg.Plugins.CodeIdleTimeout),
		},
	})
	if err != nil {
		return nil, err
	}
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "ARBOR_PROVIDER_") || !strings.HasSuffix(k, "_CLIENT_SECRET") {
			continue
		}
		used := false
		for name := range cfg.Providers {
			used = used || config.ProviderSecretEnv(name) == k
		}
		if !used {
			log.Warn("a provider client secret is set for a provider that is not configured; it is ignored (add providers.<name> with its client_id)", "name", k)
		}
	}
	if err := os.MkdirAll(cfg.Plugins.Dir, 0o700); err != nil {
		log.Warn("cannot create the plugins directory; only built-in plugins will load", "dir", cfg.Plugins.Dir, "err", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	rt := &pluginRuntime{host: host, log: log, cfg: cfg, configs: configs, cancel: cancel, done: make(chan struct{}), held: hold}
	if !hold {
		go rt.load(lctx)
	}
	return rt, nil
}

func (rt *pluginRuntime) load(ctx context.Context) {
	// ready closes done once: before the "plugins loaded" line, so whoever
	// reads that line finds /readyz answering 200, or on an early return.
	ready := sync.OnceFunc(func() { close(rt.done) })
	defer ready()
	cfg, log := rt.cfg, rt.log
	start := time.Now()
	reg, err := plugins.NewRegistry(ctx, rt.host, plugins.RegistryOptions{
		Sources: []fs.FS{builtin.FS(), os.DirFS(cfg.Plugins.Dir)},
		Config:  func(name string) plugins.PluginConfig { return rt.configs[name] },
	})
	if reg == nil {
		log.Error("the plugin registry could not be created; no plugins serve", "err", err)
		return
	}
	rt.reg = reg
	if errs := splitErrors(err); len(errs) > 0 {
		log.Error("some plugins failed to load; the others serve", "dir", cfg.Plugins.Dir, "errors", errs)
	}
	for _, p := range reg.List() {
		m := p.Manifest()
		log.Info("plugin serving", "plugin", m.Name, "version", m.Version, "kind", string(m.Kind), "sha256", m.SHA256)
	}
	ready()
	log.Info("plugins loaded", "count", len(reg.List()), "dir", cfg.Plugins.Dir, "duration", time.Since(start).Round(time.Millisecond))
	// Compiling the modules (or reading them from the cache) leaves tens
	// of MiB of garbage; hand it back to the OS now rather than keeping it
	// resident until the scavenger gets to it (docs/benchmarks.md, "Issue
	// 20: memory at rest"). One forced GC, once per start.
	debug.FreeOSMemory()
	for name := range cfg.Providers {
		if _, ok := reg.Get(name); !ok {
			log.Warn("a provider is configured but no plugin of that name is loaded", "provider", name, "dir", cfg.Plugins.Dir)
		}
	}
}

// ready is part of /readyz: an error until the first load has finished.
func (rt *pluginRuntime) ready(context.Context) error {
	select {
	case <-rt.done:
		if rt.reg == nil {
			return errors.New("plugins: the registry could not be created")
		}
		return nil
	default:
		return httperr.New(http.StatusServiceUnavailable, httperr.CodeStarting,
			"The gateway is still loading its provider plugins")
	}
}

// reload re-reads the plugin sources, after the first load has finished;
// trigger ("SIGHUP", "admin") is logged.
func (rt *pluginRuntime) reload(ctx context.Context, trigger string) admin.PluginReload {
	select {
	case <-rt.done:
	case <-ctx.Done():
		return admin.PluginReload{Errors: []string{"plugins are still loading: " + ctx.Err().Error()}}
	}
	if rt.reg == nil {
		return admin.PluginReload{Errors: []string{"the plugin registry could not be created; see the server log"}}
	}
	start := time.Now()
	err := rt.reg.Reload(ctx)
	res := admin.PluginReload{Plugins: rt.infos(), Errors: splitErrors(err)}
	names := make([]string, 0, len(res.Plugins))
	for _, p := range res.Plugins {
		names = append(names, p.Name+"@"+p.Version)
	}
	if len(res.Errors) > 0 {
		rt.log.Error("plugins reloaded with errors; failed plugins keep their previous version if they had one",
			"trigger", trigger, "plugins", names, "errors", res.Errors, "duration", time.Since(start).Round(time.Millisecond))
	} else {
		rt.log.Info("plugins reloaded", "trigger", trigger, "plugins", names, "duration", time.Since(start).Round(time.Millisecond))
	}
	return res
}

func (rt *pluginRuntime) infos() []admin.PluginInfo {
	ps := rt.reg.List()
	out := make([]admin.PluginInfo, 0, len(ps))
	for _, p := range ps {
		m := p.Manifest()
		out = append(out, admin.PluginInfo{Name: m.Name, Version: m.Version, Kind: string(m.Kind), SHA256: m.SHA256})
	}
	return out
}

// close closes the registry (calls in flight finish first) and the host.
// A first load still compiling is abandoned: the process is exiting.
func (rt *pluginRuntime) close() {
	rt.cancel()
	select {
	case <-rt.done:
	default:
		if rt.held {
			rt.host.Close(context.Background())
			return
		}
		rt.log.Warn("shutting down while plugins are still loading; abandoning the load")
		return
	}
	if rt.reg != nil {
		rt.reg.Close()
	}
	rt.host.Close(context.Background())
	rt.log.Info("plugins closed")
}

// splitErrors flattens an errors.Join into one message per error.
func splitErrors(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// providerRegistry returns the registry once the first load has finished,
// nil before (the sign-in page then shows no providers).
func (rt *pluginRuntime) providerRegistry() providers.Registry {
	select {
	case <-rt.done:
		if rt.reg != nil {
			return rt.reg
		}
	default:
	}
	return nil
}

// keepWarm is plugins.keep_warm for the host: 0 (unset) is one warm
// instance per plugin, negative none.
func keepWarm(n int) int {
	switch {
	case n == 0:
		return 1
	case n < 0:
		return 0
	}
	return n
}

// codeIdleTimeout is plugins.code_idle_timeout for the host: 0 (unset)
// keeps the compiled code. The built-in plugins share one module, so
// keeping it costs about 13 MB, and a call never waits for a compile
// (docs/benchmarks.md, "Issue 20: credentialed requests trimmed, one module for the built-in plugins").
func codeIdleTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

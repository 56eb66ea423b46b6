package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vintner/arbor/gateway/admin"
	"github.com/vintner/arbor/gateway/config"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/gateway/providers"
	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/plugins/builtin"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/abi/manifest"
	"github.com/vintner/arbor/sdk/plugintest"
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
// the start.
func startPlugins(ctx context.Context, cfg config.Config, log *slog.Logger) (*pluginRuntime, error) {
	configs, err := pluginConfigs(cfg, os.Environ())
	if err != nil {
		return nil, usageErr(err)
	}
	host, err := plugins.NewHost(ctx, plugins.HostOptions{
		CacheDir: cfg.Plugins.CacheDir,
		Logger:   log,
		Policy: plugins.Policy{
			MaxMemoryPages: uint32(cfg.Plugins.MaxMemoryPages),
			DefaultTimeout: cfg.Plugins.DefaultTimeout,
			PoolSize:       cfg.Plugins.PoolSize,
		},
	})
	if err != nil {
		return nil, err
	}
	for _, kv := range os.Environ() {
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
	rt := &pluginRuntime{host: host, log: log, cfg: cfg, configs: configs, cancel: cancel, done: make(chan struct{})}
	go rt.load(lctx)
	return rt, nil
}

func (rt *pluginRuntime) load(ctx context.Context) {
	defer close(rt.done)
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
	log.Info("plugins loaded", "count", len(reg.List()), "dir", cfg.Plugins.Dir, "duration", time.Since(start).Round(time.Millisecond))
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

func newPluginCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Build, inspect, test and reload provider plugins",
		Long: `Provider plugins are WebAssembly modules with a plugin.json manifest
(docs/provider-plugins.md). Arbor embeds the built-in ones and loads the
operator's from plugins.dir (default <data_dir>/plugins), one directory per
plugin; a plugin there replaces a built-in one of the same name.`,
	}
	cmd.AddCommand(newPluginInspectCmd(), newPluginBuildCmd(), newPluginTestCmd(), newPluginReloadCmd())
	return cmd
}

// pluginDir returns the directory of the plugin at path: a directory
// holding plugin.json, or the path of plugin.json or of the module.
func pluginDir(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", usageErr(fmt.Errorf("plugin: %w", err))
	}
	if st.IsDir() {
		return path, nil
	}
	return filepath.Dir(path), nil
}

func newPluginInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect PATH",
		Short: "Show a plugin's manifest, exports, ABI version and hash, and whether the host would load it",
		Long: `Show what a plugin on disk is, without running it: its manifest, the
module's exported and imported functions, the ABI version it was built
for, and its SHA-256 compared with the manifest's. PATH is the plugin's
directory, its plugin.json or its module. The exit status is 1 if the host
would refuse the plugin, with the reason.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := pluginDir(args[0])
			if err != nil {
				return err
			}
			in, err := plugins.Inspect(os.DirFS(dir), ".")
			if err != nil {
				return err
			}
			printInspection(cmd.OutOrStdout(), dir, in)
			if in.Problem != nil {
				return fmt.Errorf("the host would refuse this plugin: %w", in.Problem)
			}
			return nil
		},
	}
}

func printInspection(out io.Writer, dir string, in *plugins.Inspection) {
	m := in.Manifest
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
	join := func(s []string) string {
		if len(s) == 0 {
			return "-"
		}
		return strings.Join(s, " ")
	}
	orDefault := func(v int64, unit string) string {
		if v == 0 {
			return "host default"
		}
		return fmt.Sprint(v) + unit
	}
	row("plugin", filepath.Join(dir, manifest.File))
	row("name", m.Name)
	row("display name", m.DisplayName)
	row("version", m.Version)
	row("kind", string(m.Kind))
	abiVersions := make([]string, 0, len(in.ABIVersions))
	for _, v := range in.ABIVersions {
		abiVersions = append(abiVersions, fmt.Sprint(v))
	}
	row("abi version", fmt.Sprintf("manifest %d, module %s (this host: %d)", m.ABIVersion, join(abiVersions), abi.Version))
	row("module", fmt.Sprintf("%s (%d bytes, initial memory %d pages)", m.Module, in.ModuleBytes, in.MemoryPages))
	if in.SHA256 == m.SHA256 {
		row("sha256", in.SHA256+" (matches the manifest)")
	} else {
		row("sha256", in.SHA256+" (MISMATCH: the manifest says "+m.SHA256+")")
	}
	row("operations", join(m.Operations))
	row("authorize_url", m.Endpoints.AuthorizeURL)
	row("token_url", m.Endpoints.TokenURL)
	row("api_base", m.Endpoints.APIBase)
	row("revoke_url", m.Endpoints.RevokeURL)
	row("login scopes", join(m.Scopes.Login))
	row("git scopes", join(m.Scopes.Git))
	row("pkce", fmt.Sprint(m.PKCE))
	row("allowed hosts", join(m.AllowedHosts))
	row("memory pages", orDefault(int64(m.Limits.MemoryPages), ""))
	row("timeout", orDefault(m.Limits.TimeoutMS, " ms"))
	row("response cap", orDefault(m.Limits.ResponseBytes, " bytes"))
	w.Flush()
	fmt.Fprintln(out, "exports:")
	for _, e := range in.Exports {
		fmt.Fprintf(w, "  %s\t%s\n", e.Name, e.Signature)
	}
	w.Flush()
	fmt.Fprintln(out, "imports:")
	for _, i := range in.Imports {
		fmt.Fprintf(w, "  %s.%s\t%s\n", i.Module, i.Name, i.Signature)
	}
	w.Flush()
	if in.Problem != nil {
		fmt.Fprintf(out, "status: REFUSED: %v\n", in.Problem)
	} else {
		fmt.Fprintln(out, "status: ok (the host would load it)")
	}
}

func newPluginBuildCmd() *cobra.Command {
	var outDir string
	cmd := &cobra.Command{
		Use:   "build DIR",
		Short: "Build a plugin reproducibly and fill in its manifest's sha256",
		Long: `Build the plugin whose main package and plugin.json are in DIR with the
standard Go toolchain:

  GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build ` + strings.Join(plugintest.BuildFlags(), " ") + `

and write the module and plugin.json (with the module's SHA-256) to OUT
(default DIR). The same source and Go release give the same bytes. Copy
OUT's plugin.json and module into a directory of plugins.dir and run
'arbor plugin reload'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := outDir
			if out == "" {
				out = args[0]
			}
			b, err := plugintest.Compile(cmd.Context(), args[0], out)
			if err != nil {
				return err
			}
			st, _ := os.Stat(b.Module)
			var size int64
			if st != nil {
				size = st.Size()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "built %s %s (%s, %d bytes, %s)\nsha256 %s\nmanifest %s\n",
				b.Manifest.Name, b.Manifest.Version, b.Module, size, b.GoVersion, b.SHA256, filepath.Join(b.Dir, manifest.File))
			return nil
		},
	}
	cmd.Flags().StringVarP(&outDir, "output", "o", "", "directory for plugin.json and the module (default DIR)")
	return cmd
}

func newPluginTestCmd() *cobra.Command {
	var fake, cacheDir string
	var cases []string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test PATH --fake " + strings.Join(plugintest.PresetNames(), "|"),
		Short: "Run the conformance kit against a plugin and a fake provider",
		Long: `Load the plugin at PATH (its directory, plugin.json or module) through the
real host, point it at a fake provider on 127.0.0.1 configured as --fake,
and run the conformance cases (sdk/plugintest): exchange, refresh, rotation,
invalid_grant, revoke, user, repositories with pagination, errors. Prints
PASS, FAIL or N/A per case; the exit status is 1 if any case failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			preset, ok := plugintest.Preset(fake)
			if !ok {
				return usageErr(fmt.Errorf("plugin test: --fake %q: want one of %s", fake, strings.Join(plugintest.PresetNames(), ", ")))
			}
			dir, err := pluginDir(args[0])
			if err != nil {
				return err
			}
			for _, c := range cases {
				if !slices.Contains(plugintest.CaseNames(), c) {
					return usageErr(fmt.Errorf("plugin test: --case %q: want one of %s", c, strings.Join(plugintest.CaseNames(), ", ")))
				}
			}
			results, err := plugintest.RunReport(cmd.Context(), plugintest.Suite{
				Plugin:   os.DirFS(dir),
				Fake:     preset,
				Cases:    cases,
				CacheDir: cacheDir,
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var passed, failed, na int
			for _, r := range results {
				switch r.Outcome {
				case plugintest.Passed:
					passed++
					fmt.Fprintf(out, "PASS  %-22s %v\n", r.Name, r.Duration.Round(time.Millisecond))
				case plugintest.NotApplicable:
					na++
					fmt.Fprintf(out, "N/A   %-22s %s\n", r.Name, r.Reason)
				default:
					failed++
					fmt.Fprintf(out, "FAIL  %-22s %s\n", r.Name, r.Doc)
					for _, line := range strings.Split(fmt.Sprint(r.Err), "\n") {
						fmt.Fprintf(out, "        %s\n", line)
					}
					if verbose && r.Logs != "" {
						fmt.Fprintf(out, "      logs:\n%s\n", indent(r.Logs, "        "))
					}
				}
			}
			fmt.Fprintf(out, "%d passed, %d failed, %d not applicable (fake: %s)\n", passed, failed, na, fake)
			if failed > 0 {
				return fmt.Errorf("plugin test: %d of %d cases failed", failed, len(results))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&fake, "fake", "", "fake provider: "+strings.Join(plugintest.PresetNames(), ", ")+" (required)")
	cmd.Flags().StringSliceVar(&cases, "case", nil, "run only these cases (repeatable or comma separated); default all")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", `compilation cache directory; "off" for none (default: the user cache dir)`)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print the host's and the plugin's log lines of failed cases")
	cmd.MarkFlagRequired("fake")
	return cmd
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

func newPluginReloadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the running server re-read its plugins directory",
		Long: `Ask the 'arbor serve' running on this data_dir (through its admin socket)
to re-read the built-in plugins and plugins.dir, like SIGHUP does. Each
changed plugin is loaded completely before it replaces the old version;
a plugin that fails to load keeps its previous version serving. Prints the
plugins serving afterwards; the exit status is 1 if any plugin failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return err
			}
			client := admin.NewClient(admin.SocketPath(cfg.DataDir))
			res, err := client.ReloadPlugins(cmd.Context())
			if errors.Is(err, admin.ErrNotRunning) {
				return fmt.Errorf("plugin reload: no 'arbor serve' is running on data_dir %s (socket %s); start it, or pass the same --config / ARBOR_DATA_DIR it uses",
					cfg.DataDir, admin.SocketPath(cfg.DataDir))
			}
			if err != nil {
				return fmt.Errorf("plugin reload: %w", err)
			}
			out := cmd.OutOrStdout()
			w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			for _, p := range res.Plugins {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, p.Version, p.Kind, p.SHA256)
			}
			w.Flush()
			for _, e := range res.Errors {
				fmt.Fprintf(out, "error: %s\n", e)
			}
			if len(res.Errors) > 0 {
				return fmt.Errorf("plugin reload: %d plugin(s) failed to load; a failed plugin keeps its previous version if it had one", len(res.Errors))
			}
			fmt.Fprintf(out, "reloaded: %d plugins serving\n", len(res.Plugins))
			return nil
		},
	}
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

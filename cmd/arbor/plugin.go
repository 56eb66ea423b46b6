package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vintner/arbor/admin"
	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/abi/manifest"
	"github.com/vintner/arbor/sdk/plugintest"
)

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
	var fake, fakeConfig, cacheDir string
	var cases []string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test PATH (--fake " + strings.Join(plugintest.PresetNames(), "|") + " | --fake-config FILE)",
		Short: "Run the conformance kit against a plugin and a fake provider",
		Long: `Load the plugin at PATH (its directory, plugin.json or module; a directory
with Go source is built first, as 'arbor plugin build' does) through the
real host, point it at a fake provider on 127.0.0.1 configured as --fake,
or described in the JSON or YAML file --fake-config (paths, grants, token
placement, paging, field names: docs/fake-providers.md), and run the
conformance cases (sdk/plugintest): exchange, refresh, rotation,
invalid_grant, revoke, user, repositories with pagination, errors. Prints
PASS, FAIL or N/A per case; the exit status is 1 if any case failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			suite := plugintest.Suite{Cases: cases, CacheDir: cacheDir}
			switch {
			case fake != "" && fakeConfig != "":
				return usageErr(errors.New("plugin test: give --fake or --fake-config, not both"))
			case fakeConfig != "":
				spec, err := plugintest.LoadFakeSpec(fakeConfig)
				if err != nil {
					return usageErr(fmt.Errorf("plugin test: --fake-config: %w", err))
				}
				suite.FakeSpec = spec
				fake = fakeConfig
			case fake == "":
				return usageErr(fmt.Errorf("plugin test: --fake (%s) or --fake-config FILE is required", strings.Join(plugintest.PresetNames(), ", ")))
			default:
				preset, ok := plugintest.Preset(fake)
				if !ok {
					return usageErr(fmt.Errorf("plugin test: --fake %q: want one of %s, or describe the provider in a file with --fake-config", fake, strings.Join(plugintest.PresetNames(), ", ")))
				}
				suite.Fake = preset
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
			dir, done, err := pluginFromSource(cmd.Context(), dir)
			if err != nil {
				return err
			}
			defer done()
			suite.Plugin = os.DirFS(dir)
			results, err := plugintest.RunReport(cmd.Context(), suite)
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
	cmd.Flags().StringVar(&fake, "fake", "", "fake provider: "+strings.Join(plugintest.PresetNames(), ", ")+" (this or --fake-config is required)")
	cmd.Flags().StringVar(&fakeConfig, "fake-config", "", "file describing the fake provider, JSON or YAML (docs/fake-providers.md)")
	cmd.Flags().StringSliceVar(&cases, "case", nil, "run only these cases (repeatable or comma separated); default all")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", `compilation cache directory; "off" for none (default: the user cache dir)`)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print the host's and the plugin's log lines of failed cases")
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
			var res admin.PluginReload
			if err := askServer(cmd, "plugin reload", func(c *admin.Client) (err error) {
				res, err = c.ReloadPlugins(cmd.Context())
				return err
			}); err != nil {
				return err
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

package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vintner/arbor/examples/demoupstream"
)

func newDevCmd() *cobra.Command {
	var listen, dataDir string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run Arbor for development: generated secrets, embedded store, fake providers, demo upstream",
		Long: `Run Arbor on one machine with nothing to set up: secrets are generated once
and kept in DIR/secrets (mode 0600), the store is DIR/arbor.db, and a demo
app listening on a free loopback port stands behind the gateway and shows
the headers it receives. Fake GitHub, GitLab, Bitbucket and Google servers
on other loopback ports stand in for the real providers: "Sign in with
GitHub" leads to the fake's consent page. Nothing outside this machine is
contacted.

Without --config a policy is there to try (docs/policy.md, "Try it"):
/admin/ is for the fake GitHub's team vintner/platform, re-checked every
15s; the banner prints how to take octocat out of the team and watch
/admin/ explain the refusal. ARBOR_POLICY_ROUTES and
ARBOR_POLICY_RECHECK_INTERVAL replace its parts.

Never use dev mode in production.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return fmt.Errorf("dev: starting the demo upstream: %w", err)
			}
			demo := &http.Server{Handler: demoupstream.Handler(), ReadHeaderTimeout: 10 * time.Second}
			go demo.Serve(ln)
			defer demo.Close()

			extra := []string{
				"ARBOR_DEV=true",
				"ARBOR_UPSTREAM_URL=http://" + ln.Addr().String(),
			}
			if cmd.Flags().Changed("listen") || !hasConfig(cmd) {
				extra = append(extra, "ARBOR_LISTEN="+listen, "ARBOR_PUBLIC_URL=http://"+listen)
			}
			if !hasConfig(cmd) {
				// The demo upstream's worker API, for workers registered on /workers.
				extra = append(extra, "ARBOR_WORKERS_PATHS="+demoupstream.WorkerPath)
				// RFC 8628 accepts registered clients only; dev mode
				// registers one so that a stock OAuth client can try the
				// flow (client_id=example-cli).
				if os.Getenv(devDeviceClientsEnv) == "" {
					extra = append(extra, devDeviceClientsEnv+"="+devDeviceClients)
				}
			}
			if cmd.Flags().Changed("data") || !hasConfig(cmd) {
				extra = append(extra, "ARBOR_DATA_DIR="+dataDir, "ARBOR_STORE_PATH=")
			}
			// The fakes need the public URL (their registered redirect
			// URIs), which needs the configuration; the configuration needs
			// the fakes' addresses. Load it once for the URL, then again
			// with the fakes in place.
			// The first load leaves out the policy's groups: they name
			// providers that only the fakes configure.
			pre, err := loadConfig(cmd, append(extra, "ARBOR_POLICY_ALLOW_GROUPS=", "ARBOR_POLICY_ROUTES=[]"))
			if err != nil {
				return err
			}
			fakes, fakeEnv, err := startDevFakes(pre.PublicURL)
			if err != nil {
				return err
			}
			defer fakes.Close()
			stopGit, gitEnv, gitRepos := startDevGitHosts(fakes, cmd.ErrOrStderr())
			defer stopGit()
			withFakes := append(append(fakeEnv, gitEnv...), extra...)
			if !hasConfig(cmd) {
				// Its groups name the fake GitHub, so only now.
				withFakes = append(withFakes, devPolicyEnv()...)
			}
			cfg, err := loadConfig(cmd, withFakes)
			if err != nil {
				return err
			}
			if !cfg.Dev {
				return usageErr(errors.New("dev: dev mode could not be enabled"))
			}
			out := cmd.OutOrStdout()
			return serve(cmd.Context(), cfg, serveHooks{stdout: out, ready: func(addr string) {
				fmt.Fprintf(out, "\n  Arbor dev is running: open http://%s/\n  demo upstream: http://%s  data: %s\n  fake providers: %s\n",
					addr, ln.Addr(), cfg.DataDir, strings.Join(fakeURLs(fakes), ", "))
				if len(gitRepos) > 0 {
					fmt.Fprintf(out, "  fake Git repositories (clone with a repository credential, docs/git-proxy.md):\n    http://%s%s\n",
						addr, strings.Join(gitRepos, "\n    http://"+addr))
				}
				if hint := devPolicyHint(cfg, addr, fakes); hint != "" {
					fmt.Fprint(out, hint)
				}
				fmt.Fprint(out, "  Ctrl-C stops it.\n\n")
			}})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	cmd.Flags().StringVar(&dataDir, "data", "./arbor-data", "data directory (store, generated secrets)")
	return cmd
}

func hasConfig(cmd *cobra.Command) bool {
	f, _ := cmd.Flags().GetString("config")
	return f != ""
}

// In dev mode without a config file, one RFC 8628 client is registered
// (unless ARBOR_CLI_DEVICE_CLIENTS says otherwise): a stock OAuth client
// may try the device flow as example-cli, with access to proxied routes.
const (
	devDeviceClientsEnv = "ARBOR_CLI_DEVICE_CLIENTS"
	devDeviceClients    = "[{id: example-cli, name: Example CLI (arbor dev), scopes: [proxy]}]"
)

// Command arbor is the Arbor auth gateway.
//
//	arbor serve            run the gateway from a config file and the environment
//	arbor dev              run it with generated secrets and a demo upstream, for trying it out
//	arbor backup --to F    copy the store, consistently, while serve runs
//	arbor keys generate    print new secrets
//	arbor keys rotate      re-seal every sealed record under the newest key
//	arbor plugin …         build, inspect, test and reload provider plugins
//	arbor users …          list, show, disable, enable and delete users
//	arbor sessions revoke  sign a user out everywhere
//	arbor audit            read the audit trail, newest first
//	arbor version          print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vintner/arbor/app"
	"github.com/vintner/arbor/internal/command"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// usageErr marks errors in what the operator gave us (config, flags,
// secrets): exit status 2.
func usageErr(err error) error { return command.Usage(err) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "arbor:", err)
		var ee command.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.Code)
		}
		if _, ok := errors.AsType[*app.ConfigError](err); ok {
			os.Exit(2) // as usageErr
		}
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "arbor",
		Short:         "Arbor is an auth gateway: sign-in, sessions, Git provider tokens, CLI and worker auth",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", os.Getenv("ARBOR_CONFIG"), "YAML config file (env ARBOR_CONFIG); every key can also be set as ARBOR_…")
	root.AddCommand(newServeCmd(), newDevCmd(), newBackupCmd(), newKeysCmd(), newPluginCmd(), newTLSCmd(), command.Version("arbor", version))
	root.AddCommand(newStoreCmd())
	root.AddCommand(newUsersCmd(), newSessionsCmd(), newAuditCmd())
	return root
}

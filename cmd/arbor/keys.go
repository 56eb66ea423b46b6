package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vintner/arbor/admin"
	"github.com/vintner/arbor/app"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data"
)

func newKeysCmd() *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Generate secrets and rotate encryption keys"}
	var only string
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Print new secrets as environment variable assignments",
		Long: `Print a fresh ARBOR_SESSION_KEY, CLI_JWT_SECRET and ARBOR_ENCRYPTION_KEYS.

To rotate the encryption key, generate one with --only encryption, append it
to ARBOR_ENCRYPTION_KEYS (comma separated, newest last), restart, run
'arbor keys rotate', and only then remove the old key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if only != "" && only != "session" && only != "cli" && only != "encryption" {
				return usageErr(fmt.Errorf("--only %q: want session, cli or encryption", only))
			}
			if only == "" || only == "session" {
				v, err := config.GenerateToken()
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s=%s\n", config.EnvSessionKey, v)
			}
			if only == "" || only == "cli" {
				v, err := config.GenerateToken()
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s=%s\n", config.EnvCLIJWTSecret, v)
			}
			if only == "" || only == "encryption" {
				v, err := config.GenerateKeyringEntry(time.Now())
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s=%s\n", config.EnvEncryptionKeys, v)
			}
			return nil
		},
	}
	gen.Flags().StringVar(&only, "only", "", "print only one secret: session, cli or encryption")

	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Re-seal every sealed record under the newest encryption key",
		Long: `Re-seal every sealed record (Git provider tokens and login grants) under the newest key of
ARBOR_ENCRYPTION_KEYS. If 'arbor serve' is running on the same data_dir it
does the work (with the keys it was started with); otherwise this command
opens the store itself with the keys in its own environment.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var st data.ResealStats
			client := admin.NewClient(admin.SocketPath(cfg.DataDir))
			if client.Running(ctx) {
				st, err = client.RotateKeys(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "rotated by the running server:")
			} else {
				kr, err := config.LoadKeyring(cfg, os.Environ())
				if err != nil {
					return usageErr(err)
				}
				store, err := app.OpenStore(ctx, cfg, slog.New(slog.DiscardHandler), nil)
				if err != nil {
					return err
				}
				st, err = data.Reseal(ctx, store, kr)
				if cerr := store.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "rotated in %s (no server running here):\n", store.Where)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "  sealed records: %d, re-sealed: %d, already current: %d\n", st.Total, st.Resealed, st.Current)
			return nil
		},
	}
	keys.AddCommand(gen, rotate)
	return keys
}

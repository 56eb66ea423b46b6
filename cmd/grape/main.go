// Command grape is the reference CLI for Arbor's CLI login
// (docs/cli-login.md), built on sdk/client.
//
//	grape login --server URL   sign in through the browser (or GRAPE_SERVER)
//	grape status               server, user and token expiry; exit 1 when not logged in
//	grape token                print a valid access token (refreshed as needed)
//	grape logout               revoke the login and delete the token file
//	grape workers register NAME [--env]   register a Tendril worker; print its id and token once
//	grape workers register NAME --scope git:read [--repo 'octocat/*']...
//	                                      a repository credential for the Git proxy instead
//	grape workers list [--json]           your workers: id, name, created, last used, last address
//	grape workers rename ID NAME          rename a worker
//	grape workers rotate ID [--env]       new token for a worker (the old one stops working)
//	grape workers revoke ID [--yes]       delete a worker (asks on a terminal)
//
// The login is kept in --config-file (default $XDG_CONFIG_HOME/grape/auth.json
// or ~/.config/grape/auth.json, mode 0600).
//
// Exit status: 0 success, 1 failure or not logged in, 2 bad usage, 130
// login cancelled (Ctrl-C, Esc).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vintner/arbor/internal/command"
	"github.com/vintner/arbor/sdk/client"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries an exit code through cobra.
type exitError = command.ExitError

func usageErr(err error) error { return command.Usage(err) }

// errCancelled is the user giving up at the code prompt.
var errCancelled = errors.New("login cancelled")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	root := newRoot(stdin)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	switch {
	case errors.Is(err, errCancelled):
		fmt.Fprintln(stderr, "grape: login cancelled")
		return 130
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "grape: interrupted")
		return 130
	case errors.As(err, &ee):
		fmt.Fprintln(stderr, "grape:", err)
		return ee.Code
	}
	fmt.Fprintln(stderr, "grape:", err)
	return 1
}

// app holds what the flags decide.
type app struct {
	stdin      *os.File
	configFile string
}

func (a *app) config() (client.Config, error) {
	if a.configFile == "" {
		return client.Config{}, usageErr(errors.New("no place for the token file: set HOME or XDG_CONFIG_HOME, or pass --config-file"))
	}
	host, _ := os.Hostname()
	return client.Config{
		Server:     os.Getenv("GRAPE_SERVER"),
		ClientName: "grape",
		ClientInfo: map[string]string{"hostname": host, "os": runtime.GOOS + "/" + runtime.GOARCH, "version": version},
		Store:      client.FileStore{Path: a.configFile},
	}, nil
}

func newRoot(stdin *os.File) *cobra.Command {
	a := &app{stdin: stdin}
	root := &cobra.Command{
		Use:           "grape",
		Short:         "Grape signs in to Arbor from the command line",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&a.configFile, "config-file", client.DefaultPath(), "file holding the login (mode 0600)")
	root.AddCommand(a.loginCmd(), a.statusCmd(), a.tokenCmd(), a.logoutCmd(), a.workersCmd(), command.Version("grape", version))
	return root
}

func (a *app) loginCmd() *cobra.Command {
	var server string
	var noBrowser bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in through the browser and keep the login in the token file",
		Long: `Opens Arbor's approval page in the browser (and prints its URL, for
machines without one). Approve there, then type the 6-character code the
page shows. When stdin is not a terminal, the code is read as a line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if server != "" {
				cfg.Server = server
			}
			if cfg.Server == "" {
				return usageErr(errors.New("which Arbor? pass --server URL or set GRAPE_SERVER"))
			}
			ui := newUI(cmd.Context(), a.stdin, cmd.ErrOrStderr(), !noBrowser)
			tok, err := client.Login(cmd.Context(), cfg, ui)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Logged in to %s as %s.\n", tok.Server, describeUser(tok.User))
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "Arbor's URL, e.g. https://arbor.example (default $GRAPE_SERVER)")
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "only print the URL, do not open a browser")
	return cmd
}

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the login: server, user, token expiry (exit 1 when not logged in)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			tok, err := cfg.Store.Load()
			if errors.Is(err, client.ErrNotLoggedIn) {
				return exitError{Code: 1, Err: errors.New("not logged in (run `grape login --server URL`)")}
			}
			if err != nil {
				return err
			}
			if want := strings.TrimRight(cfg.Server, "/"); want != "" && want != strings.TrimRight(tok.Server, "/") {
				return exitError{Code: 1, Err: fmt.Errorf("not logged in to %s (the login in %s is for %s)", want, a.configFile, tok.Server)}
			}
			now := time.Now()
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Server:        %s\n", tok.Server)
			fmt.Fprintf(w, "User:          %s\n", describeUser(tok.User))
			if tok.Expiry.After(now) {
				fmt.Fprintf(w, "Access token:  valid until %s (%s)\n", stamp(tok.Expiry), roundDur(tok.Expiry.Sub(now)))
			} else {
				fmt.Fprintf(w, "Access token:  expired %s (refreshed on next use)\n", stamp(tok.Expiry))
			}
			switch {
			case tok.RefreshExpiry.IsZero():
			case tok.RefreshExpiry.After(now):
				fmt.Fprintf(w, "Login:         valid until %s unless revoked\n", stamp(tok.RefreshExpiry))
			default:
				fmt.Fprintf(w, "Login:         expired %s (run `grape login`)\n", stamp(tok.RefreshExpiry))
			}
			fmt.Fprintf(w, "Token file:    %s\n", a.configFile)
			return nil
		},
	}
}

func (a *app) tokenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "token",
		Short: "Print a valid access token, refreshing the login as needed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			tok, err := client.ValidToken(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok.AccessToken)
			return nil
		},
	}
}

func (a *app) logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the login on the server and delete the token file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			tok, _ := cfg.Store.Load()
			if err := client.Logout(cmd.Context(), cfg); err != nil {
				if errors.Is(err, client.ErrNotLoggedIn) {
					return exitError{Code: 1, Err: errors.New("not logged in")}
				}
				return err
			}
			if tok != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "Logged out of %s.\n", tok.Server)
			}
			return nil
		},
	}
}

func describeUser(u client.User) string {
	var s string
	switch {
	case u.Login != "":
		s = u.Login
	case u.Email != "":
		s = u.Email
	default:
		return u.ID
	}
	if u.Email != "" && u.Email != s {
		s += " <" + u.Email + ">"
	}
	if u.ID != "" {
		s += " (" + u.ID + ")"
	}
	return s
}

func stamp(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }

func roundDur(d time.Duration) string {
	switch {
	case d > 48*time.Hour:
		return fmt.Sprintf("in %d days", int(d.Hours()/24))
	case d > time.Minute:
		return "in " + d.Round(time.Minute).String()
	default:
		return "in " + d.Round(time.Second).String()
	}
}

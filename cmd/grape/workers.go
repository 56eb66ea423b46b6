package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vintner/arbor/sdk/client"
)

func (a *app) workersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "Register and manage Tendril workers (their id and token)",
		Long: `A Tendril worker authenticates to Arbor with its id and a token, which it
reads from $` + client.DefaultWorkerIDEnv + ` and $` + client.DefaultWorkerTokenEnv + `. Arbor keeps only a hash
of the token: register and rotate show it once, and never again.

These commands act for the user grape is logged in as (grape login).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErr(errors.New("workers needs a subcommand: register, list, rename, rotate or revoke (see grape workers --help)"))
		},
	}
	cmd.AddCommand(a.workersRegisterCmd(), a.workersListCmd(), a.workersRenameCmd(), a.workersRotateCmd(), a.workersRevokeCmd())
	return cmd
}

// usageArgs makes a wrong number of arguments exit 2.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageErr(fmt.Errorf("%w; usage: %s", err, cmd.UseLine()))
		}
		return nil
	}
}

// workers returns the API client, or the exit-1 "log in first" error when
// there is no stored login at all.
func (a *app) workers() (*client.Workers, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	if _, err := cfg.Store.Load(); errors.Is(err, client.ErrNotLoggedIn) {
		return nil, exitError{Code: 1, Err: errors.New("not logged in: run `grape login --server URL` first")}
	}
	return client.NewWorkers(cfg), nil
}

// workerErr gives an API error its exit code: 2 for what the user typed,
// 1 otherwise.
func workerErr(err error) error {
	switch {
	case client.IsCode(err, client.CodeInvalidName), client.IsCode(err, client.CodeInvalidBody):
		return usageErr(err)
	case client.IsCode(err, client.CodeWorkerNotFound):
		return exitError{Code: 1, Err: fmt.Errorf("no such worker (or not yours): %w", err)}
	}
	return err
}

// workerID checks an id argument before anything is sent.
func workerID(s string) (string, error) {
	id, err := client.ParseWorkerID(s)
	if err != nil {
		return "", usageErr(err)
	}
	return id, nil
}

func (a *app) workersRegisterCmd() *cobra.Command {
	cmd := a.workerTokenCmd(&cobra.Command{
		Use:   "register NAME",
		Short: "Register a worker, or with --scope a repository credential, and print its id and token (shown only once)",
		Long: `Registers a worker named NAME (1 to 64 printable characters) and prints the
two environment variables it needs:

    ` + client.DefaultWorkerIDEnv + `=<id>
    ` + client.DefaultWorkerTokenEnv + `=<token>

The token is shown only this once; Arbor keeps only its hash. If it is lost,
` + "`grape workers rotate ID`" + ` makes a new one. With --env nothing else is
printed on stdout, so the output can go straight into an env file:

    grape workers register build-01 --env > worker.env

With --scope it registers a repository credential for Arbor's Git proxy
instead (ArgoCD, CI: docs/git-proxy.md): --scope git:read lets it clone and
fetch, git:write push too; --repo limits it to repositories matching a
pattern (owner/repo, one glob per segment, group/** for any depth, an
optional provider: in front), and may be repeated. git sends the id as the
user name and the token as the password; --env prints them as the lines a
credential helper answers (username=…, password=…):

    grape workers register argocd --scope git:read --repo 'octocat/*'`,
	}, nil, (*client.Workers).Register, "Registered worker %s (id %s).")
	var scopes, repos []string
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, "register a repository credential with this scope (git:read or git:write); repeatable")
	cmd.Flags().StringArrayVar(&repos, "repo", nil, "with --scope: a repository pattern the credential may reach, e.g. 'octocat/*'; repeatable (none: every repository of your account)")
	worker := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(scopes) == 0 {
			if len(repos) > 0 {
				return usageErr(errors.New("--repo is for a repository credential: add --scope git:read (or git:write)"))
			}
			return worker(cmd, args)
		}
		ws, err := a.workers()
		if err != nil {
			return err
		}
		w, tok, err := ws.RegisterRepoCredential(cmd.Context(), args[0], client.RepoCredential{Scopes: scopes, Repos: repos})
		if err != nil {
			if client.IsCode(err, client.CodeInvalidScope) || client.IsCode(err, client.CodeInvalidRepoPattern) {
				return usageErr(err)
			}
			return workerErr(err)
		}
		envOnly, _ := cmd.Flags().GetBool("env")
		printCredential(cmd, w, tok, envOnly)
		return nil
	}
	return cmd
}

// printCredential prints a repository credential's id and token as git
// sends them. The token goes to stdout only.
func printCredential(cmd *cobra.Command, w client.Worker, tok string, envOnly bool) {
	out := cmd.OutOrStdout()
	lines := "username=" + w.ID + "\npassword=" + tok + "\n"
	headline := fmt.Sprintf("Registered repository credential %s (id %s), scopes %s", printable(w.Name), w.ID, strings.Join(w.Scopes, " "))
	if len(w.Repos) > 0 {
		headline += ", repositories " + strings.Join(w.Repos, " ")
	}
	headline += "."
	if envOnly {
		io.WriteString(out, lines)
		fmt.Fprintf(cmd.ErrOrStderr(), "%s The token will not be shown again: keep this output secret.\n", headline)
		return
	}
	fmt.Fprintf(out, "%s\n\nThe token is shown only this once and cannot be shown again\n(`grape workers rotate %s` replaces it). Git sends it as HTTP Basic,\nthe id as the user name (docs/git-proxy.md); a credential helper answers:\n\n%s",
		headline, w.ID, lines)
}

func (a *app) workersRotateCmd() *cobra.Command {
	return a.workerTokenCmd(&cobra.Command{
		Use:   "rotate ID",
		Short: "Give a worker a new token (the old one stops working at once)",
		Long: `Replaces the token of worker ID and prints the new one, once, with the two
environment variables the worker needs. The old token stops working at
once: update the worker's environment and restart it. --env prints only
the two KEY=VALUE lines.`,
	}, workerID, (*client.Workers).Rotate, "New token for worker %s (id %s); the old token no longer works.")
}

// workerTokenCmd completes cmd, which takes one argument, into a command that
// gets a worker a token (register, rotate): it checks the argument with
// check (if not nil) before anything is sent, calls call with it, and
// prints the worker's environment (printToken) under headline, a format
// given the worker's name and id. --env is printToken's envOnly.
func (a *app) workerTokenCmd(cmd *cobra.Command, check func(string) (string, error),
	call func(*client.Workers, context.Context, string) (client.Worker, string, error), headline string) *cobra.Command {
	var envOnly bool
	cmd.Args = usageArgs(cobra.ExactArgs(1))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		arg := args[0]
		if check != nil {
			var err error
			if arg, err = check(arg); err != nil {
				return err
			}
		}
		ws, err := a.workers()
		if err != nil {
			return err
		}
		w, tok, err := call(ws, cmd.Context(), arg)
		if err != nil {
			return workerErr(err)
		}
		printToken(cmd, w, tok, envOnly, fmt.Sprintf(headline, printable(w.Name), w.ID))
		return nil
	}
	cmd.Flags().BoolVar(&envOnly, "env", false, "print only the two KEY=VALUE lines, for an env file")
	return cmd
}

// printToken prints a worker's environment. The token goes to stdout only.
func printToken(cmd *cobra.Command, w client.Worker, tok string, envOnly bool, headline string) {
	out := cmd.OutOrStdout()
	lines := client.DefaultWorkerIDEnv + "=" + w.ID + "\n" + client.DefaultWorkerTokenEnv + "=" + tok + "\n"
	if envOnly {
		io.WriteString(out, lines)
		fmt.Fprintf(cmd.ErrOrStderr(), "%s The token will not be shown again: keep this output secret.\n", headline)
		return
	}
	fmt.Fprintf(out, "%s\n\nThe token is shown only this once and cannot be shown again\n(`grape workers rotate %s` replaces it). Give the worker this environment:\n\n%s",
		headline, w.ID, lines)
}

func (a *app) workersListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your workers: id, name, created, last used, last address",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ws, err := a.workers()
			if err != nil {
				return err
			}
			list, err := ws.List(cmd.Context())
			if err != nil {
				return workerErr(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Workers []client.Worker `json:"workers"`
				}{list})
			}
			if len(list) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "No workers yet; register one with `grape workers register NAME`.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED\tLAST USED\tLAST ADDRESS")
			for _, w := range list {
				addr := "-"
				if w.LastAddress != "" {
					addr = printable(w.LastAddress)
				}
				name := printable(w.Name)
				if len(w.Scopes) > 0 {
					// A repository credential: what it may do, where.
					name += " [" + printable(strings.Join(append(append([]string(nil), w.Scopes...), w.Repos...), " ")) + "]"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", w.ID, name, shortStamp(w.CreatedAt), shortStamp(w.LastUsedAt), addr)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"workers": [...]} as JSON (times in RFC 3339)`)
	return cmd
}

func (a *app) workersRenameCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rename ID NAME",
		Short: "Rename a worker (its token does not change)",
		Args:  usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := workerID(args[0])
			if err != nil {
				return err
			}
			ws, err := a.workers()
			if err != nil {
				return err
			}
			w, err := ws.Rename(cmd.Context(), id, args[1])
			if err != nil {
				return workerErr(err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Renamed worker %s to %s.\n", w.ID, printable(w.Name))
			return nil
		},
	}
}

func (a *app) workersRevokeCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Delete a worker: its token stops working at once",
		Long: `Deletes worker ID; its token stops working at once. On a terminal grape
asks first; elsewhere pass --yes.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := workerID(args[0])
			if err != nil {
				return err
			}
			tty := a.stdin != nil && term.IsTerminal(int(a.stdin.Fd()))
			if !yes && !tty {
				return usageErr(errors.New("not revoking without confirmation: stdin is not a terminal; pass --yes"))
			}
			ws, err := a.workers()
			if err != nil {
				return err
			}
			name := id
			if !yes {
				w, err := ws.Get(cmd.Context(), id)
				if err != nil {
					return workerErr(err)
				}
				name = fmt.Sprintf("%s (id %s)", printable(w.Name), w.ID)
				ok, err := confirm(cmd.Context(), a.stdin, cmd.ErrOrStderr(),
					fmt.Sprintf("Revoke worker %s? Its token stops working at once. [y/N] ", name))
				if err != nil {
					return err
				}
				if !ok {
					return exitError{Code: 1, Err: errors.New("not revoked")}
				}
			}
			if err := ws.Revoke(cmd.Context(), id); err != nil {
				return workerErr(err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Revoked worker %s.\n", name)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// confirm asks a yes/no question on a terminal; only "y" or "yes" is yes.
func confirm(ctx context.Context, in io.Reader, out io.Writer, question string) (bool, error) {
	fmt.Fprint(out, question)
	ch := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(in).ReadString('\n')
		ch <- line
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out)
		return false, ctx.Err()
	case line := <-ch:
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes":
			return true, nil
		}
		return false, nil
	}
}

// printable replaces what a terminal would interpret (control characters,
// escape sequences) in a name or address that came from the server.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}

func shortStamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04")
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vintner/arbor/admin"
	"github.com/vintner/arbor/app"
	"github.com/vintner/arbor/service/users"
)

// operatorOps are the operators' controls, answered by the running server
// (admin.Client) or by this process on the store (directOps): the commands
// print the same either way.
type operatorOps interface {
	Users(ctx context.Context) ([]users.Summary, error)
	User(ctx context.Context, idOrEmail string) (users.Detail, error)
	DisableUser(ctx context.Context, id, reason string) (users.Change, error)
	EnableUser(ctx context.Context, id string) (users.Change, error)
	DeleteUser(ctx context.Context, id string) (users.Change, error)
	RevokeSessions(ctx context.Context, id string) (users.Change, error)
	Audit(ctx context.Context, q users.AuditQuery) (users.AuditPage, error)
}

var _ operatorOps = (*admin.Client)(nil)

// directOps runs the controls in this process, on a store no server holds;
// the audit actor is users.Actor.
type directOps struct{ svc *users.Service }

func (d directOps) Users(ctx context.Context) ([]users.Summary, error) { return d.svc.List(ctx) }
func (d directOps) User(ctx context.Context, s string) (users.Detail, error) {
	return d.svc.Show(ctx, s)
}
func (d directOps) DisableUser(ctx context.Context, id, reason string) (users.Change, error) {
	return d.svc.Disable(ctx, users.Actor, id, reason)
}
func (d directOps) EnableUser(ctx context.Context, id string) (users.Change, error) {
	return d.svc.Enable(ctx, users.Actor, id)
}
func (d directOps) DeleteUser(ctx context.Context, id string) (users.Change, error) {
	return d.svc.Delete(ctx, users.Actor, id)
}
func (d directOps) RevokeSessions(ctx context.Context, id string) (users.Change, error) {
	return d.svc.RevokeSessions(ctx, users.Actor, id)
}
func (d directOps) Audit(ctx context.Context, q users.AuditQuery) (users.AuditPage, error) {
	return d.svc.Audit(ctx, q)
}

// withOps runs fn through the admin socket of the 'arbor serve' on the
// command's data_dir, or, when none answers, on the configured store
// opened here (a bbolt file, which must exist and which no other process
// may hold; or etcd, where running replicas hear of every change through
// their watches).
func withOps(cmd *cobra.Command, what string, fn func(ops operatorOps) error) error {
	cfg, err := loadConfig(cmd, nil)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	client := admin.NewClient(admin.SocketPath(cfg.DataDir))
	if client.Running(ctx) {
		if err := fn(client); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	if cfg.Store.Backend != "etcd" {
		if _, err := os.Stat(cfg.Store.Path); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: no 'arbor serve' answers on %s and there is no store at %s; pass the --config / ARBOR_DATA_DIR that 'arbor serve' uses",
				what, admin.SocketPath(cfg.DataDir), cfg.Store.Path)
		}
		if err := checkNotHeld(cfg.Store.Path); err != nil {
			return fmt.Errorf("%s: %w (its admin socket %s does not answer)", what, err, admin.SocketPath(cfg.DataDir))
		}
	}
	store, err := app.OpenStore(ctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	err = fn(directOps{users.New(users.Options{Store: store, Logger: slog.New(slog.DiscardHandler)})})
	if cerr := store.Close(); err == nil && cerr != nil {
		return fmt.Errorf("%s: closing the store: %w", what, cerr)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// when formats a time for tables: "-" for zero.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func newUsersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "List, show, disable, enable and delete users (audited)",
		Long: `Operators' controls on accounts. Each command asks the 'arbor serve' running
on this data_dir through its admin socket; when none runs, it opens the
store itself (the bbolt file, or etcd when store.backend is etcd) and
prints the same. Every change is recorded in the audit trail (arbor audit).
See docs/operators.md.`,
	}
	cmd.AddCommand(newUsersListCmd(), newUsersShowCmd(), newUsersDisableCmd(), newUsersEnableCmd(), newUsersDeleteCmd())
	return cmd
}

func newUsersListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List every user: id, login, e-mail, providers, disabled, groups, last sign-in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withOps(cmd, "users list", func(ops operatorOps) error {
				us, err := ops.Users(cmd.Context())
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					if us == nil {
						us = []users.Summary{}
					}
					return printJSON(out, us)
				}
				w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tLOGIN\tEMAIL\tPROVIDERS\tDISABLED\tGROUPS\tLAST SIGN-IN")
				for _, u := range us {
					dis := "no"
					if u.Disabled {
						dis = "yes"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", u.ID, orDash(u.Login), orDash(u.Email),
						orDash(strings.Join(u.Providers, ",")), dis, u.Groups, when(u.LastSignIn))
				}
				if err := w.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(out, "%s\n", plural(len(us), "user", "users"))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newUsersShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID|EMAIL [--json]",
		Short: "Show a user: identities, sessions, CLI logins, workers, connections, memberships",
		Long: `Show everything Arbor keeps about a user, named by id or by e-mail address
(the user's, or a verified address of one of their identities). Secrets
are never shown: not the sealed grants and tokens, not the token hashes,
not the session ids.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withOps(cmd, "users show", func(ops operatorOps) error {
				d, err := ops.User(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), d)
				}
				return printDetail(cmd.OutOrStdout(), d)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printDetail(out io.Writer, d users.Detail) error {
	u := d.User
	fmt.Fprintf(out, "user:       %s\n", u.ID)
	fmt.Fprintf(out, "login:      %s\n", orDash(u.Login))
	fmt.Fprintf(out, "email:      %s\n", orDash(u.Email))
	fmt.Fprintf(out, "name:       %s\n", orDash(u.Name))
	fmt.Fprintf(out, "created:    %s\n", when(u.CreatedAt))
	if u.Disabled {
		fmt.Fprintf(out, "disabled:   yes, since %s by %s", when(u.DisabledAt), orDash(u.DisabledBy))
		if u.DisabledReason != "" {
			fmt.Fprintf(out, ": %s", u.DisabledReason)
		}
		fmt.Fprintln(out)
	} else {
		fmt.Fprintln(out, "disabled:   no")
	}
	m := u.Memberships
	fmt.Fprintf(out, "groups:     %s\n", orDash(strings.Join(m.Groups, ", ")))
	if len(m.Restricted) > 0 {
		fmt.Fprintf(out, "restricted: %s (the provider hides them: the organisation has not approved the app)\n", strings.Join(m.Restricted, ", "))
	}
	fmt.Fprintf(out, "checked:    %s\n", when(m.CheckedAt))
	if !m.FailingSince.IsZero() {
		fmt.Fprintf(out, "failing:    since %s: %s\n", when(m.FailingSince), orDash(m.LastError))
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	section := func(title string, n int, header string) {
		fmt.Fprintf(w, "\n%s (%d)\n", title, n)
		if n > 0 {
			fmt.Fprintln(w, header)
		}
	}
	section("identities", len(d.Identities), "  PROVIDER\tSUBJECT\tLOGIN\tEMAIL\tVERIFIED\tLAST SIGN-IN\tGRANT")
	for _, id := range d.Identities {
		grant := "no"
		if id.Grant {
			grant = "kept, expires " + when(id.GrantExpiresAt)
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%v\t%s\t%s\n", id.Provider, id.Subject, orDash(id.Login), orDash(id.Email), id.EmailVerified, when(id.LastLoginAt), grant)
	}
	section("sessions", len(d.Sessions), "  CREATED\tLAST SEEN\tEXPIRES\tIP\tUSER AGENT")
	for _, s := range d.Sessions {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", when(s.CreatedAt), when(s.LastSeenAt), when(s.ExpiresAt), orDash(s.IP), orDash(s.UserAgent))
	}
	section("CLI logins", len(d.Logins), "  ID\tCLIENT\tHOST\tCREATED\tLAST USED\tREVOKED")
	for _, l := range d.Logins {
		rev := "-"
		if !l.RevokedAt.IsZero() {
			rev = when(l.RevokedAt) + " (" + l.RevokeReason + ")"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\n", l.ID, orDash(l.ClientID), orDash(l.Host), when(l.CreatedAt), when(l.LastUsedAt), rev)
	}
	section("workers", len(d.Workers), "  ID\tNAME\tCREATED\tLAST USED\tLAST ADDRESS")
	for _, x := range d.Workers {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", x.ID, x.Name, when(x.CreatedAt), when(x.LastUsedAt), orDash(x.LastAddr))
	}
	section("connections", len(d.Connections), "  PROVIDER\tACCOUNT\tSTATUS\tSCOPES\tTOKEN EXPIRES")
	for _, c := range d.Connections {
		st := c.Status
		if c.StatusReason != "" {
			st += " (" + c.StatusReason + ")"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", c.Provider, orDash(c.AccountLogin), st, orDash(strings.Join(c.Scopes, " ")), when(c.TokenExpiresAt))
	}
	return w.Flush()
}

func describeEnded(e users.Ended) string {
	return fmt.Sprintf("%s and %s ended", plural(e.Sessions, "browser session", "browser sessions"), plural(e.Logins, "CLI login", "CLI logins"))
}

func newUsersDisableCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "disable ID [--reason TEXT]",
		Short: "Disable a user: their sessions, CLI logins and workers stop at once",
		Long: `Disable a user. At once and on every replica: their browser sessions are
deleted, their CLI logins revoked, and their workers refused (the worker
records stay, and work again after 'arbor users enable'); sign-in is
refused with account_disabled. The reason is kept on the user and in the
audit event (user.disabled). Disabling a disabled user changes nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withOps(cmd, "users disable", func(ops operatorOps) error {
				ch, err := ops.DisableUser(cmd.Context(), args[0], reason)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if ch.Already {
					fmt.Fprintf(out, "user %s was already disabled (since %s by %s); %s\n", ch.User.ID, when(ch.User.DisabledAt), orDash(ch.User.DisabledBy), describeEnded(ch.Ended))
					return nil
				}
				fmt.Fprintf(out, "disabled user %s: %s; %s refused while disabled\n", ch.User.ID, describeEnded(ch.Ended), plural(ch.Ended.Workers, "worker", "workers"))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", fmt.Sprintf("why (kept on the user and in the audit trail; at most %d bytes)", users.MaxReason))
	return cmd
}

func newUsersEnableCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "enable ID",
		Short: "Enable a disabled user",
		Long: `Enable a disabled user: they may sign in again, and their workers work
again at once. Sessions and CLI logins ended by the disable stay ended.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withOps(cmd, "users enable", func(ops operatorOps) error {
				ch, err := ops.EnableUser(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if ch.Already {
					fmt.Fprintf(cmd.OutOrStdout(), "user %s is not disabled; nothing changed\n", ch.User.ID)
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "enabled user %s: they may sign in again; their workers work again\n", ch.User.ID)
				return nil
			})
		},
	}
}

func newUsersDeleteCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete ID [--yes]",
		Short: "Delete a user and everything that belongs to them",
		Long: `Delete a user with their identities, sessions, CLI logins, workers and Git
connections, in one step (the audit trail about them is kept). Their
provider tokens are not revoked at the provider. Without --yes the command
asks on a terminal, and refuses otherwise. Someone deleted may sign in
again as a new user unless the policy keeps them out: to keep a person
out, disable them instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return usageErr(fmt.Errorf("users delete: pass --yes to delete user %s (there is no terminal to ask on)", args[0]))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "delete user %s and everything that belongs to them? [y/N] ", args[0])
				line, _ := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 1024)).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return errors.New("users delete: not confirmed; nothing deleted")
				}
			}
			return withOps(cmd, "users delete", func(ops operatorOps) error {
				ch, err := ops.DeleteUser(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if ch.Already {
					fmt.Fprintf(cmd.OutOrStdout(), "user %s was already deleted (%s by %s, audit seq %d)\n", args[0], when(ch.Event.Time), orDash(ch.Event.Actor), ch.Event.Seq)
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted user %s: %s; %s deleted\n", ch.User.ID, describeEnded(ch.Ended), plural(ch.Ended.Workers, "worker", "workers"))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "delete without asking")
	return cmd
}

func newSessionsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "sessions", Short: "End users' sessions (audited)"}
	var user string
	revoke := &cobra.Command{
		Use:   "revoke --user ID",
		Short: "Sign a user out everywhere: every browser session and CLI login",
		Long: `End every browser session and every CLI login of a user, at once and on
every replica. The user may sign in again; their workers are not touched
(disable the user to stop those too). Recorded as sessions.revoked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return usageErr(errors.New("sessions revoke: --user ID is required (`arbor users list` shows the ids)"))
			}
			return withOps(cmd, "sessions revoke", func(ops operatorOps) error {
				ch, err := ops.RevokeSessions(cmd.Context(), user)
				if err != nil {
					return err
				}
				if ch.Already {
					fmt.Fprintf(cmd.OutOrStdout(), "user %s has no session or CLI login; nothing changed\n", ch.User.ID)
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s: %s\n", ch.User.ID, describeEnded(ch.Ended))
				return nil
			})
		},
	}
	revoke.Flags().StringVar(&user, "user", "", "the user's id")
	cmd.AddCommand(revoke)
	return cmd
}

// parseSince reads --since: a Go duration (90m, 2h30m) or a number of days
// (7d).
func parseSince(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--since %q: want a duration such as 90m, 24h or 7d", s)
	}
	return d, nil
}

func newAuditCmd() *cobra.Command {
	var q users.AuditQuery
	var since string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit [--user ID] [--type T] [--since DURATION] [--limit N] [--before SEQ] [--json]",
		Short: "Print the audit trail, newest first, a page at a time",
		Long: `Print the audit trail, newest first. --type is an action (user.disabled) or,
ending in ".", a prefix of actions (user.). A page holds --limit events
(default 50); when more are older, the command prints the --before that
shows the next page. See docs/operators.md for the event types.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since != "" {
				d, err := parseSince(since)
				if err != nil {
					return usageErr(err)
				}
				q.Since = time.Now().Add(-d)
			}
			if q.Limit < 0 || q.Limit > users.MaxAuditLimit {
				return usageErr(fmt.Errorf("--limit %d: want 1 to %d", q.Limit, users.MaxAuditLimit))
			}
			return withOps(cmd, "audit", func(ops operatorOps) error {
				page, err := ops.Audit(cmd.Context(), q)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return printJSON(out, page)
				}
				w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "SEQ\tTIME\tACTION\tACTOR\tUSER\tOUTCOME\tDETAILS")
				for _, e := range page.Events {
					var det []string
					for _, k := range slices.Sorted(maps.Keys(e.Details)) {
						det = append(det, k+"="+strconv.Quote(e.Details[k]))
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, when(e.Time), e.Action, orDash(e.Actor), orDash(e.UserID), orDash(e.Outcome), strings.Join(det, " "))
				}
				if err := w.Flush(); err != nil {
					return err
				}
				if page.Next != 0 {
					fmt.Fprintf(out, "older events: arbor audit %s--before %d\n", auditFlags(cmd), page.Next)
				} else {
					fmt.Fprintf(out, "%s; no older ones\n", plural(len(page.Events), "event", "events"))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&q.UserID, "user", "", "only events about this user id")
	cmd.Flags().StringVar(&q.Action, "type", "", `only this action, or actions starting with it when it ends in "." (user.)`)
	cmd.Flags().StringVar(&since, "since", "", "only events of the last DURATION (90m, 24h, 7d)")
	cmd.Flags().IntVar(&q.Limit, "limit", users.DefaultAuditLimit, "events per page")
	cmd.Flags().Uint64Var(&q.Before, "before", 0, "only events older than this seq (the previous page's next)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: {events, next}")
	return cmd
}

// auditFlags repeats the filters given, for the next page's command line.
func auditFlags(cmd *cobra.Command) string {
	var b strings.Builder
	for _, name := range []string{"user", "type", "since", "limit"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			fmt.Fprintf(&b, "--%s %s ", name, shellQuote(f.Value.String()))
		}
	}
	return b.String()
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:@/") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

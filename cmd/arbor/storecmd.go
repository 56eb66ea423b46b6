package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/data/etcd"
)

func newStoreCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Work on a store while no server runs on it",
	}
	cmd.AddCommand(newStoreCopyCmd())
	return cmd
}

// etcdFlags are the etcd settings of `arbor store copy`; they apply to
// whichever side is etcd.
type etcdFlags struct {
	root, username            string
	caFile, certFile, keyFile string
}

func newStoreCopyCmd() *cobra.Command {
	var from, to string
	var ef etcdFlags
	cmd := &cobra.Command{
		Use:   "copy --from KIND:WHERE --to KIND:WHERE",
		Short: "Copy every record to another store (bbolt <-> etcd) and verify the copy",
		Long: `Copy every record of one store into another, empty, store, then read both
back and compare them record by record.

KIND:WHERE is bbolt:FILE (a store file) or etcd:ENDPOINTS (comma-separated
client URLs, e.g. etcd:https://10.0.0.1:2379,https://10.0.0.2:2379).

Stop every Arbor server on both stores first: a bbolt file a server holds
is refused, and a write to an etcd store during the copy would be lost
(the verification would report it). Sealed provider tokens are copied as
they are, never opened, so no encryption key is needed; start the gateway
on the new store with the same keys. Connection versions and audit
sequence numbers are kept.

The etcd password comes from ARBOR_ETCD_PASSWORD or ARBOR_ETCD_PASSWORD_FILE,
as for 'arbor serve'. The exit status is 0 only if every record matches.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return usageErr(errors.New("--from and --to are required, each bbolt:FILE or etcd:ENDPOINTS"))
			}
			ctx := cmd.Context()
			src, err := openCopyStore(ctx, from, ef, true)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := openCopyStore(ctx, to, ef, false)
			if err != nil {
				return err
			}
			defer dst.Close()

			start := time.Now()
			rep, err := data.Copy(ctx, src, dst, data.CopyOptions{})
			out := cmd.OutOrStdout()
			if len(rep.Kinds) > 0 {
				fmt.Fprintf(out, "copied %s to %s\n", from, to)
				fmt.Fprintf(out, "%-18s %8s %8s %12s\n", "kind", "copied", "source", "destination")
				for _, k := range rep.Kinds {
					fmt.Fprintf(out, "%-18s %8d %8d %12d\n", k.Kind, k.Copied, k.Source, k.Destination)
				}
			}
			for _, m := range rep.Mismatches {
				fmt.Fprintln(out, "MISMATCH", m)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "verified: every record matches (%v)\n", time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "store to copy: bbolt:FILE or etcd:ENDPOINTS")
	cmd.Flags().StringVar(&to, "to", "", "empty store to copy into: bbolt:FILE or etcd:ENDPOINTS")
	cmd.Flags().StringVar(&ef.root, "etcd-root", etcd.DefaultRoot, "etcd: prefix of Arbor's keys (store.root)")
	cmd.Flags().StringVar(&ef.username, "etcd-username", "", "etcd: user name (store.username); the password is ARBOR_ETCD_PASSWORD[_FILE]")
	cmd.Flags().StringVar(&ef.caFile, "etcd-ca-file", "", "etcd: CA bundle of the servers' certificates (store.ca_file)")
	cmd.Flags().StringVar(&ef.certFile, "etcd-cert-file", "", "etcd: client certificate (store.cert_file)")
	cmd.Flags().StringVar(&ef.keyFile, "etcd-key-file", "", "etcd: client key (store.key_file)")
	return cmd
}

// openCopyStore opens KIND:WHERE. A source bbolt file must exist; neither
// may be held by a running server.
func openCopyStore(ctx context.Context, spec string, ef etcdFlags, source bool) (data.Store, error) {
	side := "--to"
	if source {
		side = "--from"
	}
	kind, where, _ := strings.Cut(spec, ":")
	if where == "" {
		return nil, usageErr(fmt.Errorf("%s %q: want bbolt:FILE or etcd:ENDPOINTS", side, spec))
	}
	quiet := slog.New(slog.DiscardHandler)
	switch kind {
	case "bbolt":
		if _, err := os.Stat(where); errors.Is(err, fs.ErrNotExist) && source {
			return nil, usageErr(fmt.Errorf("%s: no store file at %s", side, where))
		}
		if err := checkNotHeld(where); err != nil {
			return nil, err
		}
		return boltdb.Open(where, boltdb.Options{Logger: quiet})
	case "etcd":
		password, err := config.OptionalSecret(os.Environ(), "ARBOR_ETCD_PASSWORD")
		if err != nil {
			return nil, usageErr(err)
		}
		if (password == "") != (ef.username == "") {
			return nil, usageErr(errors.New("--etcd-username and ARBOR_ETCD_PASSWORD (or ARBOR_ETCD_PASSWORD_FILE) go together: set both or neither"))
		}
		cfg := etcd.Config{
			Endpoints: strings.Split(where, ","),
			Root:      ef.root,
			Username:  ef.username,
			Password:  password,
			TLS:       etcd.TLSConfig{CAFile: ef.caFile, CertFile: ef.certFile, KeyFile: ef.keyFile},
		}
		s, err := etcd.Open(ctx, cfg, etcd.Options{Logger: quiet})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", side, err)
		}
		return s, nil
	}
	return nil, usageErr(fmt.Errorf("%s %q: unknown kind %q: want bbolt:FILE or etcd:ENDPOINTS", side, spec, kind))
}

// checkNotHeld refuses a bbolt file whose lock another process holds. A
// server holds it exclusively; a shared lock then times out.
func checkNotHeld(path string) error {
	if _, err := os.Stat(path); err != nil {
		return nil // a new file; boltdb.Open reports other problems
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("bbolt file %s is locked by another process: is an arbor server running on it? stop it first", path)
	}
	if err == nil {
		db.Close()
	}
	return nil // boltdb.Open reports anything else with advice
}

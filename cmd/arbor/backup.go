package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/admin"
)

func newBackupCmd() *cobra.Command {
	var to string
	var force bool
	cmd := &cobra.Command{
		Use:   "backup --to FILE",
		Short: "Write a consistent copy of the store to FILE, while serving or not",
		Long: `Write a consistent copy of the bbolt store to FILE.

While 'arbor serve' runs it holds the store's file lock, so the copy is taken
by the server itself (over the admin socket in data_dir) inside one read
transaction: writes go on meanwhile and the copy is a snapshot. Without a
running server the file is read directly. The copy is checked (bbolt's
consistency check) before it is moved into place.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return usageErr(errors.New("--to FILE is required"))
			}
			if _, err := os.Stat(to); err == nil && !force {
				return usageErr(fmt.Errorf("%s exists; pass --force to overwrite it", to))
			}
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return err
			}
			if cfg.Store.Backend == "etcd" {
				return usageErr(errors.New("backup copies a bbolt file; back an etcd store up with `etcdctl snapshot save`, or copy it to a bbolt file with `arbor store copy --from etcd:ENDPOINTS --to bbolt:FILE`"))
			}
			tmp, err := os.CreateTemp(filepath.Dir(to), ".arbor-backup-*")
			if err != nil {
				return fmt.Errorf("backup: creating a file next to %s: %w", to, err)
			}
			defer os.Remove(tmp.Name())
			if err := tmp.Chmod(0o600); err != nil {
				return err
			}
			start := time.Now()
			client := admin.NewClient(admin.SocketPath(cfg.DataDir))
			var n int64
			source := "running server"
			if client.Running(cmd.Context()) {
				n, err = client.Backup(cmd.Context(), tmp)
			} else {
				source = cfg.Store.Path
				n, err = copyStoreFile(cfg.Store.Path, tmp)
			}
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			if err := checkBoltFile(tmp.Name()); err != nil {
				return fmt.Errorf("backup: the copy failed its consistency check, nothing written to %s: %w", to, err)
			}
			if err := os.Rename(tmp.Name(), to); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup of %s written to %s (%d bytes, %v)\n", source, to, n, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "file to write the backup to")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite FILE if it exists")
	return cmd
}

// copyStoreFile copies a store no server holds, through a read-only bbolt
// transaction.
func copyStoreFile(path string, w io.Writer) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("no running server and no store at %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", path, err)
	}
	defer db.Close()
	var n int64
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

func checkBoltFile(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: Check's goroutine writes every error
			if first == nil {
				first = err
			}
		}
		return first
	})
}

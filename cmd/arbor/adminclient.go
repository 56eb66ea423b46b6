package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vintner/arbor/admin"
)

// askServer runs ask against the admin socket of the 'arbor serve' on the
// command's data_dir, for the commands that talk to a running server. what
// names the command in errors; a server that is not running gets one
// message that says how to point at the right one.
func askServer(cmd *cobra.Command, what string, ask func(*admin.Client) error) error {
	cfg, err := loadConfig(cmd, nil)
	if err != nil {
		return err
	}
	sock := admin.SocketPath(cfg.DataDir)
	err = ask(admin.NewClient(sock))
	if errors.Is(err, admin.ErrNotRunning) {
		return fmt.Errorf("%s: no 'arbor serve' is running on data_dir %s (socket %s); start it, or pass the same --config / ARBOR_DATA_DIR it uses", what, cfg.DataDir, sock)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

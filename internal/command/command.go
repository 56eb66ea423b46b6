// Package command holds what Arbor's two commands, arbor and grape, share
// on top of cobra: the exit status carried from a command to main (cobra's
// commands return only an error), 2 for a mistake in what the user gave
// (flags, arguments, config), any other status as the command chooses; and
// the version command.
package command

import (
	"fmt"

	"github.com/spf13/cobra"
)

// ExitError is Err with the exit status Code; main finds it with
// errors.As.
type ExitError struct {
	Code int
	Err  error
}

func (e ExitError) Error() string { return e.Err.Error() }
func (e ExitError) Unwrap() error { return e.Err }

// Usage marks err as a mistake in what the user gave: exit status 2.
func Usage(err error) error { return ExitError{Code: 2, Err: err} }

// Version is the `version` command of the program name: it prints the
// name and version.
func Version(name, version string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), name, version)
		},
	}
}

// Package exitcode carries a command's exit status through cobra, whose
// commands return only an error, to main, for arbor and grape alike: 2 for
// a mistake in what the user gave (flags, arguments, config), any other
// status as the command chooses.
package exitcode

// Error is Err with the exit status Code; main finds it with errors.As.
type Error struct {
	Code int
	Err  error
}

func (e Error) Error() string { return e.Err.Error() }
func (e Error) Unwrap() error { return e.Err }

// Usage marks err as a mistake in what the user gave: exit status 2.
func Usage(err error) error { return Error{Code: 2, Err: err} }

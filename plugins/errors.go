package plugins

import (
	"errors"

	"github.com/vintner/arbor/sdk/abi"
)

// Error is the error every Plugin call returns. Code is stable (see the
// abi.Code constants) and is what callers branch on; Message is for people
// and never contains the client secret or a token the host knows about.
//
//	var pe *plugins.Error
//	if errors.As(err, &pe) && pe.Code == abi.CodeInvalidGrant { … needs reconnect … }
type Error struct {
	Plugin    string
	Op        abi.Op
	Code      abi.Code
	Message   string
	Retryable bool
	// Status is the provider's HTTP status when the plugin reported one.
	Status int
	// Err is the underlying cause when the host produced the error (a
	// context error, a wazero trap), else nil.
	Err error
}

func (e *Error) Error() string {
	s := "plugin " + e.Plugin + ": " + e.Op.String() + ": " + string(e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ErrClosed is wrapped by the Error returned from calls on a closed plugin
// (closed by Close, or removed from its directory by a reload).
var ErrClosed = errors.New("plugin closed")

// CodeOf returns the abi.Code of err if it is or wraps an *Error, else "".
func CodeOf(err error) abi.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

package plugins

import (
	"errors"
	"time"

	"github.com/vintner/arbor/sdk/abi"
)

// Error is the error every Plugin call returns. Code is stable (see the
// abi.Code constants) and is what callers branch on; Message is for people
// and never contains the client secret or a token the host knows about.
//
// Plugin names the plugin that answered, so a plugin's own messages do not
// repeat its name: Error() and Text() put it in front, once.
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
	// RetryAfter is how long the provider asked to wait, set for code
	// rate_limited only: the plugin's value clamped to 1 s .. 1 h, or
	// abi.DefaultRetryAfter (60 s) when it gave none (a plugin built
	// before the ABI had the field, or a provider that said nothing).
	RetryAfter time.Duration
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

// Text is Message with the plugin's name in front ("github: the refresh
// token expired"), for places that show the message without the rest of
// Error(), such as the reason a connection needs reconnecting; "" when
// there is no message.
func (e *Error) Text() string {
	if e.Message == "" {
		return ""
	}
	return e.Plugin + ": " + e.Message
}

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

// RetryAfterOf returns the RetryAfter of err if it is or wraps an *Error
// with one, else 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// retryAfter is the host's reading of a result's RetryAfter: only a
// rate_limited result has one, defaulted and clamped.
func retryAfter(code abi.Code, seconds int) time.Duration {
	if code != abi.CodeRateLimited {
		return 0
	}
	return time.Duration(abi.ClampRetryAfter(int64(seconds))) * time.Second
}

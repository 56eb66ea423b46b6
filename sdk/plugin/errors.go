package plugin

import "github.com/vintner/arbor/sdk/abi"

// Error is an error with a stable code the gateway acts on. Return one from
// an operation; errors of other types are reported with code "internal".
// Message is shown to operators: never put a token or the client secret in
// it.
type Error struct {
	Code      Code
	Message   string
	Retryable bool
	// Status is the provider's HTTP status, if the error came from one.
	Status int
	// RetryAfter is how many seconds the provider asked to wait, with
	// code rate_limited (see RateLimit); 0 means it did not say, and the
	// host assumes abi.DefaultRetryAfter.
	RetryAfter int
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// NewError returns an *Error with code and message. (The SDK has no
// Errorf: fmt adds about half a megabyte to a module; import it yourself if
// you want it.)
func NewError(code Code, message string) *Error {
	return &Error{Code: code, Message: message}
}

// ErrInvalidGrant reports that the provider rejected an authorization code
// or refresh token. The gateway marks the connection "needs reconnect".
func ErrInvalidGrant(reason string) *Error {
	return &Error{Code: abi.CodeInvalidGrant, Message: reason}
}

// ErrInvalidClient reports that the provider rejected the client id or
// secret: the operator's configuration is wrong.
func ErrInvalidClient(reason string) *Error {
	return &Error{Code: abi.CodeInvalidClient, Message: reason}
}

// ErrInvalidToken reports that the provider rejected the access token; the
// gateway refreshes it or asks the user to reconnect.
func ErrInvalidToken(reason string) *Error {
	return &Error{Code: abi.CodeInvalidToken, Message: reason}
}

// ErrInvalidRequest reports that the request lacked something the operation
// needs (a missing endpoint, an empty code).
func ErrInvalidRequest(reason string) *Error {
	return &Error{Code: abi.CodeInvalidRequest, Message: reason}
}

// ErrUnsupported reports that the provider cannot do what was asked (for
// example, revocation on a provider without a revocation endpoint).
func ErrUnsupported(reason string) *Error {
	return &Error{Code: abi.CodeUnsupported, Message: reason}
}

// ErrRateLimited reports that the provider asked us to slow down without
// saying for how long; the host assumes abi.DefaultRetryAfter. Prefer
// ErrRateLimitedAfter when the answer says (RateLimit reads it).
func ErrRateLimited(reason string) *Error {
	return &Error{Code: abi.CodeRateLimited, Message: reason, Retryable: true}
}

// ErrRateLimitedAfter reports that the provider asked us to wait
// retryAfter seconds (the host clamps it to 1 s .. 1 h).
func ErrRateLimitedAfter(reason string, retryAfter int) *Error {
	return &Error{Code: abi.CodeRateLimited, Message: reason, Retryable: true, RetryAfter: retryAfter}
}

// ErrProvider reports an unexpected answer from the provider. Server errors
// (status 5xx) are marked retryable.
func ErrProvider(status int, reason string) *Error {
	return &Error{Code: abi.CodeProviderError, Message: reason, Status: status, Retryable: status >= 500}
}

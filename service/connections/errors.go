package connections

import (
	"errors"
	"time"

	"github.com/vintner/arbor/sdk/abi"
)

// Errors the broker returns, as the kinds of an *Error: test with
// errors.Is (errors.Is(err, ErrNotConnected)) and read the details
// (provider, reason, wait) with errors.As. The broker knows nothing of
// HTTP: the web layer (gateway/api.Answer) maps each kind to a status,
// a stable code and a message, in one place, as it does for
// package workers.
var (
	// ErrNotConnected is returned when the user has no connection to the
	// provider (never connected, or disconnected meanwhile).
	ErrNotConnected = errors.New("no connection to the provider")
	// ErrReconnectRequired is returned when the connection is marked
	// "needs reconnect": the provider refused its refresh token
	// (invalid_grant), or the access token expired and there is no
	// refresh token. Error.Reason says why.
	ErrReconnectRequired = errors.New("the connection must be reconnected")
	// ErrTokenRefused is returned by Repos when the provider refused a
	// token the broker considered valid (revoked at the provider).
	ErrTokenRefused = errors.New("the provider refused the access token")
	// ErrRateLimited is returned when the provider asked Arbor to slow
	// down and no still-valid token could be handed out instead.
	// Error.RetryAfter is the wait the provider asked for; Error.Op says
	// whose quota was spent (OpRefresh: Arbor's; OpRepos: the user's).
	ErrRateLimited = errors.New("the provider is rate limiting requests")
	// ErrProviderRefused is returned by Repos when the provider refused the
	// request in a way retrying will not change (410 Gone, another 4xx, a
	// refused client). Error.Status is the provider's HTTP status, 0 if
	// unknown.
	ErrProviderRefused = errors.New("the provider refused the request")
	// ErrInvalidRequest is returned by Repos when the provider says the
	// request was malformed (a stale page cursor).
	ErrInvalidRequest = errors.New("the provider refused the request as malformed")
	// ErrProviderUnavailable is returned when the provider could not be
	// reached or failed (5xx, timeout) for the operation Error.Op, retries
	// included.
	ErrProviderUnavailable = errors.New("the provider is unavailable")
	// ErrUnknownProvider is returned when no loaded plugin serves the
	// provider, so it cannot refresh (OpRefresh) or list (OpRepos).
	ErrUnknownProvider = errors.New("no plugin serves the provider")
	// ErrStoreUnavailable is returned when the store could not be read or
	// written; the cause is Error.Err.
	ErrStoreUnavailable = errors.New("the store could not read or write the connection")
	// ErrRefreshTimeout is returned when the caller's context ended while
	// it waited for a refresh; the refresh goes on and the next call gets
	// its result.
	ErrRefreshTimeout = errors.New("the refresh took longer than the caller could wait")
	// ErrLockTimeout is returned when another replica held the
	// connection's refresh lock for longer than CallTimeout.
	ErrLockTimeout = errors.New("another replica's refresh took longer than the refresh may wait")
)

// Op is what the broker was doing at the provider when it failed.
type Op string

// Ops of Error.Op.
const (
	OpRefresh Op = "refresh" // refreshing the token (ValidProviderToken)
	OpRepos   Op = "repos"   // listing repositories (Repos)
)

// Error is an error of the broker: one of the Err* kinds, for one
// provider, with the cause. Its text is for logs; a client sees what the
// web layer maps Kind to.
type Error struct {
	// Kind is one of the Err* values; errors.Is(err, Kind) holds.
	Kind     error
	Provider string
	// Op is the operation at the provider, where it matters (rate limits,
	// unavailable, unknown provider).
	Op Op
	// Reason is why the connection must be reconnected
	// (ErrReconnectRequired), cleaned of control characters.
	Reason string
	// RetryAfter is the wait the provider asked for (ErrRateLimited),
	// never zero for that kind.
	RetryAfter time.Duration
	// Status is the provider's HTTP status (ErrProviderRefused), 0 if
	// unknown.
	Status int
	// Err is the cause, for logs. May be nil.
	Err error
}

func (e *Error) Error() string {
	s := "connections: "
	if e.Provider != "" {
		s += e.Provider + ": "
	}
	if e.Op != "" {
		s += string(e.Op) + ": "
	}
	s += e.Kind.Error()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is e's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func storeError(provider string, err error) *Error {
	return &Error{Kind: ErrStoreUnavailable, Provider: provider, Err: err}
}

func notConnected(provider string) *Error {
	return &Error{Kind: ErrNotConnected, Provider: provider}
}

func reconnectRequired(provider, reason string) *Error {
	return &Error{Kind: ErrReconnectRequired, Provider: provider, Reason: reason}
}

// defaultRetryAfter is the wait assumed when a provider rate limits
// without saying how long.
const defaultRetryAfter = abi.DefaultRetryAfter * time.Second

// rateLimited: the provider asked to wait (0: it did not say how long).
func rateLimited(provider string, op Op, err error, wait time.Duration) *Error {
	if wait <= 0 {
		wait = defaultRetryAfter
	}
	return &Error{Kind: ErrRateLimited, Provider: provider, Op: op, RetryAfter: wait, Err: err}
}

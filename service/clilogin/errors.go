package clilogin

import (
	"errors"
	"fmt"

	"github.com/vintner/arbor/internal/scopeset"
)

// Errors of the Grape flow (Start, Open, Approve, Deny, Exchange). Each is
// a distinct answer: gateway/api/answer.go gives each its stable code.
var (
	// ErrInvalidDeviceCode: a device code that is not 16 to 128 letters,
	// digits or '-' (Start, Open).
	ErrInvalidDeviceCode = errors.New("clilogin: device_code must be 16 to 128 letters, digits or '-' (a UUID)")
	// ErrInvalidChallenge: a code_challenge that is not the base64url
	// SHA-256 of a verifier (Start).
	ErrInvalidChallenge = errors.New("clilogin: code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
	// ErrDeviceCodeExists: Start of a device code that is in use.
	ErrDeviceCodeExists = errors.New("clilogin: this device code is in use; make a new random one")
	// ErrUnknownDevice: no such login request (or one of another flow).
	ErrUnknownDevice = errors.New("clilogin: no such login request")
	// ErrNotCLI: Open of a device code of the RFC 8628 flow.
	ErrNotCLI = errors.New("clilogin: not a CLI login request")
	// ErrExpired: the request is older than the flow's lifetime.
	ErrExpired = errors.New("clilogin: the login request expired")
	// ErrUsed: the request was exchanged already.
	ErrUsed = errors.New("clilogin: the login request was already exchanged")
	// ErrBurned: too many wrong codes were tried.
	ErrBurned = errors.New("clilogin: too many wrong codes: the login request is burned")
	// ErrDenied: the user refused the request in the browser.
	ErrDenied = errors.New("clilogin: the login was refused")
	// ErrOtherUser: another user opened the request first.
	ErrOtherUser = errors.New("clilogin: the login request belongs to another user")
	// ErrWrongCode: the verification code is wrong, or not minted yet.
	ErrWrongCode = errors.New("clilogin: the verification code is wrong (or the login is not approved yet)")
	// ErrWrongVerifier: the code_verifier does not match the challenge.
	ErrWrongVerifier = errors.New("clilogin: the code_verifier does not match the code_challenge")
)

// Errors of the RFC 8628 flow (DeviceAuthorize, DeviceToken, LookUp,
// Decide). ErrExpired, ErrUsed and ErrDenied above mean the same there.
var (
	// ErrUnknownClient: a client_id that is not registered (config
	// cli.device_clients), or no longer.
	ErrUnknownClient = errors.New("clilogin: this client_id is not registered")
	// ErrOtherClient: a device code polled by another client than its own.
	ErrOtherClient = errors.New("clilogin: the device_code was issued to another client")
	// ErrPending: the user has not decided yet (authorization_pending).
	ErrPending = errors.New("clilogin: the user has not decided yet")
	// ErrSlowDown: a poll sooner than the interval; the interval grew by
	// 5 s (RFC 8628 3.5).
	ErrSlowDown = errors.New("clilogin: polling too fast")
	// ErrNotUserCode: a typed user code that does not have 8 letters.
	ErrNotUserCode = errors.New("clilogin: not a user code")
	// ErrUnknownUserCode: no pending request has the user code.
	ErrUnknownUserCode = errors.New("clilogin: no pending request has this user code")
	// ErrFinished: a decision on a request that is decided or expired.
	ErrFinished = errors.New("clilogin: the request was decided already or expired")
)

// ErrInvalidGrant is what every refusal of a refresh token (and of a
// logout without a token) wraps: the token cannot be used; log in again.
var ErrInvalidGrant = errors.New("clilogin: invalid grant")

// The refusals of Refresh and Logout; each wraps ErrInvalidGrant.
var (
	ErrTokenInvalid       = fmt.Errorf("%w: the refresh token is invalid or expired", ErrInvalidGrant)
	ErrLoginEnded         = fmt.Errorf("%w: the login has ended", ErrInvalidGrant)
	ErrLoginRevoked       = fmt.Errorf("%w: the login was revoked", ErrInvalidGrant)
	ErrTokenMismatch      = fmt.Errorf("%w: the refresh token does not match its login", ErrInvalidGrant)
	ErrRefreshOtherClient = fmt.Errorf("%w: the refresh token was issued to another client", ErrInvalidGrant)
	// ErrClientGone: the login's device client is no longer registered.
	ErrClientGone = fmt.Errorf("%w: the device client is no longer registered", ErrInvalidGrant)
	// ErrReused: a rotated refresh token was used again; the login is
	// revoked.
	ErrReused   = fmt.Errorf("%w: the refresh token was already used; the login is revoked", ErrInvalidGrant)
	ErrUserGone = fmt.Errorf("%w: the user no longer exists", ErrInvalidGrant)
	// ErrNoToken: Logout without a valid refresh or access token.
	ErrNoToken = fmt.Errorf("%w: no token of a login to end", ErrInvalidGrant)
)

// ErrBadBearer is why Authenticate refused a bearer token: it is not a
// live CLI access token.
var ErrBadBearer = errors.New("clilogin: invalid bearer token")

// ScopeError refuses the scope a device client asked for: Unknown, a name
// that is not a scope; otherwise more than the client's Allowed.
type ScopeError struct {
	Unknown bool
	Allowed scopeset.Set
}

func (e *ScopeError) Error() string {
	if e.Unknown {
		return "clilogin: unknown scope"
	}
	return "clilogin: the client may ask only for " + e.Allowed.String()
}

// StoreError is a store that failed (unavailable, closed): Arbor could
// not do What ("read the login request"); the request may be retried.
type StoreError struct {
	What string
	Err  error
}

func (e *StoreError) Error() string { return "clilogin: could not " + e.What + ": " + e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

func storeErr(what string, err error) error { return &StoreError{What: what, Err: err} }

// firstOf returns the first of sentinels that err is (the store may wrap
// what an update function returned), or nil.
func firstOf(err error, sentinels ...error) error {
	for _, e := range sentinels {
		if errors.Is(err, e) {
			return e
		}
	}
	return nil
}

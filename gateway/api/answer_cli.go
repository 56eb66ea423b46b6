package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/clilogin"
)

// Stable error codes of the CLI login API.
const (
	CodeCLIUnknownDevice = "unknown_device_code"
	CodeCLIExpiredDevice = "expired_device_code"
	CodeCLIBurnedDevice  = "device_code_burned"
	CodeCLIUsedDevice    = "device_code_used"
	CodeCLIInvalidCode   = "invalid_code"
	CodeCLIInvalidVerif  = "invalid_verifier"
	CodeCLIInvalidGrant  = "invalid_grant"
	// CodeCLIBusy refuses a device start because too many requests are
	// pending.
	CodeCLIBusy = "busy"
)

// cliAnswers are the fixed answers to service/clilogin's sentinel errors.
var cliAnswers = []struct {
	err     error
	status  int
	code    string
	message string
}{
	{clilogin.ErrInvalidDeviceCode, 400, "invalid_request", "device_code must be 16 to 128 letters, digits or '-' (a UUID)"},
	{clilogin.ErrInvalidChallenge, 400, "invalid_request", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)"},
	{clilogin.ErrDeviceCodeExists, 409, "device_code_exists", "This device code is in use; make a new random one"},
	{clilogin.ErrUnknownDevice, 400, CodeCLIUnknownDevice, "No such login request; run the login command again"},
	{clilogin.ErrNotCLI, 400, CodeCLIUnknownDevice, "No such login request; run the login command again"},
	{clilogin.ErrUsed, 400, CodeCLIUsedDevice, "This login request was already exchanged; run the login command again"},
	{clilogin.ErrBurned, 400, CodeCLIBurnedDevice, "Too many wrong codes: this login request is burned; run the login command again"},
	{clilogin.ErrDenied, 400, "access_denied", "The login was refused in the browser"},
	{clilogin.ErrExpired, 400, CodeCLIExpiredDevice, "This login request is more than 10 minutes old; run the login command again"},
	{clilogin.ErrWrongCode, 400, CodeCLIInvalidCode, "The verification code is wrong (or the login is not approved yet)"},
	{clilogin.ErrWrongVerifier, 400, CodeCLIInvalidVerif, "The code_verifier does not match the login request's code_challenge"},
	{clilogin.ErrOtherUser, 403, "login_request_taken", "Another user opened this login request first"},
	{clilogin.ErrTokenInvalid, 401, CodeCLIInvalidGrant, "The refresh token is invalid or expired; log in again"},
	{clilogin.ErrLoginEnded, 401, CodeCLIInvalidGrant, "This login has ended; log in again"},
	{clilogin.ErrLoginRevoked, 401, CodeCLIInvalidGrant, "This login was revoked; log in again"},
	{clilogin.ErrTokenMismatch, 401, CodeCLIInvalidGrant, "The refresh token is invalid; log in again"},
	{clilogin.ErrRefreshOtherClient, 401, CodeCLIInvalidGrant, "The refresh token was issued to another client"},
	{clilogin.ErrClientGone, 401, CodeCLIInvalidGrant, "This device client is no longer registered with Arbor; its logins have ended"},
	{clilogin.ErrReused, 401, CodeCLIInvalidGrant, "This refresh token was already used; the login is revoked. Log in again"},
	{clilogin.ErrUserGone, 401, CodeCLIInvalidGrant, "The user no longer exists"},
	{clilogin.ErrNoToken, 401, CodeCLIInvalidGrant, "Send the refresh token (or the access token as Authorization: Bearer) of the login to end"},
}

// CLIAnswer is the HTTP answer to an error of service/clilogin, for the
// CLI login's JSON API and its pages: the status, stable code and message
// of each of the service's errors, 503 busy with Retry-After past the caps
// on pending requests, 503 store_unavailable when the store failed, and
// 500 for anything else (its cause is logged, not shown).
func CLIAnswer(err error) *httperr.Error {
	var (
		be *clilogin.BusyError
		se *clilogin.StoreError
	)
	switch {
	case errors.As(err, &be):
		msg := "Too many device login requests are pending from your address; finish or wait for one of them, then try again"
		if be.Global {
			msg = "Too many device login requests are pending; try again in a moment"
		}
		return httperr.New(http.StatusServiceUnavailable, CodeCLIBusy, msg).WithRetryAfter(be.RetryAfter)
	case errors.As(err, &se):
		return httperr.StoreUnavailable(se.Err, "Arbor could not "+se.What)
	}
	for _, a := range cliAnswers {
		if errors.Is(err, a.err) {
			return httperr.New(a.status, a.code, a.message)
		}
	}
	return httperr.Internal(err)
}

// cliOAuthAnswers are RFC 6749's answers (section 5.2, and RFC 8628 3.5)
// to the errors of the RFC 8628 endpoints: stock OAuth clients read
// {error, error_description}, not Arbor's {error, message}.
var cliOAuthAnswers = []struct {
	err        error
	code, desc string
}{
	{clilogin.ErrUnknownClient, "invalid_client", "This client_id is not registered with Arbor (config cli.device_clients)"},
	{clilogin.ErrUnknownDevice, "invalid_grant", "Unknown device_code"},
	{clilogin.ErrOtherClient, "invalid_grant", "The device_code was issued to another client"},
	{clilogin.ErrUsed, "invalid_grant", "The device_code was already used"},
	{clilogin.ErrExpired, "expired_token", "The device_code expired; start again"},
	{clilogin.ErrDenied, "access_denied", "The user denied the request"},
	{clilogin.ErrSlowDown, "slow_down", "Polling too fast; wait longer between requests"},
	{clilogin.ErrPending, "authorization_pending", "The user has not decided yet"},
}

// cliOAuthAnswer answers an error of the device authorization endpoint or
// of the device code grant: in RFC 6749's format where the RFC has a code
// for it, otherwise as CLIAnswer does (busy, store, internal).
func cliOAuthAnswer(c *fiber.Ctx, err error) error {
	var se *clilogin.ScopeError
	if errors.As(err, &se) {
		if se.Unknown {
			return oauthError(c, 400, "invalid_scope", "Unknown scope; the scopes are "+strings.Join(scope.Names(), ", "))
		}
		return oauthError(c, 400, "invalid_scope", "This client may ask only for: "+se.Allowed.String())
	}
	for _, a := range cliOAuthAnswers {
		if errors.Is(err, a.err) {
			return oauthError(c, 400, a.code, a.desc)
		}
	}
	return CLIAnswer(err)
}

// oauthError answers in RFC 6749's error format.
func oauthError(c *fiber.Ctx, status int, code, desc string) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(status).JSON(fiber.Map{"error": code, "error_description": desc})
}

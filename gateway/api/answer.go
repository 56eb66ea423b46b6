package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/sdk/client"
	"github.com/vintner/arbor/service/clilogin"
	"github.com/vintner/arbor/service/connections"
	"github.com/vintner/arbor/service/workers"
)

// Answer maps an error of a service (package service/...) to the answer a
// client gets: the one place where the services' errors become HTTP
// statuses, stable codes and messages, for the APIs and the pages alike.
// Every route that calls a service returns Answer(err). An error that is
// no service's is returned unchanged (the gateway's error handler
// classifies it with httperr.From: an internal failure is a 500); nil
// stays nil.
//
// The connections broker (a *connections.Error of any kind not listed is
// a 500):
//
//	ErrNotConnected         404 provider_not_connected
//	ErrReconnectRequired    409 provider_reconnect_required (with the reason)
//	ErrTokenRefused         409 provider_reconnect_required
//	ErrRateLimited          503 provider_rate_limited, Retry-After (refresh: Arbor's quota)
//	                        429 provider_rate_limited, Retry-After (repos: the user's quota)
//	ErrProviderRefused      502 provider_refused
//	ErrInvalidRequest       400 bad_request
//	ErrProviderUnavailable  503 provider_unavailable (refresh), 502 (repos)
//	ErrUnknownProvider      503 unknown_provider
//	ErrStoreUnavailable     503 store_unavailable
//	ErrRefreshTimeout       504 gateway_timeout
//	ErrLockTimeout          504 gateway_timeout
//
// The worker service:
//
//	workers.ErrNotFound     404 worker_not_found (also another user's worker)
//	workers.ErrBadName      400 invalid_name
//	workers.ErrBadScope     400 invalid_scope
//	workers.ErrBadRepoPattern 400 invalid_repo_pattern
//
// The CLI login service: as CLIAnswer (below) says.
func Answer(err error) error {
	var ce *connections.Error
	switch {
	case errors.As(err, &ce):
		return answerConnections(err, ce)
	case isCLIError(err):
		return CLIAnswer(err)
	case errors.Is(err, workers.ErrNotFound):
		return httperr.Wrap(err, http.StatusNotFound, client.CodeWorkerNotFound, "You have no worker with that id")
	case errors.Is(err, workers.ErrBadScope):
		return httperr.Wrap(err, http.StatusBadRequest, CodeInvalidScope, errorText(err))
	case errors.Is(err, workers.ErrBadRepoPattern):
		return httperr.Wrap(err, http.StatusBadRequest, CodeInvalidRepoPattern, errorText(err))
	case errors.Is(err, workers.ErrBadName):
		return httperr.Wrap(err, http.StatusBadRequest, client.CodeInvalidName, fmt.Sprintf("A worker name has 1 to %d characters and no control characters", workers.MaxName))
	}
	return err
}

// answerConnections is Answer for an error of the connections broker.
func answerConnections(err error, ce *connections.Error) error {
	p := ce.Provider
	switch ce.Kind {
	case connections.ErrNotConnected:
		return httperr.Wrap(err, http.StatusNotFound, connections.CodeNotConnected, "No "+p+" connection: connect it on the Integrations page")
	case connections.ErrReconnectRequired:
		msg := "The " + p + " connection must be reconnected on the Integrations page"
		if ce.Reason != "" {
			msg += ": " + ce.Reason
		}
		return httperr.Wrap(err, http.StatusConflict, connections.CodeReconnectRequired, msg)
	case connections.ErrTokenRefused:
		return httperr.Wrap(err, http.StatusConflict, connections.CodeReconnectRequired, "The provider refused the token; reconnect "+p+" on the Integrations page")
	case connections.ErrRateLimited:
		// A limit on Arbor's own refresh is Arbor's trouble (503); a
		// listing runs on the user's own token, so the quota spent is the
		// user's (429).
		status := http.StatusServiceUnavailable
		if ce.Op == connections.OpRepos {
			status = http.StatusTooManyRequests
		}
		secs := httperr.RetryAfterSeconds(ce.RetryAfter)
		in := strconv.FormatInt(secs, 10) + " seconds"
		if secs == 1 {
			in = "1 second"
		}
		return httperr.Wrap(err, status, connections.CodeProviderRateLimited,
			"The provider is rate limiting requests; try again in "+in).WithRetryAfter(time.Duration(secs) * time.Second)
	case connections.ErrProviderRefused:
		msg := "The provider refused to list the repositories"
		if ce.Status != 0 {
			msg += " (HTTP " + strconv.Itoa(ce.Status) + ")"
		}
		return httperr.Wrap(err, http.StatusBadGateway, connections.CodeProviderRefused,
			msg+"; retrying will not help. Arbor's operator can find the details in the log under this request id")
	case connections.ErrInvalidRequest:
		return httperr.Wrap(err, http.StatusBadRequest, httperr.CodeBadRequest, "The provider refused the request (a stale page cursor?)")
	case connections.ErrProviderUnavailable:
		if ce.Op == connections.OpRepos {
			return httperr.Wrap(err, http.StatusBadGateway, connections.CodeProviderUnavailable, "The provider did not list the repositories; try again in a moment")
		}
		return httperr.Wrap(err, http.StatusServiceUnavailable, connections.CodeProviderUnavailable, "The provider did not refresh the token; try again in a moment")
	case connections.ErrUnknownProvider:
		msg := "The " + p + " plugin is not loaded or not configured"
		if ce.Op == connections.OpRefresh {
			msg += "; the token cannot be refreshed"
		}
		return httperr.Wrap(err, http.StatusServiceUnavailable, connections.CodeUnknownProvider, msg)
	case connections.ErrStoreUnavailable:
		return httperr.StoreUnavailable(err, "Arbor could not read or write the connection; try again in a moment")
	case connections.ErrRefreshTimeout:
		return httperr.Wrap(err, http.StatusGatewayTimeout, httperr.CodeGatewayTimeout, "The token refresh took longer than the request could wait; it goes on and the next request will get its result")
	case connections.ErrLockTimeout:
		return httperr.Wrap(err, http.StatusGatewayTimeout, httperr.CodeGatewayTimeout, "Another replica's refresh of this token took longer than the refresh may wait; try again in a moment")
	}
	return httperr.Internal(err)
}

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

// isCLIError reports whether err is one of service/clilogin's.
func isCLIError(err error) bool {
	var (
		be *clilogin.BusyError
		se *clilogin.StoreError
	)
	if errors.As(err, &be) || errors.As(err, &se) {
		return true
	}
	for _, a := range cliAnswers {
		if errors.Is(err, a.err) {
			return true
		}
	}
	return false
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

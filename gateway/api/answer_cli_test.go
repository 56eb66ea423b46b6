package api

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/clilogin"
)

// TestCLIAnswer: each error of service/clilogin has its answer, also when
// wrapped; a busy refusal carries its Retry-After, a store failure its
// "what" and its cause (for the log), anything else is a 500.
func TestCLIAnswer(t *testing.T) {
	for _, tc := range []struct {
		err        error
		status     int
		code, msg  string
		retryAfter time.Duration
	}{
		{clilogin.ErrInvalidChallenge, 400, "invalid_request", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)", 0},
		{clilogin.ErrDeviceCodeExists, 409, "device_code_exists", "This device code is in use; make a new random one", 0},
		{fmt.Errorf("wrapped: %w", clilogin.ErrBurned), 400, CodeCLIBurnedDevice, "Too many wrong codes: this login request is burned; run the login command again", 0},
		{clilogin.ErrNotCLI, 400, CodeCLIUnknownDevice, "No such login request; run the login command again", 0},
		{clilogin.ErrReused, 401, CodeCLIInvalidGrant, "This refresh token was already used; the login is revoked. Log in again", 0},
		{clilogin.ErrNoToken, 401, CodeCLIInvalidGrant, "Send the refresh token (or the access token as Authorization: Bearer) of the login to end", 0},
		{&clilogin.BusyError{Global: true, RetryAfter: 1500 * time.Millisecond}, 503, CodeCLIBusy, "Too many device login requests are pending; try again in a moment", 1500 * time.Millisecond},
		{&clilogin.BusyError{RetryAfter: time.Minute}, 503, CodeCLIBusy, "Too many device login requests are pending from your address; finish or wait for one of them, then try again", time.Minute},
		{&clilogin.StoreError{What: "record the login", Err: data.ErrUnavailable}, 503, "store_unavailable", "Arbor could not record the login", 0},
		{errors.New("entropy ran out"), 500, "internal_error", "", 0},
	} {
		e := CLIAnswer(tc.err)
		if e.Status != tc.status || e.Code != tc.code || (tc.msg != "" && e.Message != tc.msg) || e.RetryAfter != tc.retryAfter {
			t.Errorf("CLIAnswer(%v) = %d %s %q Retry-After %v; want %d %s %q %v", tc.err, e.Status, e.Code, e.Message, e.RetryAfter, tc.status, tc.code, tc.msg, tc.retryAfter)
		}
	}
	if e := CLIAnswer(&clilogin.StoreError{What: "read the user", Err: data.ErrClosed}); !errors.Is(e, data.ErrClosed) {
		t.Errorf("a store failure's answer lost its cause: %v", e)
	}
	// Every sentinel the Grape flow and Refresh return has an answer of
	// its own, not the 500 of an error nobody mapped.
	for _, err := range []error{
		clilogin.ErrInvalidDeviceCode, clilogin.ErrInvalidChallenge, clilogin.ErrDeviceCodeExists, clilogin.ErrUnknownDevice,
		clilogin.ErrNotCLI, clilogin.ErrExpired, clilogin.ErrUsed, clilogin.ErrBurned, clilogin.ErrDenied, clilogin.ErrOtherUser,
		clilogin.ErrWrongCode, clilogin.ErrWrongVerifier, clilogin.ErrTokenInvalid, clilogin.ErrLoginEnded, clilogin.ErrLoginRevoked,
		clilogin.ErrTokenMismatch, clilogin.ErrRefreshOtherClient, clilogin.ErrClientGone, clilogin.ErrReused, clilogin.ErrUserGone,
		clilogin.ErrNoToken,
	} {
		if e := CLIAnswer(err); e.Status >= 500 {
			t.Errorf("%v has no answer: %d %s", err, e.Status, e.Code)
		}
	}
	// Answer, the one mapping of every service's errors, gives a CLI
	// login error the same answer, and leaves an error of no service as is.
	for _, err := range []error{clilogin.ErrUsed, &clilogin.BusyError{RetryAfter: time.Second}, &clilogin.StoreError{What: "x", Err: data.ErrUnavailable}} {
		var he *httperr.Error
		if !errors.As(Answer(err), &he) || *he != *CLIAnswer(err) {
			t.Errorf("Answer(%v) = %v, want CLIAnswer's %v", err, Answer(err), CLIAnswer(err))
		}
	}
	if other := errors.New("not a service's"); Answer(other) != other {
		t.Errorf("Answer changed an error of no service")
	}
}

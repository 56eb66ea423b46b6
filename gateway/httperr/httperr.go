// Package httperr is the one error type Arbor's HTTP handlers return, and the
// one place that turns any error into the response a client sees.
//
// Handlers return errors; they never write error responses themselves. The
// gateway's Fiber ErrorHandler calls [From] to classify whatever came back and
// [Render] to write it, so every error Arbor answers has the same shape:
//
//	{"error":"<stable_code>","message":"<human text>","request_id":"<id>"}
//
// or an HTML page when the client prefers HTML (a browser following a
// link): Arbor's error page, with the layout of its other pages, through
// the [Page] the app gives (a plain page without one). The code is part of the API: clients and tests switch on it, so it
// never changes once published; the message is for humans and may change.
//
// # Why the cause is kept apart from the message
//
// [Error.Err] holds the internal cause (a dial error, a store error, a
// panic). It is logged with the request id and never rendered: internal error
// text can carry upstream addresses, SQL, token fragments or other details a
// client has no business seeing. A client gets the stable code, a fixed
// message and the request id, which an operator can look up in the logs.
package httperr

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/sdk/client"
)

// Stable error codes rendered in the "error" field. Codes are API: add new
// ones freely, never rename or reuse one.
const (
	CodeBadRequest          = "bad_request"
	CodeUnauthorized        = "unauthorized"
	CodeUnauthenticated     = client.CodeUnauthenticated // no credential the route accepts (package authn); the SDK's, so the wire code is written once
	CodeForbidden           = "forbidden"
	CodeNotFound            = "not_found"
	CodeMethodNotAllowed    = "method_not_allowed"
	CodeRequestTimeout      = "request_timeout"
	CodeConflict            = "conflict"
	CodeBodyTooLarge        = "body_too_large"
	CodeURITooLong          = "uri_too_long"
	CodeUnsupportedMedia    = "unsupported_media_type"
	CodeRateLimited         = "rate_limited"
	CodeHeaderTooLarge      = "header_too_large"
	CodeInternal            = "internal_error"
	CodeNotImplemented      = "not_implemented"
	CodeBadGateway          = "bad_gateway"
	CodeServiceUnavailable  = "service_unavailable"
	CodeGatewayTimeout      = "gateway_timeout"
	CodeUpstreamUnavailable = "upstream_unavailable"
	CodeUpstreamTimeout     = "upstream_timeout"
	CodeStoreUnavailable    = client.CodeStoreUnavailable // the store cannot be read or written (see StoreUnavailable); the SDK's, so the wire code is written once
	CodeShuttingDown        = "shutting_down"
	CodeStarting            = "starting"
	CodeBadPath             = "bad_path"
	CodeUnknownProvider     = "unknown_provider" // no provider (plugin) of that name can do what was asked
)

// Error is an error with the HTTP status, stable code and client-facing
// message it should be answered with. Err, the cause, is for logs only.
type Error struct {
	// Status is the HTTP status code, e.g. 502.
	Status int
	// Code is the stable machine-readable code, e.g. "upstream_unavailable".
	Code string
	// Message is safe to show to the client. It must not contain secrets or
	// text copied from internal errors.
	Message string
	// Err is the internal cause. It is logged, never rendered. May be nil.
	Err error
	// Rule and Fix, set on a policy refusal (Denied), are written to JSON
	// as "rule" and "fix" besides the message: which rule applied and
	// what to do, in words a user understands.
	Rule, Fix string
	// RetryAfter, if positive, is rendered as the Retry-After header in
	// whole seconds, rounded up (RFC 9110 section 10.2.3): when a 429 or
	// 503 client may try again.
	RetryAfter time.Duration
	// Plain renders the answer as text/plain instead of JSON or HTML: the
	// message, then the code and request id on a line of their own. For
	// clients that show a text/plain error body to their user and nothing
	// else, as git does over smart HTTP (each line as "remote: …").
	Plain bool
}

// New returns an Error without a cause.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Wrap returns an Error whose cause is err. The cause is logged with the
// request id; the client sees only status, code and message.
func Wrap(err error, status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message, Err: err}
}

// WithRetryAfter sets e.RetryAfter and returns e.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	e.RetryAfter = d
	return e
}

// RetryAfterSeconds is d in whole seconds, rounded up, at least 1: the
// value of a Retry-After header.
func RetryAfterSeconds(d time.Duration) int64 {
	return max(1, int64((d+time.Second-1)/time.Second))
}

// Error implements error. It includes the cause, so it is meant for logs.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s (%d): %s: %v", e.Code, e.Status, e.Message, e.Err)
	}
	return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message)
}

// Unwrap returns the cause, so errors.Is and errors.As see through an Error.
func (e *Error) Unwrap() error { return e.Err }

// BadRequest is a 400 with the given stable code and message.
func BadRequest(code, message string) *Error { return New(http.StatusBadRequest, code, message) }

// NotFound is a 404 not_found with the given message.
func NotFound(message string) *Error { return New(http.StatusNotFound, CodeNotFound, message) }

// Unauthorized is a 401 unauthorized with the given message.
func Unauthorized(message string) *Error {
	return New(http.StatusUnauthorized, CodeUnauthorized, message)
}

// Forbidden is a 403 forbidden with the given message.
func Forbidden(message string) *Error { return New(http.StatusForbidden, CodeForbidden, message) }

// StoreUnavailable is a 503 store_unavailable caused by err: the store
// could not be read or written, and the request may be retried. message
// says what Arbor could not do ("Arbor could not record the login").
func StoreUnavailable(err error, message string) *Error {
	return Wrap(err, http.StatusServiceUnavailable, CodeStoreUnavailable, message)
}

// Internal is a 500 internal_error caused by err. The client sees a generic
// message; err goes to the log.
func Internal(err error) *Error {
	return Wrap(err, http.StatusInternalServerError, CodeInternal,
		"Arbor failed to handle the request; quote the request id when reporting it")
}

// statusCodes maps statuses that Fiber, fasthttp or a bare fiber.NewError
// produce to a stable code and a fixed message. Fiber's own message is not
// used: for malformed requests it repeats fasthttp's parse error, which may
// echo request bytes.
var statusCodes = map[int]struct{ code, message string }{
	http.StatusBadRequest:                  {CodeBadRequest, "The request is malformed"},
	http.StatusUnauthorized:                {CodeUnauthorized, "Authentication is required"},
	http.StatusForbidden:                   {CodeForbidden, "Access to this resource is forbidden"},
	http.StatusNotFound:                    {CodeNotFound, "No resource matches this path"},
	http.StatusMethodNotAllowed:            {CodeMethodNotAllowed, "This method is not allowed on this path"},
	http.StatusRequestTimeout:              {CodeRequestTimeout, "The request was not received in time"},
	http.StatusConflict:                    {CodeConflict, "The request conflicts with the current state"},
	http.StatusRequestEntityTooLarge:       {CodeBodyTooLarge, "The request body is larger than this server accepts"},
	http.StatusRequestURITooLong:           {CodeURITooLong, "The request URI is longer than this server accepts"},
	http.StatusUnsupportedMediaType:        {CodeUnsupportedMedia, "The request body has an unsupported media type"},
	http.StatusTooManyRequests:             {CodeRateLimited, "Too many requests; retry later"},
	http.StatusRequestHeaderFieldsTooLarge: {CodeHeaderTooLarge, "The request headers are larger than this server accepts"},
	http.StatusInternalServerError:         {CodeInternal, "Arbor failed to handle the request; quote the request id when reporting it"},
	http.StatusNotImplemented:              {CodeNotImplemented, "This method is not implemented"},
	http.StatusBadGateway:                  {CodeBadGateway, "The upstream service answered with an invalid response"},
	http.StatusServiceUnavailable:          {CodeServiceUnavailable, "The service is temporarily unavailable; retry later"},
	http.StatusGatewayTimeout:              {CodeGatewayTimeout, "The upstream service did not answer in time"},
}

// FromStatus returns the Error Arbor uses for a bare HTTP status, with the
// status's stable code and fixed message. Unknown 4xx statuses map to
// bad_request's code with their own status; unknown 5xx to internal_error.
func FromStatus(status int) *Error {
	if m, ok := statusCodes[status]; ok {
		return New(status, m.code, m.message)
	}
	if status >= 400 && status < 500 {
		return New(status, CodeBadRequest, "The request cannot be processed")
	}
	return New(http.StatusInternalServerError, CodeInternal, statusCodes[http.StatusInternalServerError].message)
}

// From classifies any error returned by a handler:
//
//   - an *Error (anywhere in the chain) is returned as is;
//   - a *fiber.Error (Fiber's 404, 405, 413, 431, 408, 400 …) maps to its
//     status's stable code and fixed message; Fiber's text becomes the cause;
//   - data.ErrUnavailable (the store cannot be reached or has no quorum) is
//     a 503 store_unavailable: the request may be retried;
//   - anything else is a 500 internal_error with err as the cause.
//
// From never returns nil; for a nil err it returns a 500, since a nil error
// reaching the error handler is itself a bug.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		out := FromStatus(fe.Code)
		out.Err = err
		return out
	}
	if errors.Is(err, data.ErrUnavailable) {
		return StoreUnavailable(err, "Arbor's store cannot be reached right now; try again shortly")
	}
	if err == nil {
		err = errors.New("error handler called with a nil error")
	}
	return Internal(err)
}

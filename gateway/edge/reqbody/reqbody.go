// Package reqbody is the one way Arbor's own routes (those mounted with
// gateway.Server.Mount) read a request body: raw, capped, and only in the
// two media types they use.
//
// # The rule
//
// [Check] runs at the start of every mounted route, before its handler:
//
//   - A request with a Content-Encoding other than "identity" is refused
//     with 415 unsupported_encoding, whatever its method and even without a
//     body. Bodies are never inflated.
//   - A request with a body (a Content-Length above 0, or chunked) whose
//     Content-Type is not application/json or
//     application/x-www-form-urlencoded (parameters such as charset
//     allowed; multipart/form-data, text/plain and a missing type are not)
//     is refused with 415 unsupported_media_type before the body is read.
//   - A body larger than the route's cap is refused with 413
//     body_too_large: at once when Content-Length says so, otherwise (a
//     chunked body) as soon as the cap is crossed. The whole body must
//     arrive within the read timeout.
//
// Handlers then read the body through [Raw], [JSON], [Form] or
// [FormValue], never through Fiber's c.Body(), c.BodyParser() or
// c.FormValue().
//
// # Why
//
// Fiber's c.Body() undoes Content-Encoding gzip, deflate and br, layer after
// layer ("gzip, gzip"), with no limit on the output: the cap on the raw body
// is then a cap on nothing, and a 980-byte double-gzip body inflates to
// 512 MiB. fasthttp's FormValue falls back to parsing multipart bodies,
// gunzipping a gzip'd one into a temporary file of any size. No Arbor route
// needs a compressed body or a multipart upload: its bodies are a few
// hundred bytes of JSON or of an HTML form. So the encodings and media types
// they never use are refused rather than handled, and what remains is read
// raw. A cross-site HTML form can only send form bodies or text/plain,
// which is one more reason to refuse text/plain: JSON endpoints are then
// reachable cross-site only through CORS, which Arbor does not grant.
//
// Proxied requests never pass here: the proxy streams their bodies to the
// upstream untouched, encoded or not.
//
// # Form values come from the body only
//
// fasthttp's FormValue looks in the query string first, then in the body.
// [FormValue] reads the body alone: a CSRF token, a device code or a
// refresh token has no business in a URL (RFC 6749 2.3.1 forbids client
// credentials there), and a value in the query must not override the one in
// the form. Handlers that want a query parameter ask for it with c.Query.
package reqbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/gateway/httperr"
)

// DefaultLimit is the cap of a route that declares none: 8 KiB. Arbor's
// largest bodies are a refresh token in JSON (about 1 KiB) and a form with
// a CSRF token and a name (a few hundred bytes); 8 KiB leaves room for
// longer tokens without letting an anonymous client make a handler hold
// much memory.
const DefaultLimit = 8 << 10

// CodeUnsupportedEncoding is the error code of a body sent with a
// Content-Encoding. The other answers use httperr's codes:
// unsupported_media_type and body_too_large.
const CodeUnsupportedEncoding = "unsupported_encoding"

// Media types Arbor's routes parse.
const (
	TypeJSON = "application/json"
	TypeForm = "application/x-www-form-urlencoded"
)

var errTooLarge = errors.New("request body over the route's cap")

// checkedKey marks, in Locals, a request whose body passed Check.
type checkedKey struct{}

// formKey holds the parsed form of a request.
type formKey struct{}

// Check applies the body rule to the current request and reads the body
// raw, up to limit bytes, so that handlers see it whole. readTimeout bounds
// the arrival of the whole body (0: no deadline). The error is an
// *httperr.Error (415, 413 or 400).
func Check(c *fiber.Ctx, limit int64, readTimeout time.Duration) error {
	req := c.Request()
	cl := int64(req.Header.ContentLength())
	if cl != 0 && readTimeout > 0 {
		_ = c.Context().SetReadDeadline(time.Now().Add(readTimeout))
	}
	if err := refusal(req, cl, limit); err != nil {
		drain(req, cl)
		return err
	}
	if req.IsBodyStream() && cl != 0 {
		buf, err := io.ReadAll(io.LimitReader(req.BodyStream(), limit+1))
		if err != nil {
			return httperr.Wrap(err, http.StatusBadRequest, httperr.CodeBadRequest, "The request body could not be read")
		}
		if int64(len(buf)) > limit {
			return tooLarge(limit)
		}
		req.SetBodyRaw(buf)
		req.Header.SetContentLength(len(buf))
	}
	c.Locals(checkedKey{}, true)
	return nil
}

// refusal returns the answer to a request the rule refuses before reading
// its body, nil for one it accepts.
func refusal(req *fasthttp.Request, cl, limit int64) error {
	for _, v := range req.Header.PeekAll(fiber.HeaderContentEncoding) {
		if v = bytes.TrimSpace(v); len(v) > 0 && !bytes.EqualFold(v, []byte("identity")) {
			return httperr.New(http.StatusUnsupportedMediaType, CodeUnsupportedEncoding,
				"This endpoint accepts only uncompressed bodies: send it without Content-Encoding")
		}
	}
	if cl == 0 || cl < -1 {
		return nil
	}
	if mediaType(req.Header.ContentType()) == "" {
		return httperr.New(http.StatusUnsupportedMediaType, httperr.CodeUnsupportedMedia,
			"This endpoint accepts application/json or application/x-www-form-urlencoded bodies only")
	}
	if cl > limit {
		return tooLarge(limit)
	}
	return nil
}

// maxDrain is the largest refused body (of declared length) that is read
// and dropped before answering. Without it the server would close the
// connection with the body unread, the kernel would answer the client's
// next bytes with a reset, and a client still sending would often lose the
// answer that says what was wrong. Larger bodies get the reset.
const maxDrain = 1 << 20

func drain(req *fasthttp.Request, cl int64) {
	if cl > 0 && cl <= maxDrain && req.IsBodyStream() {
		_, _ = io.Copy(io.Discard, io.LimitReader(req.BodyStream(), cl))
	}
}

// Drain reads and drops what is left of a refused request's streamed body,
// at most 1 MiB, for a route that reads its body itself
// (gateway.WithStreamedBody) and refuses a request before reading it: the
// client then reads the answer instead of a connection reset. A chunked
// body is read up to the same bound; anything larger still gets the reset.
func Drain(req *fasthttp.Request) {
	if !req.IsBodyStream() {
		return
	}
	switch cl := int64(req.Header.ContentLength()); {
	case cl > 0:
		drain(req, cl)
	case cl == -1:
		_, _ = io.Copy(io.Discard, io.LimitReader(req.BodyStream(), maxDrain))
	}
}

func tooLarge(limit int64) error {
	return httperr.Wrap(errTooLarge, http.StatusRequestEntityTooLarge, httperr.CodeBodyTooLarge,
		fmt.Sprintf("The request body is larger than the %d bytes this endpoint accepts", limit))
}

// mediaType returns TypeJSON or TypeForm when ct names one of them (in any
// case, with any parameters), "" otherwise.
func mediaType(ct []byte) string {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	switch {
	case bytes.EqualFold(ct, []byte(TypeJSON)):
		return TypeJSON
	case bytes.EqualFold(ct, []byte(TypeForm)):
		return TypeForm
	}
	return ""
}

func checked(c *fiber.Ctx) bool {
	ok, _ := c.Locals(checkedKey{}).(bool)
	return ok
}

// Raw returns the request body as received: never decompressed, at most the
// route's cap. It is nil when the request has no body, and also when Check
// has not passed for this request (a route added without Mount): such a
// route gets no body rather than an unchecked one. The bytes are valid
// until the handler returns.
func Raw(c *fiber.Ctx) []byte {
	if !checked(c) {
		return nil
	}
	return c.Request().Body()
}

// JSON decodes the body into v. A body that is not application/json, or
// not valid JSON for v, is answered 400 bad_request.
func JSON(c *fiber.Ctx, v any) error {
	if mediaType(c.Request().Header.ContentType()) != TypeJSON {
		return httperr.BadRequest(httperr.CodeBadRequest, "Send the request body as application/json")
	}
	if err := json.Unmarshal(Raw(c), v); err != nil {
		return httperr.Wrap(err, http.StatusBadRequest, httperr.CodeBadRequest, "The request body is not valid JSON for this endpoint")
	}
	return nil
}

// Form returns the body's form values (application/x-www-form-urlencoded),
// parsed once per request. The query string is not included. Empty when
// the body is not a form.
func Form(c *fiber.Ctx) *fasthttp.Args {
	if a, ok := c.Locals(formKey{}).(*fasthttp.Args); ok {
		return a
	}
	a := new(fasthttp.Args)
	if mediaType(c.Request().Header.ContentType()) == TypeForm {
		a.ParseBytes(Raw(c))
	}
	c.Locals(formKey{}, a)
	return a
}

// FormValue returns the first value of key in the body's form, "" if there
// is none. Unlike Fiber's c.FormValue it never reads the query string or a
// multipart body. The string is a copy: it may be kept.
func FormValue(c *fiber.Ctx, key string) string {
	return string(Form(c).Peek(key))
}

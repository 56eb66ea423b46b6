package session

import (
	"bytes"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// cookie returns the value of the request's cookie name as fasthttp's
// RequestHeader.Cookie (and so fiber's Ctx.Cookies) would, read where the
// Cookie headers are. The session cookie is read on every signed-in
// request, and fasthttp's own parse copies every cookie of the header and
// makes the proxied request re-encode them all; this reads the bytes in
// place and leaves the header as the client sent it. The string points
// into the request's buffer, like fiber's: it is valid until the request
// ends.
//
// The choice is fasthttp's, pair for pair (TestCookieMatchesFasthttp):
// pairs separated by ";" (and one space after it), the name and value
// trimmed of spaces and tabs, a value's surrounding double quotes removed,
// pairs whose value still holds '"', ';' or '\' skipped, the first match
// in header order winning.
func cookie(h *fasthttp.RequestHeader, name string) string {
	for _, v := range h.PeekAll(fasthttp.HeaderCookie) {
		if val, ok := cookieIn(v, name); ok {
			return unsafe.String(unsafe.SliceData(val), len(val))
		}
	}
	return ""
}

// cookieIn finds name in one Cookie header's value. The scans are
// bytes.IndexByte's: a session token is a few hundred bytes.
func cookieIn(b []byte, name string) ([]byte, bool) {
	for len(b) > 0 {
		pair := b
		b = nil
		if i := bytes.IndexByte(pair, ';'); i >= 0 {
			pair, b = pair[:i], pair[i+1:]
			if len(b) > 0 && b[0] == ' ' {
				b = b[1:]
			}
		}
		eq := bytes.IndexByte(pair, '=')
		if eq < 0 || string(trimCookie(pair[:eq])) != name {
			continue // another cookie, or a value without a name
		}
		val := trimCookie(pair[eq+1:])
		if len(val) > 1 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		// fasthttp drops a value holding '"' or '\' (';' cannot be left).
		if bytes.IndexByte(val, '"') < 0 && bytes.IndexByte(val, '\\') < 0 {
			return val, true
		}
	}
	return nil, false
}

func trimCookie(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

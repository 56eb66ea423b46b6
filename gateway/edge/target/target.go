// Package target gives every request one reading of its path, before
// anything routes, classifies or forwards it.
//
// # The rule
//
// [Normalize] runs first on every request:
//
//   - Runs of "/" in the path are merged into one, as nginx's
//     merge_slashes does: "//static/admin", "///static//admin" and the
//     absolute-form "http://host//static/admin" all become
//     "/static/admin". The query string is left as it is.
//   - A request target that is neither origin-form ("/path") nor
//     absolute-form with an http or https scheme ("http://host/path"), nor
//     the asterisk "*", is refused with [ErrBadTarget]: the gateway answers
//     400 bad_path.
//
// Arbor's routes, the route classifier (package access) and the proxy then
// all work on the merged path, and the upstream receives that path.
//
// # Why
//
// The classifier reads "//static/admin" as "/static/admin" (most routers
// do), so a public rule "/static/" lets it through; but an upstream that
// resolves the request target as a URL (Node's new URL(req.url, base),
// Python's urlsplit) reads "//static/admin" as a network-path reference:
// host "static", path "/admin". Forwarded as sent, an anonymous request
// would reach "/admin". fasthttp itself reads an origin-form target that
// starts with "//" as an authority when "://" appears anywhere in it
// ("//static/admin?next=http://x" has host "static" and path "/admin").
// Merging the slashes before anyone reads the path removes the ambiguity
// instead of guessing which reading the upstream makes. The price is that
// an upstream that gives "//" a meaning of its own (an empty segment) never
// sees it; that is rare, and the same as behind nginx's default.
//
// Other ambiguous spellings (dot segments, backslashes, control characters,
// encoded slashes) are refused or read the strict way by the classifier
// and the proxy; see package access and proxy's hasDotSegment.
package target

import (
	"bytes"
	"errors"

	"github.com/valyala/fasthttp"
)

// ErrBadTarget is returned by Normalize for a request target that is
// neither origin-form, absolute-form http(s) nor "*".
var ErrBadTarget = errors.New("request target is not a path or an http(s) URL")

var slashSlash = []byte("//")

// Normalize merges runs of "/" in req's path, in place. It allocates only
// when there is something to merge. See the package documentation.
func Normalize(req *fasthttp.Request) error {
	raw := req.Header.RequestURI()
	if len(raw) > 0 && raw[0] == '/' {
		// Origin-form: edit the raw target before fasthttp's parser reads
		// "//host/…" as an authority.
		i := bytes.Index(raw, slashSlash)
		if i < 0 {
			return nil
		}
		end := pathEnd(raw)
		if i >= end {
			return nil // "//" only in the query
		}
		buf := make([]byte, 0, len(raw))
		buf = appendMerged(buf, raw[:end])
		buf = append(buf, raw[end:]...)
		req.SetRequestURIBytes(buf)
		return nil
	}
	if !absoluteHTTP(raw) {
		if len(raw) == 1 && raw[0] == '*' {
			return nil
		}
		return ErrBadTarget
	}
	// Absolute-form: fasthttp splits the authority off; merge in the path
	// it found.
	u := req.URI()
	if p := u.PathOriginal(); bytes.Contains(p, slashSlash) {
		u.SetPathBytes(appendMerged(nil, p))
	}
	return nil
}

// pathEnd is the index of the first '?' or '#' in an origin-form target,
// or its length.
func pathEnd(raw []byte) int {
	for i, c := range raw {
		if c == '?' || c == '#' {
			return i
		}
	}
	return len(raw)
}

// appendMerged appends p to dst with every run of '/' as one '/'.
func appendMerged(dst, p []byte) []byte {
	for i, c := range p {
		if c == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// absoluteHTTP reports whether raw starts with "http://" or "https://", in
// any case.
func absoluteHTTP(raw []byte) bool {
	return hasPrefixFold(raw, "http://") || hasPrefixFold(raw, "https://")
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

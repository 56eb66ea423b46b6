// Package returnto validates the "return to" target that a sign-in flow
// redirects to once the user is signed in.
//
// Only a same-origin relative reference is accepted: a path that starts with
// exactly one "/", optionally followed by a query. Anything a browser, a
// proxy or the upstream could read as pointing at another origin is refused
// rather than repaired, because a repair is one more interpretation that may
// differ from the browser's.
//
//	clean, err := returnto.Validate(c.Query("return_to"))
//	if err != nil {
//		clean = "/"
//	}
//
// # Notes
//
//   - raw is the reference as it would appear in a Location header: the
//     value of the return_to query parameter after its one query decoding.
//     Non-ASCII bytes are refused, not encoded; such a target falls back to
//     the caller's default.
//   - Store the result (for example in the state cookie) and call Validate
//     again when redirecting; it accepts its own output unchanged.
//   - The fragment is dropped: the browser keeps the fragment of the URL that
//     was redirected from, and it never reaches the server anyway.
//   - Validate works on the raw (still percent-encoded) reference. The
//     returned string is the raw path and query, unchanged, so it can be put
//     into a Location header as it is.
//   - Percent-decoding is applied repeatedly (a proxy or framework may decode
//     once more than expected) and every decoded form of the path must pass
//     the same structural checks as the raw one.
package returnto

import (
	"errors"
	"net/url"
	"strings"

	"github.com/vintner/arbor/gateway/internal/pctenc"
)

// MaxLength is the longest raw reference Validate accepts, in bytes.
const MaxLength = 2048

// maxDecodeRounds bounds how many times the path is percent-decoded. A path
// that still changes after that many rounds is refused.
const maxDecodeRounds = 4

// Errors returned by Validate. Each message is a stable reason that may be
// logged; none of them is meant to be shown to the user.
var (
	// ErrEmpty is returned when the reference is empty.
	ErrEmpty = errors.New("returnto: empty")
	// ErrTooLong is returned when the reference is longer than MaxLength.
	ErrTooLong = errors.New("returnto: too long")
	// ErrNotRelative is returned when the reference does not start with a
	// single "/" (a scheme, a host, "//" or a relative path).
	ErrNotRelative = errors.New("returnto: not a same-origin absolute path")
	// ErrForbiddenChar is returned for a control character, whitespace, a
	// backslash or a non-ASCII byte anywhere in the raw reference.
	ErrForbiddenChar = errors.New("returnto: forbidden character")
	// ErrBadEscape is returned for a "%" not followed by two hex digits.
	ErrBadEscape = errors.New("returnto: malformed percent-escape")
	// ErrEncodedSeparator is returned when a decoded form of the path
	// starts with "//" or a whitespace, or contains a backslash or a
	// control character.
	ErrEncodedSeparator = errors.New("returnto: encoded separator or control character in path")
	// ErrDotSegment is returned when the path, raw or decoded, has a "." or
	// ".." segment.
	ErrDotSegment = errors.New("returnto: dot segment in path")
	// ErrEmptySegment is returned when the path, raw or decoded, has an
	// empty segment ("//" anywhere).
	ErrEmptySegment = errors.New("returnto: empty path segment")
	// ErrTooDeeplyEncoded is returned when the path keeps changing after
	// repeated percent-decoding.
	ErrTooDeeplyEncoded = errors.New("returnto: too deeply encoded")
)

// Validate checks that raw is a same-origin relative reference and returns
// its path and query, without the fragment.
//
// # Errors
//
// One of the Err* values of this package, to be compared with errors.Is.
func Validate(raw string) (string, error) {
	if raw == "" {
		return "", ErrEmpty
	}
	if len(raw) > MaxLength {
		return "", ErrTooLong
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= ' ' || c == 0x7f || c == '\\' || c >= 0x80 {
			return "", ErrForbiddenChar
		}
		if c == '%' && (i+2 >= len(raw) || !pctenc.Valid(raw[i+1], raw[i+2])) {
			return "", ErrBadEscape
		}
	}
	if raw[0] != '/' || (len(raw) > 1 && raw[1] == '/') {
		return "", ErrNotRelative
	}

	ref := raw
	if i := strings.IndexByte(ref, '#'); i >= 0 {
		ref = ref[:i]
	}
	path, query, _ := strings.Cut(ref, "?")

	if err := checkPath(path); err != nil {
		return "", err
	}
	decoded := path
	for round := 0; ; round++ {
		next := unescape(decoded)
		if next == decoded {
			break
		}
		if round == maxDecodeRounds {
			return "", ErrTooDeeplyEncoded
		}
		decoded = next
		if err := checkDecoded(decoded); err != nil {
			return "", err
		}
	}

	clean := path
	if query != "" {
		clean += "?" + query
	}
	// Defence in depth: net/url must read the result as a bare path.
	u, err := url.Parse(clean)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "", ErrNotRelative
	}
	return clean, nil
}

// checkPath checks the segments of the raw path, which starts with "/".
func checkPath(path string) error {
	if path == "/" {
		return nil
	}
	return checkSegments(path[1:])
}

// checkDecoded checks one percent-decoded form of the path.
func checkDecoded(p string) error {
	if len(p) < 1 || p[0] != '/' {
		return ErrEncodedSeparator
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == ' ') {
		return ErrEncodedSeparator
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < ' ' || c == 0x7f || c == '\\' {
			return ErrEncodedSeparator
		}
	}
	if p == "/" {
		return nil
	}
	return checkSegments(p[1:])
}

// checkSegments refuses empty, "." and ".." segments. A trailing "/" (an
// empty last segment) is allowed.
func checkSegments(rest string) error {
	for rest != "" {
		seg, tail, found := strings.Cut(rest, "/")
		switch {
		case seg == "" && (found || tail != ""):
			return ErrEmptySegment
		case isDot(seg):
			return ErrDotSegment
		}
		rest = tail
	}
	return nil
}

// isDot reports whether seg is a dot segment as the WHATWG URL parser sees
// it, which also counts "%2e" as a dot.
func isDot(seg string) bool {
	s := strings.ToLower(seg)
	switch s {
	case ".", "..", "%2e", "%2e%2e", ".%2e", "%2e.":
		return true
	}
	return false
}

// unescape decodes every valid %XX escape and leaves anything else as it
// is, like a lenient server or framework would.
func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, ok := pctenc.Byte(s[i+1], s[i+2]); ok {
				b.WriteByte(v)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

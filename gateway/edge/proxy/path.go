package proxy

import (
	"bytes"

	"github.com/vintner/arbor/gateway/internal/pctenc"
)

// hasDotSegment reports whether a raw request path contains a "." or ".."
// segment, including encoded spellings: %2e for a dot, and %2f, %5c or a
// backslash for the separator.
//
// # Why the proxy refuses such paths
//
// The proxy forwards the raw path so that an upstream sees exactly what the
// client sent (%2F inside a segment, for instance, keeps its meaning), save
// for runs of "/", which the gateway merges before routing (package
// gateway/edge/target: "//host/x" would read as a host to a URL parser). Arbor
// routes and will make access decisions on that same raw path. A dot segment
// is the one thing on which two parsers commonly disagree: one resolves
// "/public/%2e%2e/admin" to "/admin", another does not. Browsers resolve dot
// segments before sending, so only hand-made requests carry them; refusing
// them costs nothing and keeps Arbor's view of a path and the upstream's the
// same.
func hasDotSegment(p []byte) bool {
	if bytes.IndexByte(p, '.') < 0 && bytes.IndexByte(p, '%') < 0 {
		return false
	}
	seg, dots := 0, 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) {
			if v, ok := pctenc.Byte(p[i+1], p[i+2]); ok {
				c = v
				i += 2
			}
		}
		switch c {
		case '/', '\\':
			if seg == dots && (dots == 1 || dots == 2) {
				return true
			}
			seg, dots = 0, 0
		case '.':
			seg++
			dots++
		default:
			seg++
		}
	}
	return seg == dots && (dots == 1 || dots == 2)
}

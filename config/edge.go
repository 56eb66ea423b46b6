package config

import "strings"

// DefaultRewriteHeaders returns the default of upstream.rewrite_headers:
// the headers through which IIS, Symfony (and so Laravel and Drupal),
// Zend/Laminas, nginx configurations and Envoy pass a request URL or path
// other than the request line's. It is the same list as
// proxy.DefaultRewriteHeaders, which documents each one.
func DefaultRewriteHeaders() []string {
	return []string{"X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Original-Path", "X-Envoy-Original-Path"}
}

// validateEdge checks the keys of the edge rules that live in other
// sections.
func (c Config) validateEdge(bad func(key, format string, args ...any)) {
	for _, h := range c.Upstream.RewriteHeaders {
		if !headerName(h) {
			bad("upstream.rewrite_headers", "%q is not a header name (letters, digits and !#$%%&'*+-.^_`|~)", h)
			continue
		}
		switch strings.ToLower(h) {
		case "host", "content-length", "transfer-encoding", "connection":
			bad("upstream.rewrite_headers", "%q cannot be stripped: every request needs it", h)
		}
	}
}

// headerName reports whether s is an HTTP header field name (an RFC 9110
// token).
func headerName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

package config

import (
	"strings"

	"github.com/vintner/arbor/gateway/edge/proxy"
)

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
		if !proxy.ValidHeaderName(h) {
			bad("upstream.rewrite_headers", "%q is not a header name (letters, digits and !#$%%&'*+-.^_`|~)", h)
			continue
		}
		switch strings.ToLower(h) {
		case "host", "content-length", "transfer-encoding", "connection":
			bad("upstream.rewrite_headers", "%q cannot be stripped: every request needs it", h)
		}
	}
}

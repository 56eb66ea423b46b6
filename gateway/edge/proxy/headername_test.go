package proxy

import (
	"strings"
	"testing"
)

// TestValidHeaderName: the one check of a configured header name, used by
// New and by config's validation of upstream.rewrite_headers.
func TestValidHeaderName(t *testing.T) {
	for name, ok := range map[string]bool{
		"X-Original-URL":         true,
		"x_arbor.user~id":        true,
		"!#$%&'*+-.^_`|~09azAZ":  true,
		strings.Repeat("a", 128): true,
		"":                       false,
		strings.Repeat("a", 129): false,
		"X Original":             false,
		"X-User:":                false,
		"X-\"q\"":                false,
		"X-(c)":                  false,
		"X-Ü":                    false,
		"X-\x7f":                 false,
		"X-\r\nY":                false,
	} {
		if got := ValidHeaderName(name); got != ok {
			t.Errorf("ValidHeaderName(%q) = %v, want %v", name, got, ok)
		}
	}
}

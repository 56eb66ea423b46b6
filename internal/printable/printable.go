// Package printable makes text from outside (a provider's profile or
// error, a client's form field) safe to store, log and show: no control
// characters, so nothing can start a new header or log line, and a bounded
// length, cut on a character boundary.
//
// One function, shared, because four places had written it four times.
package printable

import (
	"strings"
	"unicode/utf8"
)

// Clean drops control characters (C0 and DEL) from s, cuts it to at most n
// bytes without splitting a UTF-8 sequence, and trims spaces.
func Clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return strings.TrimSpace(s)
}

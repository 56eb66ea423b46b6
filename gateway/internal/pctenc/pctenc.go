// Package pctenc reads URL percent-escapes (RFC 3986, section 2.1) one at a
// time, for the gateway's checks of raw paths and return_to values: the
// proxy's dot-segment test, the access rules' path decoding and the
// return_to validation. They must each see an escape exactly as the others
// do, so they share this one reading of it; net/url decodes whole strings
// and allocates, which these byte-at-a-time loops on the request path do
// not.
package pctenc

// Byte returns the byte that the escape "%" hi lo stands for, and whether
// hi and lo are both hex digits (of either case). When they are not, the
// byte is meaningless and the "%" is not an escape. Byte is small enough to
// be inlined into the loops that call it.
func Byte(hi, lo byte) (byte, bool) {
	h, l := digits[hi], digits[lo]
	return h<<4 | l, h|l < 16
}

// Valid reports whether "%" hi lo is an escape.
func Valid(hi, lo byte) bool {
	return digits[hi]|digits[lo] < 16
}

// digits holds the value of each hex digit and 0xff for every other byte.
var digits = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c-'a') + 10
		case 'A' <= c && c <= 'F':
			t[c] = byte(c-'A') + 10
		default:
			t[c] = 0xff
		}
	}
	return t
}()

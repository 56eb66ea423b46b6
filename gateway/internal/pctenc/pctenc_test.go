package pctenc

import (
	"strings"
	"testing"
)

// TestByte checks every pair of bytes against the hex digits of RFC 3986
// (HEXDIG: 0-9, A-F, a-f).
func TestByte(t *testing.T) {
	const hexdig = "0123456789abcdefABCDEF"
	val := func(c byte) int { // -1 for a byte that is not a hex digit
		i := strings.IndexByte(hexdig, c)
		if i >= 16 {
			i -= 6
		}
		return i
	}
	for hi := range 256 {
		for lo := range 256 {
			h, l := val(byte(hi)), val(byte(lo))
			b, ok := Byte(byte(hi), byte(lo))
			wantOK := h >= 0 && l >= 0
			if ok != wantOK || Valid(byte(hi), byte(lo)) != wantOK {
				t.Fatalf("%%%c%c: ok %v, Valid %v; want %v", hi, lo, ok, Valid(byte(hi), byte(lo)), wantOK)
			}
			if wantOK && int(b) != h<<4|l {
				t.Fatalf("%%%c%c = %#x, want %#x", hi, lo, b, h<<4|l)
			}
		}
	}
}

func TestExamples(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want byte
		ok   bool
	}{
		{"2f", '/', true}, {"2F", '/', true}, {"2e", '.', true}, {"5C", '\\', true},
		{"00", 0, true}, {"ff", 0xff, true}, {"FF", 0xff, true},
		{"2g", 0, false}, {"g2", 0, false}, {"%2", 0, false}, {" 2", 0, false},
	} {
		b, ok := Byte(tc.in[0], tc.in[1])
		if ok != tc.ok || ok && b != tc.want {
			t.Errorf("Byte(%q) = %#x, %v; want %#x, %v", tc.in, b, ok, tc.want, tc.ok)
		}
	}
}

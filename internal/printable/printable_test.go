package printable_test

import (
	"testing"

	"github.com/vintner/arbor/internal/printable"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"octocat", 300, "octocat"},
		{"  spaced  ", 300, "spaced"},
		{"a\r\nX-Injected: 1", 300, "aX-Injected: 1"},
		{"tab\there\x7f\x00", 300, "tabhere"},
		{"abcdef", 3, "abc"},
		{"héllo", 2, "h"}, // é is two bytes: never half of it
		{"héllo", 3, "hé"},
		{"", 10, ""},
	} {
		if got := printable.Clean(tc.in, tc.n); got != tc.want {
			t.Errorf("Clean(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

package returnto

import "testing"

func TestOrDefault(t *testing.T) {
	avoid := []string{"/auth/sign-in", "/auth/start/", "/auth/logout"}
	for _, tt := range []struct{ raw, want string }{
		{"", "/home"},
		{"/app/page?x=1", "/app/page?x=1"},
		{"//evil.com", "/home"},
		{"https://evil.com/", "/home"},
		{"/a/../b", "/home"},
		{"/auth/sign-in", "/home"},
		{"/auth/sign-in?return_to=/x", "/home"},
		{"/auth/sign-in/more", "/home"},
		{"/auth/start/github", "/home"},
		{"/auth/start", "/auth/start"}, // not under "/auth/start/"
		{"/auth/logout", "/home"},
		{"/auth/sign-inx", "/auth/sign-inx"},
		{"/auth/account", "/auth/account"},
	} {
		if got := OrDefault(tt.raw, "/home", avoid); got != tt.want {
			t.Errorf("OrDefault(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
	if got := OrDefault("/auth/sign-in", "/home", nil); got != "/auth/sign-in" {
		t.Errorf("no prefixes to avoid: got %q", got)
	}
}

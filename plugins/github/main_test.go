package github

import (
	"encoding/json"
	"testing"
)

// TestJSONQuote compares the revoke body's string encoding with
// encoding/json (which the module does not link).
func TestJSONQuote(t *testing.T) {
	for _, s := range []string{"", "gho_16C7e42F292c6912E7710c838347Ae178B4a", `quote " back \ slash`, "ctl \x01\n\t", "é😀"} {
		var back string
		if err := json.Unmarshal([]byte(jsonQuote(s)), &back); err != nil || back != s {
			t.Errorf("%q → %s → %q, %v", s, jsonQuote(s), back, err)
		}
	}
}

// TestAppCursor: the GitHub App listing's cursor round-trips and only
// well-formed numbers are taken from it, so every URL built from it stays
// on the API base.
func TestAppCursor(t *testing.T) {
	c := appCursor{inst: "41000001", page: 3, per: 25}
	if got, ok := parseAppCursor(c.encode()); !ok || got != c {
		t.Errorf("%q → %+v, %v", c.encode(), got, ok)
	}
	for _, bad := range []string{
		"", "https://api.github.com/user/repos?page=2", "i=41000001&p=3", "i=41000001&p=3&n=25&x=1",
		"i=4100%2F0001&p=3&n=25", "i=-1&p=3&n=25", "i=41000001&p=0&n=25", "i=41000001&p=3&n=0", "i=41000001&p=3&n=101",
		"i=41000001&i=41000002&p=3&n=25", "i=12345678901234567890&p=3&n=25", "i=41000001&p=3&n=25%",
	} {
		if got, ok := parseAppCursor(bad); ok {
			t.Errorf("%q accepted as %+v", bad, got)
		}
	}
}

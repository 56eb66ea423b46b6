package main

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

func TestUnixTime(t *testing.T) {
	if got := unixTime("2011-01-26T19:14:43Z"); got != 1296069283 {
		t.Errorf("got %d", got)
	}
	if unixTime("") != 0 || unixTime("yesterday") != 0 {
		t.Error("malformed times must read as 0")
	}
}

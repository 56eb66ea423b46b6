package api_test

// /auth/whoami through the full stack (moved from gateway/webauth's
// flow_test.go).

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestWhoami(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	res := b.Get("/auth/whoami")
	if res.StatusCode != http.StatusUnauthorized || errorCode(res.Body) != "unauthenticated" {
		t.Fatalf("anonymous whoami: %d %s", res.StatusCode, res.Body)
	}
	b.MustSignIn("github")
	res = b.Get("/auth/whoami")
	var who map[string]string
	if res.StatusCode != 200 || json.Unmarshal([]byte(res.Body), &who) != nil || who["login"] != "octocat" || who["email"] != "octocat@example.com" {
		t.Fatalf("whoami: %d %s", res.StatusCode, res.Body)
	}
}

package bitbucket

import (
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/plugin"
)

func TestStripUserinfo(t *testing.T) {
	for in, want := range map[string]string{
		"https://atlas@bitbucket.org/atlas/repo.git":     "https://bitbucket.org/atlas/repo.git",
		"https://bitbucket.org/atlas/repo.git":           "https://bitbucket.org/atlas/repo.git",
		"https://a:b@bitbucket.org/ws/r@x.git":           "https://bitbucket.org/ws/r@x.git",
		"http://atlas@127.0.0.1:8080/atlas/repo-001.git": "http://127.0.0.1:8080/atlas/repo-001.git",
		"git@bitbucket.org:atlas/repo.git":               "git@bitbucket.org:atlas/repo.git",
		"https://x-token-auth@bitbucket.org":             "https://bitbucket.org",
	} {
		if got := stripUserinfo(in); got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
}

func TestCursor(t *testing.T) {
	const api = "https://api.bitbucket.org/2.0"
	caller, err := plugin.API{}.For(plugin.Endpoints{APIBase: api}, "tok")
	if err != nil {
		t.Fatal(err)
	}
	c := listCursor{wsPage: api + "/user/workspaces?page=2&pagelen=100", index: 3, repos: api + "/repositories/orbit?page=2&pagelen=25&role=member", last: true}
	got, err := decodeCursor(c.encode(), caller)
	if err != nil || got != c {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, c)
	}
	for _, bad := range []string{
		"", "https://api.bitbucket.org/2.0/repositories/x?page=2",
		listCursor{wsPage: "https://evil.example/2.0/user/workspaces"}.encode(),
		listCursor{wsPage: api + "/user/workspaces", repos: "https://evil.example/2.0/repositories/x"}.encode(),
		listCursor{wsPage: api + "/user/workspaces", repos: api + ".evil.example/x"}.encode(),
		listCursor{wsPage: api + "/../evil"}.encode(),
		listCursor{wsPage: api + "/user/workspaces", index: maxCursorIndex + 1}.encode(),
		"w=" + api + "%2Fuser%2Fworkspaces&i=-1",
		"w=%zz&i=0",
	} {
		if _, err := decodeCursor(bad, caller); err == nil {
			t.Errorf("cursor %q accepted", bad)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	for body, want := range map[string]string{
		`{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes.","detail":{"granted":["account"]}}}`: "Your credentials lack one or more required privilege scopes.",
		`{"type":"error","error":"odd"}`: "",
		`<html>`:                         "",
		`{"error":{"message":"` + strings.Repeat("x", 300) + `"}}`: strings.Repeat("x", 200) + "…",
	} {
		if got := errorMessage([]byte(body)); got != want {
			t.Errorf("%s → %q, want %q", body, got, want)
		}
	}
}

package main

import "testing"

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

func TestUnixTime(t *testing.T) {
	// Bitbucket's timestamps carry microseconds and an offset.
	if got := unixTime("2024-05-01T12:00:00.123456+00:00"); got != 1714564800 {
		t.Errorf("got %d", got)
	}
}

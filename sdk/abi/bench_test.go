package abi_test

import (
	"testing"

	"github.com/vintner/arbor/sdk/abi"
)

// benchTrip encodes m into a reused buffer and decodes it into out: what
// each side of a call does once per message.
func benchTrip(b *testing.B, m, out abi.Message) {
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = m.AppendABI(buf[:0])
		if err := out.UnmarshalABI(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHTTPResponse(b *testing.B) {
	benchTrip(b, &abi.HTTPResponse{Status: 200, Headers: []abi.Header{{"Content-Type", "application/json"},
		{"Link", `<https://api.github.com/user/repos?page=2>; rel="next"`}, {"X-RateLimit-Remaining", "4999"}},
		Body: make([]byte, 2048)}, new(abi.HTTPResponse))
}

func BenchmarkUser(b *testing.B) {
	benchTrip(b, &abi.User{ID: "583231", Login: "octocat", Name: "The Octocat", Email: "octocat@github.com",
		EmailVerified: true, AvatarURL: "https://avatars.githubusercontent.com/u/583231?v=4",
		ProfileURL: "https://github.com/octocat"}, new(abi.User))
}

func BenchmarkEncodeUser(b *testing.B) {
	u := &abi.User{ID: "583231", Login: "octocat", Name: "The Octocat", Email: "octocat@github.com",
		EmailVerified: true, AvatarURL: "https://avatars.githubusercontent.com/u/583231?v=4",
		ProfileURL: "https://github.com/octocat"}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = abi.AppendResult(buf[:0], u)
	}
}

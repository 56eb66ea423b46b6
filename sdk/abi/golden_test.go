package abi_test

import (
	"reflect"
	"testing"

	"github.com/vintner/arbor/internal/golden"
	"github.com/vintner/arbor/sdk/abi"
)

// goldenMessages has one message of every type with every field set, and
// the zero value of each, so that any change to what crosses the ABI, down
// to a byte, fails TestGoldenEncoding: plugins built before must still
// load, and hosts built before must still read what new plugins write.
func goldenMessages() []struct {
	name string
	msg  abi.Message
} {
	ep := abi.Endpoints{AuthorizeURL: "https://p/a", TokenURL: "https://p/t", APIBase: "https://api.p", RevokeURL: "https://p/r"}
	cl := abi.Client{ID: "id", Secret: "secret"}
	repo := abi.Repo{ID: "1", FullName: "a/b", Description: "d", Private: true, DefaultBranch: "main",
		HTMLURL: "h", CloneURL: "c", UpdatedAt: 1700000000}
	return []struct {
		name string
		msg  abi.Message
	}{
		{"result", &abi.Result{Payload: []byte{1, 2, 3}, Code: abi.CodeRateLimited, Message: "m", Retryable: true, Status: 429, RetryAfter: 90}},
		{"result-negative", &abi.Result{Status: -1, RetryAfter: -300}},
		{"client", &cl},
		{"endpoints", &ep},
		{"authorize-request", &abi.AuthorizeRequest{ClientID: "c", Endpoints: ep, Purpose: abi.PurposeGit, RedirectURI: "https://a/cb",
			Scopes: []string{"repo", "", "user"}, State: "s", CodeChallenge: "ch", CodeChallengeMethod: "S256"}},
		// KeepGrant came later within v1 (field 9): "authorize-request" above
		// is the message without it, byte for byte as before.
		{"authorize-request-keep-grant", &abi.AuthorizeRequest{ClientID: "c", Purpose: abi.PurposeLogin, State: "s", KeepGrant: true}},
		{"param", &abi.Param{Name: "n", Value: "v"}},
		{"authorize-result", &abi.AuthorizeResult{Params: []abi.Param{{"a", "1"}, {"a", "2"}, {"b", ""}, {}}}},
		{"exchange-request", &abi.ExchangeRequest{Client: cl, Endpoints: ep, Code: "c", RedirectURI: "r", CodeVerifier: "v"}},
		{"refresh-request", &abi.RefreshRequest{Client: cl, Endpoints: ep, RefreshToken: "rt", Scopes: []string{"x", "y"}}},
		{"revoke-request", &abi.RevokeRequest{Client: cl, Endpoints: ep, AccessToken: "at", RefreshToken: "rt"}},
		{"token", &abi.Token{AccessToken: "at", RefreshToken: "rt", TokenType: "bearer", ExpiresIn: 3600,
			RefreshExpiresIn: -5, Scopes: []string{"a", "b"}, IDToken: "id"}},
		{"user-request", &abi.UserRequest{Endpoints: ep, AccessToken: "at"}},
		{"user", &abi.User{ID: "1", Login: "l", Name: "n", Email: "e", EmailVerified: true, AvatarURL: "a", ProfileURL: "p"}},
		{"repos-request", &abi.ReposRequest{Endpoints: ep, AccessToken: "at", Cursor: "c", PerPage: 100}},
		{"repo", &repo},
		{"repo-page", &abi.RepoPage{Repos: []abi.Repo{repo, {}}, NextCursor: "n"}},
		{"groups-request", &abi.GroupsRequest{Client: abi.Client{ID: "id"}, Endpoints: ep, AccessToken: "at",
			Wanted: []string{"vintner", "vintner/platform", ""}}},
		{"groups", &abi.Groups{Groups: []string{"vintner", "vintner/platform"}, Restricted: []string{"acme"}}},
		{"git-host-request", &abi.GitHostRequest{Endpoints: ep}},
		{"git-host", &abi.GitHost{URL: "https://ghe.example.com", BasicUser: "x-access-token"}},
		{"empty", &abi.Empty{}},
		{"header", &abi.Header{Name: "A", Value: "1"}},
		{"http-request", &abi.HTTPRequest{Method: "POST", URL: "u", Headers: []abi.Header{{"A", "1"}, {"A", "2"}}, Body: []byte("x")}},
		{"http-response", &abi.HTTPResponse{Status: 200, Headers: []abi.Header{{"Link", "<x>"}, {}}, Body: []byte{0, 1, 2},
			Code: abi.CodeTimeout, Message: "m", Retryable: true}},
		{"zero-result", &abi.Result{}},
		{"zero-authorize-request", &abi.AuthorizeRequest{}},
		{"zero-exchange-request", &abi.ExchangeRequest{}},
		{"zero-refresh-request", &abi.RefreshRequest{}},
		{"zero-revoke-request", &abi.RevokeRequest{}},
		{"zero-token", &abi.Token{}},
		{"zero-user-request", &abi.UserRequest{}},
		{"zero-user", &abi.User{}},
		{"zero-repos-request", &abi.ReposRequest{}},
		{"zero-repo-page", &abi.RepoPage{}},
		{"zero-groups-request", &abi.GroupsRequest{}},
		{"zero-groups", &abi.Groups{}},
		{"zero-git-host-request", &abi.GitHostRequest{}},
		{"zero-git-host", &abi.GitHost{}},
		{"zero-http-request", &abi.HTTPRequest{}},
		{"zero-http-response", &abi.HTTPResponse{}},
	}
}

// TestGoldenEncoding pins the encoding of every message: the bytes in
// testdata/golden were written by the encoder of ABI v1 as plugins
// were built with it. Each message must encode to exactly those bytes, and
// those bytes must decode back to the message.
func TestGoldenEncoding(t *testing.T) {
	for _, m := range goldenMessages() {
		got := abi.Marshal(m.msg)
		want := golden.Bytes(t, m.name, got)
		if string(got) != string(want) {
			t.Errorf("%s: encoding changed\n got %x\nwant %x", m.name, got, want)
		}
		out := reflect.New(reflect.TypeOf(m.msg).Elem()).Interface().(abi.Message)
		if err := abi.Unmarshal(want, out); err != nil {
			t.Errorf("%s: decoding the golden bytes: %v", m.name, err)
		} else if !reflect.DeepEqual(out, m.msg) {
			t.Errorf("%s: golden bytes decode as\n%+v\nwant %+v", m.name, out, m.msg)
		}
	}
}

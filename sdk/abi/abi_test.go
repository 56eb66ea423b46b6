package abi_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
)

func roundTrip[T any, P interface {
	*T
	abi.Message
}](t *testing.T, in P) {
	t.Helper()
	b := abi.Marshal(in)
	out := P(new(T))
	if err := abi.Unmarshal(b, out); err != nil {
		t.Fatalf("%T: %v", in, err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("%T round trip\n got %+v\nwant %+v", in, out, in)
	}
}

func TestRoundTrip(t *testing.T) {
	ep := abi.Endpoints{AuthorizeURL: "https://p/a", TokenURL: "https://p/t", APIBase: "https://api.p", RevokeURL: "https://p/r"}
	cl := abi.Client{ID: "id", Secret: "secret"}
	roundTrip(t, &abi.Result{Payload: []byte{1, 2, 3}, Code: abi.CodeInvalidGrant, Message: "m", Retryable: true, Status: 400})
	roundTrip(t, &abi.Result{Status: -1})
	roundTrip(t, &abi.Result{Code: abi.CodeRateLimited, Message: "m", Retryable: true, Status: 429, RetryAfter: 37})
	roundTrip(t, &abi.AuthorizeRequest{ClientID: "c", Endpoints: ep, Purpose: abi.PurposeGit, RedirectURI: "https://a/cb",
		Scopes: []string{"repo", "", "user"}, State: "s", CodeChallenge: "ch", CodeChallengeMethod: "S256"})
	roundTrip(t, &abi.AuthorizeRequest{ClientID: "c", State: "s", KeepGrant: true})
	roundTrip(t, &abi.AuthorizeResult{Params: []abi.Param{{"a", "1"}, {"a", "2"}, {"b", ""}}})
	roundTrip(t, &abi.ExchangeRequest{Client: cl, Endpoints: ep, Code: "c", RedirectURI: "r", CodeVerifier: "v"})
	roundTrip(t, &abi.RefreshRequest{Client: cl, Endpoints: ep, RefreshToken: "rt", Scopes: []string{"x"}})
	roundTrip(t, &abi.RevokeRequest{Client: cl, Endpoints: ep, AccessToken: "at", RefreshToken: "rt"})
	roundTrip(t, &abi.Token{AccessToken: "at", RefreshToken: "rt", TokenType: "bearer", ExpiresIn: 3600,
		RefreshExpiresIn: -5, Scopes: []string{"a", "b"}, IDToken: "id"})
	roundTrip(t, &abi.UserRequest{Endpoints: ep, AccessToken: "at"})
	roundTrip(t, &abi.User{ID: "1", Login: "l", Name: "n", Email: "e", EmailVerified: true, AvatarURL: "a", ProfileURL: "p"})
	roundTrip(t, &abi.ReposRequest{Endpoints: ep, AccessToken: "at", Cursor: "c", PerPage: 100})
	roundTrip(t, &abi.RepoPage{Repos: []abi.Repo{{ID: "1", FullName: "a/b", Description: "d", Private: true,
		DefaultBranch: "main", HTMLURL: "h", CloneURL: "c", UpdatedAt: 1700000000}, {}}, NextCursor: "n"})
	roundTrip(t, &abi.GroupsRequest{Client: abi.Client{ID: "id"}, Endpoints: ep, AccessToken: "at", Wanted: []string{"vintner", "", "vintner/platform"}})
	roundTrip(t, &abi.Groups{Groups: []string{"vintner", "vintner/platform"}, Restricted: []string{"acme"}})
	roundTrip(t, &abi.Groups{Restricted: []string{"acme"}})
	roundTrip(t, &abi.HTTPRequest{Method: "POST", URL: "u", Headers: []abi.Header{{"A", "1"}, {"A", "2"}}, Body: []byte("x")})
	roundTrip(t, &abi.HTTPResponse{Status: 200, Headers: []abi.Header{{"Link", "<x>"}}, Body: make([]byte, 70000),
		Code: abi.CodeTimeout, Message: "m", Retryable: true})
}

func TestSuccessEnvelope(t *testing.T) {
	tok := &abi.Token{AccessToken: "at"}
	var res abi.Result
	if err := abi.Unmarshal(abi.AppendResult(nil, tok), &res); err != nil {
		t.Fatal(err)
	}
	var got abi.Token
	if res.Code != "" || abi.Unmarshal(res.Payload, &got) != nil || got.AccessToken != "at" {
		t.Errorf("result %+v, token %+v", res, got)
	}
	// An empty payload still decodes.
	if err := abi.Unmarshal(abi.AppendResult(nil, &abi.Empty{}), &res); err != nil || res.Code != "" {
		t.Errorf("empty payload: %+v %v", res, err)
	}
}

// TestUnknownFieldsSkipped is what lets a later ABI v1 revision add fields.
func TestUnknownFieldsSkipped(t *testing.T) {
	b := abi.Marshal(&abi.User{ID: "1", Login: "l"})
	b = append(b, 12<<3|0, 0x96, 0x01)             // varint field 12
	b = append(b, 13<<3|2, 3, 'a', 'b', 'c')       // bytes field 13
	b = append(b, 14<<3|1, 1, 2, 3, 4, 5, 6, 7, 8) // fixed64 field 14
	b = append(b, 15<<3|5, 1, 2, 3, 4)             // fixed32 field 15
	var u abi.User
	if err := abi.Unmarshal(b, &u); err != nil || u.ID != "1" || u.Login != "l" {
		t.Errorf("%+v %v", u, err)
	}
}

func TestMalformed(t *testing.T) {
	good := abi.Marshal(&abi.Token{AccessToken: "access", Scopes: []string{"a"}})
	for i := 1; i < len(good); i++ {
		if i == 8 { // between the two fields: a valid, shorter message
			continue
		}
		var tok abi.Token
		if err := abi.Unmarshal(good[:i], &tok); err == nil {
			t.Errorf("truncated at %d: no error", i)
		}
	}
	for name, b := range map[string][]byte{
		"wrong wire type": {1<<3 | 0, 5}, // access_token as varint
		"field zero":      {0, 1},        // field number 0
		"long varint":     {4 << 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"bad wire type":   {1<<3 | 7},                               // wire type 7
		"nested length":   {2<<3 | 2, 0x80, 0x80, 0x80, 0x80, 0x01}, // longer than the message
	} {
		var u abi.RefreshRequest
		if err := abi.Unmarshal(b, &u); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "abi: decoding") {
			t.Errorf("%s: error %q lacks context", name, err)
		}
	}
}

func TestOps(t *testing.T) {
	var s abi.OpSet
	for _, o := range abi.Ops {
		p, ok := abi.ParseOp(o.String())
		if !ok || p != o || !strings.HasPrefix(o.Export(), "arbor_") {
			t.Errorf("op %d: %q %q", o, o, o.Export())
		}
		s = s.With(o)
	}
	if s.String() != "authorize,exchange,refresh,revoke,user,repos,groups,git_host" {
		t.Errorf("set %q", s)
	}
	if v, ok := abi.ParseHostModule(abi.HostModule); !ok || v != abi.Version {
		t.Errorf("host module %q → %d %v", abi.HostModule, v, ok)
	}
	if v, ok := abi.ParseMarker(abi.ExportMarker); !ok || v != abi.Version {
		t.Errorf("marker %q → %d %v", abi.ExportMarker, v, ok)
	}
	for _, bad := range []string{"arbor_v", "arbor_vx", "arbor_v0", "wasi"} {
		if _, ok := abi.ParseHostModule(bad); ok {
			t.Errorf("%q parsed as a host module", bad)
		}
	}
	err := abi.VersionError("gitea", "the module was built for", 2)
	if !errors.Is(err, abi.ErrABIVersion) || !strings.Contains(err.Error(), `plugin "gitea": the module was built for ABI v2, but this Arbor supports ABI v1`) {
		t.Errorf("%v", err)
	}
}

func BenchmarkRefreshRequest(b *testing.B) {
	r := &abi.RefreshRequest{Client: abi.Client{ID: "client", Secret: "secret"},
		Endpoints:    abi.Endpoints{TokenURL: "https://bitbucket.org/site/oauth2/access_token", APIBase: "https://api.bitbucket.org/2.0"},
		RefreshToken: "a1b2c3d4e5f6g7h8i9j0", Scopes: []string{"account", "repository"}}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendABI(buf[:0])
		var out abi.RefreshRequest
		if err := out.UnmarshalABI(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// TestResultRetryAfterCompatible: field 6 (RetryAfter) was added within
// v1. A result encoded by a plugin built before it decodes with RetryAfter
// 0, and the new field is encoded under its own number after the old ones,
// so that a host built before it skips it (TestUnknownFieldsSkipped).
func TestResultRetryAfterCompatible(t *testing.T) {
	// What a v1 plugin built before RetryAfter existed encodes: fields 2-5.
	old := []byte{2<<3 | 2, 12}
	old = append(old, "rate_limited"...)
	old = append(old, 3<<3|2, 1, 'm', 4<<3|0, 1, 5<<3|0, 0xda, 0x06) // status 429, zig-zag 858
	var res abi.Result
	if err := abi.Unmarshal(old, &res); err != nil {
		t.Fatal(err)
	}
	if res.Code != abi.CodeRateLimited || res.Status != 429 || !res.Retryable || res.RetryAfter != 0 {
		t.Fatalf("old result decoded as %+v", res)
	}
	// The new encoding is the old one plus field 6: nothing else moved.
	enc := abi.Marshal(&abi.Result{Code: abi.CodeRateLimited, Message: "m", Retryable: true, Status: 429, RetryAfter: 90})
	want := append(append([]byte{}, old...), 6<<3|0, 180, 1) // 90 zig-zag = 180
	if string(enc) != string(want) {
		t.Fatalf("encoding\n got % x\nwant % x", enc, want)
	}
	// A negative value survives the trip (the host clamps it).
	roundTrip(t, &abi.Result{Code: abi.CodeRateLimited, RetryAfter: -5})
}

func TestClampRetryAfter(t *testing.T) {
	for _, c := range []struct {
		in   int64
		want int
	}{
		{0, abi.DefaultRetryAfter}, {-1, abi.DefaultRetryAfter}, {1, 1}, {37, 37},
		{3600, 3600}, {3601, abi.MaxRetryAfter}, {1 << 40, abi.MaxRetryAfter},
	} {
		if got := abi.ClampRetryAfter(c.in); got != c.want {
			t.Errorf("ClampRetryAfter(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestGroupsCompatible: OpGroups was added within v1 after every other
// operation, so the bits and exports of the operations before it did not
// move, and the OpSet a plugin built before it reports (six bits) still
// reads as the same operations, without groups.
func TestGroupsCompatible(t *testing.T) {
	before := abi.OpSet(0b111111) // what a v1 plugin with every earlier operation reports
	if before.Has(abi.OpGroups) || before.String() != "authorize,exchange,refresh,revoke,user,repos" {
		t.Fatalf("an earlier plugin's set reads as %q", before)
	}
	if abi.OpGroups != 6 || abi.OpGroups.Export() != "arbor_groups" || abi.OpGroups.String() != "groups" {
		t.Fatalf("OpGroups = %d %q %q", abi.OpGroups, abi.OpGroups.Export(), abi.OpGroups)
	}
	for i, want := range []string{"arbor_authorize", "arbor_exchange", "arbor_refresh", "arbor_revoke", "arbor_user", "arbor_repos"} {
		if got := abi.Op(i).Export(); got != want {
			t.Errorf("op %d exports %q, want %q", i, got, want)
		}
	}
	if op, ok := abi.ParseOp("groups"); !ok || op != abi.OpGroups {
		t.Errorf("ParseOp(groups) = %v %v", op, ok)
	}
}

// TestGitHostCompatible: OpGitHost was added within v1 after OpGroups, so
// no earlier bit or export moved, and the set a plugin built before it
// reports (seven bits) reads as the same operations, without git_host.
func TestGitHostCompatible(t *testing.T) {
	before := abi.OpSet(0b1111111)
	if before.Has(abi.OpGitHost) || before.String() != "authorize,exchange,refresh,revoke,user,repos,groups" {
		t.Fatalf("an earlier plugin's set reads as %q", before)
	}
	if abi.OpGitHost != 7 || abi.OpGitHost.Export() != "arbor_git_host" || abi.OpGitHost.String() != "git_host" {
		t.Fatalf("OpGitHost = %d %q %q", abi.OpGitHost, abi.OpGitHost.Export(), abi.OpGitHost)
	}
	if op, ok := abi.ParseOp("git_host"); !ok || op != abi.OpGitHost {
		t.Errorf("ParseOp(git_host) = %v %v", op, ok)
	}
}

// TestKeepGrantIsOneTrailingField: AuthorizeRequest.KeepGrant came within
// v1. Unset, the request encodes as before it existed (byte for byte, see
// "authorize-request" in TestGoldenEncoding); set, it adds only field 9,
// a varint, which a plugin built before skips as an unknown field.
func TestKeepGrantIsOneTrailingField(t *testing.T) {
	r := abi.AuthorizeRequest{ClientID: "c", Purpose: abi.PurposeLogin, Scopes: []string{"openid"}, State: "s"}
	plain := abi.Marshal(&r)
	r.KeepGrant = true
	kept := abi.Marshal(&r)
	if want := append(append([]byte{}, plain...), 9<<3|0, 1); string(kept) != string(want) {
		t.Fatalf("KeepGrant encodes as %x, want %x (the request without it and field 9)", kept, want)
	}
	var back abi.AuthorizeRequest
	if err := abi.Unmarshal(plain, &back); err != nil || back.KeepGrant {
		t.Errorf("a request without the field: KeepGrant %v, %v", back.KeepGrant, err)
	}
}

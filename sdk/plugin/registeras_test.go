package plugin

import (
	"context"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
)

// namedProvider answers an exchange with its own name, so a test sees
// which provider served it.
type namedProvider struct{ name string }

func (p namedProvider) Exchange(context.Context, *ExchangeRequest) (*Token, error) {
	return &Token{AccessToken: p.name}, nil
}

// TestRegisterAs: a module carrying several providers acts as the one
// abi.EnvPlugin names, a lone RegisterAs serves whatever it says, and an
// unknown name is an error that says so.
func TestRegisterAs(t *testing.T) {
	defer func(p any, n map[string]any, c any) { provider, named, chosen = p, n, c }(provider, named, chosen)
	exchange := func() (abi.Result, string) {
		res, payload := run(t, abi.OpExchange, &abi.ExchangeRequest{Code: "c"})
		var tok abi.Token
		_ = abi.Unmarshal(payload, &tok)
		return res, tok.AccessToken
	}
	for _, tc := range []struct {
		names   []string
		env     string
		want    string // the provider that answers; "" for the error
		wantErr string
	}{
		{[]string{"gitlab", "github"}, "github", "github", ""},
		{[]string{"gitlab", "github"}, "gitlab", "gitlab", ""},
		{[]string{"gitlab", "github"}, "gitea", "", "names none of them"},
		{[]string{"gitlab", "github"}, "", "", "names none of them"},
		{[]string{"gitea"}, "something-else", "gitea", ""},
	} {
		provider, named, chosen = nil, nil, nil
		for _, n := range tc.names {
			RegisterAs(n, namedProvider{n})
		}
		t.Setenv(abi.EnvPlugin, tc.env)
		res, got := exchange()
		if got != tc.want || (tc.wantErr == "") != (res.Code == "") || !strings.Contains(res.Message, tc.wantErr) {
			t.Errorf("%v with %s=%q: served by %q (%+v), want %q %q", tc.names, abi.EnvPlugin, tc.env, got, res, tc.want, tc.wantErr)
		}
		wantOps := "authorize,exchange"
		if tc.want == "" {
			wantOps = "authorize"
		}
		if ops := Implemented(current()); ops.String() != wantOps {
			t.Errorf("%v with %q: the marker would report %s, want %s", tc.names, tc.env, ops, wantOps)
		}
	}

	provider, named, chosen = nil, nil, nil
	RegisterAs("github", namedProvider{"github"})
	for _, bad := range []func(){
		func() { RegisterAs("github", namedProvider{"again"}) },
		func() { RegisterAs("", namedProvider{"empty"}) },
		func() { Register(namedProvider{"mixed"}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			bad()
		}()
	}
}

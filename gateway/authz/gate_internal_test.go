package authz

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/authn/sessiontoken"
	"github.com/vintner/arbor/gateway/authz/access"
	"github.com/vintner/arbor/service/workers"
)

// testChain is a session-only chain on a real bbolt store.
func testChain(t *testing.T) (*authn.Chain, *session.Manager) {
	t.Helper()
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "g.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := []byte("0123456789abcdef0123456789abcdef-test")
	signer, err := sessiontoken.NewSigner(key, sessiontoken.Options{Issuer: "test", Audience: "arbor-session"})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.New(st, session.Options{Signer: signer, CSRFKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sessions.Close)
	chain, err := authn.New(authn.Config{Session: sessions.Cookies()})
	if err != nil {
		t.Fatal(err)
	}
	return chain, sessions
}

func TestNewGateSaysWhatToFix(t *testing.T) {
	chain, sessions := testChain(t)
	policy, err := access.New(access.Session, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := func() GateOptions {
		return GateOptions{Policy: policy, Chain: chain, SignInPath: "/auth/sign-in",
			SessionCookie: sessions.CookieName(), FlowCookie: "arbor_flow"}
	}
	for _, tt := range []struct {
		name string
		edit func(o *GateOptions)
		want string // "" means accepted
	}{
		{"complete", func(o *GateOptions) {}, ""},
		{"no policy", func(o *GateOptions) { o.Policy = nil }, "GateOptions.Policy required"},
		{"nothing", func(o *GateOptions) { *o = GateOptions{} },
			"GateOptions.Policy, GateOptions.Chain, GateOptions.SignInPath, GateOptions.SessionCookie, GateOptions.FlowCookie required"},
		{"relative sign-in path", func(o *GateOptions) { o.SignInPath = "auth/sign-in" }, "must be a path on Arbor"},
		{"sign-in path on another host", func(o *GateOptions) { o.SignInPath = "//evil.example/x" }, "must be a path on Arbor"},
		{"one cookie name for both", func(o *GateOptions) { o.FlowCookie = o.SessionCookie }, "SessionCookie and FlowCookie must differ"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := good()
			tt.edit(&o)
			g, err := NewGate(o)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("NewGate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("NewGate = %v, want an error saying %q", err, tt.want)
			case tt.want == "" && (g.opts.AfterSignIn != "/" || g.opts.Headers != DefaultHeaders):
				t.Fatalf("defaults: AfterSignIn %q, Headers %+v", g.opts.AfterSignIn, g.opts.Headers)
			}
		})
	}
}

func TestStrippedHeaders(t *testing.T) {
	chain, sessions := testChain(t)
	policy, err := access.New(access.Session, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		headers Headers
		want    []string
	}{
		{Headers{}, []string{workers.HeaderID, workers.HeaderToken}},
		{Headers{UserID: "X-User", Assertion: "X-Arbor-Jwt"}, []string{workers.HeaderID, workers.HeaderToken, "X-User"}},
		{Headers{Email: "X-Email", Login: "x-arbor-login"}, []string{workers.HeaderID, workers.HeaderToken, "X-Email"}},
	} {
		g, err := NewGate(GateOptions{Policy: policy, Chain: chain, SignInPath: "/auth/sign-in",
			SessionCookie: sessions.CookieName(), FlowCookie: "arbor_flow", Headers: tt.headers})
		if err != nil {
			t.Fatal(err)
		}
		if got := g.StrippedHeaders(); !slices.Equal(got, tt.want) {
			t.Errorf("%+v: StrippedHeaders = %q, want %q", tt.headers, got, tt.want)
		}
	}
}

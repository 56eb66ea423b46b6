package integrations_test

// env keeps the names of the tests that moved here from gateway/webauth
// (ratelimit_test.go): one Arbor (app/apptest) without Arbor's own rate
// limits, whose clock and store the tests use directly.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/webauth"
	"github.com/vintner/arbor/plugins/builtin/fakes"
)

type envOptions struct {
	// serviceTokens may call the integrations service route
	// (ARBOR_SERVICE_TOKENS).
	serviceTokens []authn.ServiceToken
}

type env struct {
	*apptest.Harness
	clock *apptest.Clock
	store *boltdb.Store
	fakes *fakes.Set
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	opts := []apptest.Option{apptest.Config(func(c *config.Config) { c.Limits.Enabled = false })}
	if len(o.serviceTokens) > 0 {
		var pairs []string
		for _, s := range o.serviceTokens {
			pairs = append(pairs, s.Name+":"+s.Token)
		}
		opts = append(opts, apptest.Env(config.EnvServiceTokens+"="+strings.Join(pairs, ",")))
	}
	h := apptest.New(t, opts...)
	return &env{Harness: h, clock: h.Clock, store: h.Bolt(), fakes: h.Fakes}
}

func (e *env) browser() *apptest.Browser { return e.Browser() }

// wantError checks the status and the stable error code of a response.
func wantError(t *testing.T, what string, res *apptest.Response, status int, code string) {
	t.Helper()
	if res.StatusCode != status || apptest.ErrorCode(res.Body) != code {
		t.Fatalf("%s = %d %q, want %d %q\n%s", what, res.StatusCode, apptest.ErrorCode(res.Body), status, code, res.Body)
	}
}

func setsSession(e *env, res *apptest.Response) bool { return e.SetsSession(res) }

// assertNoSession checks that b holds no session and is still sent to
// sign-in.
func assertNoSession(t *testing.T, e *env, b *apptest.Browser) {
	t.Helper()
	if c := b.Cookie(e.Cookie); c != "" {
		t.Fatalf("the browser holds a session cookie after a failed sign-in: %q", c)
	}
	res := b.Get("/")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Location(), "http://"+e.Addr+webauth.PathSignIn) {
		t.Fatalf("GET / after a failed sign-in = %d → %q, want a redirect to sign-in", res.StatusCode, res.Location())
	}
}

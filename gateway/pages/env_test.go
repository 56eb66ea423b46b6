package pages_test

// The full-stack tests of this package run a whole Arbor (app/apptest).
// env keeps the names the tests used when they lived in gateway/webauth,
// gateway/integrations and gateway/workerpages: one Arbor with
// /api/tendril/ as its worker routes and without Arbor's own rate limits,
// whose clock and store the tests use directly.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/signin"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/service/workers"
)

type (
	browser  = apptest.Browser
	response = apptest.Response
)

// csrfRE finds the CSRF token of a form.
var csrfRE = apptest.CSRFRE

type envOptions struct {
	// serviceTokens may call the service route (ARBOR_SERVICE_TOKENS).
	serviceTokens []authn.ServiceToken
}

type env struct {
	*apptest.Harness
	addr     string
	clock    *apptest.Clock
	store    *boltdb.Store
	fakes    *fakes.Set
	workers  *workers.Service
	upstream *apptest.Recorder
	logs     *apptest.LogBuffer
	sessions *session.Manager
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	opts := []apptest.Option{apptest.Config(func(c *config.Config) {
		c.Workers.Paths = []string{"/api/tendril/"}
		c.Limits.Enabled = false
	})}
	if len(o.serviceTokens) > 0 {
		var pairs []string
		for _, s := range o.serviceTokens {
			pairs = append(pairs, s.Name+":"+s.Token)
		}
		opts = append(opts, apptest.Env(config.EnvServiceTokens+"="+strings.Join(pairs, ",")))
	}
	h := apptest.New(t, opts...)
	return &env{Harness: h, addr: h.Addr, clock: h.Clock, store: h.Bolt(), fakes: h.Fakes,
		workers: h.App.Workers(), upstream: h.Upstream, logs: h.Logs, sessions: h.App.Sessions()}
}

func (e *env) browser() *browser { return e.Browser() }

func errorCode(body string) string { return apptest.ErrorCode(body) }

// wantError checks the status and the stable error code of a response.
func wantError(t *testing.T, what string, res *response, status int, code string) {
	t.Helper()
	if res.StatusCode != status || apptest.ErrorCode(res.Body) != code {
		t.Fatalf("%s = %d %q, want %d %q\n%s", what, res.StatusCode, apptest.ErrorCode(res.Body), status, code, res.Body)
	}
}

func setsSession(e *env, res *response) bool { return e.SetsSession(res) }

// assertNoSession checks that b holds no session and is still sent to
// sign-in.
func assertNoSession(t *testing.T, e *env, b *browser) {
	t.Helper()
	if c := b.Cookie(e.Cookie); c != "" {
		t.Fatalf("the browser holds a session cookie after a failed sign-in: %q", c)
	}
	res := b.Get("/")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Location(), "http://"+e.Addr+signin.PathSignIn) {
		t.Fatalf("GET / after a failed sign-in = %d → %q, want a redirect to sign-in", res.StatusCode, res.Location())
	}
}

func csrfOf(t *testing.T, b *browser) string { t.Helper(); return apptest.AccountCSRF(t, b) }

func mustUserID(t *testing.T, e *env, b *browser) string { t.Helper(); return e.MustUserID(b) }

func verifyAssertion(t *testing.T, b *browser, tok string) jwt.MapClaims {
	t.Helper()
	return apptest.VerifyAssertion(t, b, tok)
}

func cliLogin(t *testing.T, user, cli *browser) apptest.CLITokens {
	t.Helper()
	return apptest.CLILogin(t, user, cli)
}

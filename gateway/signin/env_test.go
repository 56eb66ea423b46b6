package signin_test

// The sign-in tests of this package run a whole Arbor (app/apptest): real
// Fiber on loopback, bbolt, the built-in plugins and the fake providers.
// env keeps the names the tests used before app/apptest existed.

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/authn/sessiontoken"
	"github.com/vintner/arbor/gateway/authz"
	"github.com/vintner/arbor/gateway/authz/access"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/service/workers"
)

type (
	browser  = apptest.Browser
	response = apptest.Response
)

// providerNames are the built-in sign-in providers every test Arbor has.
var providerNames = []string{"bitbucket", "github", "gitlab", "google"}

// testAudience is the session token's aud.
const testAudience = "arbor-session"

var csrfRE = apptest.CSRFRE

type envOptions struct {
	defaultClass access.Class // default access.Session
	rules        []access.Rule
	linkByEmail  bool
	tokenTTL     time.Duration // session.token_ttl; default 15m
	idle         time.Duration // session.idle_timeout; default 7 days
	headers      authz.Headers
	// secure makes the public URL https (the listener stays plain http;
	// the test client rewrites the scheme, as a TLS terminator would).
	secure bool
	// editFake changes a fake provider's configuration before it starts.
	editFake func(name string, c *fakeprovider.Config)
	// loading keeps the provider registry unavailable, as while plugins
	// load at start-up.
	loading bool
	// policy, if set, is the policy: section.
	policy *config.Policy
}

// env is one Arbor with /api/tendril/ as its worker routes and no rate
// limits.
type env struct {
	*apptest.Harness
	addr      string
	publicURL string
	cookie    string
	clock     *apptest.Clock
	store     *boltdb.Store
	fakes     *fakes.Set
	upstream  *apptest.Recorder
	signer    *sessiontoken.Signer
	sessions  *session.Manager
	workers   *workers.Service
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.defaultClass == 0 {
		o.defaultClass = access.Session
	}
	opts := []apptest.Option{
		apptest.Routes(o.defaultClass, o.rules...),
		apptest.Config(func(c *config.Config) {
			c.Limits.Enabled = false
			c.Workers.Paths = []string{"/api/tendril/"}
			c.Auth.LinkByVerifiedEmail = o.linkByEmail
			if o.tokenTTL != 0 {
				c.Session.TokenTTL = o.tokenTTL
			}
			if o.idle != 0 {
				c.Session.IdleTimeout = o.idle
			}
			if o.policy != nil {
				c.Policy = *o.policy
			}
			for _, h := range []struct {
				v   string
				key *string
			}{{o.headers.UserID, &c.Identity.UserIDHeader}, {o.headers.Email, &c.Identity.EmailHeader},
				{o.headers.Login, &c.Identity.LoginHeader}, {o.headers.Assertion, &c.Identity.AssertionHeader}} {
				if h.v != "" {
					*h.key = h.v
				}
			}
		}),
	}
	if o.secure {
		opts = append(opts, apptest.Secure())
	}
	if o.editFake != nil {
		opts = append(opts, apptest.EditFake(o.editFake))
	}
	if o.loading {
		opts = append(opts, apptest.PluginsLoading())
	}
	h := apptest.New(t, opts...)
	return &env{Harness: h, addr: h.Addr, publicURL: h.PublicURL, cookie: h.Cookie, clock: h.Clock,
		store: h.Bolt(), fakes: h.Fakes, upstream: h.Upstream,
		signer: h.App.SessionTokens(), sessions: h.App.Sessions(), workers: h.App.Workers()}
}

func (e *env) browser() *browser { return e.Browser() }

func errorCode(body string) string { return apptest.ErrorCode(body) }

func randomSecret(t *testing.T) string { t.Helper(); return apptest.RandomSecret(t) }

func whoamiUser(t *testing.T, b *browser) (id, login, email string) {
	t.Helper()
	return apptest.Whoami(t, b)
}

func csrfOf(t *testing.T, b *browser) string { t.Helper(); return apptest.AccountCSRF(t, b) }

func mustUserID(t *testing.T, e *env, b *browser) string { t.Helper(); return e.MustUserID(b) }

func verifyAssertion(t *testing.T, b *browser, tok string) jwt.MapClaims {
	t.Helper()
	return apptest.VerifyAssertion(t, b, tok)
}

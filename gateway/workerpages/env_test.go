package workerpages_test

// The full-stack tests of this package run a whole Arbor (app/apptest).
// env keeps the names the tests used when they lived in gateway/webauth.

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/service/workers"
)

type (
	browser  = apptest.Browser
	response = apptest.Response
)

var csrfRE = apptest.CSRFRE

// env is one Arbor with /api/tendril/ as its worker routes and no rate
// limits.
type env struct {
	*apptest.Harness
	addr     string
	store    *boltdb.Store
	workers  *workers.Service
	upstream *apptest.Recorder
	logs     *apptest.LogBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	h := apptest.New(t, apptest.Config(func(c *config.Config) {
		c.Workers.Paths = []string{"/api/tendril/"}
		c.Limits.Enabled = false
	}))
	return &env{Harness: h, addr: h.Addr, store: h.Bolt(), workers: h.App.Workers(), upstream: h.Upstream, logs: h.Logs}
}

func (e *env) browser() *browser { return e.Browser() }

func errorCode(body string) string { return apptest.ErrorCode(body) }

func mustUserID(t *testing.T, e *env, b *browser) string { t.Helper(); return e.MustUserID(b) }

func verifyAssertion(t *testing.T, b *browser, tok string) jwt.MapClaims {
	t.Helper()
	return apptest.VerifyAssertion(t, b, tok)
}

func cliLogin(t *testing.T, user, cli *browser) apptest.CLITokens {
	t.Helper()
	return apptest.CLILogin(t, user, cli)
}

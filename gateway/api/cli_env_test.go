package api_test

// The CLI login tests of this package (cli_test.go, cli_device_test.go,
// cli_deviceclients_test.go) run a whole Arbor (app/apptest): real Fiber on
// loopback, bbolt, the built-in plugins and the fake providers. env and
// the helpers below keep the names the tests used when they lived in
// gateway/webauth.

import (
	"net/http"
	"testing"
	"time"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/authz/access"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/service/clilogin"
	"github.com/vintner/arbor/service/workers"
)

type cliTokens = apptest.CLITokens

// testAudience is the session token's aud.
const testAudience = "arbor-session"

type cliEnvOptions struct {
	defaultClass access.Class // default access.Session
	rules        []access.Rule
	// refreshGrace is the CLI refresh-token grace window (default 0).
	refreshGrace time.Duration
	// deviceClients are the registered RFC 8628 clients; default one,
	// "stock-cli" ("Stock CLI"), with every scope.
	deviceClients []clilogin.DeviceClient
	// cliAudience is the CLI tokens' aud (default arbor-cli).
	cliAudience string
}

// env is one Arbor, without rate limits.
type cliEnv struct {
	*apptest.Harness
	addr      string
	publicURL string
	cookie    string
	clock     *apptest.Clock
	store     *boltdb.Store
	upstream  *apptest.Recorder
	workers   *workers.Service
}

func newCLIEnv(t *testing.T, o cliEnvOptions) *cliEnv {
	t.Helper()
	if o.defaultClass == 0 {
		o.defaultClass = access.Session
	}
	if o.deviceClients == nil {
		o.deviceClients = []clilogin.DeviceClient{{ID: "stock-cli", Name: "Stock CLI", Scopes: scope.All}}
	}
	h := apptest.New(t,
		apptest.Routes(o.defaultClass, o.rules...),
		apptest.DeviceClients(o.deviceClients...),
		apptest.Config(func(c *config.Config) {
			c.Limits.Enabled = false
			c.CLI.RefreshGrace = o.refreshGrace
			if o.cliAudience != "" {
				c.CLI.Audience = o.cliAudience
			}
		}))
	return &cliEnv{Harness: h, addr: h.Addr, publicURL: h.PublicURL, cookie: h.Cookie, clock: h.Clock,
		store: h.Bolt(), upstream: h.Upstream, workers: h.App.Workers()}
}

func (e *cliEnv) browser() *browser { return e.Browser() }

func cliClient(e *cliEnv) *browser { return e.CLIClient() }

func randomSecret(t *testing.T) string { t.Helper(); return apptest.RandomSecret(t) }

func sendJSON(b *browser, method, path string, v any, hdr http.Header) (*response, error) {
	return b.SendJSON(method, path, v, hdr)
}

func postJSON(b *browser, path string, v any) *response { return b.PostJSON(path, v) }

func bearerGet(b *browser, path, token string) *response { return b.BearerGet(path, token) }

func newVerifier(t *testing.T) (verifier, challenge string) {
	t.Helper()
	return apptest.NewVerifier(t)
}

func newDeviceCode(t *testing.T) string { t.Helper(); return apptest.NewDeviceCode(t) }

var testClientInfo = apptest.TestClientInfo

func startCLI(b *browser, challenge string) string { return b.StartCLI(challenge) }

func openLogin(b *browser, dc string) *response { return b.OpenCLILogin(dc) }

func approve(b *browser, dc string) string { return b.ApproveCLI(dc) }

func exchangeBody(dc, code, verifier string) map[string]string {
	return apptest.ExchangeBody(dc, code, verifier)
}

func exchange(b *browser, dc, code, verifier string) *response { return b.Exchange(dc, code, verifier) }

func decodeTokens(t *testing.T, what string, res *response) cliTokens {
	t.Helper()
	return apptest.DecodeTokens(t, what, res)
}

func whoamiUser(t *testing.T, b *browser) (id, login, email string) {
	t.Helper()
	return apptest.Whoami(t, b)
}

var verificationCodeRE = apptest.VerificationCodeRE

func getJSON(t *testing.T, b *browser, path string, into any) *response {
	t.Helper()
	return apptest.GetJSON(t, b, path, into)
}

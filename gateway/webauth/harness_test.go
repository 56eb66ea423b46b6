package webauth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/data/seal"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/access"
	"github.com/vintner/arbor/gateway/assertion"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/cliauth"
	"github.com/vintner/arbor/gateway/clitoken"
	"github.com/vintner/arbor/gateway/connections"
	"github.com/vintner/arbor/gateway/integrations"
	"github.com/vintner/arbor/gateway/providers"
	"github.com/vintner/arbor/gateway/proxy"
	"github.com/vintner/arbor/gateway/scope"
	"github.com/vintner/arbor/gateway/session"
	"github.com/vintner/arbor/gateway/sessiontoken"
	"github.com/vintner/arbor/gateway/webauth"
	"github.com/vintner/arbor/gateway/workerpages"
	"github.com/vintner/arbor/gateway/workers"
	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/plugins/builtin"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// providers are the built-in sign-in providers every test environment has.
var providerNames = []string{"bitbucket", "github", "gitlab", "google"}

var (
	testSessionKey = []byte("0123456789abcdef0123456789abcdef-webauth-test-session-key")
	testBindingKey = []byte("0123456789abcdef0123456789abcdef-webauth-test-binding-key")
	testCSRFKey    = []byte("0123456789abcdef0123456789abcdef-webauth-test-csrf-key")
	testCLIKey     = []byte("0123456789abcdef0123456789abcdef-webauth-test-cli-key")
	testIssuer     = "arbor-test"
	testAudience   = "arbor-session"
)

// host is one plugin host for the whole package: creating it compiles the
// plugins (or reads the compilation cache).
var host *plugins.Host

func TestMain(m *testing.M) {
	var err error
	host, err = plugins.NewHost(context.Background(), plugins.HostOptions{
		CacheDir: plugintest.DefaultCacheDir(),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Policy:   plugins.Policy{PoolSize: 2},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the plugin host:", err)
		os.Exit(1)
	}
	code := m.Run()
	host.Close(context.Background())
	os.Exit(code)
}

// clock is the adjustable time of an environment's sessions and store.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type envOptions struct {
	defaultClass access.Class
	rules        []access.Rule
	linkByEmail  bool
	tokenTTL     time.Duration
	idle         time.Duration
	headers      webauth.Headers
	// secure makes the public URL https (the listener stays plain http;
	// the test client rewrites the scheme, as a TLS terminator would).
	secure bool
	// editFake changes a fake provider's configuration before it starts.
	editFake func(name string, c *fakeprovider.Config)
	// loading keeps the provider registry unavailable, as while plugins
	// load at start-up.
	loading bool
	// serviceTokens may call the integrations service route.
	serviceTokens []authn.ServiceToken
	// webhook, if set, receives connection events.
	webhook func(connections.Event)
	// refreshGrace is the CLI refresh-token grace window (default 0).
	refreshGrace time.Duration
	// deviceClients are the registered RFC 8628 clients; default one,
	// "stock-cli" ("Stock CLI"), with every scope.
	deviceClients []cliauth.DeviceClient
	// cliAudience is the CLI tokens' aud (default clitoken.Audience).
	cliAudience string
}

// env is one complete gateway: bbolt store, real plugins talking to fake
// providers, sessions, the sign-in routes, the proxy and an upstream that
// records what it receives.
type env struct {
	t         *testing.T
	addr      string // host:port Arbor listens on
	publicURL string
	clock     *clock
	store     *boltdb.Store
	fakes     *fakes.Set
	sessions  *session.Manager
	signer    *sessiontoken.Signer
	asserter  *assertion.Signer
	upstream  *recorder
	cookie    string // the session cookie's name
	broker    *connections.Broker
	keys      *seal.Keyring
	cliTokens *clitoken.Signer
	cli       *cliauth.CLIAuth
	workers   *workers.Service
	logs      *logBuffer // every log line, access log included
}

// logBuffer collects log output from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// recorder is the upstream: it answers 200 with the headers it received as
// JSON and keeps them.
type recorder struct {
	mu   sync.Mutex
	last http.Header
	path string
	n    int
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.last, r.path = req.Header.Clone(), req.URL.RequestURI()
	r.n++
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(req.Header)
}

func (r *recorder) Last() (http.Header, string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last.Clone(), r.path, r.n
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	if o.defaultClass == 0 {
		o.defaultClass = access.Session
	}
	if o.deviceClients == nil {
		o.deviceClients = []cliauth.DeviceClient{{ID: "stock-cli", Name: "Stock CLI", Scopes: scope.All}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, addr: ln.Addr().String(), clock: &clock{}, upstream: &recorder{}}
	e.clock.ns.Store(time.Now().UnixNano())
	e.publicURL = "http://" + e.addr
	if o.secure {
		e.publicURL = "https://" + e.addr
	}

	up := httptest.NewServer(e.upstream)
	t.Cleanup(up.Close)

	e.store, err = boltdb.Open(filepath.Join(t.TempDir(), "arbor.db"), boltdb.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })

	e.fakes, err = fakes.Start(e.publicURL, fakes.Options{Edit: o.editFake})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.fakes.Close)
	reg, err := plugins.NewRegistry(ctx, host, plugins.RegistryOptions{
		Sources: []fs.FS{builtin.FS()},
		Config:  func(name string) plugins.PluginConfig { return e.fakes.Configs[name] },
	})
	if err != nil {
		t.Fatalf("loading the built-in plugins: %v", err)
	}
	t.Cleanup(func() { reg.Close() })

	e.signer, err = sessiontoken.NewSigner(testSessionKey, sessiontoken.Options{
		Issuer: testIssuer, Audience: testAudience, TTL: o.tokenTTL, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.sessions, err = session.New(e.store, session.Options{
		Signer: e.signer, CSRFKey: testCSRFKey, Secure: o.secure, Now: e.clock.Now, IdleTimeout: o.idle,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.sessions.Close)
	e.cookie = e.sessions.CookieName()

	key, err := assertion.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	e.asserter, err = assertion.NewSigner([]ed25519.PrivateKey{key}, assertion.Options{
		Issuer: e.publicURL, Audience: up.URL, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if e.keys, err = seal.NewKeyring(seal.Key{ID: "k1", Secret: k}); err != nil {
		t.Fatal(err)
	}
	provs := providers.FromRegistry(func() providers.Registry {
		if o.loading {
			return nil
		}
		return reg
	})
	// Every log line Arbor's parts write is kept (tests search it for
	// secrets) and, with -v, shown.
	e.logs = &logBuffer{}
	var logOut io.Writer = e.logs
	if testing.Verbose() {
		logOut = io.MultiWriter(e.logs, os.Stderr)
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.broker = connections.New(e.store, e.keys, provs, connections.Options{
		Now: e.clock.Now, Notify: o.webhook, RetryBackoff: time.Millisecond,
		Logger: logger,
	})
	t.Cleanup(e.broker.Close)
	e.cliTokens, err = clitoken.NewSigner(testCLIKey, clitoken.Options{Issuer: testIssuer, Audience: o.cliAudience, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.workers = workers.New(e.store, workers.Options{FlushInterval: time.Hour, Logger: logger})
	t.Cleanup(e.workers.Close)
	chain, err := authn.New(authn.Config{
		Session: e.sessions.Cookies(),
		CLI: authn.AuthenticatorFunc(func(c *fiber.Ctx) (authn.Identity, authn.Outcome, error) {
			return e.cli.Authenticate(c)
		}),
		Worker:        e.workers.Credentials(),
		ServiceTokens: o.serviceTokens,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.cli, err = cliauth.New(cliauth.Options{
		Store: e.store, Tokens: e.cliTokens, Sessions: e.sessions, Chain: chain, CodeKey: testCLIKey,
		PublicURL: e.publicURL, RefreshGrace: o.refreshGrace, Now: e.clock.Now,
		DeviceClients: o.deviceClients,
	})
	if err != nil {
		t.Fatal(err)
	}
	workerRoutes, err := access.New(access.Public, []access.Rule{{Prefix: "/api/tendril/", Class: access.API}})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := access.New(o.defaultClass, o.rules)
	if err != nil {
		t.Fatal(err)
	}
	wa, err := webauth.New(webauth.Options{
		Store:               e.store,
		Sessions:            e.sessions,
		Providers:           provs,
		Connector:           e.broker,
		Chain:               chain,
		CLILogins:           e.cli,
		WorkerRoutes:        workerRoutes,
		Policy:              policy,
		Assertions:          e.asserter,
		PublicURL:           e.publicURL,
		Secure:              o.secure,
		Headers:             o.headers,
		LinkByVerifiedEmail: o.linkByEmail,
		BindingKey:          testBindingKey,
		Now:                 e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(gateway.Options{
		Upstream:        proxy.Upstream{URL: up.URL},
		IdentityHeaders: wa.StrippedHeaders(),
		Guard:           wa.Guard,
		Director:        wa.Director,
		Logger:          logger,
		AccessLogger:    logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	integ, err := integrations.New(integrations.Options{
		Broker: e.broker, Sessions: e.sessions, Starter: wa, Audit: e.store,
		PublicURL: e.publicURL, Chain: chain,
	})
	if err != nil {
		t.Fatal(err)
	}
	workerPages, err := workerpages.New(workerpages.Options{
		Workers: e.workers, Sessions: e.sessions, PublicURL: e.publicURL, Chain: chain,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		class gateway.RouteClass
		fn    func(fiber.Router)
	}{{gateway.ClassAuth, wa.Routes}, {gateway.ClassAuth, integ.PageRoutes}, {gateway.ClassAPI, integ.APIRoutes},
		{gateway.ClassAuth, e.cli.PageRoutes}, {gateway.ClassAPI, e.cli.APIRoutes},
		{gateway.ClassAPI, e.cli.DeviceRoutes}, {gateway.ClassAuth, e.cli.DevicePageRoutes},
		{gateway.ClassAuth, workerPages.PageRoutes}, {gateway.ClassAPI, workerPages.APIRoutes}} {
		if err := srv.Mount(m.class, m.fn); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-done
	})
	return e
}

// browser is a minimal user agent: it keeps cookies per host (ignoring
// Secure, as the test listener is plain http behind an https public URL)
// and never follows redirects by itself.
type browser struct {
	t       *testing.T
	e       *env
	client  *http.Client
	mu      sync.Mutex
	cookies map[string]map[string]string // host → name → value
	header  http.Header                  // sent with every request
}

func (e *env) browser() *browser {
	return &browser{
		t: e.t, e: e,
		client: &http.Client{
			Timeout:       20 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		cookies: map[string]map[string]string{},
		header:  http.Header{},
	}
}

// Cookie returns the value of a cookie the browser holds for Arbor.
func (b *browser) Cookie(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cookies[b.e.addr][name]
}

// SetCookie plants a cookie for Arbor's host.
func (b *browser) SetCookie(name, value string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cookies[b.e.addr] == nil {
		b.cookies[b.e.addr] = map[string]string{}
	}
	b.cookies[b.e.addr][name] = value
}

// response is a finished exchange with the body read.
type response struct {
	*http.Response
	Body string
}

// Location is the redirect target, resolved against the request URL.
func (r *response) Location() string {
	loc, err := r.Response.Location()
	if err != nil {
		return ""
	}
	return loc.String()
}

// Do sends one request. rawURL may be a path on Arbor.
func (b *browser) Do(method, rawURL string, form url.Values) *response {
	b.t.Helper()
	if strings.HasPrefix(rawURL, "/") {
		rawURL = "http://" + b.e.addr + rawURL
	}
	// Arbor's public URL may be https; its listener is plain http.
	rawURL = strings.Replace(rawURL, "https://"+b.e.addr, "http://"+b.e.addr, 1)
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	// What a browser sends on navigation; pages answer non-browsers in JSON.
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	for k, v := range b.header {
		req.Header[k] = v
	}
	b.mu.Lock()
	for name, value := range b.cookies[req.URL.Host] {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	b.mu.Unlock()
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	b.mu.Lock()
	for _, c := range res.Cookies() {
		if b.cookies[req.URL.Host] == nil {
			b.cookies[req.URL.Host] = map[string]string{}
		}
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies[req.URL.Host], c.Name)
		} else {
			b.cookies[req.URL.Host][c.Name] = c.Value
		}
	}
	b.mu.Unlock()
	return &response{Response: res, Body: string(raw)}
}

func (b *browser) Get(rawURL string) *response {
	b.t.Helper()
	return b.Do(http.MethodGet, rawURL, nil)
}

// Start begins a sign-in and returns the provider's authorization URL.
func (b *browser) Start(provider, returnTo string) string {
	b.t.Helper()
	u := "/auth/start/" + provider
	if returnTo != "" {
		u += "?return_to=" + url.QueryEscape(returnTo)
	}
	res := b.Get(u)
	if res.StatusCode != http.StatusFound {
		b.t.Fatalf("GET %s = %d, want 302\n%s", u, res.StatusCode, res.Body)
	}
	return res.Location()
}

// Approve approves an authorization URL on the fake provider, as the named
// fake user (or its first), and returns the callback URL it redirects to.
func (b *browser) Approve(authURL, login string) string {
	b.t.Helper()
	u := authURL + "&fake_auto=approve"
	if login != "" {
		u += "&fake_user=" + url.QueryEscape(login)
	}
	res := b.Get(u)
	if res.StatusCode != http.StatusFound {
		b.t.Fatalf("approving at the fake = %d, want 302\n%s", res.StatusCode, res.Body)
	}
	return res.Location()
}

// SignIn goes through the whole flow with provider and returns the
// callback's response (a redirect on success).
func (b *browser) SignIn(provider, returnTo, login string) *response {
	b.t.Helper()
	return b.Get(b.Approve(b.Start(provider, returnTo), login))
}

// MustSignIn signs in and fails the test unless it worked.
func (b *browser) MustSignIn(provider string) {
	b.t.Helper()
	res := b.SignIn(provider, "", "")
	if res.StatusCode != http.StatusFound || b.Cookie(b.e.cookie) == "" {
		b.t.Fatalf("sign-in with %s: %d, cookie %q\n%s", provider, res.StatusCode, b.Cookie(b.e.cookie), res.Body)
	}
}

// errorCode extracts data-error="…" from an Arbor error page, or the error
// field of a JSON error.
func errorCode(body string) string {
	if i := strings.Index(body, `data-error="`); i >= 0 {
		rest := body[i+len(`data-error="`):]
		return rest[:strings.IndexByte(rest, '"')]
	}
	var j struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(body), &j) == nil {
		return j.Error
	}
	return ""
}

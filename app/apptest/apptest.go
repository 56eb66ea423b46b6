// Package apptest runs a whole Arbor for full-stack tests, built by the
// same constructor as `arbor serve` (app.New): a real bbolt file in
// t.TempDir(), the built-in plugins talking to the fake providers of
// plugins/builtin/fakes, the gateway's Fiber server on 127.0.0.1, an
// upstream that records what it receives and a webhook receiver. Only the
// clock is the test's (Harness.Clock), so that expiry can be tested.
//
// A test of a package's pages or API (gateway/signin, gateway/pages,
// gateway/api) starts one with New and drives it with a Browser:
//
//	h := apptest.New(t)
//	b := h.Browser()
//	b.MustSignIn("github")
//	res := b.Get("/integrations")
//
// Configuration is changed with options (Config, Env, Routes,
// DeviceClients, Secure, PluginsLoading, EditFake), as an operator would
// change it; CLIClient and CLILogin run a CLI login. What no client can
// reach (the session and CLI token keys, the worker service, the store)
// the Harness and app.App expose for the tests that need it. Two settings
// differ from `arbor serve` (app.TestOptions): failed revocations are
// retried after 1 ms instead of 200 ms, and workers' last-used times are
// written only when a test flushes them (App.Workers().Flush).
//
// The tests of a package that app imports must be an external test
// package (package foo_test) to import apptest.
package apptest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/app"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/edge/https/httpstest"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
	"github.com/vintner/arbor/service/webhook"
)

// Option changes what New builds.
type Option func(*setup)

type setup struct {
	env      []string
	edit     []func(*config.Config)
	editFake func(name string, c *fakeprovider.Config)
	secure   bool
	loading  bool
	tls      bool
	members  app.MembersFunc // PolicyMembers
}

// Secure makes the public URL https://, so that cookies are Secure and the
// session cookie is __Host-arbor_session. The listener stays plain http;
// the Browser rewrites the scheme, as a TLS terminator in front would.
func Secure() Option { return func(s *setup) { s.secure = true } }

// PluginsLoading starts Arbor with its plugins never loaded, as while they
// compile at start-up (app.TestOptions.PluginsLoading): no provider is
// available and /readyz answers 503, so New waits for /healthz instead.
func PluginsLoading() Option { return func(s *setup) { s.loading = true } }

// Env adds environment entries (KEY=value), read as `arbor serve` reads
// its environment: configuration keys and secrets such as
// ARBOR_SERVICE_TOKENS.
func Env(kv ...string) Option { return func(s *setup) { s.env = append(s.env, kv...) } }

// Config changes the configuration after it is loaded, before New.
func Config(edit func(*config.Config)) Option {
	return func(s *setup) { s.edit = append(s.edit, edit) }
}

// EditFake changes a fake provider's configuration before it starts.
func EditFake(edit func(name string, c *fakeprovider.Config)) Option {
	return func(s *setup) { s.editFake = edit }
}

// Harness is one running Arbor.
type Harness struct {
	T         *testing.T
	App       *app.App
	Config    config.Config
	Addr      string // host:port Arbor listens on
	PublicURL string
	Clock     *Clock
	Fakes     *fakes.Set
	Upstream  *Recorder
	Webhooks  *Webhooks
	Logs      *LogBuffer // every log line, access log included
	// Cookie is the name of the session cookie.
	Cookie string
	// SessionTokenKey is the HMAC key of the session cookie's token, and
	// CLITokenKey that of CLI tokens (cli_jwt_secret): tests forge tokens
	// with them. Both are issued by PublicURL.
	SessionTokenKey, CLITokenKey []byte
	// CA signed the certificate Arbor serves with the TLS option; nil
	// for plain http.
	CA *httpstest.CA
}

// Clock is the adjustable time of a harness's Arbor.
type Clock struct{ ns atomic.Int64 }

func (c *Clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// New starts an Arbor for t, with the fakes of every built-in provider
// configured, and waits until it is ready (/readyz: plugins loaded). It is
// stopped when t ends.
func New(t *testing.T, opts ...Option) *Harness {
	t.Helper()
	var s setup
	for _, o := range opts {
		o(&s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &Harness{T: t, Addr: ln.Addr().String(), Clock: &Clock{}, Upstream: &Recorder{}, Webhooks: &Webhooks{}, Logs: &LogBuffer{}}
	h.Clock.ns.Store(time.Now().UnixNano())
	h.PublicURL = "http://" + h.Addr
	if s.secure || s.tls {
		h.PublicURL = "https://" + h.Addr
	}
	if s.tls {
		s.env = append(h.serveTLS(), s.env...)
	}

	up := httptest.NewServer(h.Upstream)
	t.Cleanup(up.Close)
	hooks := httptest.NewServer(h.Webhooks)
	t.Cleanup(hooks.Close)

	h.Fakes, err = fakes.Start(h.PublicURL, fakes.Options{Edit: s.editFake})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Fakes.Close)

	// Keep the data directory's path short: Unix socket paths (the admin
	// socket) are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "arb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	session, _ := config.GenerateToken()
	cli, _ := config.GenerateToken()
	key, _ := config.GenerateKeyringEntry(time.Now())
	environ := append([]string{
		"ARBOR_DATA_DIR=" + dir,
		"ARBOR_STORE_PATH=" + t.TempDir() + "/arbor.db",
		"ARBOR_LISTEN=" + h.Addr,
		"ARBOR_PUBLIC_URL=" + h.PublicURL,
		"ARBOR_UPSTREAM_URL=" + up.URL,
		"ARBOR_SERVER_METRICS_LISTEN=",
		"ARBOR_LOG_LEVEL=debug",
		"ARBOR_LOG_FORMAT=text",
		"ARBOR_PLUGINS_CACHE_DIR=" + plugintest.DefaultCacheDir(),
		"ARBOR_CONNECTIONS_WEBHOOK_URL=" + hooks.URL + "/hook",
		config.EnvWebhookSecret + "=" + webhookSecret,
		config.EnvSessionKey + "=" + session,
		config.EnvCLIJWTSecret + "=" + cli,
		config.EnvEncryptionKeys + "=" + key,
	}, h.Fakes.Environ()...)
	environ = append(environ, s.env...)
	h.Config, err = config.Load(config.Source{Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	for _, edit := range s.edit {
		edit(&h.Config)
	}
	// Every log line is kept (tests search it for secrets) and, with -v,
	// shown.
	var logOut io.Writer = h.Logs
	if testing.Verbose() {
		logOut = io.MultiWriter(h.Logs, os.Stderr)
	}
	h.SessionTokenKey = derive([]byte(session), "session token")
	h.CLITokenKey = []byte(cli)
	h.App, err = app.New(t.Context(), h.Config, app.Options{
		Environ: environ, Stderr: logOut, Now: h.Clock.Now, Version: "test", Members: s.members,
		Tests: app.TestOptions{
			// Failed revocations are retried at once and workers'
			// last-used times are written only when a test flushes.
			ConnectionRetryBackoff: time.Millisecond,
			WorkerFlushInterval:    time.Hour,
			PluginsLoading:         s.loading,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.App.Close)
	h.Logs.flush = h.App.FlushLogs
	h.Cookie = h.App.SessionCookie()
	done := make(chan error, 1)
	go func() { done <- h.App.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.App.Shutdown(sctx)
		<-done
	})
	if s.loading {
		h.waitFor("/healthz")
	} else {
		h.waitFor("/readyz")
	}
	return h
}

// derive is app's key derivation (app/webauth.go): the session token key
// is derived from the session secret. If the two differ, every test that
// forges a session token fails on its control token, which must be
// accepted.
func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("arbor key derivation\x00" + purpose))
	return m.Sum(nil)
}

// webhookSecret signs the harness's webhook events; Webhooks checks the
// signatures.
const webhookSecret = "0123456789abcdef0123456789abcdef-apptest-webhook"

// waitFor waits, a bounded time, for path (/readyz: plugins loaded) to
// answer 200.
func (h *Harness) waitFor(path string) {
	h.T.Helper()
	var last string
	client := h.client()
	for range 1200 { // 2 minutes: a cold compile under the race detector
		res, err := client.Get(h.base() + path)
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			last = res.Status + " " + string(body)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.T.Fatalf("Arbor did not become ready: %s\n%s", last, h.Logs.String())
}

// LogBuffer collects log output from many goroutines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	// flush writes out what Arbor still buffers (the access log).
	flush func()
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String is everything logged so far, the access log's buffered lines
// included.
func (l *LogBuffer) String() string {
	if l.flush != nil {
		l.flush()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Recorder is the upstream: it answers 200 with the headers it received as
// JSON and keeps them.
type Recorder struct {
	mu   sync.Mutex
	last http.Header
	path string
	n    int
}

func (r *Recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.last, r.path = req.Header.Clone(), req.URL.RequestURI()
	r.n++
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(req.Header)
}

// Last returns the headers and path of the last request and how many
// requests arrived.
func (r *Recorder) Last() (http.Header, string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last.Clone(), r.path, r.n
}

// Webhooks receives Arbor's webhook events (connections.webhook_url).
type Webhooks struct {
	mu     sync.Mutex
	events []webhook.Event
}

func (w *Webhooks) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err == nil {
		err = webhook.Verify([]byte(webhookSecret), req.Header.Get(webhook.HeaderSignature), body, time.Now(), webhook.DefaultTolerance)
	}
	var e webhook.Event
	if err == nil {
		err = json.Unmarshal(body, &e)
	}
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.events = append(w.events, e)
	w.mu.Unlock()
	rw.WriteHeader(http.StatusNoContent)
}

// Events returns the events received so far.
func (w *Webhooks) Events() []webhook.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]webhook.Event(nil), w.events...)
}

// WaitFor waits, a bounded time, until n events have arrived (delivery is
// asynchronous) and returns those received.
func (w *Webhooks) WaitFor(n int) []webhook.Event {
	for range 200 { // 10 s
		if ev := w.Events(); len(ev) >= n {
			return ev
		}
		time.Sleep(50 * time.Millisecond)
	}
	return w.Events()
}

// Browser is a minimal user agent: it keeps cookies per host (ignoring
// Secure, as the test listener is plain http behind an https public URL)
// and never follows redirects by itself.
type Browser struct {
	t       *testing.T
	h       *Harness
	client  *http.Client
	mu      sync.Mutex
	cookies map[string]map[string]string // host → name → value
	Header  http.Header                  // sent with every request
}

// Browser returns a new browser with no cookies.
func (h *Harness) Browser() *Browser {
	return &Browser{
		t: h.T, h: h,
		client:  h.client(),
		cookies: map[string]map[string]string{},
		Header:  http.Header{},
	}
}

// Client is the browser's HTTP client (it follows no redirects), for a
// request Do cannot send, such as a target written exactly as given
// (URL.Opaque). It sends no cookies by itself.
func (b *Browser) Client() *http.Client { return b.client }

// Cookie returns the value of a cookie the browser holds for Arbor.
func (b *Browser) Cookie(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cookies[b.h.Addr][name]
}

// SetCookie plants a cookie for Arbor's host.
func (b *Browser) SetCookie(name, value string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cookies[b.h.Addr] == nil {
		b.cookies[b.h.Addr] = map[string]string{}
	}
	b.cookies[b.h.Addr][name] = value
}

// Response is a finished exchange with the body read.
type Response struct {
	*http.Response
	Body string
}

// Location is the redirect target, resolved against the request URL.
func (r *Response) Location() string {
	loc, err := r.Response.Location()
	if err != nil {
		return ""
	}
	return loc.String()
}

// Do sends one request. rawURL may be a path on Arbor.
func (b *Browser) Do(method, rawURL string, form url.Values) *Response {
	b.t.Helper()
	if strings.HasPrefix(rawURL, "/") {
		rawURL = b.h.base() + rawURL
	}
	if b.h.CA == nil {
		// Arbor's public URL may be https; its listener is plain http.
		rawURL = strings.Replace(rawURL, "https://"+b.h.Addr, "http://"+b.h.Addr, 1)
	}
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
	res, err := b.send(req, b.Header, true)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	return res
}

// send sends req with the extra headers hdr and b's cookies for its host,
// and reads the whole response; with keep, it also keeps the cookies the
// response sets or deletes.
func (b *Browser) send(req *http.Request, hdr http.Header, keep bool) (*Response, error) {
	for k, v := range hdr {
		req.Header[k] = v
	}
	host := req.URL.Host
	b.mu.Lock()
	for name, value := range b.cookies[host] {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	b.mu.Unlock()
	res, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if keep {
		b.mu.Lock()
		for _, c := range res.Cookies() {
			if b.cookies[host] == nil {
				b.cookies[host] = map[string]string{}
			}
			if c.MaxAge < 0 || c.Value == "" {
				delete(b.cookies[host], c.Name)
			} else {
				b.cookies[host][c.Name] = c.Value
			}
		}
		b.mu.Unlock()
	}
	return &Response{Response: res, Body: string(raw)}, nil
}

func (b *Browser) Get(rawURL string) *Response {
	b.t.Helper()
	return b.Do(http.MethodGet, rawURL, nil)
}

// Start begins a sign-in and returns the provider's authorization URL.
func (b *Browser) Start(provider, returnTo string) string {
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
func (b *Browser) Approve(authURL, login string) string {
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
func (b *Browser) SignIn(provider, returnTo, login string) *Response {
	b.t.Helper()
	return b.Get(b.Approve(b.Start(provider, returnTo), login))
}

// MustSignIn signs in and fails the test unless it worked.
func (b *Browser) MustSignIn(provider string) {
	b.t.Helper()
	res := b.SignIn(provider, "", "")
	if res.StatusCode != http.StatusFound || b.Cookie(b.h.Cookie) == "" {
		b.t.Fatalf("sign-in with %s: %d, cookie %q\n%s", provider, res.StatusCode, b.Cookie(b.h.Cookie), res.Body)
	}
}

// UserID returns the id of the user b is signed in as, as the upstream
// sees it (the identity.user_id_header Arbor adds to a proxied request).
func (h *Harness) UserID(b *Browser) string {
	h.T.Helper()
	res := b.Get("/")
	if res.StatusCode != http.StatusOK {
		h.T.Fatalf("GET / (proxied) = %d\n%s", res.StatusCode, res.Body)
	}
	hdr, _, _ := h.Upstream.Last()
	id := hdr.Get(h.Config.Identity.UserIDHeader)
	if id == "" {
		h.T.Fatalf("the upstream got no %s", h.Config.Identity.UserIDHeader)
	}
	return id
}

// ErrorCode extracts data-error="…" from an Arbor error page, or the error
// field of a JSON error.
func ErrorCode(body string) string {
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

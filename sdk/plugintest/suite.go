package plugintest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/abi/manifest"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

// Suite is one conformance run: a plugin, the fake it is pointed at and
// what to expect of it.
type Suite struct {
	// Plugin is the plugin under test: a file system whose root holds
	// plugin.json and the module. Build, Dir, os.DirFS or fs.Sub of an
	// embedded tree (builtin.FS) return one. Required.
	Plugin fs.FS
	// Fake configures the fake provider: a preset (fakeprovider.GitHub())
	// or a Config of your own. The kit sets AllowAnyRedirect and starts a
	// fake on 127.0.0.1 for the run.
	Fake fakeprovider.Config
	// FakeSpec, when set, describes the fake as data instead of Fake (a
	// provider that is not built in: its paths, grants, token placement,
	// paging and shapes; LoadFakeSpec reads one from a file). Setting both
	// is an error.
	FakeSpec *fakeprovider.Spec
	// ExpectClientAuth is how the plugin must authenticate the client at
	// the token endpoint: fakeprovider.ClientAuthBody or ClientAuthBasic.
	// Default (ClientAuthEither): either one, but exactly one. A grant the
	// fake's Config.Grants (a description's grants) has a rule for is
	// expected as the rule says instead (none for Gitee's refresh).
	ExpectClientAuth fakeprovider.ClientAuth
	// Endpoints overrides, field by field, where the plugin's endpoints
	// point. A value starting with "/" is a path on the fake; other values
	// are used as they are. Default: each of the manifest's endpoints with
	// its scheme and host replaced by the fake's, which fits every fake
	// that serves a provider's real paths (the presets do). The kit checks
	// the result against the fake's endpoints and says what to set when
	// they differ.
	Endpoints abi.Endpoints
	// Cases limits the run to the named cases (see CaseNames). Default:
	// every case.
	Cases []string
	// CacheDir is wazero's compilation cache, so that repeated runs do not
	// compile the module again (about a second). Default: the directory
	// Arbor's own tests share, <user cache dir>/arbor/plugins-test-wazero;
	// "off" keeps compiled code in memory only.
	CacheDir string
	// Logger also receives the host's and the plugin's log lines. Default:
	// none. Either way the lines of each case are kept in CaseResult.Logs
	// and Run prints them when the case fails.
	Logger *slog.Logger
}

// Outcome is how a case ended.
type Outcome int

const (
	// Passed: every check held.
	Passed Outcome = iota
	// Failed: see CaseResult.Err.
	Failed
	// NotApplicable: the plugin or the fake lacks what the case tests
	// (a plugin without refresh, a fake without refresh tokens); see
	// CaseResult.Reason.
	NotApplicable
)

func (o Outcome) String() string {
	switch o {
	case Passed:
		return "pass"
	case Failed:
		return "FAIL"
	}
	return "n/a"
}

// CaseResult is the result of one case.
type CaseResult struct {
	// Name identifies the case ("refresh_rotation").
	Name string
	// Doc says what the case checks, in one sentence.
	Doc     string
	Outcome Outcome
	// Err says what failed (several problems are joined, one per line).
	Err error
	// Reason says why the case does not apply.
	Reason string
	// Logs are the host's and the plugin's log lines during the case.
	Logs     string
	Duration time.Duration
}

// CaseNames lists the cases in the order they run.
func CaseNames() []string {
	names := make([]string, len(allCases))
	for i, c := range allCases {
		names[i] = c.name
	}
	return names
}

// CaseDoc returns what the named case checks, or "".
func CaseDoc(name string) string {
	for _, c := range allCases {
		if c.name == name {
			return c.doc
		}
	}
	return ""
}

// Run runs the suite as subtests of t, one per case. A case that does not
// apply is logged and left out; setup problems (the plugin does not load,
// its endpoints do not fit the fake) fail t at once.
//
//	func TestConformance(t *testing.T) {
//		plugintest.Run(t, plugintest.Suite{
//			Plugin:           plugintest.Build(t, "."),
//			Fake:             fakeprovider.GitHub(),
//			ExpectClientAuth: fakeprovider.ClientAuthBody,
//		})
//	}
func Run(t *testing.T, s Suite) {
	t.Helper()
	e := StartForTest(t, s)
	for _, c := range e.cases {
		if why := c.applies(e); why != "" {
			t.Logf("%s: not applicable: %s", c.name, why)
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			r := e.run(t.Context(), c)
			if r.Err != nil {
				if r.Logs != "" {
					t.Logf("host and plugin log during the case:\n%s", r.Logs)
				}
				t.Error(r.Err)
			}
		})
	}
}

// RunReport runs the suite without a *testing.T, for tools such as
// `arbor plugin test`, and returns one result per case in CaseNames order.
// The error reports a setup problem, in which case no case ran.
func RunReport(ctx context.Context, s Suite) ([]CaseResult, error) {
	e, err := Start(ctx, s)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	out := make([]CaseResult, 0, len(e.cases))
	for _, c := range e.cases {
		if why := c.applies(e); why != "" {
			out = append(out, CaseResult{Name: c.name, Doc: c.doc, Outcome: NotApplicable, Reason: why})
			continue
		}
		out = append(out, e.run(ctx, c))
	}
	return out, nil
}

// Env is a plugin loaded through the real host (package plugins) and
// pointed at a running fake provider. Plugin authors use it for checks of
// their own beyond the suite. An Env is safe for use by one goroutine at a
// time.
type Env struct {
	// Plugin is the loaded plugin.
	Plugin *plugins.Plugin
	// Fake is the running fake provider.
	Fake *fakeprovider.Provider
	// Manifest is the plugin's manifest.
	Manifest manifest.Manifest
	// Config is the configuration the plugin was loaded with: the fake's
	// client, the endpoints on the fake, the fake's host allowed.
	Config plugins.PluginConfig
	// RedirectURI is the callback Login uses.
	RedirectURI string

	suite Suite
	host  *plugins.Host
	logs  *logBuffer
	cases []testCase
	extra []*plugins.Plugin
}

// redirectURI is where the fake sends the browser back to; nothing listens
// there: Approve reads the redirect without following it.
const redirectURI = "https://arbor.example/auth/callback"

// StartForTest is Start for tests: it fails t on error and closes the Env
// when the test ends.
func StartForTest(t testing.TB, s Suite) *Env {
	t.Helper()
	e, err := Start(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// Start starts a fake for s.Fake, creates a host, loads s.Plugin pointed at
// the fake (its loopback host allowed explicitly, as an operator would
// allow an internal provider) and checks that the plugin's endpoints fit
// the fake.
func Start(ctx context.Context, s Suite) (*Env, error) {
	if s.Plugin == nil {
		return nil, errors.New("plugintest: Suite.Plugin is nil")
	}
	cases, err := selectCases(s.Cases)
	if err != nil {
		return nil, err
	}
	raw, err := fs.ReadFile(s.Plugin, manifest.File)
	if err != nil {
		return nil, fmt.Errorf("plugintest: reading the plugin's manifest: %w", err)
	}
	m, err := manifest.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("plugintest: %w", err)
	}

	fc := s.Fake
	if s.FakeSpec != nil {
		if !reflect.ValueOf(s.Fake).IsZero() {
			return nil, errors.New("plugintest: set Suite.Fake or Suite.FakeSpec, not both")
		}
		if fc, err = s.FakeSpec.Config(); err != nil {
			return nil, fmt.Errorf("plugintest: %w", err)
		}
	}
	fc.AllowAnyRedirect = true
	fake := fakeprovider.New(fc)
	if err := fake.Start(); err != nil {
		return nil, fmt.Errorf("plugintest: %w", err)
	}
	e := &Env{Fake: fake, Manifest: *m, RedirectURI: redirectURI, suite: s, logs: &logBuffer{}, cases: cases}
	ok := false
	defer func() {
		if !ok {
			e.Close()
		}
	}()

	endpoints, err := e.mapEndpoints()
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(fake.URL())
	cfg := fake.Config()
	e.Config = plugins.PluginConfig{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoints: endpoints,
		AllowPrivateHosts: []string{u.Host},
	}

	cacheDir := s.CacheDir
	switch cacheDir {
	case "":
		cacheDir = DefaultCacheDir()
	case "off":
		cacheDir = ""
	}
	var handler slog.Handler = slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	if s.Logger != nil {
		handler = teeHandler{handler, s.Logger.Handler()}
	}
	e.host, err = plugins.NewHost(ctx, plugins.HostOptions{
		CacheDir: cacheDir, Logger: slog.New(handler),
		Policy: plugins.Policy{PoolSize: 2, Prewarm: 1},
	})
	if err != nil {
		return nil, fmt.Errorf("plugintest: %w", err)
	}
	e.Plugin, err = e.host.Load(ctx, s.Plugin, ".", e.Config)
	if err != nil {
		return nil, fmt.Errorf("plugintest: loading the plugin: %w", err)
	}
	ok = true
	return e, nil
}

// DefaultCacheDir is the compilation cache Suite.CacheDir defaults to, ""
// if the user has no cache directory.
func DefaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "arbor", "plugins-test-wazero")
}

// Close closes the plugin, the host and the fake.
func (e *Env) Close() {
	for _, p := range e.extra {
		p.Close()
	}
	if e.Plugin != nil {
		e.Plugin.Close()
	}
	if e.host != nil {
		e.host.Close(context.Background())
	}
	e.Fake.Close()
}

// Load loads the plugin again with another configuration (for example a
// wrong client secret). It is closed with the Env.
func (e *Env) Load(ctx context.Context, cfg plugins.PluginConfig) (*plugins.Plugin, error) {
	p, err := e.host.Load(ctx, e.suite.Plugin, ".", cfg)
	if err != nil {
		return nil, err
	}
	e.extra = append(e.extra, p)
	return p, nil
}

// Login runs the authorization code flow for the fake user with the given
// login ("" for the first user): the plugin's authorization URL (with
// state and, if the manifest says pkce, a S256 challenge), the fake's
// consent approved without a browser, and the plugin's code exchange.
func (e *Env) Login(ctx context.Context, login string, purpose abi.Purpose) (*abi.Token, error) {
	return e.LoginWith(ctx, e.Plugin, login, purpose)
}

// LoginWith is Login through another loaded instance of the plugin (Load).
func (e *Env) LoginWith(ctx context.Context, p *plugins.Plugin, login string, purpose abi.Purpose) (*abi.Token, error) {
	code, verifier, err := e.authorize(ctx, p, login, purpose)
	if err != nil {
		return nil, err
	}
	return p.Exchange(ctx, plugins.ExchangeInput{Code: code, RedirectURI: e.RedirectURI, CodeVerifier: verifier})
}

// authorize gets an authorization code; verifier is "" unless the
// manifest says pkce.
func (e *Env) authorize(ctx context.Context, p *plugins.Plugin, login string, purpose abi.Purpose) (code, verifier string, err error) {
	return e.authorizeWith(ctx, p, login, purpose, false)
}

// authorizeWith is authorize, asking for the groups scopes too when
// withGroups is set.
func (e *Env) authorizeWith(ctx context.Context, p *plugins.Plugin, login string, purpose abi.Purpose, withGroups bool) (code, verifier string, err error) {
	verifier, challenge := newPKCE()
	state := randomString(16)
	authURL, err := p.AuthorizeURL(ctx, plugins.AuthorizeInput{
		Purpose: purpose, RedirectURI: e.RedirectURI, State: state, CodeChallenge: challenge, WithGroups: withGroups,
	})
	if err != nil {
		return "", "", fmt.Errorf("authorization URL: %w", err)
	}
	code, gotState, err := e.Fake.Approve(ctx, authURL, login)
	if err != nil {
		return "", "", fmt.Errorf("approving %s: %w", authURL, err)
	}
	if gotState != state {
		return "", "", fmt.Errorf("the provider returned state %q, but the authorization URL sent %q (%s)", gotState, state, authURL)
	}
	if !e.Manifest.PKCE {
		verifier = ""
	}
	return code, verifier, nil
}

// loginPurpose is the purpose a sign-in uses; gitPurpose the one a Git
// connection uses (falling back to the other for single-kind plugins).
func (e *Env) loginPurpose() abi.Purpose {
	if e.Manifest.Kind.Login() {
		return abi.PurposeLogin
	}
	return abi.PurposeGit
}

func (e *Env) gitPurpose() abi.Purpose {
	if e.Manifest.Kind.Git() {
		return abi.PurposeGit
	}
	return abi.PurposeLogin
}

func (e *Env) has(op abi.Op) bool {
	ops, _ := e.Manifest.OpSet()
	return ops.Has(op)
}

// mapEndpoints points the manifest's endpoints at the fake and checks them
// against the endpoints the fake serves.
func (e *Env) mapEndpoints() (abi.Endpoints, error) {
	base := e.Fake.URL()
	def, over := e.Manifest.Endpoints, e.suite.Endpoints
	rehost := func(d, o string) (string, error) {
		switch {
		case strings.HasPrefix(o, "/"):
			return base + o, nil
		case o != "":
			return o, nil
		case d == "":
			return "", nil
		}
		u, err := url.Parse(d)
		if err != nil {
			return "", err
		}
		return base + u.EscapedPath(), nil
	}
	var out abi.Endpoints
	var err error
	for _, f := range []struct {
		dst  *string
		d, o string
	}{
		{&out.AuthorizeURL, def.AuthorizeURL, over.AuthorizeURL}, {&out.TokenURL, def.TokenURL, over.TokenURL},
		{&out.APIBase, def.APIBase, over.APIBase}, {&out.RevokeURL, def.RevokeURL, over.RevokeURL},
	} {
		if *f.dst, err = rehost(f.d, f.o); err != nil {
			return out, fmt.Errorf("plugintest: the manifest's endpoints: %w", err)
		}
	}
	out.APIBase = strings.TrimSuffix(out.APIBase, "/")

	fe := e.Fake.Endpoints()
	var problems []string
	// mismatch names the field of the fake's description (paths.token in
	// a --fake-config file or Spec.Paths; Config.Paths.Token in Go) that
	// would make them agree.
	mismatch := func(field, got, want, specField string) {
		problems = append(problems, fmt.Sprintf("the manifest's %s is %s on the fake, but the fake serves it at %s (the fake's paths.%s)",
			field, got, want, specField))
	}
	if out.AuthorizeURL != fe.AuthURL {
		mismatch("authorize_url", out.AuthorizeURL, fe.AuthURL, "authorize")
	}
	if out.TokenURL != fe.TokenURL {
		mismatch("token_url", out.TokenURL, fe.TokenURL, "token")
	}
	if out.RevokeURL != "" && fe.RevokeURL != "" && out.RevokeURL != fe.RevokeURL {
		mismatch("revoke_url", out.RevokeURL, fe.RevokeURL, "revoke")
	}
	if e.has(abi.OpUser) && fe.UserURL != "" && !strings.HasPrefix(fe.UserURL, out.APIBase+"/") {
		problems = append(problems, fmt.Sprintf("the manifest's api_base is %s on the fake, but the fake's user endpoint %s is not under it (the fake's paths.user)",
			out.APIBase, fe.UserURL))
	}
	if len(problems) > 0 {
		return out, fmt.Errorf("plugintest: the plugin's endpoints do not fit the fake: %s; "+
			"describe the fake with the provider's paths (paths.authorize, paths.token, paths.user, … in the file of "+
			"`arbor plugin test --fake-config FILE`, Suite.FakeSpec or Config.Paths in Go; docs/fake-providers.md), "+
			"or in Go point the plugin elsewhere with Suite.Endpoints",
			strings.Join(problems, "; "))
	}
	return out, nil
}

// run runs one case on a fresh fake state.
func (e *Env) run(ctx context.Context, c testCase) CaseResult {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	e.Fake.Reset()
	mark := e.logs.mark()
	start := time.Now()
	ch := &checks{}
	fatal := c.run(ctx, e, ch)
	r := CaseResult{Name: c.name, Doc: c.doc, Duration: time.Since(start), Logs: e.logs.since(mark)}
	if err := errors.Join(append(ch.errs, fatal)...); err != nil {
		r.Outcome, r.Err = Failed, err
	}
	return r
}

// checks collects the failures of one case.
type checks struct{ errs []error }

func (c *checks) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// newPKCE returns an RFC 7636 verifier and its S256 challenge.
func newPKCE() (verifier, challenge string) {
	verifier = randomString(32)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// logBuffer keeps log output and hands out what was written since a mark.
type logBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *logBuffer) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.b)
}

func (l *logBuffer) since(mark int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b[mark:])
}

// teeHandler sends records to two handlers.
type teeHandler struct{ a, b slog.Handler }

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.a.Enabled(ctx, l) || h.b.Enabled(ctx, l)
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	if h.a.Enabled(ctx, r.Level) {
		errs = append(errs, h.a.Handle(ctx, r.Clone()))
	}
	if h.b.Enabled(ctx, r.Level) {
		errs = append(errs, h.b.Handle(ctx, r.Clone()))
	}
	return errors.Join(errs...)
}

func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{h.a.WithAttrs(as), h.b.WithAttrs(as)}
}

func (h teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{h.a.WithGroup(name), h.b.WithGroup(name)}
}

func selectCases(names []string) ([]testCase, error) {
	if len(names) == 0 {
		return allCases, nil
	}
	var out []testCase
	for _, n := range names {
		i := slices.IndexFunc(allCases, func(c testCase) bool { return c.name == n })
		if i < 0 {
			return nil, fmt.Errorf("plugintest: unknown case %q (cases: %s)", n, strings.Join(CaseNames(), ", "))
		}
		out = append(out, allCases[i])
	}
	return out, nil
}

// presets are the fakes a tool can pick by name.
var presets = map[string]func() fakeprovider.Config{
	"github":           fakeprovider.GitHub,
	"github-app":       fakeprovider.GitHubApp,
	"github-oauth-app": fakeprovider.GitHubOAuthApp,
	"gitlab":           fakeprovider.GitLab,
	"bitbucket":        fakeprovider.Bitbucket,
	"google":           fakeprovider.Google,
	"generic":          genericConfig,
}

// genericConfig is the generic fake, from its description
// (fakeprovider.GenericSpec, which behaves as the zero Config).
func genericConfig() fakeprovider.Config {
	c, err := fakeprovider.GenericSpec().Config()
	if err != nil {
		panic(err) // GenericSpec is valid; TestGenericSpec checks it
	}
	return c
}

// Preset returns the fake provider configuration of that name for
// Suite.Fake: "github" (fakeprovider.GitHub, the GitHub App),
// "github-app", "github-oauth-app", "gitlab", "bitbucket", "google" (the
// presets of package fakeprovider) or "generic" (fakeprovider.GenericSpec, which
// behaves as the zero Config: a plain RFC 6749 provider with the
// Gitea/Forgejo API layout). A provider that fits none is described in a
// file instead: LoadFakeSpec and Suite.FakeSpec. For tools such as
// `arbor plugin test --fake github`.
func Preset(name string) (fakeprovider.Config, bool) {
	f, ok := presets[name]
	if !ok {
		return fakeprovider.Config{}, false
	}
	return f(), true
}

// PresetNames lists the names Preset knows, sorted.
func PresetNames() []string {
	return slices.Sorted(maps.Keys(presets))
}

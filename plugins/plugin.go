package plugins

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/vintner/arbor/plugins/internal/netguard"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/abi/manifest"
)

// PluginConfig is the operator's configuration of one plugin. The host
// passes the client id and secret into the calls that need them; the plugin
// never stores them.
type PluginConfig struct {
	// ClientID and ClientSecret are the OAuth client registered with the
	// provider. The secret is sent only with exchange, refresh and revoke.
	ClientID     string
	ClientSecret string
	// Endpoints override the manifest's defaults field by field (GitHub
	// Enterprise, self-managed GitLab, a test fake). The hosts of the
	// effective endpoints are allowed outbound hosts.
	Endpoints abi.Endpoints
	// LoginScopes and GitScopes replace the manifest's default scopes.
	LoginScopes []string
	GitScopes   []string
	// GroupsScopes replace the manifest's scopes.groups: what the groups
	// operation needs on top of the login scopes, asked for when
	// AuthorizeInput.WithGroups is set.
	GroupsScopes []string
	// AllowedHosts adds outbound hosts to the manifest's allow-list
	// (same patterns: host, host:port, *.domain).
	AllowedHosts []string
	// AllowPrivateHosts lists hosts (host or host:port) that may resolve to
	// loopback, link-local, private or other special addresses, and that
	// may be reached over plain http: an internal GitLab, the fakes of
	// `arbor dev` and of tests. They must also be allowed outbound hosts.
	// Default: none.
	AllowPrivateHosts []string
}

func (c PluginConfig) validate() error {
	e := c.Endpoints
	for key, u := range map[string]string{
		"authorize_url": e.AuthorizeURL, "token_url": e.TokenURL, "api_base": e.APIBase, "revoke_url": e.RevokeURL,
	} {
		if err := manifest.CheckEndpoint(u); err != nil {
			return fmt.Errorf("endpoints.%s: %v", key, err)
		}
	}
	for _, h := range append(append([]string(nil), c.AllowedHosts...), c.AllowPrivateHosts...) {
		if err := manifest.CheckHostPattern(h); err != nil {
			return fmt.Errorf("allowed hosts: %v", err)
		}
	}
	return nil
}

// limits are the manifest's requests clamped by the policy.
type limits struct {
	memPages  uint32
	memBytes  uint64
	highWater uint64
	timeout   time.Duration
	respBytes int64
	maxCalls  int
}

func clampLimits(p Policy, m manifest.Limits) limits {
	l := limits{memPages: p.MaxMemoryPages, timeout: p.DefaultTimeout, respBytes: p.DefaultResponseBytes, maxCalls: p.MaxCallsPerInstance}
	if m.MemoryPages > 0 && m.MemoryPages < l.memPages {
		l.memPages = m.MemoryPages
	}
	if m.TimeoutMS > 0 {
		l.timeout = time.Duration(m.TimeoutMS) * time.Millisecond
	}
	l.timeout = min(l.timeout, p.MaxTimeout)
	if m.ResponseBytes > 0 {
		l.respBytes = m.ResponseBytes
	}
	l.respBytes = min(l.respBytes, p.MaxResponseBytes)
	l.memBytes = uint64(l.memPages) << 16
	l.highWater = l.memBytes * uint64(p.HighWaterPercent) / 100
	return l
}

// version is one loaded build of a plugin: its compiled module, effective
// configuration and instance pool. A reload replaces a Plugin's version;
// calls in flight keep a reference to the old one, which closes when the
// last of them returns.
type version struct {
	host      *Host
	man       *manifest.Manifest
	cfg       PluginConfig
	ops       abi.OpSet
	endpoints abi.Endpoints
	limits    limits
	allow     netguard.HostList
	private   netguard.HostList
	client    *http.Client
	transport *http.Transport
	pool      *pool
	log       *slog.Logger
	loadedAt  time.Time

	// module returns the module's bytes to compile it again after its
	// code was released (nil when the policy never releases code).
	module func() ([]byte, error)

	// codeMu guards compiled: instantiating holds it shared, compiling
	// and releasing hold it exclusively. compiled is nil while the code is
	// released (the pool had no instance for Policy.CodeIdleTimeout) and
	// after close; codeLoaded mirrors compiled != nil for the pool's
	// reaper, which must not wait for a compile.
	codeMu     sync.RWMutex
	compiled   wazero.CompiledModule
	codeKey    [sha256.Size]byte // compiled's, for Host.releaseCompiled
	codeClosed bool
	codeLoaded atomic.Bool

	// modCfg is the host's module configuration with abi.EnvPlugin set to
	// the plugin's name (a module carrying several providers acts as it).
	modCfg wazero.ModuleConfig

	// gitMu guards gitHost, the git_host answer kept for this version
	// (it depends on the configuration only): GitHost asks once.
	gitMu   sync.Mutex
	gitHost *abi.GitHost

	mu      sync.Mutex
	refs    int
	retired bool
	done    chan struct{} // closed when the version is closed

	calls, created, discarded, recycledCalls, recycledMemory, reaped atomic.Uint64
	codeReleases, codeLoads                                          atomic.Uint64
}

func newVersion(h *Host, m *manifest.Manifest, cfg PluginConfig, compiled wazero.CompiledModule, key [sha256.Size]byte, src source) (*version, error) {
	v := &version{
		host: h, man: m, cfg: cfg, compiled: compiled, codeKey: key,
		modCfg:   h.modCfg.WithEnv(abi.EnvPlugin, m.Name),
		limits:   clampLimits(h.policy, m.Limits),
		log:      h.log.With("plugin", m.Name),
		done:     make(chan struct{}),
		loadedAt: time.Now(),
	}
	v.ops, _ = m.OpSet()
	v.endpoints = m.Endpoints
	o := cfg.Endpoints
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&v.endpoints.AuthorizeURL, o.AuthorizeURL}, {&v.endpoints.TokenURL, o.TokenURL},
		{&v.endpoints.APIBase, o.APIBase}, {&v.endpoints.RevokeURL, o.RevokeURL},
	} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	v.endpoints.APIBase = strings.TrimSuffix(v.endpoints.APIBase, "/")
	if v.endpoints.AuthorizeURL == "" || v.endpoints.TokenURL == "" {
		return nil, errors.New("the authorize and token URLs have no default in the manifest: set endpoints.authorize_url and endpoints.token_url in the plugin's configuration")
	}

	v.allow = netguard.NewHostList(m.AllowedHosts, cfg.AllowedHosts)
	for _, e := range []string{v.endpoints.AuthorizeURL, v.endpoints.TokenURL, v.endpoints.APIBase, v.endpoints.RevokeURL} {
		if u, err := url.Parse(e); err == nil && u.Host != "" {
			if u.Port() != "" {
				v.allow.Add(u.Host)
			} else {
				v.allow.Add(u.Hostname())
			}
		}
	}
	v.private = netguard.NewHostList(cfg.AllowPrivateHosts)
	dialer := &netguard.Dialer{Private: v.private, Dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	v.transport = &http.Transport{
		Proxy:                  nil, // a proxy would dial on our behalf and defeat the address check
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           32,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	v.client = &http.Client{Transport: v.transport, CheckRedirect: v.checkRedirect}
	v.pool = newPool(v)
	v.codeLoaded.Store(true)
	if h.policy.CodeIdleTimeout > 0 {
		if src.reread != nil {
			v.module = src.reread
		} else {
			mod := src.module
			v.module = func() ([]byte, error) { return mod, nil }
		}
	}
	return v, nil
}

// start creates the pre-warmed instances and checks the operations the
// module reports against the manifest.
func (v *version) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, v.limits.timeout)
	defer cancel()
	first, err := v.pool.fill(ctx, v.host.policy.Prewarm)
	if err != nil {
		return err
	}
	// The reaper takes the pool down to KeepWarm once the load's instances
	// have gone unused for IdleTimeout.
	defer v.pool.settle()
	if first == nil {
		return nil
	}
	impl, err := first.marker(ctx)
	if err != nil {
		return fmt.Errorf("calling %s: %v", abi.ExportMarker, err)
	}
	if impl != v.ops {
		return fmt.Errorf("the manifest lists operations [%s] but the module implements [%s]: "+
			"make the manifest's operations match the provider type's methods", v.ops, impl)
	}
	return nil
}

// ref takes a reference for one call; it fails once the version is retired.
func (v *version) ref() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.retired {
		return false
	}
	v.refs++
	return true
}

func (v *version) unref() {
	v.mu.Lock()
	v.refs--
	last := v.retired && v.refs == 0
	v.mu.Unlock()
	if last {
		v.close()
	}
}

// retire stops new calls; the version closes once the calls in flight have
// returned.
func (v *version) retire() {
	v.mu.Lock()
	if v.retired {
		v.mu.Unlock()
		return
	}
	v.retired = true
	idle := v.refs == 0
	v.mu.Unlock()
	if idle {
		v.close()
	}
}

func (v *version) close() {
	select {
	case <-v.done:
		return
	default:
	}
	v.pool.close()
	v.transport.CloseIdleConnections()
	v.codeMu.Lock()
	if v.compiled != nil {
		v.host.releaseCompiled(v.codeKey)
		v.compiled = nil
	}
	v.codeClosed = true
	v.codeLoaded.Store(false)
	v.codeMu.Unlock()
	close(v.done)
}

// Plugin is a loaded plugin. It is a stable handle: a reload swaps the
// implementation behind it atomically, calls already running finish on the
// old one, and later calls use the new one. A Plugin is safe for concurrent
// use; each call runs on its own instance from the pool.
type Plugin struct {
	name string
	cur  atomic.Pointer[version]
	// fingerprint identifies what the current version was built from
	// (manifest, module and configuration), for Registry.Reload.
	fingerprint atomic.Pointer[string]
}

func newPlugin(v *version) *Plugin {
	p := &Plugin{name: v.man.Name}
	p.cur.Store(v)
	return p
}

// swap installs v and retires the previous version.
func (p *Plugin) swap(v *version) {
	if old := p.cur.Swap(v); old != nil {
		old.retire()
	}
}

// Name returns the plugin's name from its manifest.
func (p *Plugin) Name() string { return p.name }

// Manifest returns a copy of the current version's manifest.
func (p *Plugin) Manifest() manifest.Manifest {
	if v := p.cur.Load(); v != nil {
		return *v.man
	}
	return manifest.Manifest{Name: p.name}
}

// Endpoints returns the effective endpoints: the manifest's defaults with
// the operator's overrides.
func (p *Plugin) Endpoints() abi.Endpoints {
	if v := p.cur.Load(); v != nil {
		return v.endpoints
	}
	return abi.Endpoints{}
}

// Configured reports whether the operator gave the plugin an OAuth client
// (a client id): without one no user can sign in or connect through it.
func (p *Plugin) Configured() bool {
	v := p.cur.Load()
	return v != nil && v.cfg.ClientID != ""
}

// Close retires the plugin: later calls fail with ErrClosed, calls in
// flight finish, then the instances are closed.
func (p *Plugin) Close() error {
	if old := p.cur.Swap(nil); old != nil {
		old.retire()
	}
	return nil
}

// Stats describes the current version's instance pool.
type Stats struct {
	// Version is the manifest's version.
	Version string
	// Instances is how many instances exist (idle or busy); Idle how many
	// wait for a call.
	Instances, Idle int
	// Calls counts calls that reached an instance.
	Calls uint64
	// Created counts instances created, Discarded those closed after an
	// error, trap, timeout or sandbox violation, RecycledCalls those
	// replaced after MaxCallsPerInstance calls and RecycledMemory those
	// replaced past the memory high-water mark.
	Created, Discarded, RecycledCalls, RecycledMemory uint64
	// Reaped counts instances beyond the warm count (Policy.KeepWarm)
	// closed after Policy.IdleTimeout without a call needing them.
	Reaped uint64
	// CodeLoaded reports whether the compiled code is in memory.
	// CodeReleases counts its releases after Policy.CodeIdleTimeout
	// without an instance, CodeLoads the compilations that brought it
	// back for a call (the load's own compilation not counted).
	CodeLoaded              bool
	CodeReleases, CodeLoads uint64
}

// Stats returns counters of the current version.
func (p *Plugin) Stats() Stats {
	v := p.cur.Load()
	if v == nil {
		return Stats{}
	}
	live, idle := v.pool.size()
	return Stats{
		Version: v.man.Version, Instances: live, Idle: idle, Calls: v.calls.Load(),
		Created: v.created.Load(), Discarded: v.discarded.Load(),
		RecycledCalls: v.recycledCalls.Load(), RecycledMemory: v.recycledMemory.Load(),
		Reaped:     v.reaped.Load(),
		CodeLoaded: v.codeLoaded.Load(), CodeReleases: v.codeReleases.Load(), CodeLoads: v.codeLoads.Load(),
	}
}

// acquire returns the current version with a reference held.
func (p *Plugin) acquire(op abi.Op) (*version, error) {
	for {
		v := p.cur.Load()
		if v == nil {
			return nil, &Error{Plugin: p.name, Op: op, Code: abi.CodeUnavailable, Err: ErrClosed,
				Message: "the plugin is closed (removed from the plugins directory or shut down)", Retryable: false}
		}
		if v.ref() {
			return v, nil
		}
		// v was retired between Load and ref: the replacement is already
		// installed, so the next Load sees it.
	}
}

// AuthorizeInput is what the gateway knows when it sends a user to the
// provider.
type AuthorizeInput struct {
	Purpose     abi.Purpose
	RedirectURI string
	State       string
	// CodeChallenge is the PKCE S256 challenge; it is dropped for a
	// provider whose manifest says pkce: false.
	CodeChallenge string
	// Scopes overrides the configured scopes for Purpose.
	Scopes []string
	// WithGroups adds the scopes the groups operation needs (the
	// configured groups_scopes, else the manifest's scopes.groups) to the
	// scopes requested, for a sign-in whose policy uses this provider's
	// groups. It adds nothing for a plugin without the groups operation.
	// With it the plugin is also told that the sign-in's grant is kept to
	// read the groups again later (abi.AuthorizeRequest.KeepGrant), so
	// that one whose provider issues a refresh token only when asked
	// (Google) asks for one.
	WithGroups bool
}

// AuthorizeParams returns the query parameters of the authorization URL.
func (p *Plugin) AuthorizeParams(ctx context.Context, in AuthorizeInput) (url.Values, error) {
	var res abi.AuthorizeResult
	err := p.invoke(ctx, abi.OpAuthorize, func(v *version) abi.Message {
		r := &abi.AuthorizeRequest{
			ClientID: v.cfg.ClientID, Endpoints: v.endpoints, Purpose: in.Purpose,
			RedirectURI: in.RedirectURI, Scopes: in.Scopes, State: in.State,
		}
		if r.Purpose == "" {
			r.Purpose = abi.PurposeLogin
		}
		if len(r.Scopes) == 0 {
			r.Scopes = v.scopes(r.Purpose)
		}
		if in.WithGroups {
			r.Scopes = v.withGroupsScopes(r.Scopes)
			r.KeepGrant = v.ops.Has(abi.OpGroups)
		}
		if v.man.PKCE && in.CodeChallenge != "" {
			r.CodeChallenge, r.CodeChallengeMethod = in.CodeChallenge, "S256"
		}
		return r
	}, nil, &res)
	if err != nil {
		return nil, err
	}
	vals := url.Values{}
	for _, prm := range res.Params {
		vals.Add(prm.Name, prm.Value)
	}
	return vals, nil
}

// AuthorizeURL returns the full authorization URL: the effective authorize
// endpoint with AuthorizeParams appended.
func (p *Plugin) AuthorizeURL(ctx context.Context, in AuthorizeInput) (string, error) {
	vals, err := p.AuthorizeParams(ctx, in)
	if err != nil {
		return "", err
	}
	base := p.Endpoints().AuthorizeURL
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + vals.Encode(), nil
}

func (v *version) scopes(p abi.Purpose) []string {
	if p == abi.PurposeGit {
		if len(v.cfg.GitScopes) > 0 {
			return v.cfg.GitScopes
		}
		return v.man.Scopes.Git
	}
	if len(v.cfg.LoginScopes) > 0 {
		return v.cfg.LoginScopes
	}
	return v.man.Scopes.Login
}

// ExchangeInput is an authorization code returned to the callback.
type ExchangeInput struct {
	Code        string
	RedirectURI string
	// CodeVerifier is the PKCE verifier; it is dropped for a provider
	// whose manifest says pkce: false, as the challenge was.
	CodeVerifier string
}

// Exchange exchanges an authorization code for tokens.
func (p *Plugin) Exchange(ctx context.Context, in ExchangeInput) (*abi.Token, error) {
	return call[abi.Token](ctx, p, abi.OpExchange, func(v *version) abi.Message {
		r := &abi.ExchangeRequest{
			Client: abi.Client{ID: v.cfg.ClientID, Secret: v.cfg.ClientSecret}, Endpoints: v.endpoints,
			Code: in.Code, RedirectURI: in.RedirectURI, CodeVerifier: in.CodeVerifier,
		}
		if !v.man.PKCE {
			// AuthorizeParams sent no challenge, and a provider that
			// does not do PKCE may refuse a verifier it did not expect.
			r.CodeVerifier = ""
		}
		return r
	}, in.Code, in.CodeVerifier)
}

// RefreshInput is a stored refresh token.
type RefreshInput struct {
	RefreshToken string
	// Scopes, when set, asks for a narrower grant.
	Scopes []string
}

// Refresh uses a refresh token. An *Error with code invalid_grant means the
// user must reconnect. Providers that rotate refresh tokens return a new
// one: store it before using the access token.
func (p *Plugin) Refresh(ctx context.Context, in RefreshInput) (*abi.Token, error) {
	return call[abi.Token](ctx, p, abi.OpRefresh, func(v *version) abi.Message {
		return &abi.RefreshRequest{
			Client: abi.Client{ID: v.cfg.ClientID, Secret: v.cfg.ClientSecret}, Endpoints: v.endpoints,
			RefreshToken: in.RefreshToken, Scopes: in.Scopes,
		}
	}, in.RefreshToken)
}

// RevokeInput holds the tokens of the grant to revoke; either may be empty.
type RevokeInput struct {
	AccessToken  string
	RefreshToken string
}

// Revoke revokes a user's grant at the provider.
func (p *Plugin) Revoke(ctx context.Context, in RevokeInput) error {
	return p.invoke(ctx, abi.OpRevoke, func(v *version) abi.Message {
		return &abi.RevokeRequest{
			Client: abi.Client{ID: v.cfg.ClientID, Secret: v.cfg.ClientSecret}, Endpoints: v.endpoints,
			AccessToken: in.AccessToken, RefreshToken: in.RefreshToken,
		}
	}, []string{in.AccessToken, in.RefreshToken}, &abi.Empty{})
}

// User returns the account an access token belongs to.
func (p *Plugin) User(ctx context.Context, accessToken string) (*abi.User, error) {
	return call[abi.User](ctx, p, abi.OpUser, func(v *version) abi.Message {
		return &abi.UserRequest{Endpoints: v.endpoints, AccessToken: accessToken}
	}, accessToken)
}

// ReposInput asks for one page of repositories.
type ReposInput struct {
	AccessToken string
	// Cursor is "" for the first page, else the previous page's
	// NextCursor.
	Cursor  string
	PerPage int
}

// Repos lists one page of the user's repositories.
func (p *Plugin) Repos(ctx context.Context, in ReposInput) (*abi.RepoPage, error) {
	return call[abi.RepoPage](ctx, p, abi.OpRepos, func(v *version) abi.Message {
		return &abi.ReposRequest{Endpoints: v.endpoints, AccessToken: in.AccessToken, Cursor: in.Cursor, PerPage: in.PerPage}
	}, in.AccessToken)
}

// call runs op through invoke and returns its decoded result; secrets are
// the request's sensitive values.
func call[T any, P interface {
	*T
	abi.Message
}](ctx context.Context, p *Plugin, op abi.Op, build func(*version) abi.Message, secrets ...string) (*T, error) {
	out := P(new(T))
	if err := p.invoke(ctx, op, build, secrets, out); err != nil {
		return nil, err
	}
	return out, nil
}

// invoke runs one operation on the current version and decodes its payload
// into out. secrets are the request's sensitive values, removed from
// anything the plugin logs or returns as an error message.
func (p *Plugin) invoke(ctx context.Context, op abi.Op, build func(*version) abi.Message, secrets []string, out abi.Message) error {
	v, err := p.acquire(op)
	if err != nil {
		return err
	}
	defer v.unref()
	if !v.ops.Has(op) {
		return &Error{Plugin: p.name, Op: op, Code: abi.CodeUnsupported,
			Message: fmt.Sprintf("the plugin does not implement %s (it implements %s)", op, v.ops)}
	}
	if v.cfg.ClientSecret != "" {
		secrets = append(secrets, v.cfg.ClientSecret)
	}
	res, err := v.call(ctx, op, build(v), secrets)
	if err != nil {
		return err
	}
	if err := out.UnmarshalABI(res.Payload); err != nil {
		return &Error{Plugin: p.name, Op: op, Code: abi.CodeInternal, Err: err,
			Message: fmt.Sprintf("the plugin returned a malformed %s result: %v", op, err)}
	}
	return nil
}

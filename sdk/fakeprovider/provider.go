package fakeprovider

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Provider is a running (or mountable) fake provider. Create it with New.
// All methods are safe for concurrent use.
type Provider struct {
	cfg    Config // defaults applied; read-only after New
	routes []route

	// busy is the total time spent in ServeHTTP, so that a benchmark can
	// subtract the fake's own time from a client's.
	busy atomic.Int64

	mu             sync.Mutex
	accessLifetime time.Duration
	redirects      []string
	codes          map[string]*authCode
	access         map[string]*accessToken
	refresh        map[string]*refreshToken
	issues         []*issue
	nextGrant      int
	calls          []Call
	gen            int // bumped by Reset, so calls in flight do not update a forgotten record
	faults         map[Endpoint]*fault
	delays         map[Endpoint]time.Duration
	rateUsed       int       // GitHub's x-ratelimit-used: API answers so far
	rateReset      time.Time // x-ratelimit-reset: an hour after New or Reset

	// memberships are the groups by login: Config.Memberships, then
	// SetMemberships.
	memberships map[string][]string

	srv    *http.Server
	ln     net.Listener
	url    string
	closed chan struct{}
	once   sync.Once
}

var _ http.Handler = (*Provider)(nil)

// Call is one request the fake answered (or is still answering: Status 0).
// It never holds a secret: credentials, codes and tokens appear as flags or
// as Fingerprint values.
type Call struct {
	Time     time.Time
	Method   string
	Path     string
	Endpoint Endpoint
	// Query is the request's query (and, for form POSTs, body) parameters
	// with secret values replaced by "REDACTED".
	Query string
	// ClientAuth is how the client authenticated: "basic", "body", "both"
	// or "none" (empty for endpoints that take no client credentials).
	ClientAuth string
	ClientID   string
	GrantType  string
	// Accept is the request's Accept header.
	Accept string
	// CodeChallenge: the authorization request carried a code_challenge.
	CodeChallenge bool
	// PKCEVerifier: the token request carried a code_verifier.
	PKCEVerifier bool
	// Token is the Fingerprint of the token the request presented (API
	// bearer token, refresh token, or token to revoke), or "".
	Token string
	// User is the login of the user the request acted for, when known.
	User string
	// Status is the HTTP status answered; 0 while a hung call is pending.
	Status int
	// Error is the OAuth or API error code answered, if any.
	Error string
	// Injected: answered by FailNext, HangNext or RateLimitNext, not by
	// the fake's logic.
	Injected bool
	// DeadToken says why the token the request presented was dead at that
	// moment: "expired", "revoked" or "replaced" (killed by a refresh:
	// a rotated refresh token, or an access token under
	// Config.InvalidateAccessOnRefresh). "" when the request presented no
	// token, a live one, or one the fake never issued. It is set for API
	// calls (the access token), refresh grants (the refresh token) and
	// revocations. DeadTokenCalls lists these calls.
	DeadToken string
}

// IssuedToken is one token response the fake gave out, for tests. Unlike
// Call it holds the secret values.
type IssuedToken struct {
	AccessToken      string
	RefreshToken     string // "" when none was issued with this response
	User             string // login
	Scopes           []string
	GrantType        string // "authorization_code" or "refresh_token"
	IssuedAt         time.Time
	ExpiresAt        time.Time // zero: never
	RefreshExpiresAt time.Time // zero: never (or no refresh token)
	AccessValid      bool      // neither expired, revoked nor replaced by a refresh now
	RefreshValid     bool      // RefreshToken is set and neither expired, rotated nor revoked
}

// Endpoints are the absolute URLs of a started fake's endpoints ("" for
// endpoints the configuration has none of).
type Endpoints struct {
	AuthURL   string
	TokenURL  string
	RevokeURL string // GitHub: with the client id filled in
	UserURL   string
	EmailsURL string
	ReposURL  string // may contain "{workspace}" (Bitbucket)
	// WorkspacesURL lists the user's workspaces (Bitbucket), or "".
	WorkspacesURL string
	// InstallationsURL is GitHub's /user/installations (AppInstallations).
	InstallationsURL string
}

type route struct {
	pattern []string // path segments; "{…}" matches any one segment
	ep      Endpoint
}

type authCode struct {
	user         *User
	redirectURI  string
	redirectSent bool
	challenge    string
	scopes       []string
	nonce        string
	offline      bool
	expires      time.Time
	used         bool
	grant        int // grant created when the code was redeemed
}

type accessToken struct {
	grant    int
	user     *User
	scopes   []string
	expires  time.Time
	revoked  bool // revoked: RevokeAll, a revocation, a reused code
	replaced bool // killed by a refresh of its grant (InvalidateAccessOnRefresh)
}

// dead returns why the token cannot be used at now, or "".
func (t *accessToken) dead(now time.Time) string {
	return deadReason(t.revoked, t.replaced, t.expires, now)
}

type refreshToken struct {
	grant    int
	user     *User
	scopes   []string
	expires  time.Time
	revoked  bool
	replaced bool // rotated away by a refresh (RotateRefreshTokens)
}

func (t *refreshToken) dead(now time.Time) string {
	return deadReason(t.revoked, t.replaced, t.expires, now)
}

// deadReason is Call.DeadToken's value for a token in that state: a
// revocation wins over a replacement, which wins over expiry.
func deadReason(revoked, replaced bool, expires, now time.Time) string {
	switch {
	case revoked:
		return "revoked"
	case replaced:
		return "replaced"
	case !live(expires, now):
		return "expired"
	}
	return ""
}

type issue struct {
	access, refresh string
	user            *User
	scopes          []string
	grantType       string
	at, exp, rexp   time.Time
}

type fault struct {
	n         int
	status    int
	hang      bool
	rateLimit bool // RateLimitNext: answer as the provider's rate limit
	kind      RateLimitKind
}

// New returns a fake configured by cfg, with defaults applied. It does not
// listen until Start; Handler serves it without listening.
func New(cfg Config) *Provider {
	cfg = withDefaults(cfg)
	p := &Provider{cfg: cfg, closed: make(chan struct{})}
	add := func(path string, ep Endpoint) {
		if path == "" {
			return
		}
		p.routes = append(p.routes, route{pattern: strings.Split(strings.Trim(path, "/"), "/"), ep: ep})
	}
	add(cfg.Paths.Authorize, EndpointAuthorize)
	add(cfg.Paths.Token, EndpointToken)
	if cfg.Revoke != RevokeNone {
		add(cfg.Paths.Revoke, EndpointRevoke)
	}
	add(cfg.Paths.User, EndpointUser)
	if cfg.Flavor != FlavorGoogle {
		add(cfg.Paths.Emails, EndpointEmails)
		add(cfg.Paths.Repos, EndpointRepos)
	}
	if cfg.Flavor == FlavorBitbucket {
		add(cfg.Paths.Workspaces, EndpointWorkspaces)
	}
	for _, g := range cfg.GonePaths {
		add(g, EndpointGone)
	}
	if cfg.AppInstallations {
		add(cfg.Paths.Installations, EndpointInstallations)
		add(cfg.Paths.InstallationRepos, EndpointRepos)
	}
	switch cfg.Flavor {
	case FlavorGitHub:
		add(cfg.Paths.Orgs, EndpointOrgs)
		add(cfg.Paths.Teams, EndpointTeams)
		add(cfg.Paths.OrgMembership, EndpointOrgMembership)
	case FlavorGitLab, FlavorGeneric:
		add(cfg.Paths.Groups, EndpointGroups)
	}
	p.reset()
	return p
}

func withDefaults(c Config) Config {
	if c.Name == "" {
		c.Name = c.Flavor.String()
		if c.Flavor == FlavorGeneric {
			c.Name = "OAuth provider"
		}
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	if c.Paths == (Paths{}) {
		c.Paths = Paths{
			Authorize: "/login/oauth/authorize",
			Token:     "/login/oauth/access_token",
			User:      "/api/v1/user",
			Emails:    "/api/v1/user/emails",
			Repos:     "/api/v1/user/repos",
			Groups:    "/api/v1/user/groups",
		}
	}
	if c.ClientID == "" {
		c.ClientID = "fake-client-id"
	}
	if c.ClientSecret == "" {
		c.ClientSecret = "fake-client-secret"
	}
	if c.AppName == "" {
		c.AppName = "Arbor"
	}
	if len(c.Users) == 0 {
		c.Users = []User{{ID: 1, Login: "fakeuser", Name: "Fake User", Repos: 3,
			Emails: []Email{{Address: "fakeuser@example.com", Primary: true, Verified: true}}}}
	}
	c = c.clone()
	if c.CodeLifetime <= 0 {
		c.CodeLifetime = 10 * time.Minute
	}
	if c.TokenLength <= 0 {
		c.TokenLength = 40
	}
	if c.Token.TokenType == "" {
		c.Token.TokenType = "Bearer"
	}
	if c.Token.ScopeField == "" {
		c.Token.ScopeField = "scope"
	}
	if c.Token.ScopeSeparator == "" {
		c.Token.ScopeSeparator = " "
	}
	def := func(e *OAuthError, code, desc string) {
		if e.Code == "" {
			e.Code = code
		}
		if e.Description == "" {
			e.Description = desc
		}
	}
	def(&c.Errors.InvalidClient, "invalid_client", "Client authentication failed.")
	def(&c.Errors.BadCode, "invalid_grant", "The authorization code is invalid, expired or already used.")
	def(&c.Errors.BadRefreshToken, "invalid_grant", "The refresh token is invalid, expired, revoked or already used.")
	def(&c.Errors.RedirectMismatch, "invalid_grant", "The redirect_uri does not match the one of the authorization request.")
	def(&c.Errors.BadVerifier, "invalid_grant", "The code_verifier does not match the code_challenge.")
	def(&c.Errors.AccessDenied, "access_denied", "")
	if len(c.APIAuthSchemes) == 0 {
		c.APIAuthSchemes = []string{"Bearer"}
	}
	if c.PageSize <= 0 {
		c.PageSize = 30
	}
	if c.MaxPageSize <= 0 {
		c.MaxPageSize = 100
	}
	if c.PageSize > c.MaxPageSize {
		c.PageSize = c.MaxPageSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// clone copies the slices and maps of c, so that neither the caller nor the
// fake can change the other's.
func (c Config) clone() Config {
	users := make([]User, len(c.Users))
	for i, u := range c.Users {
		u.Emails = slices.Clone(u.Emails)
		users[i] = u
	}
	c.Users = users
	ws := make([]Workspace, len(c.Workspaces))
	for i, w := range c.Workspaces {
		w.Members = slices.Clone(w.Members)
		ws[i] = w
	}
	c.Workspaces = ws
	c.GonePaths = slices.Clone(c.GonePaths)
	c.RestrictedOrgs = slices.Clone(c.RestrictedOrgs)
	c.Memberships = cloneMemberships(c.Memberships)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.Scopes = slices.Clone(c.Scopes)
	c.DefaultScopes = slices.Clone(c.DefaultScopes)
	c.APIAuthSchemes = slices.Clone(c.APIAuthSchemes)
	c.Grants = maps.Clone(c.Grants)
	c.UserFields = maps.Clone(c.UserFields)
	c.RepoFields = maps.Clone(c.RepoFields)
	c.EmailShape.PrimaryScopes = slices.Clone(c.EmailShape.PrimaryScopes)
	c.EmailShape.OtherScopes = slices.Clone(c.EmailShape.OtherScopes)
	if c.RequiredScopes != nil {
		req := make(map[Endpoint][]string, len(c.RequiredScopes))
		for k, v := range c.RequiredScopes {
			req[k] = slices.Clone(v)
		}
		c.RequiredScopes = req
	}
	return c
}

// StartForTest starts a fake for cfg, fails the test if it cannot listen,
// and closes it when the test ends. tb is usually a *testing.T.
func StartForTest(tb interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}, cfg Config) *Provider {
	tb.Helper()
	p := New(cfg)
	if err := p.Start(); err != nil {
		tb.Fatalf("fakeprovider: %v", err)
	}
	tb.Cleanup(p.Close)
	return p
}

// Start listens on Config.Addr (default 127.0.0.1:0) and serves in the
// background until Close.
func (p *Provider) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return errors.New("fakeprovider: already started")
	}
	select {
	case <-p.closed:
		return errors.New("fakeprovider: closed")
	default:
	}
	ln, err := net.Listen("tcp", p.cfg.Addr)
	if err != nil {
		return fmt.Errorf("fakeprovider: listen %s: %w", p.cfg.Addr, err)
	}
	p.ln = ln
	p.url = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln) //nolint:errcheck // ErrServerClosed after Close
	return nil
}

// Close stops the server (if started) and releases hung and delayed
// requests. It is safe to call more than once; a closed Provider cannot be
// started again.
func (p *Provider) Close() {
	p.once.Do(func() { close(p.closed) })
	p.mu.Lock()
	srv := p.srv
	p.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// URL is the base URL of a started fake ("http://127.0.0.1:port"), or
// Config.BaseURL when set, or "" before Start.
func (p *Provider) URL() string {
	if p.cfg.BaseURL != "" {
		return p.cfg.BaseURL
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.url
}

// Handler serves the fake, for callers that mount it themselves.
func (p *Provider) Handler() http.Handler { return p }

// Config returns a copy of the configuration in effect (defaults applied).
func (p *Provider) Config() Config { return p.cfg.clone() }

// Endpoints returns the absolute endpoint URLs relative to URL().
func (p *Provider) Endpoints() Endpoints {
	base := p.URL()
	abs := func(path string) string {
		if path == "" {
			return ""
		}
		return base + strings.ReplaceAll(path, "{client_id}", url.PathEscape(p.cfg.ClientID))
	}
	e := Endpoints{
		AuthURL:  abs(p.cfg.Paths.Authorize),
		TokenURL: abs(p.cfg.Paths.Token),
		UserURL:  abs(p.cfg.Paths.User),
	}
	if p.cfg.Revoke != RevokeNone {
		e.RevokeURL = abs(p.cfg.Paths.Revoke)
	}
	if p.cfg.Flavor != FlavorGoogle {
		e.EmailsURL = abs(p.cfg.Paths.Emails)
		e.ReposURL = abs(p.cfg.Paths.Repos)
	}
	if p.cfg.Flavor == FlavorBitbucket {
		e.WorkspacesURL = abs(p.cfg.Paths.Workspaces)
	}
	if p.cfg.AppInstallations {
		e.InstallationsURL = abs(p.cfg.Paths.Installations)
	}
	return e
}

// Busy returns the total time the fake has spent answering requests
// (delays from SetDelay included), for benchmarks that measure a client's
// own overhead.
func (p *Provider) Busy() time.Duration { return time.Duration(p.busy.Load()) }

// AllowRedirect registers an additional redirect URI (exact match).
func (p *Provider) AllowRedirect(uri string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.Contains(p.redirects, uri) {
		p.redirects = append(p.redirects, uri)
	}
}

// Calls returns a copy of every call recorded since New or Reset, oldest
// first.
func (p *Provider) Calls() []Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// CallsTo returns the recorded calls to one endpoint.
func (p *Provider) CallsTo(ep Endpoint) []Call {
	var out []Call
	for _, c := range p.Calls() {
		if c.Endpoint == ep {
			out = append(out, c)
		}
	}
	return out
}

// ExpireAccessTokens makes every access token issued so far expired,
// including ones that would never expire. Refresh tokens are untouched.
func (p *Provider) ExpireAccessTokens() {
	p.mu.Lock()
	defer p.mu.Unlock()
	past := p.cfg.Now().Add(-time.Second)
	for _, t := range p.access {
		t.expires = past
	}
}

// RevokeAll revokes every access and refresh token issued so far.
func (p *Provider) RevokeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revokeLocked(func(int, *User) bool { return true })
}

// SetAccessTokenLifetime changes the lifetime of access tokens issued from
// now on; 0 means they never expire (for GitHub: classic gho_ tokens without
// a refresh token).
func (p *Provider) SetAccessTokenLifetime(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accessLifetime = d
}

// FailNext makes the next n calls to ep answer status with an error body in
// the endpoint's format (OAuth error JSON for token and revoke, the
// flavor's API error for API endpoints, an HTML page for authorize).
// 429 and 503 answers carry Retry-After: 1. A status outside 100–999
// means 500. n <= 0 cancels an earlier FailNext or HangNext.
func (p *Provider) FailNext(ep Endpoint, n, status int) {
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[ep] = &fault{n: n, status: status}
}

// HangNext makes the next n calls to ep answer nothing until the client
// gives up (its context or connection ends) or the fake is closed.
func (p *Provider) HangNext(ep Endpoint, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[ep] = &fault{n: n, hang: true}
}

// SetDelay delays every answer of ep by d (0 removes the delay). A client
// that gives up ends the wait.
func (p *Provider) SetDelay(ep Endpoint, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d <= 0 {
		delete(p.delays, ep)
		return
	}
	p.delays[ep] = d
}

// IssuedTokens returns every token response given out since New or Reset,
// oldest first, with the tokens' current validity.
func (p *Provider) IssuedTokens() []IssuedToken {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	out := make([]IssuedToken, 0, len(p.issues))
	for _, is := range p.issues {
		it := IssuedToken{
			AccessToken: is.access, RefreshToken: is.refresh, User: is.user.Login,
			Scopes: slices.Clone(is.scopes), GrantType: is.grantType,
			IssuedAt: is.at, ExpiresAt: is.exp, RefreshExpiresAt: is.rexp,
		}
		if t := p.access[is.access]; t != nil {
			it.ExpiresAt = t.expires
			it.AccessValid = t.dead(now) == ""
		}
		if t := p.refresh[is.refresh]; t != nil {
			it.RefreshValid = t.dead(now) == ""
		}
		out = append(out, it)
	}
	return out
}

// ValidAccessToken reports whether tok is an access token the fake issued
// that is neither expired, revoked nor replaced by a refresh.
func (p *Provider) ValidAccessToken(tok string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.access[tok]
	return t != nil && t.dead(p.cfg.Now()) == ""
}

// ValidRefreshToken reports whether tok is a refresh token the fake issued
// that is neither expired, rotated nor revoked.
func (p *Provider) ValidRefreshToken(tok string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.refresh[tok]
	return t != nil && t.dead(p.cfg.Now()) == ""
}

// DeadTokenCalls returns the recorded calls that presented a token the
// fake had issued but that was dead at that moment (Call.DeadToken), oldest
// first. A client that tracks expiry and rotation correctly never makes
// one: tests assert that this is empty.
func (p *Provider) DeadTokenCalls() []Call {
	var out []Call
	for _, c := range p.Calls() {
		if c.DeadToken != "" {
			out = append(out, c)
		}
	}
	return out
}

// Reset forgets codes, tokens, calls, injected failures, delays, redirect
// URIs added with AllowRedirect and lifetime changes: the fake is as New
// made it. Requests in flight finish against the new state.
func (p *Provider) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reset()
}

func (p *Provider) reset() {
	p.accessLifetime = p.cfg.AccessTokenLifetime
	p.redirects = slices.Clone(p.cfg.RedirectURIs)
	p.codes = map[string]*authCode{}
	p.access = map[string]*accessToken{}
	p.refresh = map[string]*refreshToken{}
	p.issues = nil
	p.calls = nil
	p.gen++
	p.faults = map[Endpoint]*fault{}
	p.delays = map[Endpoint]time.Duration{}
	p.rateUsed = 0
	p.rateReset = p.cfg.Now().Add(time.Hour).Truncate(time.Second)
	p.memberships = cloneMemberships(p.cfg.Memberships)
}

// Fingerprint is how Calls refers to a token: "sha256:" and the first 12
// hex digits of its SHA-256. Compare with Fingerprint(yourToken).
func Fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	h := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(h[:6])
}

// Approve drives an authorization URL (as built by oauth2.Config.AuthCodeURL)
// non-interactively for the user with the given login ("" for the default
// user) and returns the code and state from the redirect. An error redirect
// (for example access_denied) is returned as an error naming the code.
func (p *Provider) Approve(ctx context.Context, authURL, login string) (code, state string, err error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", "", fmt.Errorf("fakeprovider: %w", err)
	}
	q := u.Query()
	q.Set("fake_auto", "approve")
	if login != "" {
		q.Set("fake_user", login)
	}
	u.RawQuery = q.Encode()
	loc, err := FollowAuthorize(ctx, nil, u.String())
	if err != nil {
		return "", "", err
	}
	lq := loc.Query()
	if e := lq.Get("error"); e != "" {
		return "", "", fmt.Errorf("fakeprovider: authorization failed: %s: %s", e, lq.Get("error_description"))
	}
	return lq.Get("code"), lq.Get("state"), nil
}

// FollowAuthorize requests authURL without following the redirect and
// returns the redirect's Location (the application's callback URL with
// code and state, or error). client may be nil; its CheckRedirect is not
// used. A non-redirect answer is an error quoting the status.
func FollowAuthorize(ctx context.Context, client *http.Client, authURL string) (*url.URL, error) {
	c := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if client != nil {
		c.Transport = client.Transport
		c.Timeout = client.Timeout
		c.Jar = client.Jar
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, fmt.Errorf("fakeprovider: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fakeprovider: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return nil, fmt.Errorf("fakeprovider: authorization request answered %s, not a redirect", resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("fakeprovider: %w", err)
	}
	return loc, nil
}

// ServeHTTP routes, records, applies delays and injected failures, then
// answers as the configured provider.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { p.busy.Add(int64(time.Since(start))) }()
	if r.URL.Path == ControlMembershipsPath {
		p.handleSetMemberships(w, r)
		return
	}
	ep, params := p.match(r.URL.Path)
	rec := &recorder{ResponseWriter: w}
	p.mu.Lock()
	delay := p.delays[ep]
	var f fault
	if ft := p.faults[ep]; ft != nil && ft.n > 0 {
		f = *ft
		ft.n--
	}
	idx, gen := len(p.calls), p.gen
	p.calls = append(p.calls, Call{
		Time: p.cfg.Now(), Method: r.Method, Path: r.URL.Path, Endpoint: ep,
		Query: redact(r.URL.Query()), Accept: r.Header.Get("Accept"), Injected: f.n > 0,
	})
	p.mu.Unlock()

	c := &Call{}
	defer func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if gen != p.gen {
			return
		}
		stored := &p.calls[idx]
		stored.ClientAuth, stored.ClientID, stored.GrantType = c.ClientAuth, c.ClientID, c.GrantType
		stored.CodeChallenge, stored.PKCEVerifier = c.CodeChallenge, c.PKCEVerifier
		stored.Token, stored.User, stored.Error = c.Token, c.User, c.Error
		stored.DeadToken = c.DeadToken
		if c.Query != "" {
			stored.Query = c.Query
		}
		stored.Status = rec.status
	}()

	if delay > 0 && !p.wait(r.Context(), time.After(delay)) {
		return
	}
	if f.n > 0 {
		if f.hang {
			p.wait(r.Context(), nil)
			return
		}
		if f.rateLimit {
			p.rateLimited(rec, r, f.kind, c)
			return
		}
		p.injected(rec, r, ep, f.status, c)
		return
	}
	switch ep {
	case EndpointAuthorize:
		p.handleAuthorize(rec, r, c)
	case EndpointToken:
		p.handleToken(rec, r, c)
	case EndpointRevoke:
		p.handleRevoke(rec, r, c, params)
	case EndpointUser, EndpointEmails, EndpointRepos, EndpointWorkspaces, EndpointInstallations,
		EndpointOrgs, EndpointTeams, EndpointOrgMembership, EndpointGroups:
		p.handleAPI(rec, r, c, ep, params)
	case EndpointGone:
		p.apiError(rec, r, c, http.StatusGone, apiGone)
	default:
		p.apiError(rec, r, c, http.StatusNotFound, apiNotFound)
	}
}

// wait blocks until ch fires (true), or the request or the fake ends
// (false). A nil ch waits for the latter only.
func (p *Provider) wait(ctx context.Context, ch <-chan time.Time) bool {
	select {
	case <-ch:
		return true
	case <-ctx.Done():
	case <-p.closed:
	}
	return false
}

func (p *Provider) match(path string) (Endpoint, map[string]string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for _, rt := range p.routes {
		if len(rt.pattern) != len(segs) {
			continue
		}
		var params map[string]string
		ok := true
		for i, s := range rt.pattern {
			if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
				if params == nil {
					params = map[string]string{}
				}
				v, err := url.PathUnescape(segs[i])
				if err != nil {
					ok = false
					break
				}
				params[strings.Trim(s, "{}")] = v
				continue
			}
			if s != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return rt.ep, params
		}
	}
	return EndpointUnknown, nil
}

func (p *Provider) injected(w http.ResponseWriter, r *http.Request, ep Endpoint, status int, c *Call) {
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	switch ep {
	case EndpointAuthorize:
		errorPage(w, p.cfg.Name, status, "injected failure", http.StatusText(status))
	case EndpointToken, EndpointRevoke:
		code := "server_error"
		if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
			code = "temporarily_unavailable"
		}
		c.Error = code
		writeJSON(w, status, map[string]string{"error": code, "error_description": "injected failure: " + http.StatusText(status)})
	default:
		p.apiError(w, r, c, status, apiInjected)
	}
}

// recorder remembers the status written.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// secretParams never appear in Calls.
var secretParams = []string{"client_secret", "code", "code_verifier", "refresh_token", "token", "access_token", "password", "assertion"}

func redact(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	out := url.Values{}
	for k, vs := range v {
		if slices.Contains(secretParams, k) {
			out[k] = []string{"REDACTED"}
			continue
		}
		out[k] = vs
	}
	return out.Encode()
}

func live(exp, now time.Time) bool { return exp.IsZero() || now.Before(exp) }

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomString returns n characters from alphabet, from crypto/rand.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

package gitproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/connections"
	"github.com/vintner/arbor/service/workers"
)

// Hosts says where each provider's Git repositories are served and how
// its Git host wants an OAuth token presented.
type Hosts interface {
	// GitHost returns the provider's Git base URL ("https://github.com",
	// "https://gitlab.example.com/gitlab") and the Basic user name its Git
	// host takes with a token as password ("x-access-token", "oauth2",
	// "x-token-auth"); ok false when the provider has no Git host.
	GitHost(provider string) (baseURL, basicUser string, ok bool)
}

// HostsFunc is a function as Hosts.
type HostsFunc func(provider string) (baseURL, basicUser string, ok bool)

// GitHost calls f.
func (f HostsFunc) GitHost(provider string) (string, string, bool) { return f(provider) }

// Tokens hands out a provider token of a user's connection that is valid
// now: connections.Broker (refreshed on demand, single-flight,
// rotation-safe). Errors are *connections.Error.
type Tokens interface {
	ValidProviderToken(ctx context.Context, userID, provider string) (connections.Token, error)
}

// Defaults of Config.
const (
	DefaultFetchBodyLimit        = 64 << 20
	DefaultPushBodyLimit         = 2 << 30
	DefaultDialTimeout           = 10 * time.Second
	DefaultResponseHeaderTimeout = 2 * time.Minute
	DefaultBodyStallTimeout      = 2 * time.Minute
	DefaultTokenTimeout          = 30 * time.Second
)

// Config configures the Git proxy. Zero fields get the defaults.
type Config struct {
	// Chain authenticates repository credentials (Chain.Repo). Required.
	Chain *authn.Chain
	// Tokens hands out provider tokens (connections.Broker). Required.
	Tokens Tokens
	// Hosts resolves providers' Git hosts. Required.
	Hosts Hosts
	// PublicURL is Arbor's external origin, for the Integrations page's
	// address in messages. Required.
	PublicURL string
	// FetchBodyLimit caps an upload-pack request body (git's negotiation:
	// wants and haves, KiB to a few MiB for large histories). Default
	// 64 MiB; over it, 413 body_too_large.
	FetchBodyLimit int64
	// PushBodyLimit caps a receive-pack request body (the pushed
	// packfile). Default 2 GiB.
	PushBodyLimit int64
	// DialTimeout bounds connecting to a Git host (TCP and TLS). Default
	// 10s; a failed dial is 502 provider_unavailable.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the Git host's answer to
	// start once the request was sent (a big repository's pack is counted
	// first). Default 2m; then 504 provider_timeout.
	ResponseHeaderTimeout time.Duration
	// BodyStallTimeout cuts a response body from which nothing arrived for
	// this long. Default 2m.
	BodyStallTimeout time.Duration
	// TokenTimeout bounds getting a provider token (a refresh at the
	// provider). Default 30s.
	TokenTimeout time.Duration
	// ClientReadTimeout is how long the client's request body may stall;
	// the gateway's ReadTimeout. Default 30s.
	ClientReadTimeout time.Duration
	// Transport reaches the Git hosts. Default: a transport with the
	// timeouts above and the environment's HTTP(S)_PROXY.
	Transport http.RoundTripper
	// Logger receives a line per refused or failed request. Default: the
	// gateway's request logger.
	Logger *slog.Logger
	// MaxPerClient caps one client address's Git requests in progress
	// (keyed as every per-client bound of the edge, proxy.ClientKey: an
	// IPv6 address by its /64). A clone holds its request for as long as
	// the pack takes to send, and each one holds a connection to the Git
	// host and Arbor's buffers. Beyond it, 429 too_many_concurrent_requests
	// with Retry-After: 1. 0: no cap (server.git_max_per_client, default
	// 32, sets it).
	MaxPerClient int
}

// Proxy is the Git proxy. Mount its Routes with gateway.ClassGit and
// gateway.WithStreamedBody.
type Proxy struct {
	cfg     Config
	rt      http.RoundTripper
	limiter *proxy.ClientLimiter // nil: no per-client cap
}

// New checks cfg and returns the proxy.
func New(cfg Config) (*Proxy, error) {
	if cfg.Chain == nil || cfg.Tokens == nil || cfg.Hosts == nil || cfg.PublicURL == "" {
		return nil, errors.New("gitproxy: Config.Chain, Tokens, Hosts and PublicURL are required")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.DialTimeout, DefaultDialTimeout)
	def(&cfg.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	def(&cfg.BodyStallTimeout, DefaultBodyStallTimeout)
	def(&cfg.TokenTimeout, DefaultTokenTimeout)
	def(&cfg.ClientReadTimeout, 30*time.Second)
	if cfg.FetchBodyLimit <= 0 {
		cfg.FetchBodyLimit = DefaultFetchBodyLimit
	}
	if cfg.PushBodyLimit <= 0 {
		cfg.PushBodyLimit = DefaultPushBodyLimit
	}
	p := &Proxy{cfg: cfg, rt: cfg.Transport, limiter: proxy.NewClientLimiter(cfg.MaxPerClient)}
	if p.rt == nil {
		d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
		p.rt = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   cfg.DialTimeout,
			ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
			// Accept-Encoding is git's, passed on; the body is relayed as
			// the host encoded it.
			DisableCompression: true,
		}
	}
	return p, nil
}

// Close closes idle connections to the Git hosts.
func (p *Proxy) Close() {
	if t, ok := p.rt.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// Routes registers /git/…; mount with gateway.ClassGit and
// gateway.WithStreamedBody. Every method is claimed, so that nothing
// under /git/ reaches the upstream app.
func (p *Proxy) Routes(r fiber.Router) {
	r.All(strings.TrimSuffix(Prefix, "/")+"/*", p.serve)
}

func (p *Proxy) serve(c *fiber.Ctx) error {
	req, err := p.handle(c)
	if err == nil {
		return nil
	}
	// A refusal comes before the body is read (or part way through it):
	// read the rest, within a bound, so that git reads the answer rather
	// than a reset connection.
	reqbody.Drain(c.Request())
	e := httperr.From(err)
	if !httperr.GitClient(c) {
		return e
	}
	if !req.refs && req.service == ServiceUploadPack && e.Status != http.StatusUnauthorized {
		// git shows a failed POST's body to no one ("RPC failed; HTTP
		// 403"), but dies with "remote error: …" on an ERR packet in the
		// answer (gitprotocol-pack(5), "error-line"): the owner's
		// connection was lost between the advertisement and the fetch.
		httperr.Log(c.UserContext(), p.log(c), e, gateway.RequestID(c))
		c.Set(fiber.HeaderContentType, "application/x-git-upload-pack-result")
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.Send(errPacket(e.Message + " (arbor: " + e.Code + ", request id " + gateway.RequestID(c) + ")"))
	}
	e.Plain = true
	return e
}

// errPacket is a pkt-line "ERR message": four hex digits of length, then
// the text (gitprotocol-common(5)), cut to fit one packet.
func errPacket(msg string) []byte {
	const maxPayload = 65516 - len("ERR \n")
	if len(msg) > maxPayload {
		msg = msg[:maxPayload]
	}
	line := "ERR " + strings.ReplaceAll(msg, "\n", " ") + "\n"
	return []byte(fmt.Sprintf("%04x%s", len(line)+4, line))
}

func (p *Proxy) log(c *fiber.Ctx) *slog.Logger {
	if p.cfg.Logger != nil {
		return p.cfg.Logger.With("request_id", gateway.RequestID(c))
	}
	return gateway.Logger(c)
}

// handle serves one request; on error, req is what the path said (zero
// for a path that is not a Git proxy request).
func (p *Proxy) handle(c *fiber.Ctx) (request, error) {
	req, err := parse(c.Method(), string(c.Request().URI().PathOriginal()), string(c.Request().URI().QueryArgs().Peek("service")))
	if err != nil {
		p.log(c).Info("git request refused", "error", httperr.CodeBadPath, "reason", err.Error())
		if errors.Is(err, errNotSmart) {
			return request{}, httperr.New(http.StatusForbidden, CodeNotSmartHTTP, err.Error())
		}
		return request{}, httperr.BadRequest(httperr.CodeBadPath, err.Error())
	}
	held, e := p.admit(c)
	if e != nil {
		p.log(c).Info("git request refused", "error", e.Code, "max_per_client", p.cfg.MaxPerClient)
		return req, e
	}
	defer held.free()
	base, user, ok := p.cfg.Hosts.GitHost(req.provider)
	if !ok {
		return req, httperr.New(http.StatusNotFound, httperr.CodeUnknownProvider,
			fmt.Sprintf("Arbor has no Git provider %q; the URL is /git/{provider}/{owner}/{repo}.git with a provider of the Integrations page", req.provider))
	}
	id, grant, err := p.cfg.Chain.Repo(c)
	if err != nil {
		return req, err
	}
	if e := p.allowed(req, grant); e != nil {
		p.log(c).Info("git request refused", "error", e.Code, "credential", id.WorkerID, "provider", req.provider, "repo", req.repo, "service", req.service)
		return req, e
	}
	limit := p.cfg.FetchBodyLimit
	if req.service == ServiceReceivePack {
		limit = p.cfg.PushBodyLimit
	}
	if cl := int64(c.Request().Header.ContentLength()); cl > limit {
		p.log(c).Info("git request refused", "error", httperr.CodeBodyTooLarge, "credential", id.WorkerID, "content_length", cl, "limit", limit)
		return req, tooLarge(limit)
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), p.cfg.TokenTimeout)
	tok, err := p.cfg.Tokens.ValidProviderToken(ctx, id.UserID, req.provider)
	cancel()
	if err != nil {
		e := p.tokenError(req, err)
		p.log(c).Warn("git request without a provider token", "error", e.Code, "credential", id.WorkerID, "user_id", id.UserID, "provider", req.provider, "err", err)
		return req, e
	}
	return req, p.forward(c, req, id, base, user, tok.AccessToken, limit, held)
}

// slot is a request's place under Config.MaxPerClient. The handler frees
// it when it returns, unless forward handed it to the streamed response
// body, which frees it when the last byte is written or the client goes.
type slot struct {
	release func()
}

// take returns the release and leaves nothing for free to do.
func (s *slot) take() func() {
	if s == nil {
		return nil
	}
	f := s.release
	s.release = nil
	return f
}

// free releases the slot unless it was taken.
func (s *slot) free() {
	if f := s.take(); f != nil {
		f()
	}
}

// admit takes the client's slot (nil without a cap), or returns the 429
// to answer.
func (p *Proxy) admit(c *fiber.Ctx) (*slot, *httperr.Error) {
	if p.limiter == nil {
		return nil, nil
	}
	a := gateway.ClientAddr(c)
	if !a.IsValid() {
		return nil, nil
	}
	k := proxy.ClientKey(a)
	held, ok := p.limiter.Acquire(k)
	if !ok {
		return nil, httperr.New(http.StatusTooManyRequests, proxy.CodeTooManyConcurrent,
			fmt.Sprintf("Too many Git requests from your address at once (at most %d); let a clone or fetch finish, or raise server.git_max_per_client", p.cfg.MaxPerClient)).
			WithRetryAfter(time.Second)
	}
	return &slot{release: held.Release}, nil
}

// allowed applies the credential's scopes and repository patterns.
func (p *Proxy) allowed(req request, g workers.Identity) *httperr.Error {
	switch {
	case req.service == ServiceReceivePack && !g.CanPush():
		return httperr.New(http.StatusForbidden, CodePushRefused,
			fmt.Sprintf("This repository credential may not push: it lacks the scope %s. Create one with {\"scopes\": [\"git:read\", \"git:write\"]} to push through Arbor", workers.ScopeGitWrite))
	case !g.CanFetch():
		return httperr.New(http.StatusForbidden, CodeRepoForbidden, "This repository credential has no git:read scope")
	case !g.AllowsRepo(req.provider, req.repo):
		return httperr.New(http.StatusForbidden, CodeRepoForbidden,
			fmt.Sprintf("This repository credential may not access %s/%s: it is limited to %s", req.provider, req.repo, strings.Join(g.Repos, ", ")))
	}
	return nil
}

// tooLarge is the 413 of a request body over limit.
func tooLarge(limit int64) *httperr.Error {
	return httperr.New(http.StatusRequestEntityTooLarge, httperr.CodeBodyTooLarge,
		fmt.Sprintf("The Git request body is larger than the %d bytes Arbor relays (gitproxy body limits)", limit))
}

// upstreamURL is the Git host's URL for req: base, the repository path
// with ".git", and the smart HTTP suffix. Only parse's checked segments
// are in it.
func upstreamURL(base string, req request) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(base, "/") + "/" + req.repo + ".git")
	if err != nil {
		return nil, err
	}
	if req.refs {
		u = u.JoinPath("info", "refs")
		u.RawQuery = "service=" + req.service
	} else {
		u = u.JoinPath(req.service)
	}
	return u, nil
}

package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/gateway/httperr"
)

// Director edits the upstream request after the proxy has removed
// hop-by-hop and identity headers and set the forwarding headers, just
// before it is sent. Arbor uses it to add its own identity headers
// (X-Arbor-User-Id, the assertion JWT, …): because it runs after stripping,
// whatever it sets is what the upstream sees. Returning an error aborts the
// request; the error is rendered by the error handler (an *httperr.Error
// keeps its status and code).
type Director func(c *fiber.Ctx, req *fasthttp.Request) error

// StreamObserver learns how a relayed response body ended. The proxy calls
// StreamDone exactly once per response that had a body, after the last byte
// was written to the client or the relay failed; written is the number of
// body bytes read from the upstream. upstreamErr is set when the upstream
// broke off the body, clientErr when writing to the client failed.
type StreamObserver interface {
	StreamDone(written int64, upstreamErr, clientErr error)
}

// Defaults for zero Config fields.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultIdleConnTimeout       = 4 * time.Second
	DefaultMaxConns              = 2048
	DefaultBodyLimit             = 32 << 20
	DefaultBodyReadTimeout       = 30 * time.Second
)

// DefaultRewriteHeaders are the headers through which a framework may read
// a request URL or path other than the one in the request line, and that
// the proxy therefore strips by default (Upstream.RewriteHeaders):
//
//   - X-Original-URL and X-Rewrite-URL: set by IIS's URL Rewrite module,
//     and honoured as the request URI by Symfony before 2.7.49, 2.8.44,
//     3.3.18, 3.4.14, 4.0.14 and 4.1.3 (CVE-2018-14773, so by the Laravel
//     and Drupal versions built on it), Zend Framework and Laminas before
//     the same fix (ZF2018-01), and by ASP.NET apps behind IIS.
//   - X-Original-URI: the name nginx configurations conventionally use to
//     pass the original URI (auth_request); apps written for them read it.
//   - X-Original-Path and X-Envoy-Original-Path: set by Envoy and some
//     ingress controllers when they rewrite a path.
//
// X-Forwarded-Prefix (Spring's ForwardedHeaderFilter), X-Forwarded-Uri and
// the rest of X-Forwarded-* are handled with the forwarding headers: they
// pass only from trusted proxies. Method overrides (X-HTTP-Method-Override
// and kin) are not stripped: Arbor's route policy does not depend on the
// method. Add them to the list if the upstream honours them and should not.
var DefaultRewriteHeaders = []string{
	"X-Original-URL",
	"X-Rewrite-URL",
	"X-Original-URI",
	"X-Original-Path",
	"X-Envoy-Original-Path",
}

// Config configures a Proxy. Zero values get the documented defaults.
type Config struct {
	// Upstream is where requests go and how connections to it are made
	// (URL required). See Upstream.
	Upstream Upstream

	// TrustedProxies are the networks whose X-Forwarded-*, Forwarded and
	// X-Real-Ip headers are believed and extended. From any other peer those
	// headers are replaced.
	TrustedProxies []netip.Prefix
	// IdentityHeaders are header names, besides every X-Arbor-* header, that
	// are stripped from client requests because the upstream treats them as
	// identity (e.g. X-Forwarded-User, Remote-User). Matching ignores case
	// and treats '_' and '-' alike.
	IdentityHeaders []string
	// RewriteHeaders are header names stripped from client requests because
	// an upstream framework may take the request's URL or path from them
	// instead of the request line, after Arbor classified the path. Nil
	// means DefaultRewriteHeaders; an empty, non-nil list strips none.
	// Matching is as for IdentityHeaders.
	RewriteHeaders []string
	// RewriteHost sends the upstream's host in the Host header instead of the
	// client's. The client's host is always in X-Forwarded-Host.
	RewriteHost bool

	// BodyLimit caps a request body in bytes. A larger Content-Length is
	// refused with 413 before the upstream is contacted; a chunked body is
	// cut off (and answered 413) when it crosses the limit. Default 32 MiB;
	// negative means no limit.
	BodyLimit int64
	// BodyReadTimeout is how long a request body may stall (no bytes from
	// the client) before the upload is abandoned. Default 30s.
	BodyReadTimeout time.Duration

	// Director, if set, edits each upstream request last. See Director.
	Director Director
	// Slow clients and tunnels (docs/edge.md, "Slow clients and
	// connections").

	// MaxPerClient caps the requests and WebSocket tunnels of one client
	// that hold an upstream connection at once; beyond it a request is
	// answered 429 too_many_concurrent_requests with Retry-After, without
	// contacting the upstream, so that one client cannot take the whole
	// pool (MaxConns). 0 turns the cap off.
	MaxPerClient int
	// ClientAddr says which client a request counts for (IPv6 addresses
	// are counted by their /64, see ClientKey). Nil: the TCP peer. The
	// gateway passes the address resolved through its trusted proxies.
	ClientAddr func(c *fiber.Ctx) netip.Addr
	// ConnPin returns the request's connection's Pin of its peer's entry
	// in the proxy's per-client cap (Proxy.PinClient), or the zero Pin.
	// A request that counts for the pinned client takes its slot through
	// the pin, without the cap's map and lock. Nil: no pins (the gateway
	// pins each connection's peer when it accepts the connection).
	ConnPin func(c *fiber.Ctx) Pin
	// PeerAddr returns the TCP peer's address, for the forwarding headers
	// and the trusted-proxy check. Nil: read from the connection on each
	// request. The gateway passes the address it read once per connection.
	PeerAddr func(c *fiber.Ctx) netip.Addr
	// TunnelIdleTimeout closes a WebSocket tunnel through which no byte
	// went either way for this long. 0 turns it off. Enforced late by at
	// most a tenth of it (at most 1 s).
	TunnelIdleTimeout time.Duration
	// TunnelOwner names the sign-in (browser session, CLI login) on whose
	// authority a WebSocket tunnel is opened, e.g. "session:<id>";
	// CloseTunnels(owner) ends its tunnels when it ends. Nil or "": the
	// tunnel has no owner.
	TunnelOwner func(c *fiber.Ctx) string
	// Logger receives a line for each tunnel closed by the idle limit or
	// CloseTunnels. Nil: none.
	Logger *slog.Logger

	// Observe, if set, is called when a response body is about to be
	// relayed; the returned observer is told how the relay ended. It lets
	// the access log and metrics account for a streamed body at its end
	// rather than when the handler returns.
	Observe func(c *fiber.Ctx) StreamObserver
}

// Proxy is the reverse proxy to one upstream. It is safe for concurrent use.
type Proxy struct {
	cfg          Config
	client       *fasthttp.HostClient
	addr         string // host:port to dial
	upstreamHost string // for RewriteHost
	basePath     []byte
	tlsConfig    *tls.Config
	identity     identitySet
	dialer       net.Dialer
	tunnels      tunnelSet
	watchdog     watchdog
	closed       atomic.Bool

	limiter       *ClientLimiter // nil: no per-client cap
	clientAddr    func(c *fiber.Ctx) netip.Addr
	connPin       func(c *fiber.Ctx) Pin
	peerAddr      func(c *fiber.Ctx) netip.Addr
	refusedClient atomic.Uint64
}

// New validates cfg and returns a Proxy. Errors name the field and say how
// to fix it.
func New(cfg Config) (*Proxy, error) {
	if cfg.Upstream.URL == "" {
		return nil, errors.New("proxy: Upstream is required; set it to the app's base URL, e.g. http://127.0.0.1:3000")
	}
	u, err := url.Parse(cfg.Upstream.URL)
	if err != nil {
		return nil, fmt.Errorf("proxy: Upstream is not a URL (%v); write it as scheme://host[:port][/base], e.g. http://127.0.0.1:3000", urlParseError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("proxy: Upstream %q: scheme must be http or https, e.g. http://127.0.0.1:3000", u.Redacted())
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("proxy: Upstream %q has no host; write it as scheme://host[:port][/base], e.g. http://127.0.0.1:3000", u.Redacted())
	}
	if u.User != nil {
		return nil, fmt.Errorf("proxy: Upstream %q must not contain credentials: they would end up in logs and errors; have the upstream trust Arbor's identity headers instead", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("proxy: Upstream %q must not have a query or fragment; only scheme, host, port and base path are used", u.Redacted())
	}
	if cfg.Upstream.RewriteHeaders == nil {
		cfg.Upstream.RewriteHeaders = DefaultRewriteHeaders
	}
	for _, l := range []struct {
		field string
		names []string
	}{{"IdentityHeaders", cfg.IdentityHeaders}, {"RewriteHeaders", cfg.Upstream.RewriteHeaders}} {
		for i, name := range l.names {
			n := strings.TrimSpace(name)
			if !ValidHeaderName(n) {
				return nil, fmt.Errorf("proxy: %s[%d] %q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~, at most %d characters)", l.field, i, name, maxIdentityLen)
			}
			switch foldString(n) {
			case "host", "content-length", "transfer-encoding", "connection":
				return nil, fmt.Errorf("proxy: %s[%d] %q cannot be stripped: requests need it; remove it from the list", l.field, i, name)
			}
		}
	}
	if cfg.Upstream.DialTimeout <= 0 {
		cfg.Upstream.DialTimeout = DefaultDialTimeout
	}
	if cfg.Upstream.ResponseHeaderTimeout <= 0 {
		cfg.Upstream.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if cfg.Upstream.IdleTimeout <= 0 {
		cfg.Upstream.IdleTimeout = DefaultIdleConnTimeout
	}
	if cfg.Upstream.MaxConns <= 0 {
		cfg.Upstream.MaxConns = DefaultMaxConns
	}
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}

	p := &Proxy{
		cfg:          cfg,
		upstreamHost: u.Host,
		identity:     newIdentitySet(append(append([]string(nil), cfg.IdentityHeaders...), cfg.Upstream.RewriteHeaders...)),
		dialer:       net.Dialer{KeepAlive: 30 * time.Second},
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	p.addr = net.JoinHostPort(u.Hostname(), port)
	if base := strings.TrimRight(u.EscapedPath(), "/"); base != "" {
		p.basePath = []byte(base)
	}
	if u.Scheme == "https" {
		tc := cfg.Upstream.TLS.Clone()
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if tc.ServerName == "" {
			tc.ServerName = u.Hostname()
		}
		p.tlsConfig = tc
	}
	if cfg.TunnelIdleTimeout < 0 || cfg.MaxPerClient < 0 {
		return nil, fmt.Errorf("proxy: TunnelIdleTimeout (%v) and MaxPerClient (%d) must not be negative; 0 turns them off", cfg.TunnelIdleTimeout, cfg.MaxPerClient)
	}
	p.limiter = NewClientLimiter(cfg.MaxPerClient)
	p.clientAddr = cfg.ClientAddr
	p.connPin = cfg.ConnPin
	if p.connPin == nil {
		p.connPin = noPin
	}
	p.peerAddr = cfg.PeerAddr
	if p.peerAddr == nil {
		p.peerAddr = func(c *fiber.Ctx) netip.Addr { return peerAddr(c.Context()) }
	}
	if p.clientAddr == nil {
		p.clientAddr = peerKey
	}
	p.tunnels.init(cfg.TunnelIdleTimeout, cfg.Logger, p.limiter)
	p.watchdog.start(cfg.Upstream.ResponseHeaderTimeout)

	p.client = &fasthttp.HostClient{
		Addr: p.addr,
		Dial: p.dial,
		// TLS, when needed, is done by p.dial so that headerConn sees
		// plaintext; the HostClient itself speaks plain HTTP. There is no
		// ReadTimeout: headerConn's watchdog enforces ResponseHeaderTimeout.
		IsTLS:               false,
		MaxConns:            cfg.Upstream.MaxConns,
		MaxConnWaitTimeout:  cfg.Upstream.DialTimeout,
		MaxIdleConnDuration: cfg.Upstream.IdleTimeout,
		// Transport reads a small body whole and streams any other: see
		// transport.
		Transport:                     transport{},
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: false,
		NoDefaultUserAgentHeader:      true,
		MaxIdemponentCallAttempts:     2,
		RetryIfErr:                    retryIfErr,
	}
	return p, nil
}

// retryIfErr retries a request once on a fresh connection when a pooled
// connection turned out to be closed by the upstream before it answered,
// and only for idempotent methods: a POST may already have been acted on.
// Timeouts are never retried (that would double the wait), and requests with
// a body are never retried by fasthttp (the body stream is consumed).
func retryIfErr(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if attempts >= 2 || isTimeout(err) {
		return false, false
	}
	h := &req.Header
	if !(h.IsGet() || h.IsHead() || h.IsOptions() || h.IsPut() || h.IsDelete() || h.IsTrace()) {
		return false, false
	}
	return false, errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// ValidHeaderName reports whether s can be configured as a header name: an
// RFC 9110 token (letters, digits and !#$%&'*+-.^_`|~) of 1 to 128 bytes.
func ValidHeaderName(s string) bool {
	if s == "" || len(s) > maxIdentityLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Handler proxies the request to the upstream. Install it as the last
// handler (a catch-all): every route registered before it takes precedence.
func (p *Proxy) Handler(c *fiber.Ctx) error {
	req := c.Request()
	if req.Header.IsConnect() {
		return httperr.New(http.StatusMethodNotAllowed, httperr.CodeMethodNotAllowed, "CONNECT is not supported by this gateway")
	}
	if hasDotSegment(req.URI().PathOriginal()) {
		return httperr.BadRequest(httperr.CodeBadPath, `The request path contains "." or ".." segments; resolve them before sending the request`)
	}
	cl := int64(req.Header.ContentLength())
	if p.cfg.BodyLimit >= 0 && cl > p.cfg.BodyLimit {
		return httperr.New(http.StatusRequestEntityTooLarge, httperr.CodeBodyTooLarge,
			fmt.Sprintf("The request body is larger than the %d bytes this gateway accepts", p.cfg.BodyLimit))
	}
	ws := isWebSocketUpgrade(&req.Header)
	x := p.acquire()
	if err := p.rewriteRequest(c, x, ws); err != nil {
		x.release()
		return err
	}
	if err := p.admit(c, x); err != nil {
		x.release()
		return err
	}
	if ws {
		return p.serveWebSocket(c, x)
	}
	return p.roundTrip(c, x, cl)
}

func (p *Proxy) roundTrip(c *fiber.Ctx, x *exchange, cl int64) error {
	req := c.Request()
	if cl != 0 && req.IsBodyStream() {
		// Relay the client's body as it arrives (Fiber's StreamRequestBody):
		// an upload never sits whole in memory.
		x.in = requestBody{
			r:       req.BodyStream(),
			ctx:     c.Context(),
			limit:   p.cfg.BodyLimit,
			timeout: p.cfg.BodyReadTimeout,
		}
		req.SetBodyStream(&x.in, int(cl))
	} else if cl == 0 {
		// No body: detach the empty stream so that fasthttp may retry an
		// idempotent request on a stale pooled connection.
		req.ResetBody()
	}

	// The upstream's answer is read straight into the client's response
	// (see transport). Do resets it first: Arbor's own cookies set before
	// the proxy ran (a re-issued session) are kept aside and set again.
	out := c.Response()
	own := ownCookies(&out.Header)
	if err := p.client.Do(req, out); err != nil {
		e := p.upstreamError(x, err)
		x.release()
		// Forget what the upstream sent of its answer before it failed
		// (Content-Encoding, Set-Cookie, …): the client gets Arbor's error.
		out.Reset()
		restoreCookies(&out.Header, own)
		return e
	}
	out.Header.SetNoDefaultContentType(true)
	filterResponseHeaders(&out.Header, x, false)
	restoreCookies(&out.Header, own)
	if !out.Header.IsHTTP11() {
		// An HTTP/1.0 upstream: the client is answered in Arbor's own
		// version (RFC 9110, section 6.2), but fasthttp will not chunk a
		// response it read as HTTP/1.0, so a body of unknown length ends
		// with the client's connection, as it ended with the upstream's.
		out.Header.SetProtocol(http11)
		if out.Header.ContentLength() < 0 {
			out.SetConnectionClose()
		}
	}

	body, ok := out.BodyStream().(*upstreamBody)
	if !ok {
		// Read whole (small, or none): the upstream connection is already
		// back in the pool, and the request is accounted for when the
		// handler returns.
		x.release()
		return nil
	}
	// Large, chunked or close-delimited: relayed as the client's response
	// is written; the exchange ends when the body is closed.
	if out.Header.ContentLength() < 0 {
		// Send the header at once, so that an event stream's client sees
		// it connected.
		out.ImmediateHeaderFlush = true
	}
	body.x = x
	if p.cfg.Observe != nil {
		body.obs = p.cfg.Observe(c)
	}
	return nil
}

var http11 = []byte("HTTP/1.1")

// smallBody is the largest body (of declared length) that is read into
// memory instead of streamed.
const smallBody = 8 << 10

// upstreamError maps a failed exchange to the error the client sees. The
// cause stays in Err for the log.
func (p *Proxy) upstreamError(x *exchange, err error) *httperr.Error {
	var de *dialError
	switch {
	case x.in.tooLarge:
		return httperr.Wrap(err, http.StatusRequestEntityTooLarge, httperr.CodeBodyTooLarge,
			fmt.Sprintf("The request body is larger than the %d bytes this gateway accepts", p.cfg.BodyLimit))
	case x.in.err != nil && isTimeout(x.in.err):
		// The gateway cut a client that sent too slowly (or stalled).
		return httperr.Wrap(fmt.Errorf("reading the request body from the client: %w", x.in.err),
			http.StatusRequestTimeout, httperr.CodeRequestTimeout, "The request body arrived too slowly")
	case x.in.err != nil:
		return httperr.Wrap(fmt.Errorf("reading the request body from the client: %w", x.in.err),
			http.StatusBadRequest, httperr.CodeBadRequest, "The request body could not be read")
	case errors.As(err, &de), errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, fasthttp.ErrDialTimeout):
		return UnavailableError(err)
	case isTimeout(err):
		return httperr.Wrap(err, http.StatusGatewayTimeout, httperr.CodeUpstreamTimeout,
			"The upstream service did not answer in time")
	default:
		return UnavailableError(err)
	}
}

// UnavailableError is the 502 upstream_unavailable error with cause err.
func UnavailableError(err error) *httperr.Error {
	return httperr.Wrap(err, http.StatusBadGateway, httperr.CodeUpstreamUnavailable,
		"The upstream service is not reachable")
}

// Tunnels reports the number of open WebSocket tunnels.
func (p *Proxy) Tunnels() int { return p.tunnels.count() }

// Close stops accepting WebSocket upgrades, closes every open tunnel and
// waits for their goroutines to end, closes idle upstream connections and
// stops the header watchdog (requests still in flight are then no longer
// held to ResponseHeaderTimeout).
// Call it after the HTTP server has drained: tunnels are long-lived and are
// not in-flight requests. Requests still being proxied are not affected.
func (p *Proxy) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.tunnels.closeAll()
	p.tunnels.stopSweeper()
	p.client.CloseIdleConnections()
	p.watchdog.close()
	return nil
}

// ownCookies returns the cookies Arbor set on the response before relaying
// (a re-issued session cookie), which copying the upstream's header would
// otherwise drop. Nil, without allocating, when there are none: the usual
// case.
func ownCookies(h *fasthttp.ResponseHeader) [][2][]byte {
	var own [][2][]byte
	h.VisitAllCookie(func(key, value []byte) {
		own = append(own, [2][]byte{append([]byte(nil), key...), append([]byte(nil), value...)})
	})
	return own
}

// restoreCookies sets Arbor's cookies again after the upstream's header
// was copied. Arbor's win over an upstream cookie of the same name.
func restoreCookies(h *fasthttp.ResponseHeader, own [][2][]byte) {
	if len(own) == 0 {
		return
	}
	ck := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(ck)
	for _, kv := range own {
		if err := ck.ParseBytes(kv[1]); err == nil {
			h.SetCookie(ck)
		}
	}
}

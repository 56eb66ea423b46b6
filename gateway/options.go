package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultListen                        = "127.0.0.1:8080"
	DefaultUpstreamDialTimeout           = proxy.DefaultDialTimeout
	DefaultUpstreamResponseHeaderTimeout = proxy.DefaultResponseHeaderTimeout
	DefaultUpstreamIdleTimeout           = proxy.DefaultIdleConnTimeout
	DefaultUpstreamMaxConns              = proxy.DefaultMaxConns
	DefaultIdleTimeout                   = 90 * time.Second
	DefaultReadTimeout                   = 30 * time.Second
	DefaultParkIdleAfter                 = time.Second
	DefaultMaxHeaderBytes                = 16 << 10
	DefaultBodyLimit                     = proxy.DefaultBodyLimit
	DefaultAPIBodyLimit                  = reqbody.DefaultLimit
	DefaultReadyTimeout                  = 2 * time.Second

	// Slow clients and connection caps (slowclients.go).
	DefaultUploadMinRate        = 1024
	DefaultDownloadMinRate      = 1024
	DefaultMinRateGrace         = 30 * time.Second
	DefaultMaxConnsPerAddress   = 256
	DefaultUpstreamMaxPerClient = 128
	DefaultWebSocketIdleTimeout = 5 * time.Minute

	minMaxHeaderBytes = 1 << 10
)

// Options configure a Server. Every zero field gets the default documented
// on it; New validates the result and says what to fix.
type Options struct {
	// Listen is the TCP address ListenAndServe listens on. Default
	// "127.0.0.1:8080": loopback unless told otherwise. Serve ignores it.
	Listen string

	// Upstream is the app behind Arbor: its URL (e.g.
	// "http://127.0.0.1:3000" or "https://app.internal/base") and how Arbor
	// connects to it; see proxy.Upstream, which declares and documents each
	// setting and its default. Requests no Arbor route claims are relayed
	// there; a base path is prepended to every request path. An empty URL
	// disables the proxy: unclaimed requests then get 404 not_found.
	Upstream proxy.Upstream
	// RewriteHost sends the upstream URL's host as Host instead of the
	// client's. Default false, as oauth2-proxy does: apps build absolute
	// URLs from Host. X-Forwarded-Host always carries the client's host.
	RewriteHost bool

	// IdleTimeout closes a client keep-alive connection idle this long.
	// Enforced late by at most a tenth of the shorter of the two timeouts
	// (at most 2 s). Default 90s.
	IdleTimeout time.Duration
	// ReadTimeout bounds receiving a request's headers and any stall of a
	// proxied body (an upload may take longer as long as bytes keep
	// coming); a body for Arbor's own routes must arrive within it whole.
	// Enforced late by at most a tenth of it. Default 30s.
	ReadTimeout time.Duration
	// ParkIdleAfter parks a keep-alive connection idle this long: fasthttp
	// gives back its goroutine and buffers, and the connection is served
	// again at its next byte (park.go). An idle connection then costs
	// about 5 KB instead of 17. Default 1s: soon enough that a burst of
	// connections is mostly parked before the last of it has arrived
	// (docs/benchmarks.md), and a revived connection costs its next
	// request a few microseconds. -1 turns parking off.
	ParkIdleAfter time.Duration
	// MaxHeaderBytes caps the request line plus headers; over it, 431
	// header_too_large. It is also the per-connection read buffer. Default
	// 16 KiB (cookies of other apps on the same domain add up), minimum 1 KiB.
	MaxHeaderBytes int
	// BodyLimit caps a proxied request body in bytes: 413 body_too_large.
	// Default 32 MiB; -1 disables the cap. Bodies are streamed to the
	// upstream, so the cap is about abuse, not memory.
	BodyLimit int64
	// APIBodyLimit caps request bodies of Arbor's own routes (mounted with
	// Mount), which handlers read whole; a Mount call may set its own cap
	// with WithBodyLimit. Default 8 KiB (reqbody.DefaultLimit): Arbor's
	// bodies are small JSON documents and HTML forms.
	APIBodyLimit int64

	// TrustedProxies lists the peers (CIDR prefixes or single IPs) whose
	// X-Forwarded-For/-Proto/-Host, Forwarded and X-Real-Ip are believed and
	// extended, e.g. the load balancer in front of Arbor. From any other
	// peer these headers are replaced. Default: none.
	TrustedProxies []string
	// IdentityHeaders are extra header names stripped from every client
	// request, besides all X-Arbor-* headers, because the upstream reads
	// identity from them (X-Forwarded-User, Remote-User, X-Email, …).
	// Matching ignores case and treats '_' like '-'.
	IdentityHeaders []string
	// Director edits each upstream request after stripping; Arbor's identity
	// headers are added here. The gateway sets X-Request-Id before calling
	// it. See proxy.Director. Arbor's is authz.Gate.Director.
	Director proxy.Director
	// Guard decides, before anything is relayed, whether a request may go
	// to the upstream: it authenticates the request and applies the route
	// policy. It returns true to let the request through; false when it
	// has answered itself (a redirect to sign-in), or an error, which is
	// rendered like any other (a 401). Nil lets every request through.
	// Arbor's is authz.Gate.Guard (package gateway/authz), wrapped by the
	// failed-authentication limit (ratelimit.Limits.Guard).
	Guard func(c *fiber.Ctx) (bool, error)
	// ErrorPage writes the HTML page a browser gets for an error (see
	// httperr.Page; Arbor's is pages.HTTPErrorPage, the layout's error
	// page). Nil: httperr's plain page. Clients that are not browsers get
	// JSON either way.
	ErrorPage httperr.Page

	// Logger receives error details and everything handlers log through
	// gateway.Logger(c). Default: JSON (NewJSONHandler) to stderr.
	Logger *slog.Logger
	// AccessLogger receives the access log: one line per request. Default:
	// Logger if it is set; otherwise JSON (NewJSONHandler) to stderr through
	// a BufferedWriter, flushed at Shutdown, because an unbuffered write per
	// request costs a system call per request. Callers that pass their own
	// should use both too: slog.New(gateway.NewJSONHandler(
	// gateway.NewBufferedWriter(w, 0, 0), nil)).
	AccessLogger *slog.Logger
	// Registry receives the gateway's metrics and is served on /metrics.
	// Default: a new registry with the Go and process collectors.
	Registry *prometheus.Registry
	// NoPublicMetrics takes /metrics off this server's listener, where it
	// then answers 404 not_found (and is never proxied): the caller serves MetricsHandler
	// on a listener of its own, as arbor serve does for
	// server.metrics_listen. Default false: /metrics is served here.
	NoPublicMetrics bool
	// Ready reports whether Arbor can serve (typically: the store answers).
	// /readyz calls it with a ReadyTimeout deadline. An error is answered
	// 503 store_unavailable, unless it is (or wraps) an *httperr.Error,
	// which is answered as it says: a component that is still starting
	// says so rather than blame the store. Nil: always ready.
	Ready func(ctx context.Context) error
	// ReadyTimeout bounds a Ready call. Default 2s.
	ReadyTimeout time.Duration

	// Slow clients and connection caps (docs/edge.md, "Slow clients and
	// connections"). For each, 0 means the default and -1 turns it off.

	// UploadMinRate is the rate, in bytes per second, at which a client
	// must send a request body: it may fall behind it by at most
	// MinRateGrace (time spent waiting for the client, less 1/rate per
	// byte received), or the connection is closed. A stall longer than
	// ReadTimeout closes it too. Default 1024.
	UploadMinRate int64
	// DownloadMinRate is the same for reading a response: only the time
	// Arbor waits for the client to accept bytes counts, not the time the
	// upstream takes to produce them (event streams). Default 1024.
	DownloadMinRate int64
	// MinRateGrace is how far behind the minimum rates a client may fall;
	// it is also the longest a response write may stall. Default 30s.
	MinRateGrace time.Duration
	// MaxConnsPerAddress caps a TCP peer's open connections (an IPv6 peer
	// by its /64); beyond it a new connection is closed at once. Peers in
	// TrustedProxies are exempt. Default 256.
	MaxConnsPerAddress int
	// UpstreamMaxPerClient caps one client's proxied requests and
	// WebSocket tunnels in progress, by the address resolved through
	// TrustedProxies (ClientIP); beyond it, 429
	// too_many_concurrent_requests with Retry-After. Default 128.
	UpstreamMaxPerClient int
	// WebSocketIdleTimeout closes a WebSocket tunnel through which no byte
	// went either way for this long. Default 5m.
	WebSocketIdleTimeout time.Duration
	// HSTS is the Strict-Transport-Security value (https.HSTS builds it)
	// set on every answer given over TLS: Arbor's own, errors included,
	// and proxied ones, replacing the upstream's. Never on plain http (RFC
	// 6797 section 7.2). Default "": no header.
	HSTS string

	// TunnelOwner names the sign-in that opens a WebSocket tunnel (e.g.
	// "session:<id>"), so that Server.CloseTunnels can end its tunnels
	// when it ends. Nil: tunnels have no owner.
	TunnelOwner func(c *fiber.Ctx) string
}

// resolved is Options after defaults and parsing.
type resolved struct {
	Options
	upstream  *url.URL
	trusted   []netip.Prefix
	hsts      []byte          // HSTS, nil for none
	accessBuf *BufferedWriter // the default access log's buffer, owned by the Server
}

func (o Options) resolve() (*resolved, error) {
	r := &resolved{Options: o}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if r.Listen == "" {
		r.Listen = DefaultListen
	} else if _, _, err := net.SplitHostPort(r.Listen); err != nil {
		bad("Listen %q is not host:port (%v); write e.g. 127.0.0.1:8080 or :8080", r.Listen, err)
	}
	if r.Upstream.URL != "" {
		u, err := url.Parse(r.Upstream.URL)
		switch {
		case err != nil:
			bad("Upstream is not a URL (%v); write e.g. http://127.0.0.1:3000", redactParseError(err))
		case u.Scheme != "http" && u.Scheme != "https":
			bad("Upstream %q: scheme must be http or https; write e.g. http://127.0.0.1:3000", u.Redacted())
		case u.Hostname() == "":
			bad("Upstream %q has no host; write e.g. http://127.0.0.1:3000", u.Redacted())
		case u.User != nil:
			bad("Upstream %q must not contain credentials (they would reach logs); let the upstream trust Arbor's identity headers instead", u.Redacted())
		case u.RawQuery != "" || u.Fragment != "":
			bad("Upstream %q must not have a query or fragment; only scheme, host, port and base path are used", u.Redacted())
		default:
			r.upstream = u
		}
	}
	nonNegative := func(name string, d *time.Duration, def time.Duration) {
		switch {
		case *d < 0:
			bad("%s is negative (%v); use a positive duration such as %v, or 0 for the default", name, *d, def)
		case *d == 0:
			*d = def
		}
	}
	nonNegative("Upstream.DialTimeout", &r.Upstream.DialTimeout, DefaultUpstreamDialTimeout)
	nonNegative("Upstream.ResponseHeaderTimeout", &r.Upstream.ResponseHeaderTimeout, DefaultUpstreamResponseHeaderTimeout)
	nonNegative("Upstream.IdleTimeout", &r.Upstream.IdleTimeout, DefaultUpstreamIdleTimeout)
	nonNegative("IdleTimeout", &r.IdleTimeout, DefaultIdleTimeout)
	nonNegative("ReadTimeout", &r.ReadTimeout, DefaultReadTimeout)
	switch {
	case r.ParkIdleAfter == 0:
		r.ParkIdleAfter = DefaultParkIdleAfter
	case r.ParkIdleAfter == -1:
		r.ParkIdleAfter = 0
	case r.ParkIdleAfter < 0:
		bad("ParkIdleAfter is %v; use a positive duration, 0 for the default (%v) or -1 to turn parking off", r.ParkIdleAfter, DefaultParkIdleAfter)
	}
	nonNegative("ReadyTimeout", &r.ReadyTimeout, DefaultReadyTimeout)

	switch {
	case r.Upstream.MaxConns < 0:
		bad("Upstream.MaxConns is negative (%d); use 0 for the default %d", r.Upstream.MaxConns, DefaultUpstreamMaxConns)
	case r.Upstream.MaxConns == 0:
		r.Upstream.MaxConns = DefaultUpstreamMaxConns
	}
	switch {
	case r.MaxHeaderBytes == 0:
		r.MaxHeaderBytes = DefaultMaxHeaderBytes
	case r.MaxHeaderBytes < minMaxHeaderBytes:
		bad("MaxHeaderBytes %d is below the minimum %d; browsers routinely send several KiB of headers", r.MaxHeaderBytes, minMaxHeaderBytes)
	}
	switch {
	case r.BodyLimit == 0:
		r.BodyLimit = DefaultBodyLimit
	case r.BodyLimit < -1:
		bad("BodyLimit %d is invalid; use a byte count, 0 for the default (%d) or -1 for no limit", r.BodyLimit, DefaultBodyLimit)
	}
	switch {
	case r.APIBodyLimit == 0:
		r.APIBodyLimit = DefaultAPIBodyLimit
	case r.APIBodyLimit < 0:
		bad("APIBodyLimit %d is negative; use a byte count or 0 for the default (%d)", r.APIBodyLimit, DefaultAPIBodyLimit)
	}
	for i, s := range r.TrustedProxies {
		p, err := parsePrefix(s)
		if err != nil {
			bad("TrustedProxies[%d] %q is not an IP address or CIDR prefix; write e.g. 10.0.0.0/8 or 192.168.1.10", i, s)
			continue
		}
		r.trusted = append(r.trusted, p)
	}
	r.resolveSlowClients(bad)
	if r.HSTS != "" {
		if strings.ContainsFunc(r.HSTS, func(c rune) bool { return c < ' ' || c == 0x7f }) {
			bad("HSTS %q contains control characters; write e.g. max-age=31536000", r.HSTS)
		}
		r.hsts = []byte(r.HSTS)
	}
	if r.Logger == nil {
		r.Logger = slog.New(NewJSONHandler(os.Stderr, nil))
		if r.AccessLogger == nil {
			r.accessBuf = NewBufferedWriter(os.Stderr, 0, 0)
			r.AccessLogger = slog.New(NewJSONHandler(r.accessBuf, nil))
		}
	}
	if r.AccessLogger == nil {
		r.AccessLogger = r.Logger
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("gateway: invalid options: %w", errors.Join(errs...))
	}
	return r, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// redactParseError drops the URL a *url.Error repeats, which may carry
// credentials.
func redactParseError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/gateway/edge/target"
	"github.com/vintner/arbor/gateway/httperr"
)

// ErrStarted is returned by Mount once Serve has been called: Fiber matches
// routes in registration order and the proxy fallback is registered at
// Serve, so a later route could never be reached.
var ErrStarted = errors.New("gateway: routes must be mounted before Serve is called")

// ErrClosed is returned by Serve after Shutdown was called.
var ErrClosed = errors.New("gateway: server was shut down")

// Server is the Arbor gateway: a Fiber app with request ids, access log,
// metrics, health routes, Arbor's own mounted routes, and the reverse proxy
// as the fallback for everything else.
type Server struct {
	opts     *resolved
	app      *fiber.App
	logger   *slog.Logger
	access   *slog.Logger
	metrics  *Metrics
	registry *prometheus.Registry
	proxy    *proxy.Proxy // nil when Upstream is empty
	tracker  *connTracker

	mu       sync.Mutex
	started  bool         // proxy fallback registered; no more Mount
	ln       net.Listener // the listener Serve was given
	shutdown bool
	draining atomic.Bool
}

// New builds a Server from opts. It validates every option and returns one
// error listing all that are wrong. Nothing listens until Serve.
func New(opts Options) (*Server, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, logger: o.Logger, access: o.AccessLogger, registry: o.Registry}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
		s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if s.metrics, err = NewMetrics(s.registry); err != nil {
		return nil, err
	}

	if o.upstream != nil {
		director := func(c *fiber.Ctx, req *fasthttp.Request) error {
			if st := stateOf(c); st != nil {
				req.Header.SetCanonical(headerRequestID, bufBytes(st.id))
			}
			if o.Director != nil {
				return o.Director(c, req)
			}
			return nil
		}
		s.proxy, err = proxy.New(proxy.Config{
			Upstream:          o.Upstream,
			TrustedProxies:    o.trusted,
			IdentityHeaders:   o.IdentityHeaders,
			RewriteHost:       o.RewriteHost,
			BodyLimit:         o.BodyLimit,
			BodyReadTimeout:   o.ReadTimeout,
			Director:          director,
			Observe:           observeStream,
			MaxPerClient:      o.UpstreamMaxPerClient,
			ClientAddr:        clientKey,
			ConnPin:           connPin,
			PeerAddr:          statePeer,
			TunnelIdleTimeout: o.WebSocketIdleTimeout,
			TunnelOwner:       o.TunnelOwner,
			Logger:            o.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		if err := s.registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "arbor_websocket_tunnels",
			Help: "Open WebSocket connections relayed to the upstream.",
		}, func() float64 { return float64(s.proxy.Tunnels()) })); err != nil {
			return nil, fmt.Errorf("gateway: registering metrics: %w", err)
		}
		if err := s.registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "arbor_upstream_clients",
			Help: "Client addresses (IPv6 by their /64) with an open connection or a proxied request in progress, each an entry of the per-client cap (server.upstream_max_per_client).",
		}, func() float64 { return float64(s.proxy.Clients()) })); err != nil {
			return nil, fmt.Errorf("gateway: registering metrics: %w", err)
		}
	}

	s.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler:          s.fiberErrorHandler,
		ReadBufferSize:        o.MaxHeaderBytes,
		// No ReadTimeout/IdleTimeout here: connTracker enforces both
		// without a deadline update per request (see conntrack.go).
		// Bodies are streamed: the proxy relays uploads as they arrive.
		// Fiber's BodyLimit then only sizes the prefetch; the real limits
		// are BodyLimit (proxy) and APIBodyLimit (own routes).
		StreamRequestBody: true,
		// Otherwise fasthttp would parse multipart uploads into temporary
		// files before the handler runs, and the proxy could not relay them.
		DisablePreParseMultipartForm: true,
		// An idle keep-alive connection gives its write buffer and its
		// response body buffer back to fasthttp's pools after each
		// response: about 4 KB less per idle connection (10,000 idle
		// connections: +175 MB instead of +216 MB; docs/benchmarks.md,
		// "Issue 20: memory at rest"). Its read buffer stays: with
		// StreamRequestBody fasthttp never releases it between requests.
		ReduceMemoryUsage: true,
	})
	s.tracker = newConnTracker(o.ReadTimeout, o.IdleTimeout, o.ParkIdleAfter)
	s.tracker.limits = s.slowLimits()
	if s.proxy != nil {
		s.tracker.pin = s.proxy.PinClient
	}
	if err := s.registerSlowMetrics(); err != nil {
		return nil, err
	}
	s.app.Server().ConnState = s.tracker.connState
	// A worker goroutine whose connection was parked (or closed) keeps
	// its stack while it idles in fasthttp's pool; fasthttp ends idle
	// workers after 10 s, checked every 10 s. Ended within 2 to 4 s, the
	// memory of parked connections goes back soon after (park.go).
	s.app.Server().MaxIdleWorkerDuration = idleWorkerLifetime
	s.app.Server().Handler = s.methodGuard(s.app.Server().Handler)
	s.app.Use(s.observe)
	s.app.Get("/healthz", s.routeEntry(ClassHealth, o.APIBodyLimit), s.healthz)
	s.app.Get("/readyz", s.routeEntry(ClassHealth, o.APIBodyLimit), s.readyz)
	if o.NoPublicMetrics {
		// Still Arbor's path, so that it never reaches the upstream: an
		// app's own /metrics behind Arbor was never reachable either.
		s.app.Get("/metrics", s.routeEntry(ClassMetrics, o.APIBodyLimit), func(*fiber.Ctx) error {
			return httperr.NotFound("No resource matches this path")
		})
	} else {
		s.app.Get("/metrics", s.routeEntry(ClassMetrics, o.APIBodyLimit), adaptor.HTTPHandler(s.MetricsHandler()))
	}
	return s, nil
}

// methodGuard answers requests with a method Fiber does not route (WebDAV's
// PROPFIND, made-up ones) in Arbor's error shape: Fiber itself would answer
// them with a plain-text 400 before any handler or error handler runs. It
// also gives the request its one reading of the path (package target)
// before Fiber routes it, so that Arbor's routes, the route policy and the
// proxy all see the same path.
func (s *Server) methodGuard(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(fctx *fasthttp.RequestCtx) {
		var err error
		switch string(fctx.Method()) {
		case fiber.MethodConnect:
			// Its target is an authority, not a path; the proxy refuses it.
			next(fctx)
			return
		case fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodDelete,
			fiber.MethodPatch, fiber.MethodOptions, fiber.MethodTrace:
			if err = target.Normalize(&fctx.Request); err == nil {
				next(fctx)
				return
			}
			err = httperr.Wrap(err, http.StatusBadRequest, httperr.CodeBadPath,
				"The request target must be a path (/…) or an http(s) URL")
		default:
			err = httperr.New(http.StatusNotImplemented, httperr.CodeNotImplemented,
				"This gateway does not support the request method")
		}
		c := s.app.AcquireCtx(fctx)
		defer s.app.ReleaseCtx(c)
		_ = s.fiberErrorHandler(c, err)
	}
}

// ObserveStream is for a handler that answers with a streamed body (the
// Git proxy): the request's access log line and metrics then wait for the
// observer's StreamDone, which the handler's body must call exactly once,
// when it has been written or has failed. Nil outside a gateway request.
func ObserveStream(c *fiber.Ctx) proxy.StreamObserver { return observeStream(c) }

// observeStream hands the proxy the request's state as its StreamObserver.
func observeStream(c *fiber.Ctx) proxy.StreamObserver {
	st := stateOf(c)
	if st == nil {
		return nil
	}
	st.streaming = true
	return st
}

// App returns the Fiber app, for what Mount does not cover (hooks, custom
// middleware). Routes added directly are not labelled or body-limited;
// prefer Mount.
func (s *Server) App() *fiber.App { return s.app }

// Metrics returns the gateway's metrics, e.g. for the store to count errors
// with Metrics().StoreError("get_session").
func (s *Server) Metrics() *Metrics { return s.metrics }

// Registry returns the registry served on /metrics, for other packages'
// collectors.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// MetricsHandler serves the registry in the Prometheus text format, for a
// metrics listener of its own (Options.NoPublicMetrics).
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry})
}

// Mount registers Arbor's own routes (sign-in pages, OAuth callbacks, the
// device flow, the API) ahead of the proxy fallback. register receives a
// router on which every route is labelled with class in logs and metrics
// and passes the edge body rule (package reqbody) before its handlers run:
// no Content-Encoding, JSON or form bodies only, at most APIBodyLimit bytes
// unless a [WithBodyLimit] option says otherwise:
//
//	srv.Mount(gateway.ClassAuth, func(r fiber.Router) {
//		r.Get("/auth/login", login)
//		r.Get("/auth/callback/:provider", callback)
//	})
//
// Handlers read the body with reqbody.Raw, reqbody.JSON or
// reqbody.FormValue, never with c.Body() or c.FormValue().
//
// A route handler that calls c.Next() falls through to the proxy. Group
// middleware (r.Group(prefix, mw) or r.Use) runs for every request under
// its prefix, including those that end up proxied; keep it cheap or put the
// logic in the route handlers. Mount returns ErrStarted after Serve.
func (s *Server) Mount(class RouteClass, register func(r fiber.Router), opts ...MountOption) error {
	if class >= numClasses {
		return fmt.Errorf("gateway: Mount: unknown route class %d", class)
	}
	m := mountOptions{bodyLimit: s.opts.APIBodyLimit}
	for _, o := range opts {
		o(&m)
	}
	if m.bodyLimit <= 0 {
		return fmt.Errorf("gateway: Mount: body limit %d: want a positive number of bytes", m.bodyLimit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return ErrStarted
	}
	entry := s.routeEntry(class, m.bodyLimit)
	if m.streamed {
		entry = s.streamedEntry(class)
	}
	register(&classRouter{r: s.app, entry: entry, hook: m.hook})
	return nil
}

// MountOption changes how Mount registers a group of routes.
type MountOption func(*mountOptions)

type mountOptions struct {
	bodyLimit int64
	hook      RouteHook
	streamed  bool
}

// WithStreamedBody leaves the request bodies of one Mount call to its
// handlers, unread and unchecked by the edge body rule (package reqbody):
// any media type and encoding, no cap but the handler's own. For a route
// that relays a body as it arrives, as the Git proxy relays git's
// (application/x-git-upload-pack-request, often gzip'd, sometimes
// hundreds of MiB for a push). The handler reads c.Context()'s
// RequestBodyStream and must bound it itself: size, and time
// (ReadTimeout still bounds a stall; see Options.UploadMinRate).
func WithStreamedBody() MountOption {
	return func(m *mountOptions) { m.streamed = true }
}

// WithBodyLimit caps the request bodies of the routes of one Mount call at
// n bytes instead of Options.APIBodyLimit. For a route that really takes
// more than a few KiB; no built-in route does.
func WithBodyLimit(n int64) MountOption {
	return func(m *mountOptions) { m.bodyLimit = n }
}

// RouteHook is asked, for each route of a Mount call, for a handler to run
// after the gateway's entry handler and before the route's own; nil adds
// none. method is the registered method ("ALL" for All), path the full
// pattern with any Group prefix. It is asked once, at registration.
type RouteHook func(method, path string) fiber.Handler

// WithRouteHook puts hook's handlers in front of the routes of one Mount
// call: how the rate limits (package edge/ratelimit) reach exactly the
// routes of their table without a router of their own.
func WithRouteHook(hook RouteHook) MountOption {
	return func(m *mountOptions) { m.hook = hook }
}

// ListenAndServe listens on Options.Listen and serves until Shutdown.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("gateway: listening on %s: %w (is another process using the port? set Listen to a free address)", s.opts.Listen, err)
	}
	return s.Serve(ln)
}

// Serve serves on ln until Shutdown, then returns nil. On the first call it
// registers the proxy fallback after all mounted routes. ln is closed when
// Serve returns.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrClosed
	}
	if s.ln != nil {
		s.mu.Unlock()
		return errors.New("gateway: Serve called twice; one Server serves one listener")
	}
	if !s.started {
		s.started = true
		if s.proxy != nil {
			s.app.Use(s.serveProxy)
		}
	}
	s.ln = ln
	s.tracker.serve = s.app.Server().ServeConn // parked connections come back through it
	s.tracker.start()
	s.mu.Unlock()

	err := s.app.Listener(&trackingListener{Listener: ln, t: s.tracker})
	s.mu.Lock()
	shutdown := s.shutdown
	s.mu.Unlock()
	if shutdown {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gateway: serving on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown stops the server gracefully: it stops accepting connections,
// makes /readyz answer 503, closes idle keep-alive connections, and waits
// until in-flight requests (including relayed bodies still streaming) have
// finished or ctx is done. It then closes WebSocket tunnels, which are
// long-lived and would otherwise hold shutdown forever, and idle upstream
// connections. The caller closes the store after Shutdown returns.
//
// If ctx ends first, Shutdown returns ctx's error; requests still running
// are cut off when the process exits.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.mu.Lock()
	s.shutdown = true
	ln := s.ln
	s.mu.Unlock()

	s.tracker.drain() // parked connections are not fasthttp's to close
	err := s.app.ShutdownWithContext(ctx)
	if ln != nil {
		// fasthttp closes the listener it serves; this covers a Serve that
		// had not reached fasthttp yet when Shutdown was called.
		_ = ln.Close()
	}
	if s.proxy != nil {
		_ = s.proxy.Close()
	}
	s.tracker.close()
	if s.opts.accessBuf != nil {
		_ = s.opts.accessBuf.Close() // the Server's own; later lines write through
	}
	if err != nil {
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	return nil
}

// serveProxy is the fallback: everything no route claimed goes upstream.
func (s *Server) serveProxy(c *fiber.Ctx) error {
	if st := stateOf(c); st != nil {
		st.class = ClassProxy
	}
	if s.opts.Guard != nil {
		ok, err := s.opts.Guard(c)
		if err != nil || !ok {
			return err
		}
	}
	return s.proxy.Handler(c)
}

func (s *Server) healthz(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"status": "ok"})
}

// readyz answers 200 when Ready succeeds within ReadyTimeout, 503 otherwise
// (store_unavailable, or the answer Ready's *httperr.Error names), and 503
// shutting_down while draining so that load balancers stop sending new
// requests.
func (s *Server) readyz(c *fiber.Ctx) error {
	if s.draining.Load() {
		return httperr.New(http.StatusServiceUnavailable, httperr.CodeShuttingDown, "The gateway is shutting down")
	}
	if s.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.ReadyTimeout)
		defer cancel()
		if err := s.opts.Ready(ctx); err != nil {
			if he, ok := errors.AsType[*httperr.Error](err); ok {
				return httperr.Wrap(fmt.Errorf("readiness check: %w", err), he.Status, he.Code, he.Message)
			}
			return httperr.StoreUnavailable(fmt.Errorf("readiness check: %w", err), "The gateway cannot reach its store")
		}
		if ctx.Err() != nil {
			return httperr.StoreUnavailable(fmt.Errorf("readiness check took longer than %v", s.opts.ReadyTimeout), "The gateway cannot reach its store")
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"status": "ready"})
}

// peerAddr is the TCP peer's address (zero for non-IP connections): the
// one the connection tracker read at accept, or else read from the
// connection (fasthttp's RemoteIP asks the connection for its address and
// converts it on every call).
func peerAddr(c *fiber.Ctx) netip.Addr {
	if tc := asTracked(c.Context().Conn()); tc != nil && tc.peer.IsValid() {
		return tc.peer
	}
	a, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

func (s *Server) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range s.opts.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP walks X-Forwarded-For from the right, skipping trusted proxies,
// and returns the first address a trusted proxy vouched for. It is only
// called when the TCP peer is trusted; "" if there is no usable entry.
func clientIP(c *fiber.Ctx, s *Server) netip.Addr {
	// Several X-Forwarded-For lines form one list, in order.
	values := c.Request().Header.PeekAll(fiber.HeaderXForwardedFor)
	for i, steps := len(values)-1, 0; i >= 0; i-- {
		xff := string(values[i])
		for ; xff != "" && steps < 64; steps++ {
			entry := xff
			if j := strings.LastIndexByte(xff, ','); j >= 0 {
				entry, xff = xff[j+1:], xff[:j]
			} else {
				xff = ""
			}
			a, err := netip.ParseAddr(strings.TrimSpace(entry))
			if err != nil {
				return netip.Addr{}
			}
			a = a.Unmap()
			if !s.trusted(a) || (xff == "" && i == 0) {
				return a
			}
		}
	}
	return netip.Addr{}
}

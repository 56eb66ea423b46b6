// Package gateway is Arbor's HTTP front: a Fiber (fasthttp) server that
// gives every request an id, a JSON access log line and metrics, serves
// Arbor's own routes, and relays everything else to the upstream app through
// package proxy.
//
// # Wiring
//
//	srv, err := gateway.New(gateway.Options{Upstream: proxy.Upstream{URL: "http://127.0.0.1:3000"}, Ready: store.Ping})
//	srv.Mount(gateway.ClassAuth, func(r fiber.Router) { r.Get("/auth/login", login) })
//	go srv.ListenAndServe()            // or srv.Serve(ln)
//	…
//	srv.Shutdown(ctx)                  // drains; then close the store
//
// A request passes, in order: the entry middleware (request id, panic
// recovery, error rendering, access log, metrics), the built-in routes
// (/healthz, /readyz, /metrics; with Options.NoPublicMetrics /metrics is a
// 404 here and MetricsHandler serves it elsewhere), the routes registered
// with Mount, and
// finally the proxy, which Serve registers last so that no route added
// before it can be shadowed. Whether a request may reach the upstream is
// Options.Guard's decision, and identity headers for the upstream are added
// by Options.Director, which runs after the proxy has stripped every
// identity header the client sent; Arbor's are authz.Gate's (package
// gateway/authz).
//
// # Why it is built this way
//
// Handlers return errors and one function renders them (httperr): the JSON
// shape, the stable codes and the rule that internal error text is logged
// but never sent exist in one place. The entry middleware renders the error
// itself, before it logs, so that the access line carries the final status.
// Requests fasthttp rejects before any handler runs (headers over
// MaxHeaderBytes, malformed requests) reach Fiber's ErrorHandler instead,
// which renders and logs them the same way.
//
// Route classes (health, metrics, proxy, auth, api, other) label logs and
// metrics instead of paths, so that the number of time series stays fixed
// whatever URLs clients make up. The metric children for every class and
// status class are resolved once in NewMetrics: counting a request is a few
// atomic adds.
//
// Request ids: a client's X-Request-Id is adopted when it is a short token
// (so that a trace can cross Arbor), anything else is replaced by 128
// random bits. The id goes back in the response, to the upstream, into
// every access line, and into Logger(c) for handler logs.
//
// Bodies are streamed (Fiber's StreamRequestBody) so that the proxy can
// relay an upload as it arrives; Arbor's own routes get their body checked
// by package reqbody (no Content-Encoding, JSON or form only, capped at
// APIBodyLimit) before a handler can read it whole.
//
// # Why some things are hand-made
//
// The gateway is held to a budget measured by cmd/loadbench: within 1.25x
// the CPU per request, and 0.9x the throughput, of a bare Fiber proxy with
// no middleware. On the 2-core machine it is measured on, a system call or a
// timer update costs about as much as a whole handler, so:
//
//   - Client read and idle timeouts are enforced by connTracker, a sweeper
//     fed by fasthttp's connection-state hook, instead of fasthttp's
//     ReadTimeout and IdleTimeout, which update a read deadline twice per
//     request (see conntrack.go); the proxy does the same for the upstream
//     response-header timeout. The same sweeper holds request bodies and
//     responses to minimum transfer rates and counts connections per
//     address (slowclients.go; docs/edge.md), for a few atomic operations
//     per read and write.
//   - The access log goes through NewJSONHandler, a slog.Handler that writes
//     the same lines as slog's JSONHandler at a fraction of the cost, into a
//     BufferedWriter that batches lines like nginx's buffered access_log
//     instead of making a write(2) per request.
//   - The per-request state is one allocation that holds its own id, path
//     and address text.
//
// Each of these is covered by tests against the behavior it replaces
// (slogtest and a line-by-line comparison with slog's handler; timeout tests
// with real sockets).
//
// # Shutdown
//
// Shutdown stops accepting, makes /readyz answer 503 so load balancers
// stop sending, closes idle keep-alive connections and waits for in-flight
// requests, streamed bodies included, until its context ends. WebSocket
// tunnels are closed after that: they are long-lived and would hold
// shutdown until the deadline otherwise. The caller closes the store after
// Shutdown returns, because a request still draining may need it.
package gateway

package gateway

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
)

// HeaderRequestID carries the request id, in both directions and to the
// upstream.
const HeaderRequestID = "X-Request-Id"

var headerRequestID = []byte(HeaderRequestID)

// bufBytes views a string as bytes for fasthttp setters, which copy.
func bufBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// maxLoggedPath caps the path written to the access log.
const maxLoggedPath = 512

// stateKey is the Locals key of the per-request state.
type stateKey struct{}

// reqState is what the gateway knows about one request, from the first
// middleware to the last response byte. It is one allocation per request:
// the id and the logged path live in its own arrays, and the strings handed
// out point into them (they are written
// once, before any string is made, and the strings keep the state alive for
// as long as they are referenced).
type reqState struct {
	srv    *Server
	id     string
	class  RouteClass
	start  time.Time
	method string
	path   string
	peer   netip.Addr
	client string // client IP from a trusted proxy's X-Forwarded-For, if any
	// clientAddr is client parsed: what ClientAddr returns without a
	// string round trip (the rate limits ask on every credentialed request).
	clientAddr netip.Addr
	status     int
	errCode    string
	logger     *slog.Logger

	// streaming is set when a relayed body is still to be written after the
	// handler returns; the request is then accounted for at the body's end.
	streaming bool

	// Set by finish, for the access log line.
	bytes       int64
	duration    time.Duration
	upstreamErr error
	clientErr   error

	idBuf   [32]byte
	pathBuf [96]byte
}

// bufString returns the bytes b (which live in the state) as a string
// without copying them.
func bufString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func stateOf(c *fiber.Ctx) *reqState {
	st, _ := c.Locals(stateKey{}).(*reqState)
	return st
}

// RequestID returns the current request's id: the client's X-Request-Id if
// it was a sane token, otherwise one the gateway generated. It is empty only
// outside a gateway request.
func RequestID(c *fiber.Ctx) string {
	if st := stateOf(c); st != nil {
		// A copy: the state, and the id's bytes in it, serve the
		// connection's next request.
		return strings.Clone(st.id)
	}
	return ""
}

// Logger returns the gateway's logger with the request id attached, so that
// every line a handler logs can be joined with the access log line.
func Logger(c *fiber.Ctx) *slog.Logger {
	st := stateOf(c)
	if st == nil {
		return slog.Default()
	}
	if st.logger == nil {
		st.logger = st.srv.logger.With(slog.String("request_id", strings.Clone(st.id)))
	}
	return st.logger
}

// newRequestID writes 128 random bits as 32 hex digits into dst.
// math/rand/v2's global source is ChaCha8, seeded by the runtime:
// unpredictable enough for correlation ids and far cheaper than a
// crypto/rand call per request.
func newRequestID(dst *[32]byte) {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	hex.Encode(dst[:], b[:])
}

// saneRequestID reports whether a client-supplied id may be adopted: 1 to
// 64 characters from [A-Za-z0-9._:+/=@-]. Anything else (too long, spaces,
// control characters, quotes) is replaced, so that a client cannot inject
// into logs or make ids ambiguous.
func saneRequestID(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '+', c == '/', c == '=', c == '@':
		default:
			return false
		}
	}
	return true
}

// internMethod returns a constant for the standard methods, so the state
// does not keep a string that aliases fasthttp's reusable buffers.
func internMethod(m string) string {
	for _, k := range stdMethods {
		if m == k {
			return k
		}
	}
	return strings.Clone(m)
}

// stdMethods are the methods internMethod returns as constants, the most
// common first.
var stdMethods = [...]string{
	fiber.MethodGet, fiber.MethodPost, fiber.MethodHead, fiber.MethodPut, fiber.MethodDelete,
	fiber.MethodPatch, fiber.MethodOptions, fiber.MethodConnect, fiber.MethodTrace,
}

// setPath records the path for the access log: without the query string
// (which can carry codes, tokens and other secrets), copied (Fiber's string
// points into a buffer that is reused) and capped.
func (st *reqState) setPath(p string) {
	if len(p) <= len(st.pathBuf) {
		st.path = bufString(st.pathBuf[:copy(st.pathBuf[:], p)])
		return
	}
	if len(p) > maxLoggedPath {
		st.path = p[:maxLoggedPath] + "…"
		return
	}
	st.path = strings.Clone(p)
}

// newState starts the accounting of one request.
func (s *Server) newState(c *fiber.Ctx, trustClientID bool) *reqState {
	start := c.Context().Time() // taken by fasthttp when the headers were read
	if start.IsZero() {
		start = time.Now()
	}
	// One state per connection, reused by its requests: fasthttp serves a
	// connection's requests one after the other, and a request's state is
	// done with (its access log line written, a relayed body's end
	// included) before the next request is read. A hijacked connection
	// serves no further request. What leaves the request (RequestID,
	// Logger) is copied out. Connections the tracker does not know get a
	// state of their own.
	var st *reqState
	tc := asTracked(c.Context().Conn())
	if tc != nil {
		if tc.st == nil {
			tc.st = new(reqState)
		}
		st = tc.st
		*st = reqState{}
	} else {
		st = new(reqState)
	}
	st.srv, st.start, st.method, st.peer = s, start, internMethod(c.Method()), peerAddr(c)
	st.setPath(c.Path())
	if trustClientID {
		if in := c.Request().Header.Peek(HeaderRequestID); saneRequestID(in) {
			st.id = string(in)
		}
	}
	if st.id == "" {
		newRequestID(&st.idBuf)
		st.id = bufString(st.idBuf[:])
	}
	if s.trusted(st.peer) {
		if st.clientAddr = clientIP(c, s); st.clientAddr.IsValid() {
			st.client = st.clientAddr.String()
		}
	}
	s.metrics.InFlight.Inc()
	return st
}

// observe is the entry middleware: it assigns the request id, runs the
// rest of the chain, renders any error with the one error handler, and
// writes the access log line and metrics, unless a relayed body is still to
// be streamed, in which case that happens when the body ends.
func (s *Server) observe(c *fiber.Ctx) error {
	handling(c.Context().Conn())
	st := s.newState(c, true)
	c.Locals(stateKey{}, st)

	if err := s.next(c); err != nil {
		s.renderError(c, st, err)
	}
	c.Response().Header.SetCanonical(headerRequestID, bufBytes(st.id))
	s.setHSTS(c)
	st.status = c.Response().StatusCode()
	if st.streaming {
		return nil
	}
	s.finish(st, int64(len(c.Response().Body())), nil, nil)
	return nil
}

// next runs the rest of the chain and turns a panic into a 500, so that a
// bug in one handler costs one request, not the process.
func (s *Server) next(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = httperr.Internal(fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	return c.Next()
}

// StreamDone implements proxy.StreamObserver: the relayed body has ended.
func (st *reqState) StreamDone(written int64, upstreamErr, clientErr error) {
	st.srv.finish(st, written, upstreamErr, clientErr)
}

// finish records metrics and writes the access log line.
func (s *Server) finish(st *reqState, bytes int64, upstreamErr, clientErr error) {
	now := time.Now()
	d := now.Sub(st.start)
	sc := statusClassIndex(st.status)
	s.metrics.requests[st.class][sc].Inc()
	s.metrics.duration[st.class][sc].Observe(d.Seconds())
	s.metrics.InFlight.Dec()
	if upstreamErr != nil {
		s.metrics.upstreamError(UpstreamAborted)
	}

	level := slog.LevelInfo
	if st.status >= 500 || upstreamErr != nil {
		level = slog.LevelWarn
	}
	ctx := context.Background()
	h := s.access.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	st.bytes, st.duration, st.upstreamErr, st.clientErr = bytes, d, upstreamErr, clientErr
	// Straight to the handler: Logger.LogAttrs would also capture the
	// caller's program counter (runtime.Callers) for every line. The state
	// is the one attribute, with an empty key: as a slog.LogValuer it
	// resolves to a group that handlers inline, so the line stays flat; the
	// gateway's own handler has it write its fields directly.
	r := slog.NewRecord(now, level, "request", 0)
	r.AddAttrs(slog.Any("", st))
	_ = h.Handle(ctx, r)
}

// LogValue implements slog.LogValuer: the access log line's attributes.
// appendJSONAttrs must write the same.
func (st *reqState) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String("request_id", st.id),
		slog.String("method", st.method),
		slog.String("route", st.class.String()),
		slog.String("path", st.path),
		slog.Int("status", st.status),
		slog.Int64("duration_us", st.duration.Microseconds()),
		slog.Int64("bytes", st.bytes),
		slog.String("remote_ip", st.peerString()),
	)
	if st.client != "" {
		attrs = append(attrs, slog.String("client_ip", st.client))
	}
	if st.errCode != "" {
		attrs = append(attrs, slog.String("error", st.errCode))
	}
	if st.upstreamErr != nil {
		attrs = append(attrs, slog.String("upstream_error", st.upstreamErr.Error()))
	}
	if st.clientErr != nil {
		attrs = append(attrs, slog.String("client_error", st.clientErr.Error()))
	}
	return slog.GroupValue(attrs...)
}

// appendJSONAttrs writes LogValue's attributes as JSON pairs, each followed
// by a comma, for the gateway's JSON handler.
func (st *reqState) appendJSONAttrs(b []byte) []byte {
	b = append(b, `"request_id":`...)
	b = appendString(b, st.id)
	b = append(b, `,"method":`...)
	b = appendString(b, st.method)
	b = append(b, `,"route":`...)
	b = appendString(b, st.class.String())
	b = append(b, `,"path":`...)
	b = appendString(b, st.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(st.status), 10)
	b = append(b, `,"duration_us":`...)
	b = strconv.AppendInt(b, st.duration.Microseconds(), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, st.bytes, 10)
	b = append(b, `,"remote_ip":"`...)
	if st.peer.IsValid() {
		b = st.peer.AppendTo(b)
	} else {
		b = append(b, "unknown"...)
	}
	b = append(b, '"', ',')
	if st.client != "" {
		b = append(b, `"client_ip":`...)
		b = append(appendString(b, st.client), ',')
	}
	if st.errCode != "" {
		b = append(b, `"error":`...)
		b = append(appendString(b, st.errCode), ',')
	}
	if st.upstreamErr != nil {
		b = append(b, `"upstream_error":`...)
		b = append(appendString(b, st.upstreamErr.Error()), ',')
	}
	if st.clientErr != nil {
		b = append(b, `"client_error":`...)
		b = append(appendString(b, st.clientErr.Error()), ',')
	}
	return b
}

// peerString is the peer address as text.
func (st *reqState) peerString() string {
	if !st.peer.IsValid() {
		return "unknown"
	}
	return st.peer.String()
}

// renderError is the single place that answers an error: it classifies it,
// counts upstream failures, logs the cause with the request id, and writes
// the JSON (or HTML) body.
func (s *Server) renderError(c *fiber.Ctx, st *reqState, err error) {
	e := httperr.From(err)
	st.errCode = e.Code
	switch e.Code {
	case httperr.CodeUpstreamUnavailable:
		s.metrics.upstreamError(UpstreamUnavailable)
	case httperr.CodeUpstreamTimeout:
		s.metrics.upstreamError(UpstreamTimeout)
	}
	httperr.Log(context.Background(), s.logger, e, st.id)
	if rerr := httperr.RenderPage(c, e, st.id, s.opts.ErrorPage); rerr != nil {
		s.logger.Error("writing an error response failed", slog.String("request_id", st.id), slog.String("cause", rerr.Error()))
	}
}

// fiberErrorHandler is Fiber's ErrorHandler. Errors from routes never get
// here (observe renders them); what does is a request fasthttp rejected
// before any handler ran (malformed, headers over MaxHeaderBytes, read
// timeout), so it is given a fresh id and accounted for here.
func (s *Server) fiberErrorHandler(c *fiber.Ctx, err error) error {
	if st := stateOf(c); st != nil {
		s.renderError(c, st, err)
		return nil
	}
	st := s.newState(c, false)
	s.renderError(c, st, err)
	c.Response().Header.SetCanonical(headerRequestID, bufBytes(st.id))
	s.setHSTS(c)
	st.status = c.Response().StatusCode()
	s.finish(st, int64(len(c.Response().Body())), nil, nil)
	return nil
}

// headerHSTS is Strict-Transport-Security, canonical.
var headerHSTS = []byte("Strict-Transport-Security")

// setHSTS sets Options.HSTS on an answer over TLS. SetCanonical copies into
// the response's reused header storage: no allocation per request.
func (s *Server) setHSTS(c *fiber.Ctx) {
	if s.opts.hsts != nil && c.Context().IsTLS() {
		c.Response().Header.SetCanonical(headerHSTS, s.opts.hsts)
	}
}

// routeEntry starts the handler chain of every route mounted with Mount:
// it labels the request and applies the edge body rule (reqbody.Check) with
// the route's cap.
func (s *Server) routeEntry(class RouteClass, bodyLimit int64) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if st := stateOf(c); st != nil {
			st.class = class
		}
		// The server streams request bodies (so that the proxy can relay
		// uploads), and reading a streamed body would read it whole however
		// large: Check reads it here, up to the cap, within ReadTimeout.
		if err := reqbody.Check(c, bodyLimit, s.opts.ReadTimeout); err != nil {
			return err
		}
		return c.Next()
	}
}

// streamedEntry is routeEntry for a Mount with WithStreamedBody: the label
// only, the body left to the handler.
func (s *Server) streamedEntry(class RouteClass) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if st := stateOf(c); st != nil {
			st.class = class
		}
		return c.Next()
	}
}

// ClientAddr is ClientIP unformatted: the client's address, or the zero
// Addr outside a gateway request. It allocates nothing.
func ClientAddr(c *fiber.Ctx) netip.Addr {
	st := stateOf(c)
	if st == nil {
		return netip.Addr{}
	}
	if st.clientAddr.IsValid() {
		return st.clientAddr
	}
	return st.peer
}

// ClientIP returns the client's address: the one a trusted proxy vouched
// for in X-Forwarded-For, else the TCP peer. Empty outside a gateway request.
func ClientIP(c *fiber.Ctx) string {
	st := stateOf(c)
	if st == nil {
		return ""
	}
	if st.client != "" {
		return st.client
	}
	if st.peer.IsValid() {
		return st.peer.String()
	}
	return ""
}

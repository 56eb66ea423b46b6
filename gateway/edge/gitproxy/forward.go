package gitproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/edge/proxy"
)

// relayedRequestHeaders are the only client headers a Git host sees:
// what smart HTTP needs, and git's User-Agent (hosts tell smart clients by
// it).
var relayedRequestHeaders = []string{"Git-Protocol", "Content-Type", "Content-Encoding", "Accept", "Accept-Encoding", "User-Agent"}

// relayedResponseHeaders are the only Git host headers the client sees.
var relayedResponseHeaders = []string{"Content-Type", "Content-Encoding"}

// forward sends req to the Git host at base with the provider token, and
// relays the answer: a 200 streamed, anything else as an error of Arbor's
// (the host's body is not relayed: it may be HTML, or name the account).
func (p *Proxy) forward(c *fiber.Ctx, req request, id authn.Identity, base, user, token string, limit int64, held *slot) error {
	u, err := upstreamURL(base, req)
	if err != nil {
		return transportError(req, err, false, limit)
	}
	ctx, cancel := context.WithCancel(context.Background())
	method, in := http.MethodGet, (*requestBody)(nil)
	var body io.Reader
	if !req.refs {
		method = http.MethodPost
		fr := c.Request()
		var r io.Reader
		if fr.IsBodyStream() {
			r = fr.BodyStream()
		} else {
			r = bytes.NewReader(fr.Body())
		}
		in = &requestBody{r: r, ctx: c.Context(), limit: limit, timeout: p.cfg.ClientReadTimeout}
		body = in
	}
	hreq, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		cancel()
		return transportError(req, err, false, limit)
	}
	if in != nil {
		hreq.ContentLength = int64(c.Request().Header.ContentLength())
		if hreq.ContentLength < 0 {
			hreq.ContentLength = -1 // chunked
		}
		// The transport may still read the body after RoundTrip returned;
		// in.detach stops it before fasthttp reuses the request.
	}
	for _, h := range relayedRequestHeaders {
		if v := c.Request().Header.Peek(h); len(v) > 0 {
			hreq.Header.Set(h, string(v))
		}
	}
	hreq.SetBasicAuth(user, token)

	start := time.Now()
	res, err := p.rt.RoundTrip(hreq)
	if err != nil {
		cancel()
		tooBig := in != nil && in.detach()
		return transportError(req, err, tooBig, limit)
	}
	if res.StatusCode != http.StatusOK {
		_, _ = io.CopyN(io.Discard, res.Body, 64<<10) // let the connection be reused
		_ = res.Body.Close()
		cancel()
		if in != nil {
			in.detach()
		}
		e := p.statusError(req, res)
		p.log(c).Warn("git host refused the request", "error", e.Code, "status", res.StatusCode,
			"credential", id.WorkerID, "user_id", id.UserID, "provider", req.provider, "repo", req.repo, "service", req.service)
		return e
	}
	out := c.Response()
	for _, h := range relayedResponseHeaders {
		if v := res.Header.Get(h); v != "" {
			out.Header.Set(h, v)
		}
	}
	out.Header.Set(fiber.HeaderCacheControl, "no-cache, max-age=0, must-revalidate")
	if n := res.ContentLength; n >= 0 && n <= smallBody {
		// A small answer of known length (an advertisement, an error in
		// pkt-lines) is read whole and answered as an ordinary body, as
		// the reverse proxy does: the host's connection is free at once.
		return p.relaySmall(c, req, id, res, cancel, in, n)
	}
	size := int(res.ContentLength)
	if res.ContentLength < 0 {
		size = -1
		out.ImmediateHeaderFlush = true
	}
	// The body is written after the handler returned, when c is no longer
	// the request's: take what CloseWithError needs now.
	log := p.log(c)
	ob := &responseBody{
		r: res.Body, in: in, cancel: cancel, stallAfter: p.cfg.BodyStallTimeout, release: held.take(),
		done: func(n int64, upErr, clientErr error) {
			attrs := []any{"credential", id.WorkerID, "provider", req.provider, "repo", req.repo,
				"service", req.service, "refs", req.refs, "bytes", n, "duration_ms", time.Since(start).Milliseconds()}
			switch {
			case upErr != nil:
				log.Warn("the Git host's answer broke off", append(attrs, "err", upErr)...)
			case clientErr != nil:
				log.Info("the Git client went away", append(attrs, "err", clientErr)...)
			default:
				log.Debug("git request relayed", attrs...)
			}
		},
	}
	ob.stall = time.AfterFunc(ob.stallAfter, func() { ob.stalled.Store(true); cancel() })
	ob.obs = gateway.ObserveStream(c)
	out.SetBodyStream(ob, size)
	return nil
}

// requestBody relays the client's request body as the Git host reads it:
// capped at limit, and keeping the client connection's read deadline
// moving while bytes come (the gateway's read timeout then bounds a
// stall, not a long push), as the reverse proxy's requestBody does.
//
// The transport may read it from its own goroutine, even after RoundTrip
// returned; detach makes every later Read fail, so that nothing reads
// fasthttp's request once the exchange is over.
type requestBody struct {
	mu       sync.Mutex
	r        io.Reader
	ctx      *fasthttp.RequestCtx
	limit    int64
	n        int64
	timeout  time.Duration
	extended time.Time
	tooLarge bool
	detached bool
}

var (
	errBodyTooLarge = errors.New("gitproxy: the request body is over the limit")
	errDetached     = errors.New("gitproxy: the exchange is over")
)

func (b *requestBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.detached:
		return 0, errDetached
	case b.tooLarge:
		return 0, errBodyTooLarge
	}
	if room := b.limit - b.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	if b.timeout > 0 {
		if now := time.Now(); now.Sub(b.extended) > b.timeout/4 {
			b.extended = now
			_ = b.ctx.SetReadDeadline(now.Add(b.timeout))
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		b.tooLarge = true
		return 0, errBodyTooLarge
	}
	return n, err
}

// detach ends reading (waiting for a Read in progress) and reports
// whether the body went over the limit.
func (b *requestBody) detach() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.detached = true
	return b.tooLarge
}

// responseBody relays the Git host's response body to the client. A
// stall of stallAfter cancels the exchange. fasthttp calls CloseWithError
// once the body is written or writing failed.
type responseBody struct {
	r          io.ReadCloser
	in         *requestBody
	cancel     context.CancelFunc
	stallAfter time.Duration
	stall      *time.Timer
	stalled    atomic.Bool
	obs        proxy.StreamObserver
	done       func(n int64, upErr, clientErr error)
	release    func() // the request's slot under Config.MaxPerClient; nil: none
	n          int64
	upErr      error
	closed     bool
}

func (b *responseBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if n > 0 {
		b.stall.Reset(b.stallAfter)
	}
	if err != nil && err != io.EOF && b.upErr == nil {
		b.upErr = err
		if b.stalled.Load() {
			b.upErr = errors.New("gitproxy: the Git host's response stalled")
		}
	}
	return n, err
}

// CloseWithError is fasthttp's end of the body (it does not implement
// io.Closer too: fasthttp would call both).
func (b *responseBody) CloseWithError(werr error) error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.stall.Stop()
	b.cancel()
	_ = b.r.Close()
	if b.in != nil {
		b.in.detach()
	}
	clientErr := werr
	if clientErr != nil && b.upErr != nil {
		clientErr = nil // the write failed because the read did
	}
	if b.release != nil {
		b.release()
	}
	b.done(b.n, b.upErr, clientErr)
	if b.obs != nil {
		b.obs.StreamDone(b.n, b.upErr, clientErr)
	}
	return nil
}

// smallBody is the largest answer of known length read whole.
const smallBody = 8 << 10

func (p *Proxy) relaySmall(c *fiber.Ctx, req request, id authn.Identity, res *http.Response, cancel context.CancelFunc, in *requestBody, n int64) error {
	defer cancel()
	if in != nil {
		defer in.detach()
	}
	buf := make([]byte, n)
	_, err := io.ReadFull(res.Body, buf)
	_ = res.Body.Close()
	if err != nil {
		c.Response().Reset()
		return transportError(req, fmt.Errorf("reading a %d-byte answer: %w", n, err), false, 0)
	}
	c.Response().SetBody(buf)
	p.log(c).Debug("git request relayed", "credential", id.WorkerID, "provider", req.provider, "repo", req.repo,
		"service", req.service, "refs", req.refs, "bytes", n)
	return nil
}

package proxy

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// exchange is the per-request state of one proxied request: the request
// body adapter and scratch buffers. It is pooled; it lives until the
// response body has been relayed (which is after the handler returns, for
// streamed bodies: see upstreamBody).
type exchange struct {
	p  *Proxy
	in requestBody
	// resp holds the upstream's answer to a WebSocket handshake, only
	// while serveWebSocket reads it (left empty for the pool).
	resp fasthttp.Response

	scratch []byte
	tokens  tokenList
	del     nameList

	// Values of forwarding headers from a trusted proxy, copied before the
	// headers are deleted and rewritten.
	xff, proto, fhost []byte

	// slot is the client's MaxPerClient slot; the zero Slot if none.
	slot Slot
}

var exchangePool = sync.Pool{New: func() any {
	return &exchange{}
}}

func (p *Proxy) acquire() *exchange {
	x := exchangePool.Get().(*exchange) //nolint:forcetypeassert // pool holds only *exchange
	x.p = p
	return x
}

func (x *exchange) release() {
	x.slot.Release()
	x.slot = Slot{}
	x.in = requestBody{}
	x.p = nil
	// Drop buffers that a rare huge request grew, instead of pooling them.
	if cap(x.scratch) > 4096 {
		x.scratch = nil
	}
	if cap(x.xff) > 4096 {
		x.xff = nil
	}
	exchangePool.Put(x)
}

// errBodyTooLarge is returned by requestBody once the client has sent more
// than the body limit.
var errBodyTooLarge = errors.New("request body exceeds the configured limit")

// requestBody relays the client's request body to the upstream as it
// arrives. It enforces the body limit for bodies of unknown length (chunked
// uploads; a declared Content-Length over the limit is refused before the
// upstream is contacted) and keeps the client connection's read deadline
// moving while data flows, so that ReadTimeout bounds a stall, not a long
// upload.
type requestBody struct {
	r        io.Reader
	ctx      *fasthttp.RequestCtx
	limit    int64 // < 0: unlimited
	n        int64
	timeout  time.Duration
	extended time.Time
	tooLarge bool
	err      error // first read error from the client
}

func (b *requestBody) Read(p []byte) (int, error) {
	if b.tooLarge {
		return 0, errBodyTooLarge
	}
	if b.limit >= 0 {
		// Read at most one byte past the limit: enough to tell "exactly at
		// the limit" from "over it".
		if room := b.limit - b.n + 1; int64(len(p)) > room {
			p = p[:room]
		}
	}
	if b.timeout > 0 {
		now := time.Now()
		if now.Sub(b.extended) > b.timeout/4 {
			b.extended = now
			_ = b.ctx.SetReadDeadline(now.Add(b.timeout))
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.limit >= 0 && b.n > b.limit {
		b.tooLarge = true
		return 0, errBodyTooLarge
	}
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// Close does nothing: the server owns the client's body stream and drains or
// discards what is left of it after the handler.
func (b *requestBody) Close() error { return nil }

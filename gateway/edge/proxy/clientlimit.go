package proxy

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/httperr"
)

// CodeTooManyConcurrent is the error code of a request refused because its
// client already has MaxPerClient requests (and WebSocket tunnels) holding
// an upstream connection. It is answered 429 with Retry-After.
const CodeTooManyConcurrent = "too_many_concurrent_requests"

// clientRetryAfter is the Retry-After, in seconds, of a refused request:
// a slot frees as soon as one of the client's requests ends.
const clientRetryAfter = 1

// ClientLimiter counts, per client address, the requests and tunnels that
// hold an upstream connection, so that one client cannot take the whole
// upstream pool (MaxConns) and leave every other client waiting for a
// connection until the dial timeout answers 502.
//
// # Why a count and not a share of time
//
// The resource is connections, held for as long as a request lasts: a
// slow uploader or reader holds one for minutes while sending almost
// nothing, so a rate limit on requests would not see it. The count is
// taken before the upstream is contacted and returned when the exchange
// ends (the response body relayed, the tunnel closed).
//
// Memory is one map entry per client with a request in flight. The map is
// split in shards, each with its own lock, so that concurrent requests
// from different clients rarely wait on one another; an acquire or release
// is a lock and a map operation, about 50 ns.
type ClientLimiter struct {
	max    int32
	shards [16]limiterShard
}

type limiterShard struct {
	mu sync.Mutex
	m  map[netip.Addr]int32
	_  [40]byte // keep shards on separate cache lines
}

// NewClientLimiter allows max slots per client; nil (no cap) for max <= 0.
// The reverse proxy uses one for Config.MaxPerClient, the Git proxy
// another for its own cap (gateway/edge/gitproxy).
func NewClientLimiter(max int) *ClientLimiter {
	if max <= 0 {
		return nil
	}
	l := &ClientLimiter{max: int32(max)}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]int32)
	}
	return l
}

func (l *ClientLimiter) shard(a netip.Addr) *limiterShard {
	b := a.As16()
	h := b[15] ^ b[14] ^ b[13] ^ b[12] ^ b[7] ^ b[6]
	return &l.shards[h&15]
}

// Acquire takes a slot for a (a ClientKey); false when a has none left.
func (l *ClientLimiter) Acquire(a netip.Addr) bool {
	s := l.shard(a)
	s.mu.Lock()
	n := s.m[a]
	if n >= l.max {
		s.mu.Unlock()
		return false
	}
	s.m[a] = n + 1
	s.mu.Unlock()
	return true
}

// Release returns a slot Acquire took for a.
func (l *ClientLimiter) Release(a netip.Addr) {
	s := l.shard(a)
	s.mu.Lock()
	if n := s.m[a] - 1; n > 0 {
		s.m[a] = n
	} else {
		delete(s.m, a)
	}
	s.mu.Unlock()
}

// clients reports the number of addresses holding a slot (for tests).
func (l *ClientLimiter) clients() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// ClientKey is the key every per-client bound of the edge counts a client
// under (this cap, the per-address connection cap, the rate limits): the
// address, an IPv4-mapped one unmapped, without a zone, and an IPv6
// address by its /64 (one subscriber usually holds a whole /64, and could
// otherwise use a fresh address per request).
func ClientKey(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// peerKey is the default ClientAddr: the TCP peer.
func peerKey(c *fiber.Ctx) netip.Addr {
	a, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	return a
}

// admit takes the client's slot for x, or returns the 429 to answer.
func (p *Proxy) admit(c *fiber.Ctx, x *exchange) error {
	if p.limiter == nil {
		return nil
	}
	a := p.clientAddr(c)
	if !a.IsValid() {
		return nil
	}
	a = ClientKey(a)
	if !p.limiter.Acquire(a) {
		p.refusedClient.Add(1)
		c.Response().Header.Set(fiber.HeaderRetryAfter, strconv.Itoa(clientRetryAfter))
		return httperr.New(http.StatusTooManyRequests, CodeTooManyConcurrent,
			"Too many requests from your address are in progress; retry when one has finished")
	}
	x.slot = a
	return nil
}

// Refused reports how many requests the per-client cap refused.
func (p *Proxy) Refused() uint64 { return p.refusedClient.Load() }

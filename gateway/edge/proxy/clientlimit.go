package proxy

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

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
// Memory is one entry per client with a request in flight or, through a
// Pin, a connection open. The entries are kept in a map split in shards,
// each with its own lock, so that concurrent requests from different
// clients rarely wait on one another.
//
// # Pins: a slot without the map
//
// Taking a slot through the map is a lock and a lookup, and so is giving
// it back; every request from one client takes the same shard's lock, so
// on a busy gateway the two cores pass that lock and the map's memory back
// and forth on each request (about 0.5 µs of CPU per proxied request,
// measured with perf). A connection's requests all count for its peer,
// unless a trusted proxy names another client, so the gateway pins the
// peer's entry when it accepts a connection (Pin) and unpins it when the
// connection closes: a request that counts for the peer takes and returns
// its slot with one atomic operation each on the pinned entry (Pin.Acquire,
// Slot.Release). The count is the same entry's either way, so the cap is
// the same whichever path a request takes.
type ClientLimiter struct {
	max    int32
	shards [16]limiterShard
}

type limiterShard struct {
	mu   sync.Mutex
	m    map[netip.Addr]*clientEntry
	free []*clientEntry // dropped entries for reuse, at most maxFree
	_    [16]byte       // keep shards on separate cache lines
}

// maxFree bounds a shard's free list: entries come and go with clients
// whose count falls to zero between requests (those behind a trusted
// proxy, the Git proxy's), and reusing them keeps such a request from
// allocating.
const maxFree = 16

// clientEntry is one client's count. n and pins change without the shard's
// lock only while something holds the entry (a slot, a pin); an entry is
// created, reused and deleted under the lock, and deleted only when neither
// is held (drop), so that no one can take a slot on an entry that has left
// the map.
type clientEntry struct {
	n    atomic.Int32 // slots taken
	pins atomic.Int32 // connections holding the entry (Pin)
	max  int32
	s    *limiterShard // never changes
	key  netip.Addr    // written under s.mu
}

// take counts one more slot unless max are taken.
func (e *clientEntry) take() bool {
	for {
		n := e.n.Load()
		if n >= e.max {
			return false
		}
		if e.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// drop deletes e from its shard if nothing holds it any longer. Called by
// whoever brought n or pins to zero; it checks again under the lock, since
// a slot or a pin may have been taken since.
func (e *clientEntry) drop() {
	s := e.s
	s.mu.Lock()
	if e.n.Load() == 0 && e.pins.Load() == 0 && s.m[e.key] == e {
		delete(s.m, e.key)
		if len(s.free) < maxFree {
			s.free = append(s.free, e)
		}
	}
	s.mu.Unlock()
}

// entryLocked returns a's entry, created if there is none. Called with
// s.mu held.
func (l *ClientLimiter) entryLocked(s *limiterShard, a netip.Addr) *clientEntry {
	if e := s.m[a]; e != nil {
		return e
	}
	var e *clientEntry
	if n := len(s.free); n > 0 {
		e, s.free[n-1] = s.free[n-1], nil
		s.free = s.free[:n-1]
	} else {
		e = &clientEntry{max: l.max, s: s}
	}
	e.key = a
	s.m[a] = e
	return e
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
		l.shards[i].m = make(map[netip.Addr]*clientEntry)
	}
	return l
}

func (l *ClientLimiter) shard(a netip.Addr) *limiterShard {
	b := a.As16()
	h := b[15] ^ b[14] ^ b[13] ^ b[12] ^ b[7] ^ b[6]
	return &l.shards[h&15]
}

// A Slot is a request's (or a WebSocket tunnel's) place under the cap. The
// zero Slot holds none.
type Slot struct{ e *clientEntry }

// Release gives the slot back; the zero Slot does nothing. Each Slot is
// released once.
func (s Slot) Release() {
	e := s.e
	if e == nil {
		return
	}
	if e.n.Add(-1) == 0 && e.pins.Load() == 0 {
		e.drop()
	}
}

// Acquire takes a slot for a (a ClientKey) through the map; ok is false
// when a has none left.
func (l *ClientLimiter) Acquire(a netip.Addr) (slot Slot, ok bool) {
	s := l.shard(a)
	s.mu.Lock()
	e := l.entryLocked(s, a)
	ok = e.take() // a new entry has none taken and max >= 1: never left empty in the map
	s.mu.Unlock()
	if !ok {
		return Slot{}, false
	}
	return Slot{e}, true
}

// A Pin holds a client's entry for a connection from it; the zero Pin
// holds none. See ClientLimiter.
type Pin struct{ e *clientEntry }

// Pin holds a's entry (a ClientKey) until Unpin. A nil ClientLimiter (no
// cap) or an invalid a gives the zero Pin.
func (l *ClientLimiter) Pin(a netip.Addr) Pin {
	if l == nil || !a.IsValid() {
		return Pin{}
	}
	s := l.shard(a)
	s.mu.Lock()
	e := l.entryLocked(s, a)
	e.pins.Add(1)
	s.mu.Unlock()
	return Pin{e}
}

// Unpin lets the entry go; the zero Pin does nothing. Each Pin is unpinned
// once. Slots taken through it stay valid.
func (p Pin) Unpin() {
	e := p.e
	if e == nil {
		return
	}
	if e.pins.Add(-1) == 0 && e.n.Load() == 0 {
		e.drop()
	}
}

// For reports whether p holds the entry of a (a ClientKey).
func (p Pin) For(a netip.Addr) bool { return p.e != nil && p.e.key == a }

// Acquire takes a slot on the pinned entry, without the map: one atomic
// operation. ok is false when the client has none left.
func (p Pin) Acquire() (slot Slot, ok bool) {
	if !p.e.take() {
		return Slot{}, false
	}
	return Slot{p.e}, true
}

// Clients reports the number of clients (keys) holding a slot or a pin.
func (l *ClientLimiter) Clients() int {
	if l == nil {
		return 0
	}
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
	var slot Slot
	var ok bool
	if pin := p.connPin(c); pin.For(a) {
		slot, ok = pin.Acquire()
	} else {
		slot, ok = p.limiter.Acquire(a)
	}
	if !ok {
		p.refusedClient.Add(1)
		c.Response().Header.Set(fiber.HeaderRetryAfter, strconv.Itoa(clientRetryAfter))
		return httperr.New(http.StatusTooManyRequests, CodeTooManyConcurrent,
			"Too many requests from your address are in progress; retry when one has finished")
	}
	x.slot = slot
	return nil
}

// noPin is the default ConnPin: no connection holds a pin.
func noPin(*fiber.Ctx) Pin { return Pin{} }

// PinClient pins the entry of a connection's peer (any address; it is
// keyed with ClientKey) in the per-client cap, for Config.ConnPin; the
// zero Pin without a cap. Unpin it when the connection closes.
func (p *Proxy) PinClient(peer netip.Addr) Pin {
	return p.limiter.Pin(ClientKey(peer)) // the zero Addr keys to itself: the zero Pin
}

// Clients reports the number of clients (ClientKey) with a request or
// tunnel holding a slot of the per-client cap, or a connection holding a
// pin: the cap's memory, one small entry each.
func (p *Proxy) Clients() int { return p.limiter.Clients() }

// Refused reports how many requests the per-client cap refused.
func (p *Proxy) Refused() uint64 { return p.refusedClient.Load() }

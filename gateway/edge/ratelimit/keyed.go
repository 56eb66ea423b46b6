package ratelimit

import (
	"github.com/vintner/arbor/gateway/edge/proxy"

	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// shards splits a Keyed limiter's map so that concurrent requests from
// different addresses rarely wait for the same lock.
const shards = 16

// Keyed is a set of token buckets, one per client address, with a fixed
// capacity. When a shard is full, the least recently used bucket is
// dropped to make room.
//
// Dropping a bucket can only ever favour its client: a bucket that is not
// in the map behaves as a full one, and a bucket not used for a while has
// refilled already. An address that is being limited keeps its partly
// drained bucket until Capacity other addresses have come (to its shard)
// after its last request; the docs (docs/edge.md) size Capacity so that
// this takes far more addresses than an attacker who had them would need.
//
// A Keyed is safe for concurrent use.
type Keyed struct {
	limit  rate.Limit
	burst  int
	seed   maphash.Seed
	shards []shard
}

type shard struct {
	mu    sync.Mutex
	index map[netip.Addr]int32
	ents  []entry // len grows to cap, then slots are reused
	head  int32   // most recently used, -1 if empty
	tail  int32   // least recently used, -1 if empty
}

type entry struct {
	key        netip.Addr
	lim        *rate.Limiter
	prev, next int32 // towards head, towards tail; -1 at the ends
}

// NewKeyed returns buckets that refill at perMinute tokens a minute and
// hold at most burst, for at most capacity addresses (at least 1).
func NewKeyed(perMinute, burst, capacity int) *Keyed {
	capacity = max(capacity, 1)
	n := min(shards, capacity)
	per := capacity / n // n*per <= capacity
	k := &Keyed{
		limit:  rate.Limit(float64(perMinute) / 60),
		burst:  burst,
		seed:   maphash.MakeSeed(),
		shards: make([]shard, n),
	}
	for i := range k.shards {
		k.shards[i] = shard{index: make(map[netip.Addr]int32), ents: make([]entry, 0, per), head: -1, tail: -1}
	}
	return k
}

func (k *Keyed) shard(key netip.Addr) *shard {
	if len(k.shards) == 1 {
		return &k.shards[0]
	}
	// A seeded hash: an attacker cannot choose addresses that all land in
	// one shard and evict each other faster than the capacity suggests.
	return &k.shards[maphash.Comparable(k.seed, key)%uint64(len(k.shards))]
}

// Allow takes a token from key's bucket at now. If there is none it takes
// nothing and returns false and how long until a token is there.
func (k *Keyed) Allow(key netip.Addr, now time.Time) (ok bool, retryAfter time.Duration) {
	s := k.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	lim := s.get(key, k)
	r := lim.ReserveN(now, 1)
	if !r.OK() { // burst 0: never a token
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Empty reports whether key's bucket has no whole token at now, and how
// long until it has one, without taking a token or remembering key.
func (k *Keyed) Empty(key netip.Addr, now time.Time) (empty bool, retryAfter time.Duration) {
	s := k.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[key]
	if !ok {
		return false, 0 // a bucket not remembered is full
	}
	tokens := s.ents[i].lim.TokensAt(now)
	if tokens >= 1 {
		return false, 0
	}
	if k.limit <= 0 {
		return true, time.Minute
	}
	return true, time.Duration((1 - tokens) / float64(k.limit) * float64(time.Second))
}

// Len is the number of buckets held, never more than the capacity.
func (k *Keyed) Len() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += len(s.index)
		s.mu.Unlock()
	}
	return n
}

// get returns key's limiter, making it (full) if it is not there and
// marking it most recently used. s.mu is held.
func (s *shard) get(key netip.Addr, k *Keyed) *rate.Limiter {
	if i, ok := s.index[key]; ok {
		s.moveToFront(i)
		return s.ents[i].lim
	}
	var i int32
	if len(s.ents) < cap(s.ents) {
		i = int32(len(s.ents))
		s.ents = append(s.ents, entry{})
	} else {
		i = s.tail // evict the least recently used
		s.unlink(i)
		delete(s.index, s.ents[i].key)
	}
	s.ents[i] = entry{key: key, lim: rate.NewLimiter(k.limit, k.burst), prev: -1, next: -1}
	s.index[key] = i
	s.pushFront(i)
	return s.ents[i].lim
}

func (s *shard) unlink(i int32) {
	e := &s.ents[i]
	if e.prev >= 0 {
		s.ents[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next >= 0 {
		s.ents[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (s *shard) pushFront(i int32) {
	e := &s.ents[i]
	e.prev, e.next = -1, s.head
	if s.head >= 0 {
		s.ents[s.head].prev = i
	}
	s.head = i
	if s.tail < 0 {
		s.tail = i
	}
}

func (s *shard) moveToFront(i int32) {
	if s.head == i {
		return
	}
	s.unlink(i)
	s.pushFront(i)
}

// Key is the bucket key of a client address: the address itself for IPv4
// (and IPv4-mapped IPv6), its /64 for IPv6, because one host or home
// router is routinely given a whole /64 and could otherwise rotate
// through 2^64 addresses. ok is false when s is not an IP address.
func Key(s string) (key netip.Addr, ok bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return KeyOf(a), true
}

// KeyOf is Key for a parsed address: proxy.ClientKey, the key every
// per-client bound of the edge uses.
func KeyOf(a netip.Addr) netip.Addr { return proxy.ClientKey(a) }

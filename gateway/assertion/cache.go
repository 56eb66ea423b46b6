package assertion

import (
	"hash/maphash"
	"sync"
	"time"
)

// cacheShards is the number of independently locked shards; a power of two.
const cacheShards = 16

// evictProbe is how many entries an insert into a full shard looks at for
// an expired one before evicting an arbitrary entry.
const evictProbe = 8

// cacheKey identifies what a token asserts: the shape and every identity
// field written into it. Two requests with equal keys get identical claims
// (apart from iat/exp).
type cacheKey struct {
	shape Shape
	id    Identity
}

// entry is a signed token and the times that govern its reuse.
type entry struct {
	token   string
	freshTo time.Time // reuse while now is before this (half the TTL)
	exp     time.Time // the token's exp
}

// cache is a bounded, sharded map from identity to its latest signed token.
// Each shard holds at most its share of the size; a full shard evicts an
// expired entry if a short probe finds one, otherwise an arbitrary one (Go's
// map iteration starts at a random position, which makes this random
// eviction).
type cache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]shard
}

type shard struct {
	mu sync.RWMutex
	m  map[cacheKey]entry
}

func newCache(size int) *cache {
	c := &cache{seed: maphash.MakeSeed(), perShard: max(size/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]entry)
	}
	return c
}

func (c *cache) shard(k *cacheKey) *shard {
	return &c.shards[maphash.Comparable(c.seed, *k)%cacheShards]
}

// get returns the token cached for k if it is still fresh at now.
func (c *cache) get(k *cacheKey, now time.Time) (string, bool) {
	sh := c.shard(k)
	sh.mu.RLock()
	e, ok := sh.m[*k]
	sh.mu.RUnlock()
	if !ok || !now.Before(e.freshTo) {
		// A stale entry is left for put to overwrite: the caller signs
		// a replacement next.
		return "", false
	}
	return e.token, true
}

// put caches e under k, evicting first if the shard is full.
func (c *cache) put(k *cacheKey, e entry, now time.Time) {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[*k]; !ok && len(sh.m) >= c.perShard {
		sh.evictOne(now)
	}
	sh.m[*k] = e
}

// evictOne removes an expired entry among the first few the iteration
// yields, or else the first one. The caller holds the write lock.
func (sh *shard) evictOne(now time.Time) {
	var victim cacheKey
	n := 0
	for k, v := range sh.m {
		if n == 0 {
			victim = k
		}
		if !now.Before(v.exp) {
			victim = k
			break
		}
		n++
		if n == evictProbe {
			break
		}
	}
	delete(sh.m, victim)
}

// len returns the number of cached entries.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

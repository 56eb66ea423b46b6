package workers

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// cache maps worker ids to records for Authenticate: bounded, sharded, and
// safe against a read of the store that began before a write and ends
// after the write's invalidation.
//
// Every invalidation moves gen. A lookup that misses notes gen before it
// reads the store, and put stores what it read only if gen has not moved,
// checked under the shard's lock. invalidate moves gen before it takes
// that lock to delete, so either put sees the new gen and stores nothing,
// or put stored before the delete, which then removes the entry. Either
// way no stale record is ever visible, not even for a moment (checking
// after an unconditional store, then deleting, would leave a window in
// which another request is served the stale record). An invalidation of
// any worker refuses every put in flight: a spurious miss at worst.
type cache struct {
	gen      atomic.Uint64
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
}

// cacheShards is the number of independently locked shards.
const cacheShards = 16

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]record
}

// record is what Authenticate needs of a worker, as cached.
type record struct {
	hash   []byte
	userID string
	name   string
	until  time.Time // served until then (cacheTTL)
}

// newCache returns a cache of about size entries (at least one per shard).
func newCache(size int) *cache {
	c := &cache{seed: maphash.MakeSeed(), perShard: max(size/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]record)
	}
	return c
}

func (c *cache) shard(id string) *cacheShard {
	return &c.shards[maphash.String(c.seed, id)%cacheShards]
}

// get returns id's record if it is cached and not past its until.
func (c *cache) get(id string, now time.Time) (record, bool) {
	sh := c.shard(id)
	sh.mu.RLock()
	r, ok := sh.m[id]
	sh.mu.RUnlock()
	if !ok || !now.Before(r.until) {
		return record{}, false
	}
	return r, true
}

// generation is the invalidation count to pass to put; read it before
// reading the store.
func (c *cache) generation() uint64 { return c.gen.Load() }

// put caches r under id unless an invalidation happened since generation
// returned g. A full shard first evicts an arbitrary entry (Go's map
// iteration starts at a random position).
func (c *cache) put(id string, r record, g uint64) {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c.gen.Load() != g {
		return
	}
	if _, ok := sh.m[id]; !ok && len(sh.m) >= c.perShard {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[id] = r
}

// invalidate drops id's entry and refuses the puts in flight.
func (c *cache) invalidate(id string) {
	c.gen.Add(1) // before the delete: see cache
	sh := c.shard(id)
	sh.mu.Lock()
	delete(sh.m, id)
	sh.mu.Unlock()
}

// len returns the number of cached entries, expired ones included.
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

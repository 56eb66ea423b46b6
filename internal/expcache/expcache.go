// Package expcache is a bounded, sharded, concurrency-safe map whose
// entries expire. The gateway keeps two such caches on its hot path —
// verified session tokens (package sessiontoken) and signed identity
// assertions (package assertion) — and both need the same three things: a
// hard size bound so that a flood of distinct keys cannot grow memory, no
// entry served past its expiry, and little lock contention between cores.
//
// Each of Shards shards is a map under its own RWMutex and holds at most its
// share of the size. An insert into a full shard evicts an expired entry if
// a probe of EvictProbe entries finds one, otherwise an arbitrary one: Go's
// map iteration starts at a random position, which makes this random
// eviction, good enough for caches whose misses only cost CPU.
//
// # Filling from a store that others write
//
// The session and worker caches are filled from the store and emptied by
// the store's watch (Invalidate). A read of the store that began before a
// write and ends after the write's invalidation would cache the old record
// for good. Generation and PutFresh close that race: a filler notes the
// generation before it reads, and PutFresh stores only if no Invalidate
// happened since, checked under the shard's lock. Invalidate moves the
// generation before it takes that lock to delete, so either PutFresh sees
// the new generation and stores nothing, or it stored first and the delete
// removes the entry: no stale value is ever visible, not even for a moment
// (storing and then checking would leave one). Any invalidation refuses
// every PutFresh in flight: a spurious miss at worst.
package expcache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Shards is the number of independently locked shards.
const Shards = 16

// EvictProbe is how many entries an insert into a full shard looks at for
// an expired one before it evicts an arbitrary entry.
const EvictProbe = 8

// Cache maps K to V; expires tells when a value stops being servable.
type Cache[K comparable, V any] struct {
	gen      atomic.Uint64 // Invalidate calls so far
	seed     maphash.Seed
	perShard int
	expires  func(V) time.Time
	shards   [Shards]shard[K, V]
}

type shard[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

// New returns a cache of about size entries (at least one per shard).
func New[K comparable, V any](size int, expires func(V) time.Time) *Cache[K, V] {
	c := &Cache[K, V]{seed: maphash.MakeSeed(), perShard: max(size/Shards, 1), expires: expires}
	for i := range c.shards {
		c.shards[i].m = make(map[K]V)
	}
	return c
}

func (c *Cache[K, V]) shard(k K) *shard[K, V] {
	return &c.shards[maphash.Comparable(c.seed, k)%Shards]
}

// Get returns the value cached for k if it has not expired at now. An
// expired entry is removed.
func (c *Cache[K, V]) Get(k K, now time.Time) (V, bool) {
	sh := c.shard(k)
	sh.mu.RLock()
	v, ok := sh.m[k]
	sh.mu.RUnlock()
	if !ok {
		return v, false
	}
	if !now.Before(c.expires(v)) {
		sh.mu.Lock()
		if cur, ok := sh.m[k]; ok && !now.Before(c.expires(cur)) {
			delete(sh.m, k)
		}
		sh.mu.Unlock()
		var zero V
		return zero, false
	}
	return v, true
}

// Put caches v under k, evicting one entry first if k's shard is full.
func (c *Cache[K, V]) Put(k K, v V, now time.Time) {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c.put(sh, k, v, now)
}

func (c *Cache[K, V]) put(sh *shard[K, V], k K, v V, now time.Time) {
	if _, ok := sh.m[k]; !ok && len(sh.m) >= c.perShard {
		c.evictOne(sh, now)
	}
	sh.m[k] = v
}

// Generation returns the number of Invalidate calls so far; read it before
// reading what will be passed to PutFresh.
func (c *Cache[K, V]) Generation() uint64 { return c.gen.Load() }

// PutFresh caches v under k unless Invalidate was called since Generation
// returned g (see the package doc), and reports whether it did.
func (c *Cache[K, V]) PutFresh(k K, v V, now time.Time, g uint64) bool {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c.gen.Load() != g {
		return false
	}
	c.put(sh, k, v, now)
	return true
}

// Invalidate removes k's entry and refuses every PutFresh in flight.
func (c *Cache[K, V]) Invalidate(k K) {
	c.gen.Add(1) // before the delete: see the package doc
	c.Delete(k)
}

// evictOne removes an expired entry among the first EvictProbe the
// iteration yields, or else the first one. The caller holds sh's lock.
func (c *Cache[K, V]) evictOne(sh *shard[K, V], now time.Time) {
	var victim K
	n := 0
	for k, v := range sh.m {
		if n == 0 {
			victim = k
		}
		if !now.Before(c.expires(v)) {
			victim = k
			break
		}
		n++
		if n == EvictProbe {
			break
		}
	}
	delete(sh.m, victim)
}

// Len returns the number of cached entries, expired ones included.
func (c *Cache[K, V]) Len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// Delete removes k's entry, if any.
func (c *Cache[K, V]) Delete(k K) {
	sh := c.shard(k)
	sh.mu.Lock()
	delete(sh.m, k)
	sh.mu.Unlock()
}

// Clear removes every entry.
func (c *Cache[K, V]) Clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
}

package sessiontoken

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// cacheShards is the number of independently locked shards; a power of two.
const cacheShards = 16

// evictProbe is how many entries an insert into a full shard looks at for
// an expired one before evicting an arbitrary entry.
const evictProbe = 8

type cacheKeyT [sha256.Size]byte

// cacheKey is the SHA-256 of the token: fixed-size, and a differing byte
// anywhere in the token gives a different key.
func cacheKey(token string) cacheKeyT {
	return sha256.Sum256([]byte(token))
}

// cache is a bounded map from verified token to its claims. Each shard holds
// at most its share of the size; a full shard evicts an expired entry if a
// short probe finds one, otherwise an arbitrary one (Go's map iteration
// starts at a random position, which makes this random eviction).
type cache struct {
	perShard int
	shards   [cacheShards]shard
}

type shard struct {
	mu sync.RWMutex
	m  map[cacheKeyT]Claims
}

func newCache(size int) *cache {
	per := max(size/cacheShards, 1)
	c := &cache{perShard: per}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKeyT]Claims)
	}
	return c
}

func (c *cache) shard(k cacheKeyT) *shard {
	return &c.shards[binary.LittleEndian.Uint32(k[:4])%cacheShards]
}

// get returns the claims cached for k if they are still unexpired at now.
// An expired entry is removed.
func (c *cache) get(k cacheKeyT, now time.Time) (Claims, bool) {
	sh := c.shard(k)
	sh.mu.RLock()
	cl, ok := sh.m[k]
	sh.mu.RUnlock()
	if !ok {
		return Claims{}, false
	}
	if !now.Before(cl.ExpiresAt) {
		sh.mu.Lock()
		if cur, ok := sh.m[k]; ok && !now.Before(cur.ExpiresAt) {
			delete(sh.m, k)
		}
		sh.mu.Unlock()
		return Claims{}, false
	}
	return cl, true
}

// put caches cl under k unless it is already expired at now.
func (c *cache) put(k cacheKeyT, cl Claims, now time.Time) {
	if !now.Before(cl.ExpiresAt) {
		return
	}
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[k]; !ok && len(sh.m) >= c.perShard {
		sh.evictOne(now)
	}
	sh.m[k] = cl
}

// evictOne removes an expired entry among the first few the iteration
// yields, or else the first one. The caller holds the write lock.
func (sh *shard) evictOne(now time.Time) {
	var victim cacheKeyT
	n := 0
	for k, v := range sh.m {
		if n == 0 {
			victim = k
		}
		if !now.Before(v.ExpiresAt) {
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

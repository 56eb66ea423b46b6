package sessiontoken

import (
	"crypto/sha256"
	"time"

	"github.com/vintner/arbor/gateway/internal/expcache"
)

type cacheKeyT [sha256.Size]byte

// cacheKey is the SHA-256 of the token: fixed-size, and a differing byte
// anywhere in the token gives a different key.
func cacheKey(token string) cacheKeyT {
	return sha256.Sum256([]byte(token))
}

// cache maps a verified token to its claims until the token's exp
// (package expcache: bounded, sharded, expired entries evicted first).
type cache = expcache.Cache[cacheKeyT, Claims]

func newCache(size int) *cache {
	return expcache.New[cacheKeyT](size, func(c Claims) time.Time { return c.ExpiresAt })
}

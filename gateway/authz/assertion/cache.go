package assertion

import (
	"time"

	"github.com/vintner/arbor/internal/expcache"
)

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

// cache maps an identity to its latest signed token (package expcache:
// bounded, sharded, expired entries evicted first).
type cache = expcache.Cache[cacheKey, entry]

func newCache(size int) *cache {
	return expcache.New[cacheKey](size, func(e entry) time.Time { return e.exp })
}

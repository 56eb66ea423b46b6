package sessiontoken

import (
	"time"

	"github.com/vintner/arbor/internal/expcache"
)

// cache maps a token string, byte for byte, to the claims it verified to.
// The whole token is the key (not a hash of it): hashing 300 bytes with
// SHA-256 on every request cost more than the rest of the check, and a map
// keyed by the string compares every byte on a hit anyway.
type cache = expcache.Cache[string, Claims]

func newCache(size int) *cache {
	return expcache.New[string](size, func(c Claims) time.Time { return c.ExpiresAt })
}

package workers

import (
	"fmt"
	"testing"
	"time"
)

func TestCacheBoundedAndGuarded(t *testing.T) {
	now := time.Now()
	c := newCache(64)
	for i := range 1000 {
		c.put(fmt.Sprint(i), record{until: now.Add(time.Minute)}, c.generation())
	}
	if n := c.len(); n > 64 {
		t.Fatalf("%d entries in a cache of 64", n)
	}

	// A put whose read began before an invalidation is refused.
	g := c.generation()
	c.invalidate("other")
	c.put("w", record{name: "stale", until: now.Add(time.Minute)}, g)
	if r, ok := c.get("w", now); ok {
		t.Fatalf("a put older than an invalidation was cached: %+v", r)
	}
	c.put("w", record{name: "fresh", until: now.Add(time.Minute)}, c.generation())
	if r, ok := c.get("w", now); !ok || r.name != "fresh" {
		t.Fatalf("get after put: %+v, %v", r, ok)
	}
	if _, ok := c.get("w", now.Add(time.Minute)); ok {
		t.Fatal("an entry was served at its until")
	}
	c.invalidate("w")
	if _, ok := c.get("w", now); ok {
		t.Fatal("an invalidated entry was served")
	}
}

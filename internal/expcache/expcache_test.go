package expcache

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type item struct {
	val string
	exp time.Time
}

func expOf(i item) time.Time { return i.exp }

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestGetHonoursExpiry(t *testing.T) {
	c := New[string](64, expOf)
	c.Put("a", item{"x", t0.Add(time.Minute)}, t0)
	if v, ok := c.Get("a", t0.Add(time.Minute-time.Nanosecond)); !ok || v.val != "x" {
		t.Fatalf("Get before expiry = %v %v", v, ok)
	}
	if _, ok := c.Get("a", t0.Add(time.Minute)); ok {
		t.Fatal("served at its expiry")
	}
	if n := c.Len(); n != 0 {
		t.Fatalf("expired entry kept after Get: Len = %d", n)
	}
	if _, ok := c.Get("missing", t0); ok {
		t.Fatal("hit for a missing key")
	}
}

// A full shard evicts its expired entry rather than a live one. Random
// eviction would pick the expired entry only one time in EvictProbe.
func TestEvictsExpiredFirst(t *testing.T) {
	for trial := range 20 {
		c := New[string](Shards*EvictProbe, expOf)
		var keys []string
		for i := 0; len(keys) < EvictProbe+1; i++ {
			k := fmt.Sprint(trial, "k", i)
			if len(keys) == 0 || c.shard(k) == c.shard(keys[0]) {
				keys = append(keys, k)
			}
		}
		dead, newest, live := keys[0], keys[len(keys)-1], keys[1:len(keys)-1]
		c.Put(dead, item{"dead", t0.Add(-time.Minute)}, t0)
		for _, k := range live {
			c.Put(k, item{"live", t0.Add(time.Minute)}, t0)
		}
		c.Put(newest, item{"live", t0.Add(time.Minute)}, t0)
		sh := c.shard(dead)
		if _, ok := sh.m[dead]; ok {
			t.Fatalf("trial %d: expired entry kept while a live one was evicted", trial)
		}
		for _, k := range append(live, newest) {
			if _, ok := sh.m[k]; !ok {
				t.Fatalf("trial %d: live entry %s evicted", trial, k)
			}
		}
	}
}

func TestBoundedUnderConcurrency(t *testing.T) {
	const size = 1024
	c := New[int](size, expOf)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20000 {
				c.Put(g*100000+i, item{"v", t0.Add(time.Hour)}, t0)
				c.Get(g*100000+i/2, t0)
			}
		}()
	}
	wg.Wait()
	if n := c.Len(); n > size || n < size/2 {
		t.Fatalf("Len = %d, want between %d and %d", n, size/2, size)
	}
}

func TestDeleteAndClear(t *testing.T) {
	c := New[string](64, expOf)
	c.Put("a", item{"x", t0.Add(time.Minute)}, t0)
	c.Put("b", item{"y", t0.Add(time.Minute)}, t0)
	c.Delete("a")
	c.Delete("missing")
	if _, ok := c.Get("a", t0); ok {
		t.Fatal("a still cached after Delete")
	}
	if v, ok := c.Get("b", t0); !ok || v.val != "y" {
		t.Fatalf("Delete(a) removed b: %v %v", v, ok)
	}
	c.Clear()
	if n := c.Len(); n != 0 {
		t.Fatalf("Len after Clear = %d", n)
	}
}

// PutFresh refuses a value read before an Invalidate. (The race it closes
// is exercised under load by service/workers' rotation test.)
func TestPutFreshAfterInvalidate(t *testing.T) {
	c := New[string](64, expOf)
	g := c.Generation()
	c.Invalidate("other") // any invalidation refuses puts in flight
	if c.PutFresh("k", item{"stale", t0.Add(time.Minute)}, t0, g) {
		t.Fatal("a value read before an invalidation was cached")
	}
	if _, ok := c.Get("k", t0); ok {
		t.Fatal("refused value is visible")
	}
	if !c.PutFresh("k", item{"fresh", t0.Add(time.Minute)}, t0, c.Generation()) {
		t.Fatal("a current value was refused")
	}
	c.Invalidate("k")
	if _, ok := c.Get("k", t0); ok {
		t.Fatal("invalidated value served")
	}

}

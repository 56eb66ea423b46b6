package ratelimit

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func addr(s string) netip.Addr {
	k, ok := Key(s)
	if !ok {
		panic(s)
	}
	return k
}

func TestKeyedBucketsPerKeyAndRefill(t *testing.T) {
	// 60 a minute = one a second, burst 3.
	k := NewKeyed(60, 3, 100)
	a, b := addr("192.0.2.1"), addr("192.0.2.2")
	steps := []struct {
		key     netip.Addr
		at      time.Duration
		ok      bool
		retryIn time.Duration
	}{
		{a, 0, true, 0},
		{a, 0, true, 0},
		{a, 0, true, 0},
		{a, 0, false, time.Second}, // burst used up: one token a second
		{b, 0, true, 0},            // another address has its own bucket
		{a, 400 * time.Millisecond, false, 600 * time.Millisecond},
		{a, time.Second, true, 0}, // refilled one
		{a, time.Second, false, time.Second},
		{a, 10 * time.Second, true, 0}, // long idle: full again, but no more than the burst
		{a, 10 * time.Second, true, 0},
		{a, 10 * time.Second, true, 0},
		{a, 10 * time.Second, false, time.Second},
	}
	for i, s := range steps {
		ok, d := k.Allow(s.key, t0.Add(s.at))
		if ok != s.ok || d != s.retryIn {
			t.Errorf("step %d (%v at +%v): Allow = %v, %v; want %v, %v", i, s.key, s.at, ok, d, s.ok, s.retryIn)
		}
	}
}

func TestKeyedEmptyDoesNotTakeOrRemember(t *testing.T) {
	k := NewKeyed(30, 2, 10) // one token every 2 s
	a := addr("198.51.100.7")
	if empty, _ := k.Empty(a, t0); empty || k.Len() != 0 {
		t.Fatalf("unknown key: Empty = %v, Len = %d; want a full bucket and nothing remembered", empty, k.Len())
	}
	k.Allow(a, t0)
	k.Allow(a, t0)
	empty, d := k.Empty(a, t0.Add(500*time.Millisecond))
	if !empty || d != 1500*time.Millisecond {
		t.Fatalf("drained: Empty = %v, %v; want true, 1.5s", empty, d)
	}
	if empty, _ := k.Empty(a, t0.Add(2*time.Second)); empty {
		t.Fatal("Empty took a token or the bucket did not refill")
	}
	if ok, _ := k.Allow(a, t0.Add(2*time.Second)); !ok {
		t.Fatal("the refilled token is not there")
	}
}

func TestKeyIPv6By64AndIPv4Mapped(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"fe80::1%eth0", "fe80::2%eth1", true},
		{"::ffff:192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
	} {
		if got := addr(c.a) == addr(c.b); got != c.same {
			t.Errorf("Key(%s) == Key(%s) is %v, want %v", c.a, c.b, got, c.same)
		}
	}
	if _, ok := Key("not an ip"); ok {
		t.Error("Key accepted a non-address")
	}
	if _, ok := Key(""); ok {
		t.Error("Key accepted the empty string")
	}

	// One host rotating through its /64 shares one bucket.
	k := NewKeyed(1, 2, 100)
	allowed := 0
	for i := range 50 {
		var b [16]byte
		copy(b[:8], netip.MustParseAddr("2001:db8:5:6::").AsSlice())
		binary.BigEndian.PutUint64(b[8:], uint64(i)*0x9e3779b97f4a7c15)
		if ok, _ := k.Allow(KeyOf(netip.AddrFrom16(b)), t0); ok {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("50 addresses of one /64 got %d requests through, want the burst 2", allowed)
	}
}

func TestKeyedMemoryIsBounded(t *testing.T) {
	const capacity = 4096
	k := NewKeyed(60, 5, capacity)
	victim := addr("203.0.113.9")
	for range 5 {
		k.Allow(victim, t0)
	}
	if ok, _ := k.Allow(victim, t0); ok {
		t.Fatal("victim not limited")
	}
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	var b [4]byte
	for i := range n {
		binary.BigEndian.PutUint32(b[:], uint32(i)+1<<24) // 1.0.0.0 onwards
		k.Allow(netip.AddrFrom4(b), t0)
		if i%4096 == 0 {
			if l := k.Len(); l > capacity {
				t.Fatalf("after %d addresses the map holds %d buckets, capacity %d", i+1, l, capacity)
			}
		}
	}
	if l := k.Len(); l > capacity || l < capacity/2 {
		t.Fatalf("after %d addresses the map holds %d buckets, want at most (and near) %d", n, l, capacity)
	}
	// The victim's drained bucket was evicted: it comes back full, which
	// only favours it.
	if ok, _ := k.Allow(victim, t0); !ok {
		t.Fatal("an evicted bucket should be a full one")
	}
}

func TestKeyedRecentlyUsedSurvivesEviction(t *testing.T) {
	k := NewKeyed(60, 1, 1) // one shard of one entry
	a, b := addr("192.0.2.1"), addr("192.0.2.2")
	k.Allow(a, t0)
	if ok, _ := k.Allow(a, t0); ok {
		t.Fatal("a not limited")
	}
	k.Allow(b, t0) // evicts a
	if k.Len() != 1 {
		t.Fatalf("Len = %d, want 1", k.Len())
	}
	if ok, _ := k.Allow(a, t0); !ok {
		t.Fatal("a came back drained after eviction")
	}

	// With room for two per shard, the least recently used goes first.
	k = NewKeyed(60, 1, 2)
	k.shards = k.shards[:1]
	k.shards[0].ents = make([]entry, 0, 2)
	x, y, z := addr("10.0.0.1"), addr("10.0.0.2"), addr("10.0.0.3")
	k.Allow(x, t0)
	k.Allow(y, t0)
	k.Allow(x, t0) // x is now the most recent (and refused)
	k.Allow(z, t0) // evicts y
	if ok, _ := k.Allow(x, t0); ok {
		t.Error("x, recently used, was evicted")
	}
	if ok, _ := k.Allow(y, t0); !ok {
		t.Error("y, least recently used, was kept")
	}
}

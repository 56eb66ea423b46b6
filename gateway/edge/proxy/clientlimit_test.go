package proxy

import (
	"net/netip"
	"sync"
	"testing"
)

func TestClientLimiter(t *testing.T) {
	l := NewClientLimiter(2)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	if !l.Acquire(a) || !l.Acquire(a) || l.Acquire(a) {
		t.Fatal("want exactly two slots for a")
	}
	if !l.Acquire(b) {
		t.Fatal("b is limited by a's use")
	}
	l.Release(a)
	if !l.Acquire(a) {
		t.Fatal("a released slot was not reusable")
	}
	l.Release(a)
	l.Release(a)
	l.Release(b)
	if n := l.clients(); n != 0 {
		t.Fatalf("%d clients still in the map after every release; memory must not grow with addresses seen", n)
	}
	// Concurrent use from many addresses leaves nothing behind.
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := netip.AddrFrom4([4]byte{10, 0, byte(i), 1})
			for range 100 {
				if l.Acquire(addr) {
					l.Release(addr)
				}
			}
		}()
	}
	wg.Wait()
	if n := l.clients(); n != 0 {
		t.Fatalf("%d clients left after concurrent use", n)
	}
	if ClientKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1")) != ClientKey(netip.MustParseAddr("2001:db8:1:2:bbbb::2")) {
		t.Fatal("two addresses of one /64 have different keys")
	}
	if ClientKey(netip.MustParseAddr("::ffff:192.0.2.1")) != netip.MustParseAddr("192.0.2.1") {
		t.Fatal("an IPv4-mapped address is not its IPv4 address")
	}
}

// BenchmarkClientLimiter is what the per-client cap adds to a proxied
// request: one acquire and one release.
func BenchmarkClientLimiter(b *testing.B) {
	l := NewClientLimiter(128)
	addr := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if l.Acquire(addr) {
				l.Release(addr)
			}
		}
	})
}

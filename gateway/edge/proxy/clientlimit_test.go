package proxy

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

func TestClientLimiter(t *testing.T) {
	l := NewClientLimiter(2)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	a1, ok1 := l.Acquire(a)
	a2, ok2 := l.Acquire(a)
	if _, ok3 := l.Acquire(a); !ok1 || !ok2 || ok3 {
		t.Fatal("want exactly two slots for a")
	}
	b1, ok := l.Acquire(b)
	if !ok {
		t.Fatal("b is limited by a's use")
	}
	a1.Release()
	a3, ok := l.Acquire(a)
	if !ok {
		t.Fatal("a released slot was not reusable")
	}
	a2.Release()
	a3.Release()
	b1.Release()
	Slot{}.Release() // holds nothing: no effect
	if n := l.Clients(); n != 0 {
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
				if s, ok := l.Acquire(addr); ok {
					s.Release()
				}
			}
		}()
	}
	wg.Wait()
	if n := l.Clients(); n != 0 {
		t.Fatalf("%d clients left after concurrent use", n)
	}
	if ClientKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1")) != ClientKey(netip.MustParseAddr("2001:db8:1:2:bbbb::2")) {
		t.Fatal("two addresses of one /64 have different keys")
	}
	if ClientKey(netip.MustParseAddr("::ffff:192.0.2.1")) != netip.MustParseAddr("192.0.2.1") {
		t.Fatal("an IPv4-mapped address is not its IPv4 address")
	}
}

// TestClientLimiterPins checks that a pin's slots and the map's are one
// count, that For matches only the pinned client, and that an entry leaves
// the map once no slot and no pin holds it, in either order.
func TestClientLimiterPins(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		name       string
		unpinFirst bool // unpin while slots are still held (a WebSocket tunnel outliving its connection)
	}{
		{"release then unpin", false},
		{"unpin then release", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewClientLimiter(3)
			pin := l.Pin(a)
			if !pin.For(a) || pin.For(b) || (Pin{}).For(a) {
				t.Fatal("For matches another client than the pinned one")
			}
			p1, ok1 := pin.Acquire()
			m1, ok2 := l.Acquire(a)
			p2, ok3 := pin.Acquire()
			if !ok1 || !ok2 || !ok3 {
				t.Fatal("want three slots for a, through the pin and the map")
			}
			if _, ok := pin.Acquire(); ok {
				t.Fatal("the pin took a fourth slot: its count is not the map's")
			}
			if _, ok := l.Acquire(a); ok {
				t.Fatal("the map took a fourth slot: its count is not the pin's")
			}
			if bs, ok := l.Acquire(b); !ok {
				t.Fatal("b is limited by a's use")
			} else {
				bs.Release()
			}
			m1.Release()
			if s, ok := pin.Acquire(); !ok {
				t.Fatal("a slot released through the map is not free for the pin")
			} else {
				m1 = s
			}
			if tc.unpinFirst {
				pin.Unpin()
				if n := l.Clients(); n != 1 {
					t.Fatalf("%d entries with slots held after unpin, want 1", n)
				}
			}
			for _, s := range []Slot{p1, p2, m1} {
				s.Release()
			}
			if !tc.unpinFirst {
				if n := l.Clients(); n != 1 {
					t.Fatalf("%d entries pinned without slots, want 1", n)
				}
				pin.Unpin()
			}
			if n := l.Clients(); n != 0 {
				t.Fatalf("%d entries left with no slot and no pin", n)
			}
		})
	}
	var nl *ClientLimiter
	if p := nl.Pin(a); p.For(a) {
		t.Fatal("a pin without a cap holds an entry")
	}
	Pin{}.Unpin()
}

// TestClientLimiterConcurrentCap runs pinned connections and unpinned
// requests of a few clients at once and checks that no client ever holds
// more than the cap, and that nothing is left behind.
func TestClientLimiterConcurrentCap(t *testing.T) {
	const max = 4
	l := NewClientLimiter(max)
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.17"), netip.MustParseAddr("2001:db8::1")}
	held := make([]atomic.Int32, len(addrs))
	var over atomic.Int32
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := g % len(addrs)
			a := addrs[i]
			for round := range 200 {
				var pin Pin
				if g%2 == 0 {
					pin = l.Pin(a) // a connection: a few requests through its pin
				}
				for range 3 {
					var s Slot
					var ok bool
					if pin.For(a) && round%3 != 0 {
						s, ok = pin.Acquire()
					} else {
						s, ok = l.Acquire(a)
					}
					if !ok {
						continue
					}
					if held[i].Add(1) > max {
						over.Add(1)
					}
					held[i].Add(-1)
					s.Release()
				}
				pin.Unpin()
			}
		}()
	}
	wg.Wait()
	if n := over.Load(); n != 0 {
		t.Fatalf("a client held more than %d slots %d times", max, n)
	}
	if n := l.Clients(); n != 0 {
		t.Fatalf("%d entries left after every slot and pin was let go", n)
	}
}

// TestClientLimiterReusesEntries checks that a client whose count falls to
// zero between requests (behind a trusted proxy, or the Git proxy's) does
// not cost an allocation per request.
func TestClientLimiterReusesEntries(t *testing.T) {
	l := NewClientLimiter(8)
	a := netip.MustParseAddr("192.0.2.1")
	allocs := testing.AllocsPerRun(100, func() {
		if s, ok := l.Acquire(a); ok {
			s.Release()
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per acquire and release, want 0", allocs)
	}
}

// BenchmarkClientLimiter is what the per-client cap adds to a proxied
// request: one acquire and one release, through the map (a client behind a
// trusted proxy) and through the connection's pin (every other request).
func BenchmarkClientLimiter(b *testing.B) {
	addr := netip.MustParseAddr("192.0.2.1")
	b.Run("map", func(b *testing.B) {
		l := NewClientLimiter(128)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if s, ok := l.Acquire(addr); ok {
					s.Release()
				}
			}
		})
	})
	b.Run("pinned", func(b *testing.B) {
		l := NewClientLimiter(128)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			pin := l.Pin(addr) // one connection per goroutine
			defer pin.Unpin()
			for pb.Next() {
				if s, ok := pin.Acquire(); ok {
					s.Release()
				}
			}
		})
	})
}

package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestAddr: the ports are below the ephemeral range, distinct, and free.
func TestAddr(t *testing.T) {
	hi := ephemeralStart()
	seen := map[string]bool{}
	for range 50 {
		a, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		host, ps, err := net.SplitHostPort(a)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("Addr %q: want 127.0.0.1:port", a)
		}
		p, _ := strconv.Atoi(ps)
		if p < lowest || p >= hi {
			t.Fatalf("port %d outside %d-%d", p, lowest, hi-1)
		}
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("the port handed out is not free: %v", err)
		}
		ln.Close()
	}
	p, err := Port()
	if err != nil || p < lowest || p >= hi {
		t.Fatalf("Port: %d, %v", p, err)
	}
}

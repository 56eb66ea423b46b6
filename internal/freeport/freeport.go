// Package freeport picks loopback ports for servers that tests and
// benchmarks start themselves (a child process, an embedded etcd) and that
// bind them a moment later.
//
// Why not listen on port 0 and pass the port on: the kernel hands out port
// 0 from its ephemeral range, the same range it takes the source ports of
// outgoing connections from. Between the check and the server's bind, any
// connection the test (or a test of another package running alongside)
// opens may take the port, and the server fails with "address already in
// use": CI failed that way twice. A port below the ephemeral range is
// never taken by an outgoing connection; picking it at random and never
// twice in a process leaves only a listener of another process to collide
// with, which the bind check before handing it out makes unlikely.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the bottom of the range ports are picked from: above the
// well-known and most registered services' ports.
const lowest = 20000

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Addr returns "127.0.0.1:port" for a port that was free when it checked,
// below the kernel's ephemeral range and not returned before by this
// process.
func Addr() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	hi := ephemeralStart()
	for range 1000 {
		p := lowest + rand.IntN(hi-lowest)
		if given[p] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		_ = ln.Close()
		given[p] = true
		return ln.Addr().String(), nil
	}
	return "", fmt.Errorf("freeport: no free loopback port in %d-%d after 1000 tries", lowest, hi-1)
}

// Port is Addr's port number.
func Port() (int, error) {
	a, err := Addr()
	if err != nil {
		return 0, err
	}
	_, p, _ := net.SplitHostPort(a)
	return strconv.Atoi(p)
}

// ephemeralStart is the first port of the kernel's ephemeral range, or
// 32768 (Linux's default) when it cannot be read or leaves too little room
// above lowest.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= lowest+1000 {
		return 32768
	}
	return n
}

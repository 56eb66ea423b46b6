package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1":            "loopback",
		"127.255.0.9":          "loopback",
		"::1":                  "loopback",
		"::ffff:127.0.0.1":     "loopback",
		"169.254.169.254":      "cloud metadata",
		"169.254.1.1":          "link-local",
		"fe80::1":              "link-local",
		"10.1.2.3":             "private",
		"172.16.0.1":           "private",
		"192.168.1.1":          "private",
		"::ffff:10.0.0.1":      "private",
		"fd00::1":              "unique local",
		"fc00::1":              "unique local",
		"0.0.0.0":              "unspecified",
		"::":                   "unspecified",
		"224.0.0.1":            "multicast",
		"ff02::1":              "multicast",
		"255.255.255.255":      "broadcast",
		"100.64.0.1":           "carrier-grade NAT",
		"0.1.2.3":              "this network",
		"198.18.0.1":           "benchmarking",
		"240.0.0.1":            "reserved",
		"64:ff9b::a9fe:a9fe":   "cloud metadata address (through NAT64)",
		"64:ff9b::7f00:1":      "loopback address (through NAT64)",
		"2002:7f00:1::":        "loopback address (through 6to4)",
		"2001:0:1::1":          "Teredo",
		"2001:db8::1":          "documentation",
		"::127.0.0.1":          "IPv4-compatible",
		"8.8.8.8":              "",
		"140.82.112.3":         "",
		"2606:4700:4700::1111": "",
		"64:ff9b::808:808":     "",
		"2002:808:808::1":      "",
	} {
		got := Classify(netip.MustParseAddr(addr))
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("Classify(%s) = %q, want %q", addr, got, want)
		}
	}
}

func TestHostList(t *testing.T) {
	l := NewHostList([]string{"api.github.com", "GitHub.com.", "127.0.0.1:8080", "*.githubusercontent.com", "[::1]:9000", "fd00::1"})
	for _, tc := range []struct {
		host, port string
		want       bool
	}{
		{"api.github.com", "443", true},
		{"API.GITHUB.COM.", "8443", true},
		{"github.com", "443", true},
		{"evil-github.com", "443", false},
		{"api.github.com.evil", "443", false},
		{"127.0.0.1", "8080", true},
		{"127.0.0.1", "8081", false},
		{"raw.githubusercontent.com", "443", true},
		{"githubusercontent.com", "443", false},
		{"::1", "9000", true},
		{"::1", "9001", false},
		{"fd00::1", "443", true},
	} {
		if got := l.Allows(tc.host, tc.port); got != tc.want {
			t.Errorf("Allows(%s, %s) = %v", tc.host, tc.port, got)
		}
	}
	if !(HostList{}).Empty() || l.Empty() {
		t.Error("Empty")
	}
}

// TestDialerRefusesBeforeConnecting proves with a real listener that a
// forbidden address is never connected to, and that the operator's
// allowance is per host:port.
func TestDialerRefusesBeforeConnecting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ctx := context.Background()

	d := &Dialer{}
	for _, target := range []string{addr, "localhost:" + port, "[::ffff:127.0.0.1]:" + port} {
		_, err := d.DialContext(ctx, "tcp", target)
		var re *RefusedError
		if !errors.As(err, &re) || !strings.Contains(re.Reason, "loopback") {
			t.Errorf("%s: %v, want a loopback refusal", target, err)
		}
	}
	// A private address is refused without waiting for a connect timeout.
	start := time.Now()
	if _, err := d.DialContext(ctx, "tcp", "10.255.255.1:443"); !IsRefused(err) {
		t.Errorf("10.255.255.1: %v", err)
	}
	if took := time.Since(start); took > 20*time.Millisecond {
		t.Errorf("refusing took %v", took)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the listener accepted %d connections", n)
	}

	allowed := &Dialer{Private: NewHostList([]string{addr})}
	c, err := allowed.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("allowed host: %v", err)
	}
	c.Close()
	if _, err := allowed.DialContext(ctx, "tcp", "127.0.0.1:1"); !IsRefused(err) {
		t.Errorf("another port of an allowed host: %v", err)
	}
}

func TestControlRechecks(t *testing.T) {
	ctl := control("example.com")
	if err := ctl("tcp4", "10.0.0.1:443", nil); !IsRefused(err) {
		t.Errorf("control let 10.0.0.1 through: %v", err)
	}
	if err := ctl("tcp4", "140.82.112.3:443", nil); err != nil {
		t.Errorf("control refused a public address: %v", err)
	}
}

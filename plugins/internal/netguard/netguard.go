// Package netguard decides where a plugin's HTTP requests may go and dials
// only addresses it has checked.
//
// Two lists apply. The allow-list (HostList) says which host names a plugin
// may name at all; it is checked on the URL before any DNS lookup and again
// on every redirect. The address check (Classify) says which IP addresses
// may be dialed: loopback, link-local (including the cloud metadata address
// 169.254.169.254), private, unique-local, unspecified, multicast and other
// special-purpose ranges are refused unless the operator allowed that host
// explicitly.
//
// The check happens in the dialer, on the addresses the name resolved to,
// and the dialer then connects to exactly those addresses, so a DNS answer
// that changes between the check and the connection (DNS rebinding) cannot
// slip through. A socket Control hook re-checks the address the kernel is
// about to connect to, as a second line of defence.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// special lists IPv4 ranges that are not covered by netip's predicates and
// must not be reachable from a plugin.
var special = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "a \"this network\" address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local-use NAT64 address"},
	{netip.MustParsePrefix("2001::/32"), "a Teredo address"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
	{netip.MustParsePrefix("100::/64"), "a discard-only address"},
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	v4compat  = netip.MustParsePrefix("::/96")
)

// Classify returns why ip must not be dialed without the operator's
// explicit permission, or "" if it may be.
func Classify(ip netip.Addr) string {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if ip.Is6() {
		s := ip.As16()
		switch {
		case nat64.Contains(ip):
			// A NAT64 address reaches the IPv4 address in its low 32 bits.
			if r := Classify(netip.AddrFrom4([4]byte{s[12], s[13], s[14], s[15]})); r != "" {
				return r + " (through NAT64)"
			}
			return ""
		case sixToFour.Contains(ip):
			if r := Classify(netip.AddrFrom4([4]byte{s[2], s[3], s[4], s[5]})); r != "" {
				return r + " (through 6to4)"
			}
		case v4compat.Contains(ip) && !ip.IsUnspecified() && !ip.IsLoopback():
			return "an IPv4-compatible IPv6 address"
		}
	}
	switch {
	case !ip.IsValid():
		return "an invalid address"
	case ip.IsUnspecified():
		return "the unspecified address"
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsLinkLocalUnicast():
		if ip == netip.AddrFrom4([4]byte{169, 254, 169, 254}) {
			return "the link-local cloud metadata address"
		}
		return "a link-local address"
	case ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsLinkLocalMulticast():
		return "a multicast address"
	case ip.IsPrivate():
		if ip.Is6() {
			return "a unique local (private) address"
		}
		return "a private address"
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address"
	}
	for _, s := range special {
		if s.prefix.Contains(ip) {
			return s.reason
		}
	}
	return ""
}

// HostList is a set of host patterns: "example.com" (any port),
// "example.com:8443" (that port only) and "*.example.com" (any subdomain,
// any port). Matching is case-insensitive and ignores a trailing dot.
type HostList struct {
	any   map[string]bool // host
	ports map[string]bool // host:port
	wild  []string        // ".example.com"
}

// NewHostList builds a list; entries are assumed valid
// (abi.CheckHostPattern).
func NewHostList(patterns ...[]string) HostList {
	l := HostList{any: map[string]bool{}, ports: map[string]bool{}}
	for _, ps := range patterns {
		for _, p := range ps {
			l.Add(p)
		}
	}
	return l
}

// Add adds one pattern.
func (l *HostList) Add(p string) {
	p = strings.ToLower(p)
	if h, port, err := net.SplitHostPort(p); err == nil {
		l.ports[net.JoinHostPort(normHost(h), port)] = true
		return
	}
	if rest, ok := strings.CutPrefix(p, "*."); ok {
		l.wild = append(l.wild, "."+normHost(rest))
		return
	}
	l.any[normHost(strings.Trim(p, "[]"))] = true
}

// Allows reports whether host (a name or IP, without brackets) on port is
// in the list.
func (l HostList) Allows(host, port string) bool {
	host = normHost(host)
	if l.any[host] || l.ports[net.JoinHostPort(host, port)] {
		return true
	}
	for _, w := range l.wild {
		if strings.HasSuffix(host, w) {
			return true
		}
	}
	return false
}

// Empty reports whether the list has no entries.
func (l HostList) Empty() bool { return len(l.any) == 0 && len(l.ports) == 0 && len(l.wild) == 0 }

func normHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// RefusedError is returned when a destination's address is forbidden.
type RefusedError struct {
	Host   string // as the plugin named it
	Addr   string // the address refused
	Reason string // from Classify
}

func (e *RefusedError) Error() string {
	if e.Host == e.Addr {
		return fmt.Sprintf("refused to connect to %s: it is %s", e.Addr, e.Reason)
	}
	return fmt.Sprintf("refused to connect to %s: it resolves to %s, which is %s", e.Host, e.Addr, e.Reason)
}

// Dialer dials TCP connections to checked addresses only.
type Dialer struct {
	// Private lists the hosts the operator allowed to resolve to
	// forbidden addresses (a development fake on 127.0.0.1, an internal
	// GitLab on 10.0.0.5).
	Private HostList
	// Resolver resolves names; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// Dialer is the base dialer (timeouts, keep-alive).
	Dialer net.Dialer
}

// DialContext resolves addr, refuses it if every address it resolves to is
// forbidden, and connects to the first permitted address that answers. It
// is meant for http.Transport.DialContext.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	privateOK := d.Private.Allows(host, port)
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		r := d.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		ips, err = r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
	}
	var refused error
	var lastErr error
	for _, ip := range ips {
		if reason := Classify(ip); reason != "" && !privateOK {
			if refused == nil {
				refused = &RefusedError{Host: host, Addr: ip.Unmap().String(), Reason: reason}
			}
			continue
		}
		nd := d.Dialer
		if !privateOK {
			nd.Control = control(host)
		}
		c, err := nd.DialContext(ctx, network, netip.AddrPortFrom(ip.Unmap(), parsePort(port)).String())
		if err == nil {
			return c, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr != nil {
		return nil, lastErr
	}
	if refused != nil {
		return nil, refused
	}
	return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
}

// control re-checks the address the socket is about to connect to.
func control(host string) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("netguard: unexpected dial address %q", address)
		}
		if reason := Classify(ap.Addr()); reason != "" {
			return &RefusedError{Host: host, Addr: ap.Addr().Unmap().String(), Reason: reason}
		}
		return nil
	}
}

func parsePort(p string) uint16 {
	var n uint16
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint16(c-'0')
	}
	return n
}

// IsRefused reports whether err is, or wraps, a RefusedError.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

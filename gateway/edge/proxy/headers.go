package proxy

import (
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// What the request filter does with a header.
type hdrAction uint8

const (
	keep         hdrAction = iota
	drop                   // hop-by-hop, identity, or a forwarding header that may not be trusted
	fwdFor                 // X-Forwarded-For
	fwdProto               // X-Forwarded-Proto
	fwdHost                // X-Forwarded-Host
	fwdForwarded           // Forwarded (RFC 7239)
	fwdRealIP              // X-Real-Ip
	fwdOther               // any other X-Forwarded-*: kept from trusted proxies only
)

// maxIdentityLen caps the length of a configured identity header name.
const maxIdentityLen = 128

// Canonical names of the headers Arbor sets itself.
const (
	hXForwardedFor   = "X-Forwarded-For"
	hXForwardedProto = "X-Forwarded-Proto"
	hXForwardedHost  = "X-Forwarded-Host"
	hForwarded       = "Forwarded"
	hXRealIP         = "X-Real-Ip"
)

// The same names as bytes in fasthttp's canonical form, so that setting
// them skips normalization.
var (
	kXForwardedFor   = []byte(hXForwardedFor)
	kXForwardedProto = []byte(hXForwardedProto)
	kXForwardedHost  = []byte(hXForwardedHost)
	schemeHTTP       = []byte("http")
	schemeHTTPS      = []byte("https")
)

// foldEq reports whether name equals lower (a lower-case, dash-separated
// header name) ignoring ASCII case and treating '_' in name as '-'. The '_'
// folding matters because nginx (with underscores_in_headers), CGI, WSGI and
// Rack turn both X-Arbor-User and X_Arbor_User into HTTP_X_ARBOR_USER: a
// filter that only knew the dashed spelling would let a client forge the
// other.
func foldEq(name []byte, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if foldByte(name[i]) != lower[i] {
			return false
		}
	}
	return true
}

// foldPrefix is foldEq for a prefix of name.
func foldPrefix(name []byte, lower string) bool {
	return len(name) >= len(lower) && foldEq(name[:len(lower)], lower)
}

func foldByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	if c == '_' {
		return '-'
	}
	return c
}

// hasUnderscore reports whether a header name uses '_' anywhere.
func hasUnderscore(name []byte) bool {
	for _, c := range name {
		if c == '_' {
			return true
		}
	}
	return false
}

// identitySet holds the header names stripped by configuration (identity
// and rewrite headers), folded (lower-case, '_' as '-'), with cheap
// pre-filters by length and by first byte so that most headers never reach
// the map: with the default rewrite headers the lengths alone would send
// Sec-Fetch-* and Accept-Encoding there on every browser request.
type identitySet struct {
	names  map[string]struct{}
	byLen  [maxIdentityLen + 1]bool
	first  [256]bool
	maxLen int
}

func newIdentitySet(names []string) identitySet {
	s := identitySet{names: make(map[string]struct{}, len(names))}
	for _, n := range names {
		f := foldString(n)
		if f == "" {
			continue
		}
		s.names[f] = struct{}{}
		s.byLen[len(f)] = true
		s.first[f[0]] = true
		s.maxLen = max(s.maxLen, len(f))
	}
	return s
}

func foldString(s string) string {
	b := []byte(strings.TrimSpace(s))
	for i := range b {
		b[i] = foldByte(b[i])
	}
	return string(b)
}

func (s *identitySet) has(name []byte) bool {
	if len(name) > s.maxLen || !s.byLen[len(name)] || !s.first[foldByte(name[0])] {
		return false
	}
	var buf [maxIdentityLen]byte
	f := buf[:len(name)]
	for i, c := range name {
		f[i] = foldByte(c)
	}
	_, ok := s.names[string(f)]
	return ok
}

// classify decides what happens to one client request header. It is called
// for every header of every proxied request, so it switches on the first
// byte before comparing anything.
func (p *Proxy) classify(name []byte) hdrAction {
	if len(name) == 0 {
		return drop
	}
	switch foldByte(name[0]) {
	case 'c':
		if foldEq(name, "connection") {
			return drop
		}
	case 'e':
		// Expect: 100-continue was answered by Arbor's server already.
		if foldEq(name, "expect") {
			return drop
		}
	case 'f':
		if foldEq(name, "forwarded") {
			if hasUnderscore(name) {
				return drop
			}
			return fwdForwarded
		}
	case 'k':
		if foldEq(name, "keep-alive") {
			return drop
		}
	case 'p':
		if foldPrefix(name, "proxy-") {
			return drop
		}
	case 't':
		if foldEq(name, "te") || foldEq(name, "trailer") || foldEq(name, "transfer-encoding") {
			return drop
		}
	case 'u':
		if foldEq(name, "upgrade") {
			return drop
		}
	case 'x':
		if foldPrefix(name, "x-arbor-") {
			return drop
		}
		if foldPrefix(name, "x-forwarded-") {
			if hasUnderscore(name) {
				return drop
			}
			switch {
			case foldEq(name, "x-forwarded-for"):
				return fwdFor
			case foldEq(name, "x-forwarded-proto"):
				return fwdProto
			case foldEq(name, "x-forwarded-host"):
				return fwdHost
			}
			return fwdOther
		}
		if foldEq(name, "x-real-ip") {
			if hasUnderscore(name) {
				return drop
			}
			return fwdRealIP
		}
	}
	if p.identity.has(name) {
		return drop
	}
	return keep
}

// hopByHopResponse reports whether a response header must not be relayed to
// the client (RFC 9110 section 7.6.1 and the Proxy-* family).
func hopByHopResponse(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	switch foldByte(name[0]) {
	case 'c':
		return foldEq(name, "connection")
	case 'k':
		return foldEq(name, "keep-alive")
	case 'p':
		return foldPrefix(name, "proxy-")
	case 't':
		return foldEq(name, "te") || foldEq(name, "trailer") || foldEq(name, "transfer-encoding")
	case 'u':
		return foldEq(name, "upgrade")
	}
	return false
}

// tokenList is a comma-separated header value (Connection) copied into
// scratch space, for "is this header named in Connection?" checks.
type tokenList struct {
	buf  []byte
	ends []int
}

func (t *tokenList) reset() { t.buf, t.ends = t.buf[:0], t.ends[:0] }

func (t *tokenList) parse(v []byte) {
	t.reset()
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		tok := trimOWS(v[:i])
		if len(tok) > 0 && !foldEq(tok, "close") && !foldEq(tok, "keep-alive") && !foldEq(tok, "upgrade") {
			for _, c := range tok {
				t.buf = append(t.buf, foldByte(c))
			}
			t.ends = append(t.ends, len(t.buf))
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
}

func (t *tokenList) has(name []byte) bool {
	start := 0
	for _, end := range t.ends {
		if foldEq(name, string(t.buf[start:end])) {
			return true
		}
		start = end
	}
	return false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// nameList collects header names to delete after iterating, since a header
// set must not be modified while it is being iterated.
type nameList struct {
	buf  []byte
	ends []int
}

func (n *nameList) reset() { n.buf, n.ends = n.buf[:0], n.ends[:0] }

func (n *nameList) add(name []byte) {
	n.buf = append(n.buf, name...)
	n.ends = append(n.ends, len(n.buf))
}

func (n *nameList) each(f func(name []byte)) {
	start := 0
	for _, end := range n.ends {
		f(n.buf[start:end])
		start = end
	}
}

// rewriteRequest turns the client's request into the upstream request, in
// place: it drops hop-by-hop and identity headers, replaces or extends the
// forwarding headers depending on whether the peer is a trusted proxy, and
// finally calls the Director. keepUpgrade is set for WebSocket handshakes.
func (p *Proxy) rewriteRequest(c *fiber.Ctx, x *exchange, keepUpgrade bool) error {
	req := c.Request()
	h := &req.Header

	peer := p.peerAddr(c)
	trusted := p.trusted(peer)

	x.tokens.reset()
	if conn := h.Peek(fiber.HeaderConnection); len(conn) > 0 {
		x.tokens.parse(conn)
	}
	x.del.reset()
	x.xff, x.proto, x.fhost = x.xff[:0], x.proto[:0], x.fhost[:0]
	for k, v := range h.All() {
		a := p.classify(k)
		switch {
		case a == keep:
			if len(x.tokens.ends) > 0 && x.tokens.has(k) {
				x.del.add(k)
			}
			continue
		case trusted && (a == fwdOther || a == fwdForwarded || a == fwdRealIP):
			// A trusted proxy's X-Forwarded-Port, -Prefix, Forwarded and
			// X-Real-Ip pass unchanged. Arbor does not synthesise the last
			// two: X-Forwarded-* says the same, and every extra header costs
			// the proxy and the upstream CPU on every request.
			continue
		}
		x.del.add(k)
		if !trusted {
			continue
		}
		switch a {
		case fwdFor:
			x.xff = appendList(x.xff, v)
		case fwdProto:
			if len(x.proto) == 0 {
				x.proto = append(x.proto, v...)
			}
		case fwdHost:
			if len(x.fhost) == 0 {
				x.fhost = append(x.fhost, v...)
			}
		}
	}
	x.del.each(func(name []byte) { h.DelBytes(name) })

	// Forwarding headers, built in one scratch buffer; fasthttp copies values.
	scheme := schemeHTTP
	if c.Context().IsTLS() {
		scheme = schemeHTTPS
	}
	b := x.scratch[:0]
	if len(x.xff) > 0 {
		b = append(append(b, x.xff...), ", "...)
	}
	b = appendAddr(b, peer)
	h.SetCanonical(kXForwardedFor, b)

	if len(x.proto) > 0 {
		h.SetCanonical(kXForwardedProto, x.proto)
	} else {
		h.SetCanonical(kXForwardedProto, scheme)
	}
	host := h.Host()
	if len(x.fhost) > 0 {
		h.SetCanonical(kXForwardedHost, x.fhost)
	} else if len(host) > 0 {
		h.SetCanonical(kXForwardedHost, host)
	}
	x.scratch = b

	if keepUpgrade {
		h.Set(fiber.HeaderConnection, "Upgrade")
		h.Set(fiber.HeaderUpgrade, "websocket")
	}

	if p.cfg.RewriteHost {
		h.SetHost(p.upstreamHost)
		req.UseHostHeader = true
	}
	uri := req.URI()
	if c.Context().IsTLS() {
		// The scheme must match the HostClient's (TLS, if any, is done by
		// our own dialer), or fasthttp refuses the request.
		uri.SetScheme("http")
	}
	if len(p.basePath) > 0 {
		b = append(append(x.scratch[:0], p.basePath...), uri.PathOriginal()...)
		uri.SetPathBytes(b)
		x.scratch = b
	}

	if p.cfg.Director != nil {
		return p.cfg.Director(c, req)
	}
	return nil
}

// appendList appends v to a comma-separated list.
func appendList(dst, v []byte) []byte {
	if len(dst) > 0 {
		dst = append(dst, ", "...)
	}
	return append(dst, v...)
}

// peerAddr is the TCP peer's address, or the zero Addr when the connection
// is not IP-based.
func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	ip := ctx.RemoteIP()
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

func (p *Proxy) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, pfx := range p.cfg.TrustedProxies {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, "unknown"...)
	}
	return a.AppendTo(b)
}

// filterResponseHeaders removes hop-by-hop headers, and any header the
// upstream named in its Connection header, from the response relayed to the
// client. keepUpgrade keeps Connection/Upgrade for a 101 handshake answer.
func filterResponseHeaders(h *fasthttp.ResponseHeader, x *exchange, keepUpgrade bool) {
	x.tokens.reset()
	if conn := h.Peek(fiber.HeaderConnection); len(conn) > 0 {
		x.tokens.parse(conn)
	}
	x.del.reset()
	for k := range h.All() {
		if hopByHopResponse(k) || (len(x.tokens.ends) > 0 && x.tokens.has(k)) {
			x.del.add(k)
		}
	}
	x.del.each(func(name []byte) { h.DelBytes(name) })
	// The upstream connection's fate is not the client's: Connection: close
	// from the upstream must not close the client's keep-alive connection.
	h.ResetConnectionClose()
	if keepUpgrade {
		h.Set(fiber.HeaderConnection, "Upgrade")
		h.Set(fiber.HeaderUpgrade, "websocket")
	}
}

// Package access decides, for a request path, what a request needs before
// it may reach the upstream: nothing ([Public]), a browser session
// ([Session]: an anonymous request is redirected to sign-in) or a session or
// token ([API]: an anonymous request is answered 401 with a JSON body, never
// redirected).
//
// A [Policy] is a default class and a list of path prefix rules; the longest
// matching prefix wins.
//
//	pol, err := access.New(access.Session, []access.Rule{
//		{Prefix: "/static/", Class: access.Public},
//		{Prefix: "/api", Class: access.API},
//	})
//	...
//	class, err := pol.Classify(c.Request().URI().PathOriginal())
//	if err != nil {
//		// 400: the path is malformed or ambiguous.
//	}
//
// # Matching
//
// A rule Prefix "/api" matches "/api", "/api/" and "/api/anything" but not
// "/apix"; a Prefix that ends in "/", such as "/static/", matches "/static/"
// and everything below it but not "/static"; "/" matches every path. A path
// no rule matches gets the policy's default class.
//
// # Why the decoded, cleaned path
//
// Arbor forwards the raw path (with runs of "/" merged by the gateway
// before anything reads it; see package gateway/edge/target), and the
// upstream routes on its own reading of it: it percent-decodes it
// ("/%61dmin" is "/admin") and most routers treat "//admin" as "/admin".
// Matching rules against the raw bytes would let any of these spellings
// slip past a rule for "/admin". Classify therefore matches on the path as
// the upstream would see it: decoded, with runs of "/" collapsed to one (an
// encoded "%2F%2F" too, which the gateway does not merge).
//
// Dot segments are not resolved but refused (ErrBadPath), as the proxy
// already does: "/public/%2e%2e/admin" resolves to "/admin" in one parser
// and to something else in another, and only hand-made requests carry dot
// segments, since browsers resolve them before sending. A segment whose part
// before ";" (raw or encoded as %3B) is "." or ".." ("..;x", which Tomcat
// resolves as "..") is a dot segment too. Control characters, NUL,
// backslashes (raw or encoded; some servers read "\" as "/"), malformed
// escapes and paths that do not start with "/" are refused as well, rather
// than repaired.
//
// Pass the raw path as received (fasthttp's PathOriginal), not one that
// was decoded already: decoding it first loses the difference between "/"
// and %2F, and decodes a literal "%25" twice.
//
// # Why both readings of %2F
//
// An encoded slash has no single meaning. Some upstreams decode it before
// routing, so "/api%2Fusers" is "/api/users"; others route on the escaped
// path and see one segment "api%2Fusers"; a proxy in front may do either.
// Arbor cannot know which, so Classify computes the class under both
// readings. When they differ, the stricter one wins: [Session] and [API] are
// both stricter than [Public]; between [Session] and [API] the decoded
// reading wins. Either way an anonymous request is refused, which is what
// matters; the choice only decides between a redirect and a 401.
//
// # Other readings considered
//
// The same rule, "a reading that needs a session beats one that does not",
// covers the other places where upstreams disagree:
//
//   - Case. Matching is case-sensitive: a rule "/admin" does not make
//     "/ADMIN" match. But an upstream that routes case-insensitively would
//     serve "/admin" for "/ADMIN". So when the exact comparison makes a
//     path public and a comparison without regard to case (Unicode simple
//     folding, as [strings.EqualFold]) does not, the latter wins: case can
//     make a path stricter, never more public. Rules that must hold for an
//     upstream that is case-sensitive need no extra spelling; rules for one
//     that is not are covered by this check. For the same reason [New]
//     refuses two rules whose prefixes differ only in case but whose
//     classes differ.
//   - Path parameters. Servlet containers drop everything from ";" to the
//     end of each segment before routing ("/admin;x=1/panel" is
//     "/admin/panel"); the class of that reading is considered too.
//   - Double decoding. An upstream or framework that decodes twice reads
//     "/%2561dmin" as "/admin". When the decoded path still holds escapes,
//     it is decoded again (at most three rounds in all; a path that would
//     change after that is refused), each round is checked like the first
//     and its class is considered as well.
//
// The primary reading is the decoded one with %2F as "/", as written, with
// path parameters kept. If it is not [Public], its class is the result.
// Otherwise the first class that is not [Public] among the other readings
// is, in this order: the further decoding rounds, the %2F-kept reading, the
// same with path parameters dropped, then all of those compared without
// regard to case.
//
// # Cost
//
// A path with no "%", "//" or ";" is checked in one pass and matched where
// it lies, without copying. Other paths are decoded into a 512-byte stack
// buffer shared by all their readings; only when those do not fit (a path
// of a few hundred bytes with escapes) does Classify allocate. The work is
// linear in the length of the path times the number of rules; rules are
// plain prefixes, no regular expressions.
package access

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vintner/arbor/gateway/internal/pctenc"
)

// Class is what a request needs before it may reach the upstream.
type Class uint8

// Classes, from the most open to the strictest. The zero Class is not
// valid.
const (
	// Public needs no session; the identity is still passed upstream when
	// the request has one.
	Public Class = iota + 1
	// Session needs a browser session; an anonymous request is redirected
	// to sign-in.
	Session
	// API needs a session (or, later, a token); an anonymous request is
	// answered 401 with a JSON body, never redirected.
	API
)

var classNames = [...]string{Public: "public", Session: "session", API: "api"}

// String returns "public", "session" or "api", the same names ParseClass
// accepts.
func (c Class) String() string {
	if c.valid() {
		return classNames[c]
	}
	return fmt.Sprintf("access.Class(%d)", uint8(c))
}

func (c Class) valid() bool { return c >= Public && c <= API }

// ParseClass parses a class name as written in configuration: "public",
// "session" or "api", in any case.
func ParseClass(s string) (Class, error) {
	for c := Public; c <= API; c++ {
		if strings.EqualFold(s, classNames[c]) {
			return c, nil
		}
	}
	return 0, fmt.Errorf("access: unknown class %q: want \"public\", \"session\" or \"api\"", s)
}

// MaxPrefixLength is the longest rule Prefix New accepts, in bytes.
const MaxPrefixLength = 1024

// maxDecodeRounds bounds how many times a path is percent-decoded. A path
// that would still change after that many rounds is refused.
const maxDecodeRounds = 3

// ErrBadPath is the only error Classify returns: the path is malformed
// (empty, not starting with "/", a bad escape) or ambiguous (a dot segment,
// a backslash, a control character, too deeply encoded). The request should
// be answered 400 and not forwarded.
var ErrBadPath = errors.New("access: malformed or ambiguous request path")

// Rule gives the class of the paths under a prefix. See the package
// documentation for how a Prefix matches.
type Rule struct {
	Prefix string
	Class  Class
}

// Policy classifies request paths. It is immutable and safe for concurrent
// use.
type Policy struct {
	def Class
	// rules is sorted by prefix length, longest first, so the first match
	// is the longest.
	rules []rule
	// foldRules is set when a prefix has an upper-case or non-ASCII byte:
	// then a case-insensitive comparison may differ from the exact one even
	// for a lower-case ASCII path.
	foldRules bool
}

type rule struct {
	prefix string
	class  Class
	dir    bool // prefix ends with "/": matches itself and below only
	index  int  // in the rules given to New
}

// New returns a policy with default class def and the given rules. Each
// Prefix must start with "/", be at most MaxPrefixLength bytes of valid
// UTF-8 and be clean: no "." or ".." segment, no "//", no "%" (write the
// decoded form), no "?", "#", "\", control character or NUL. Two rules with
// the same Prefix are an error, and so are two whose prefixes differ only in
// case but whose classes differ.
func New(def Class, rules []Rule) (*Policy, error) {
	if !def.valid() {
		return nil, fmt.Errorf("access: invalid default class %d: use access.Public, access.Session or access.API", uint8(def))
	}
	p := &Policy{def: def, rules: make([]rule, 0, len(rules))}
	for i, r := range rules {
		if err := checkPrefix(r.Prefix); err != nil {
			return nil, fmt.Errorf("access: rule %d (prefix %q): %w", i, r.Prefix, err)
		}
		if !r.Class.valid() {
			return nil, fmt.Errorf("access: rule %d (prefix %q): invalid class %d: use access.Public, access.Session or access.API", i, r.Prefix, uint8(r.Class))
		}
		for j, q := range rules[:i] {
			switch {
			case q.Prefix == r.Prefix:
				return nil, fmt.Errorf("access: rules %d and %d both have prefix %q: keep one", j, i, r.Prefix)
			case q.Class != r.Class && strings.EqualFold(q.Prefix, r.Prefix):
				return nil, fmt.Errorf("access: rules %d (%q, %s) and %d (%q, %s) differ only in case: "+
					"paths are also compared without regard to case and the stricter class wins, so give them the same class or keep one",
					j, q.Prefix, q.Class, i, r.Prefix, r.Class)
			}
		}
		p.rules = append(p.rules, rule{prefix: r.Prefix, class: r.Class, dir: strings.HasSuffix(r.Prefix, "/"), index: i})
		for k := 0; k < len(r.Prefix); k++ {
			if c := r.Prefix[k]; 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf {
				p.foldRules = true
			}
		}
	}
	slices.SortStableFunc(p.rules, func(a, b rule) int {
		if len(a.prefix) != len(b.prefix) {
			return len(b.prefix) - len(a.prefix)
		}
		return strings.Compare(a.prefix, b.prefix)
	})
	return p, nil
}

// checkPrefix explains what is wrong with a rule prefix and what to write
// instead.
func checkPrefix(s string) error {
	switch {
	case s == "":
		return errors.New(`empty prefix: write "/" to match every path`)
	case s[0] != '/':
		return fmt.Errorf("prefix must start with \"/\": write %q", "/"+s)
	case len(s) > MaxPrefixLength:
		return fmt.Errorf("prefix is %d bytes long, more than %d", len(s), MaxPrefixLength)
	case !utf8.ValidString(s):
		return errors.New("prefix is not valid UTF-8")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			return errors.New(`prefix contains "%": rules match the decoded path, so write the decoded form (for example "/a b", not "/a%20b")`)
		case c == '?' || c == '#':
			return fmt.Errorf("prefix contains %q: rules match the path only, write %q", c, s[:i])
		case c == '\\':
			return errors.New(`prefix contains "\": write "/" as the separator`)
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("prefix contains control character %q", c)
		}
	}
	if strings.Contains(s, "//") {
		return fmt.Errorf("prefix contains \"//\": paths are matched with repeated slashes collapsed, write %q", collapse(s))
	}
	if hasDotSegment([]byte(s)) {
		msg := `prefix has a dot segment ("." or ".."), which no accepted path has: write the resolved path`
		if !strings.Contains(s, ";") {
			clean := path.Clean(s)
			if strings.HasSuffix(s, "/") && clean != "/" {
				clean += "/"
			}
			msg += fmt.Sprintf(", %q", clean)
		}
		return errors.New(msg)
	}
	return nil
}

func collapse(s string) string {
	for strings.Contains(s, "//") {
		s = strings.ReplaceAll(s, "//", "/")
	}
	return s
}

// maxViews is the number of readings of a path before path parameters are
// dropped: maxDecodeRounds decoding rounds and the %2F-kept reading.
const maxViews = maxDecodeRounds + 1

// Classify returns the class of rawPath, the path as sent on the request
// line. It should not include the query, but anything from the first "?" or
// "#" is ignored. The only error is ErrBadPath, returned with class 0.
func (p *Policy) Classify(rawPath []byte) (Class, error) {
	c, _, err := p.find(rawPath)
	return c, err
}

// Rule returns the index (in the rules given to New) of the rule that
// decides the class of rawPath, read exactly as Classify reads it, or -1
// when no rule matches (the default class). The policy of package
// gateway/authz/policy finds its route rules this way: a table whose
// rules are all API and whose default is Public gives the longest rule
// matching the primary reading, else the first matching another reading.
// The only error is ErrBadPath.
func (p *Policy) Rule(rawPath []byte) (int, error) {
	_, r, err := p.find(rawPath)
	if err != nil {
		return -1, err
	}
	if r == nil {
		return -1, nil
	}
	return r.index, nil
}

// find is Classify, also returning the rule that decided (nil for the
// default class).
func (p *Policy) find(rawPath []byte) (Class, *rule, error) {
	raw := rawPath
	if len(raw) == 0 || raw[0] != '/' {
		return 0, nil, ErrBadPath
	}
	// One pass over the raw path finds its end, what the slow path is
	// needed for, and what is refused whatever the reading.
	var flags uint8
	for i := 1; i < len(raw); i++ {
		c := raw[i]
		k := byteKind[c]
		if k == 0 {
			continue
		}
		if k == kindFold {
			flags |= flagFold
			continue
		}
		switch c {
		case '?', '#':
			raw = raw[:i]
		case '%':
			flags |= flagPct
		case ';':
			flags |= flagSemi
		case '/':
			if raw[i-1] == '/' {
				flags |= flagSlashes
			}
		case '.':
			if raw[i-1] == '/' && isRawDotSegmentAt(raw, i) {
				return 0, nil, ErrBadPath
			}
		default: // control character, DEL or backslash
			return 0, nil, ErrBadPath
		}
	}
	if flags&(flagPct|flagSlashes|flagSemi) != 0 {
		return p.classifySlow(raw, flags)
	}
	// The common case: raw is the only reading, and it has been checked.
	if c, r := p.match(raw, false); c != Public {
		return c, r, nil
	}
	if flags&flagFold != 0 || p.foldRules {
		c, r := p.match(raw, true)
		return c, r, nil
	}
	return Public, nil, nil
}

// Byte kinds for the scan in Classify.
const (
	kindSpecial = 1 + iota // one of ?#%;/. or a byte always refused
	kindFold               // an upper-case ASCII letter or a non-ASCII byte
)

// Flags set by the scan in Classify.
const (
	flagPct     = 1 << iota // a "%"
	flagSlashes             // "//"
	flagSemi                // a ";"
	flagFold                // an upper-case ASCII letter or a non-ASCII byte
)

var byteKind = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c < 0x20 || c == 0x7f || strings.IndexByte(`?#%;/.\`, byte(c)) >= 0:
			t[c] = kindSpecial
		case 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf:
			t[c] = kindFold
		}
	}
	return t
}()

// classifySlow classifies a path that needs decoding, has repeated slashes
// or has path parameters. raw starts with "/", has no "?" or "#", and has
// passed the checks of the scan in Classify, whose flags are given.
func (p *Policy) classifySlow(raw []byte, flags uint8) (Class, *rule, error) {
	var stack [512]byte
	buf := stack[:0]
	var views [maxViews][]byte
	n := 0
	switch {
	case flags&flagPct == 0 && flags&flagSlashes == 0:
		// Only path parameters: raw is the one reading.
		views[0] = raw
		n = 1
	case flags&flagPct == 0:
		// Nothing to decode: the one reading is raw with slashes
		// collapsed, and the scan has checked it.
		buf, _ = appendDecoded(buf, raw, false, true)
		views[0] = buf[:len(buf):len(buf)]
		n = 1
	default:
		// Decoding rounds, the first one strict.
		cur := raw
		for round := 1; ; round++ {
			start := len(buf)
			var ok bool
			buf, ok = appendDecoded(buf, cur, false, round == 1)
			if !ok {
				return 0, nil, ErrBadPath
			}
			cur = buf[start:len(buf):len(buf)]
			if checkDecoded(cur) != nil {
				return 0, nil, ErrBadPath
			}
			views[n] = cur
			n++
			if !hasEscape(cur) {
				break
			}
			if round == maxDecodeRounds {
				return 0, nil, ErrBadPath
			}
		}
		// The %2F-kept reading. Its checks are implied by those of the
		// first round: its segments are runs of that round's segments.
		if hasEncodedSlash(raw) {
			start := len(buf)
			buf, _ = appendDecoded(buf, raw, true, true)
			views[n] = buf[start:len(buf):len(buf)]
			n++
		}
	}

	for _, v := range views[:n] {
		if c, r := p.match(v, false); c != Public {
			return c, r, nil
		}
	}
	var stripped [maxViews][]byte
	ns := 0
	for _, v := range views[:n] {
		if bytes.IndexByte(v, ';') >= 0 {
			start := len(buf)
			buf = appendStripped(buf, v)
			s := buf[start:len(buf):len(buf)]
			if c, r := p.match(s, false); c != Public {
				return c, r, nil
			}
			stripped[ns] = s
			ns++
		}
	}
	for _, vs := range [2][][]byte{views[:n], stripped[:ns]} {
		for _, v := range vs {
			if p.foldRules || hasUpperOrNonASCII(v) {
				if c, r := p.match(v, true); c != Public {
					return c, r, nil
				}
			}
		}
	}
	return Public, nil, nil
}

// match returns the class of the longest rule matching v, or the default,
// and the rule (nil for the default). With fold, prefixes are compared
// without regard to case, and among matching rules of the same length a
// class other than Public wins.
func (p *Policy) match(v []byte, fold bool) (Class, *rule) {
	for i := range p.rules {
		r := &p.rules[i]
		if !fold {
			// v and every prefix start with "/"; comparing the second
			// byte first rules most prefixes out cheaply.
			if len(v) >= len(r.prefix) && (len(r.prefix) == 1 || v[1] == r.prefix[1]) &&
				string(v[:len(r.prefix)]) == r.prefix &&
				(r.dir || len(v) == len(r.prefix) || v[len(r.prefix)] == '/') {
				return r.class, r
			}
			continue
		}
		if !foldMatch(v, r) {
			continue
		}
		if r.class != Public {
			return r.class, r
		}
		for k := i + 1; k < len(p.rules); k++ {
			q := &p.rules[k]
			if len(q.prefix) < len(r.prefix) {
				break
			}
			if q.class != Public && foldMatch(v, q) {
				return q.class, q
			}
		}
		return Public, r
	}
	return p.def, nil
}

// foldMatch reports whether rule r matches v without regard to case.
func foldMatch(v []byte, r *rule) bool {
	s := r.prefix
	i, j := 0, 0
	for j < len(s) {
		if i >= len(v) {
			return false
		}
		a, b := v[i], s[j]
		if a < utf8.RuneSelf && b < utf8.RuneSelf {
			if lower(a) != lower(b) {
				return false
			}
			i++
			j++
			continue
		}
		ra, na := utf8.DecodeRune(v[i:])
		rb, nb := utf8.DecodeRuneInString(s[j:])
		if ra == utf8.RuneError && na == 1 || !foldEqual(ra, rb) {
			return false
		}
		i += na
		j += nb
	}
	return r.dir || i == len(v) || v[i] == '/'
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// foldEqual reports whether a and b are equal under Unicode simple case
// folding.
func foldEqual(a, b rune) bool {
	if a == b {
		return true
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// appendDecoded appends s, percent-decoded, to dst, with runs of "/"
// collapsed to one. With keepSlash an encoded slash is appended as "%2f"
// rather than "/". With strict, a "%" not followed by two hex digits makes
// it fail; otherwise such a "%" is kept as it is.
func appendDecoded(dst, s []byte, keepSlash, strict bool) ([]byte, bool) {
	start := len(dst)
	for i := 0; i < len(s); i++ {
		// Copy the run up to the next "%" or "/" at once.
		j := i
		for j < len(s) && s[j] != '%' && s[j] != '/' {
			j++
		}
		if j > i {
			dst = append(dst, s[i:j]...)
			if i = j; i == len(s) {
				break
			}
		}
		c := s[i]
		if c == '%' {
			v, ok := byte(0), i+2 < len(s)
			if ok {
				v, ok = pctenc.Byte(s[i+1], s[i+2])
			}
			if !ok {
				if strict {
					return dst, false
				}
				dst = append(dst, c)
				continue
			}
			c = v
			i += 2
			if c == '/' && keepSlash {
				// Lower case, so that it does not call for a
				// case-insensitive pass; no prefix has a "%".
				dst = append(dst, "%2f"...)
				continue
			}
		}
		if c == '/' && len(dst) > start && dst[len(dst)-1] == '/' {
			continue
		}
		dst = append(dst, c)
	}
	return dst, true
}

// appendStripped appends v to dst with path parameters dropped: everything
// from a ";" to the end of its segment. Runs of "/" are collapsed.
func appendStripped(dst, v []byte) []byte {
	start := len(dst)
	param := false
	for _, c := range v {
		switch {
		case c == '/':
			param = false
			if len(dst) > start && dst[len(dst)-1] == '/' {
				continue
			}
			dst = append(dst, c)
		case param:
		case c == ';':
			param = true
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// checkDecoded refuses control characters, backslashes and dot segments in
// a decoded reading.
func checkDecoded(v []byte) error {
	for _, c := range v {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return ErrBadPath
		}
	}
	if hasDotSegment(v) {
		return ErrBadPath
	}
	return nil
}

// hasDotSegment reports whether v has a segment whose part before the
// first ";" is "." or "..".
func hasDotSegment(v []byte) bool {
	for i, c := range v {
		if c == '.' && (i == 0 || v[i-1] == '/') && isDotSegmentAt(v, i) {
			return true
		}
	}
	return false
}

// isRawDotSegmentAt is isDotSegmentAt for the raw path before it is cut at
// the query or fragment: "?" and "#" end the segment too.
func isRawDotSegmentAt(raw []byte, i int) bool {
	i++
	if i < len(raw) && raw[i] == '.' {
		i++
	}
	if i == len(raw) {
		return true
	}
	switch raw[i] {
	case '/', ';', '?', '#':
		return true
	}
	return false
}

// isDotSegmentAt reports whether the segment starting at v[i] is a dot
// segment: "." or "..", followed by the end, "/" or ";".
func isDotSegmentAt(v []byte, i int) bool {
	if v[i] != '.' {
		return false
	}
	i++
	if i < len(v) && v[i] == '.' {
		i++
	}
	return i == len(v) || v[i] == '/' || v[i] == ';'
}

// hasEscape reports whether v holds a valid percent-escape.
func hasEscape(v []byte) bool {
	for i := 0; i+2 < len(v); i++ {
		if v[i] == '%' && pctenc.Valid(v[i+1], v[i+2]) {
			return true
		}
	}
	return false
}

// hasEncodedSlash reports whether raw holds "%2F" or "%2f".
func hasEncodedSlash(raw []byte) bool {
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] == '%' && raw[i+1] == '2' && raw[i+2]|0x20 == 'f' {
			return true
		}
	}
	return false
}

func hasUpperOrNonASCII(v []byte) bool {
	for _, c := range v {
		if 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

package plugin

import (
	"errors"
	"slices"
	"strings"
)

// Values are query or form parameters, as url.Values (and convertible to and
// from it: plugin.Values(v)).
//
// Why not net/url: it pulls fmt, reflect and net/netip into the module,
// about a megabyte, and every megabyte costs load time because wazero
// validates each function whenever a module is loaded. A plugin may still
// import net/url if it needs URL parsing.
type Values map[string][]string

// Get returns the first value of key, or "".
func (v Values) Get(key string) string {
	if vs := v[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// Set replaces key's values with value.
func (v Values) Set(key, value string) { v[key] = []string{value} }

// Add appends value to key's values.
func (v Values) Add(key, value string) { v[key] = append(v[key], value) }

// Del removes key.
func (v Values) Del(key string) { delete(v, key) }

// Has reports whether key is set.
func (v Values) Has(key string) bool { _, ok := v[key]; return ok }

// Encode returns "a=1&b=2" sorted by key, as url.Values.Encode does.
func (v Values) Encode() string {
	if len(v) == 0 {
		return ""
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		ek := QueryEscape(k)
		for _, val := range v[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(ek)
			b.WriteByte('=')
			b.WriteString(QueryEscape(val))
		}
	}
	return b.String()
}

// ParseQuery parses "a=1&b=2" (a query string or a form-encoded body).
func ParseQuery(s string) (Values, error) {
	v := Values{}
	var firstErr error
	for s != "" {
		var part string
		part, s, _ = strings.Cut(s, "&")
		if part == "" {
			continue
		}
		k, val, _ := strings.Cut(part, "=")
		k, err1 := queryUnescape(k)
		val, err2 := queryUnescape(val)
		if err := errors.Join(err1, err2); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		v[k] = append(v[k], val)
	}
	return v, firstErr
}

const upperhex = "0123456789ABCDEF"

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// QueryEscape escapes s for a query parameter (space becomes '+'), as
// url.QueryEscape does.
func QueryEscape(s string) string {
	return escape(s, func(c byte) bool { return unreserved(c) }, true)
}

// PathEscape escapes s for use as one path segment ("group/project"
// becomes "group%2Fproject", as GitLab's API wants), as url.PathEscape does.
func PathEscape(s string) string {
	return escape(s, func(c byte) bool {
		return unreserved(c) || c == '$' || c == '&' || c == '+' || c == ':' || c == '=' || c == '@'
	}, false)
}

func escape(s string, keep func(byte) bool, spacePlus bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !keep(s[i]) && !(spacePlus && s[i] == ' ') {
			n++
		}
	}
	if n == 0 && !(spacePlus && strings.IndexByte(s, ' ') >= 0) {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case keep(c):
			b = append(b, c)
		case spacePlus && c == ' ':
			b = append(b, '+')
		default:
			b = append(b, '%', upperhex[c>>4], upperhex[c&15])
		}
	}
	return string(b)
}

var errEscape = errors.New("invalid percent-encoding")

// queryUnescape decodes a query component ('+' is a space).
func queryUnescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", errEscape
			}
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

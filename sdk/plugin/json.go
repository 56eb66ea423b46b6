package plugin

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// JSON reads a JSON document without reflection, for the responses a
// plugin parses on every call (repository lists, users, tokens).
//
// Why not encoding/json: inside the sandbox every loop iteration pays for
// the deadline check that stops runaway plugins (wazero's
// WithCloseOnContextDone), and encoding/json's byte-at-a-time state machine
// iterates several times per input byte. Decoding 100 GitHub repositories
// (about 50 KB) with encoding/json takes ~19 ms in the sandbox; JSON scans
// strings eight bytes at a time and allocates only the values you keep.
// Not linking encoding/json also keeps the module smaller, and a smaller
// module loads faster (wazero validates every function at each load).
// Plugins may still import encoding/json for rare, small documents.
//
// Usage: walk the document with Object and Array, read the values you need
// with String, Int, Bool or Number, and Skip the rest (Object skips values
// the callback did not read). Errors are sticky: after the first one every
// method returns a zero value, and Err reports it.
//
//	j := plugin.NewJSON(resp.Body)
//	j.Array(func() {
//		var r plugin.Repo
//		j.Object(func(key []byte) {
//			switch string(key) { // does not allocate
//			case "id":
//				r.ID = j.Number()
//			case "full_name":
//				r.FullName = j.String()
//			}
//		})
//		repos = append(repos, r)
//	})
//	if err := j.Err(); err != nil { … }
type JSON struct {
	b     []byte
	i     int
	err   error
	depth int
	read  bool // the current value was consumed by the callback
}

// maxJSONDepth bounds nesting, so a hostile document cannot exhaust the
// stack.
const maxJSONDepth = 128

// NewJSON returns a reader of b. b is not copied; strings returned are.
func NewJSON(b []byte) *JSON { return &JSON{b: b} }

// Err returns the first error, or an error if the document has trailing
// data after the top-level value.
func (j *JSON) Err() error {
	if j.err == nil && j.depth == 0 {
		j.ws()
		if j.i < len(j.b) && j.i > 0 {
			j.fail("unexpected data after the top-level value")
		}
	}
	return j.err
}

func (j *JSON) fail(msg string) {
	if j.err == nil {
		j.err = ErrProvider(0, "invalid JSON at offset "+strconv.Itoa(j.i)+": "+msg)
	}
	j.i = len(j.b)
}

func (j *JSON) ws() {
	for j.i < len(j.b) {
		switch j.b[j.i] {
		case ' ', '\t', '\n', '\r':
			j.i++
		default:
			return
		}
	}
}

// Kind returns the first byte of the next value: '{', '[', '"', 't' or
// 'f' (booleans), 'n' (null), '-' or a digit (numbers); 0 at the end or
// after an error.
func (j *JSON) Kind() byte {
	j.ws()
	if j.err != nil || j.i >= len(j.b) {
		return 0
	}
	c := j.b[j.i]
	if c == '-' || ('0' <= c && c <= '9') {
		return c
	}
	switch c {
	case '{', '[', '"', 't', 'f', 'n':
		return c
	}
	return 0
}

// Null consumes a null and reports whether there was one.
func (j *JSON) Null() bool {
	if j.Kind() == 'n' && j.literal("null") {
		j.read = true
		return true
	}
	return false
}

func (j *JSON) literal(lit string) bool {
	if len(j.b)-j.i >= len(lit) && string(j.b[j.i:j.i+len(lit)]) == lit {
		j.i += len(lit)
		return true
	}
	j.fail("invalid literal")
	return false
}

// Object calls fn for each member of an object; key is valid only during
// the call. A member whose value fn did not read is skipped. A null is
// treated as an empty object.
func (j *JSON) Object(fn func(key []byte)) {
	if !j.open('{', '}', "expected an object") {
		return
	}
	for j.err == nil {
		j.ws()
		if j.i >= len(j.b) || j.b[j.i] != '"' {
			j.fail("expected a member name")
			return
		}
		start, end, esc := j.scanString()
		key := j.b[start:end]
		if esc {
			key = unescape(nil, key)
		}
		j.ws()
		if j.i >= len(j.b) || j.b[j.i] != ':' {
			j.fail("expected ':'")
			return
		}
		j.i++
		j.read = false
		fn(key)
		if !j.read {
			j.Skip()
		}
		if !j.next('}', "unterminated object", "expected ',' or '}'") {
			return
		}
	}
}

// Array calls fn for each element of an array; fn must read the element
// (or Skip it). A null is treated as an empty array.
func (j *JSON) Array(fn func()) {
	if !j.open('[', ']', "expected an array") {
		return
	}
	for j.err == nil {
		j.read = false
		fn()
		if !j.read {
			j.Skip()
		}
		if !j.next(']', "unterminated array", "expected ',' or ']'") {
			return
		}
	}
}

// open consumes the start of an object or array (opening '{' or '[') and
// reports whether members follow. A null, an empty container and an error
// (notKind when the value is something else) all report false.
func (j *JSON) open(opening, closing byte, notKind string) bool {
	j.read = true
	switch j.Kind() {
	case 'n':
		j.literal("null")
		return false
	case opening:
	default:
		j.fail(notKind)
		return false
	}
	if j.depth++; j.depth > maxJSONDepth {
		j.fail("nested too deeply")
		return false
	}
	j.i++
	j.ws()
	if j.i < len(j.b) && j.b[j.i] == closing {
		j.i++
		j.depth--
		return false
	}
	return true
}

// next consumes what follows a member of an object or array and reports
// whether another member follows (a ','); at the closing byte it ends the
// container and reports false, as it does on an error.
func (j *JSON) next(closing byte, unterminated, unexpected string) bool {
	j.ws()
	if j.i >= len(j.b) {
		j.fail(unterminated)
		return false
	}
	switch j.b[j.i] {
	case ',':
		j.i++
		return true
	case closing:
		j.i++
		j.depth--
		j.read = true
		return false
	}
	j.fail(unexpected)
	return false
}

// String reads a string. A null reads as "".
func (j *JSON) String() string {
	j.read = true
	switch j.Kind() {
	case '"':
	case 'n':
		j.literal("null")
		return ""
	default:
		j.fail("expected a string")
		return ""
	}
	start, end, esc := j.scanString()
	if j.err != nil {
		return ""
	}
	if esc {
		return string(unescape(make([]byte, 0, end-start), j.b[start:end]))
	}
	return string(j.b[start:end])
}

// Number returns a number's text ("4242", "1.5e3"); strings holding a
// number are accepted too, as some providers quote ids. A null reads as "".
func (j *JSON) Number() string {
	j.read = true
	switch k := j.Kind(); {
	case k == '"':
		return j.String()
	case k == 'n':
		j.literal("null")
		return ""
	case k == '-' || ('0' <= k && k <= '9'):
		start := j.i
		j.i++
		for j.i < len(j.b) {
			c := j.b[j.i]
			if ('0' <= c && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
				j.i++
				continue
			}
			break
		}
		return string(j.b[start:j.i])
	}
	j.fail("expected a number")
	return ""
}

// Int reads an integer (or a string holding one). A null reads as 0.
func (j *JSON) Int() int64 {
	s := j.Number()
	if s == "" || j.err != nil {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			j.fail("invalid integer " + strconv.Quote(s))
			return 0
		}
		return int64(f)
	}
	return n
}

// Bool reads true or false. A null reads as false.
func (j *JSON) Bool() bool {
	j.read = true
	switch j.Kind() {
	case 't':
		return j.literal("true")
	case 'f':
		j.literal("false")
		return false
	case 'n':
		j.literal("null")
		return false
	}
	j.fail("expected a boolean")
	return false
}

// Skip reads and discards the next value.
func (j *JSON) Skip() {
	j.read = true
	switch k := j.Kind(); {
	case k == '{':
		j.Object(func([]byte) {})
	case k == '[':
		j.Array(func() { j.Skip() })
	case k == '"':
		j.scanString()
	case k == 't':
		j.literal("true")
	case k == 'f':
		j.literal("false")
	case k == 'n':
		j.literal("null")
	case k == '-' || ('0' <= k && k <= '9'):
		j.Number()
	default:
		j.fail("expected a value")
	}
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// scanString moves past a string starting at j.i (a '"') and returns the
// bounds of its contents and whether it contains escapes. It examines eight
// bytes per iteration while no quote, backslash or control byte is in them.
func (j *JSON) scanString() (start, end int, escaped bool) {
	j.i++
	start = j.i
	b := j.b
	i := j.i
	for {
		for i+8 <= len(b) {
			v := le64(b[i : i+8])
			q := v ^ ('"' * lsb)
			s := v ^ ('\\' * lsb)
			// Bytes that are zero after the xor (quote, backslash), or
			// below 0x20 (control).
			if ((q-lsb)&^q|(s-lsb)&^s|(v-0x20*lsb)&^v)&msb != 0 {
				break
			}
			i += 8
		}
		if i >= len(b) {
			j.i = i
			j.fail("unterminated string")
			return start, start, false
		}
		switch c := b[i]; {
		case c == '"':
			j.i = i + 1
			return start, i, escaped
		case c == '\\':
			escaped = true
			i += 2
		case c < 0x20:
			j.i = i
			j.fail("control character in a string")
			return start, start, false
		default:
			i++
		}
	}
}

// unescape appends the decoded contents of a JSON string to dst.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			dst = append(dst, c)
			continue
		}
		i++
		switch s[i] {
		case 'n':
			dst = append(dst, '\n')
		case 't':
			dst = append(dst, '\t')
		case 'r':
			dst = append(dst, '\r')
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'u':
			r, n := hex4(s[i+1:])
			i += n
			if utf16.IsSurrogate(r) && i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				r2, n2 := hex4(s[i+3:])
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 2 + n2
				}
			}
			if utf16.IsSurrogate(r) {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, s[i])
		}
	}
	return dst
}

func hex4(s []byte) (rune, int) {
	if len(s) < 4 {
		return utf8.RuneError, len(s)
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return utf8.RuneError, 4
		}
		r = r<<4 | rune(c)
	}
	return r, 4
}

// le64 loads eight bytes little-endian. (encoding/binary would link
// reflect into every plugin.)
func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// NewJSONHandler returns a slog.Handler that writes the same JSON lines as
// slog.NewJSONHandler ({"time":…,"level":…,"msg":…, attributes}), several
// times faster. It exists for the access log, which writes a line per
// request: there, slog's JSONHandler was the largest single cost of a
// proxied request after the system calls. The speed comes from writing
// every value kind directly (slog's handler formats floats through
// encoding/json, for instance) and from a pooled buffer.
//
// opts may be nil; only opts.Level is honored (AddSource and ReplaceAttr
// are not supported: use slog.NewJSONHandler for those).
// Writes to w are serialized; one Write per line.
func NewJSONHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	h := &jsonHandler{w: w, level: slog.LevelInfo}
	if _, ok := w.(*BufferedWriter); !ok {
		// A BufferedWriter serializes its own writes; others get a lock.
		h.mu = &sync.Mutex{}
	}
	if opts != nil && opts.Level != nil {
		h.level = opts.Level
	}
	return h
}

type jsonHandler struct {
	w     io.Writer
	mu    *sync.Mutex // nil when w is a BufferedWriter
	level slog.Leveler
	// pre holds attributes added with WithAttrs, rendered, each followed by
	// a comma, inside the groups opened before them.
	pre []byte
	// groups are the names of groups opened with WithGroup.
	groups []string
	// preGroups counts how many of groups were already opened inside pre.
	preGroups int
}

func (h *jsonHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *jsonHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	h2 := *h
	b := append([]byte(nil), h.pre...)
	// Open the groups named since the last WithAttrs, then the attributes.
	opened := false
	for _, a := range as {
		if !isEmptyAttr(a) {
			opened = true
			break
		}
	}
	if !opened {
		return h
	}
	for _, g := range h.groups[h.preGroups:] {
		b = appendString(b, g)
		b = append(b, ":{"...)
	}
	for _, a := range as {
		b = appendAttr(b, a)
	}
	h2.pre = b
	h2.groups = h.groups[:len(h.groups):len(h.groups)]
	h2.preGroups = len(h.groups)
	return &h2
}

func (h *jsonHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.groups = append(h.groups[:len(h.groups):len(h.groups)], name)
	return &h2
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (h *jsonHandler) Handle(_ context.Context, r slog.Record) error {
	bp := bufPool.Get().(*[]byte) //nolint:forcetypeassert // pool holds only *[]byte
	b := (*bp)[:0]
	b = append(b, '{')
	if !r.Time.IsZero() {
		b = append(b, `"time":"`...)
		b = appendTime(b, r.Time)
		b = append(b, `",`...)
	}
	b = append(b, `"level":`...)
	b = appendString(b, r.Level.String())
	b = append(b, `,"msg":`...)
	b = appendString(b, r.Message)
	b = append(b, ',')

	b = append(b, h.pre...)
	open := h.preGroups
	if n := len(h.groups) - h.preGroups; n > 0 && recordHasAttrs(r) {
		for _, g := range h.groups[h.preGroups:] {
			b = appendString(b, g)
			b = append(b, ":{"...)
		}
		open = len(h.groups)
	}
	r.Attrs(func(a slog.Attr) bool {
		b = appendAttr(b, a)
		return true
	})
	b = trimComma(b)
	for range open {
		b = trimComma(b)
		b = append(b, '}')
	}
	b = append(b, "}\n"...)

	var err error
	if h.mu != nil {
		h.mu.Lock()
		_, err = h.w.Write(b)
		h.mu.Unlock()
	} else {
		_, err = h.w.Write(b)
	}
	if cap(b) <= 64<<10 {
		*bp = b
		bufPool.Put(bp)
	}
	return err
}

func recordHasAttrs(r slog.Record) bool {
	has := false
	r.Attrs(func(a slog.Attr) bool {
		if !isEmptyAttr(a) {
			has = true
			return false
		}
		return true
	})
	return has
}

// isEmptyAttr reports whether slog would drop a: an empty key with a
// non-group value, or a group with no attributes.
func isEmptyAttr(a slog.Attr) bool {
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			if !isEmptyAttr(g) {
				return false
			}
		}
		return true
	}
	return a.Key == "" && a.Value.Any() == nil
}

func trimComma(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == ',' {
		return b[:len(b)-1]
	}
	return b
}

// appendAttr appends `"key":value,` following slog's rules: values are
// resolved, empty attributes and empty groups are dropped, a group with an
// empty key is inlined.
func appendAttr(b []byte, a slog.Attr) []byte {
	if a.Value.Kind() == slog.KindLogValuer {
		if ja, ok := a.Value.Any().(jsonAttrAppender); ok {
			// The access log entry writes itself: same output as its
			// LogValue group, without building and walking the group.
			if a.Key != "" {
				b = appendString(b, a.Key)
				b = append(b, ":{"...)
				b = trimComma(ja.appendJSONAttrs(b))
				return append(b, "},"...)
			}
			return ja.appendJSONAttrs(b)
		}
		a.Value = a.Value.Resolve()
	}
	if a.Value.Kind() == slog.KindGroup {
		as := a.Value.Group()
		if isEmptyAttr(a) {
			return b
		}
		if a.Key != "" {
			b = appendString(b, a.Key)
			b = append(b, ":{"...)
		}
		for _, g := range as {
			b = appendAttr(b, g)
		}
		if a.Key != "" {
			b = trimComma(b)
			b = append(b, "},"...)
		}
		return b
	}
	if a.Key == "" && a.Value.Any() == nil {
		return b
	}
	b = appendString(b, a.Key)
	b = append(b, ':')
	b = appendValue(b, a.Value)
	return append(b, ',')
}

// jsonAttrAppender is a slog.LogValuer that can also write its group's
// attributes directly, as `"key":value,` pairs.
type jsonAttrAppender interface {
	slog.LogValuer
	appendJSONAttrs(b []byte) []byte
}

// timeCache holds the formatted seconds and zone of the last time logged:
// lines written in the same second share them, and only the fraction is
// formatted per line.
type timeCache struct {
	sec    int64
	loc    *time.Location
	prefix []byte // 2006-01-02T15:04:05
	zone   []byte // Z or -07:00
}

var lastTime atomic.Pointer[timeCache]

// appendTime formats t as time.RFC3339Nano does (as slog's JSONHandler
// writes it).
func appendTime(b []byte, t time.Time) []byte {
	tc := lastTime.Load()
	if tc == nil || tc.sec != t.Unix() || tc.loc != t.Location() {
		tc = &timeCache{
			sec:    t.Unix(),
			loc:    t.Location(),
			prefix: t.AppendFormat(nil, "2006-01-02T15:04:05"),
			zone:   t.AppendFormat(nil, "Z07:00"),
		}
		lastTime.Store(tc)
	}
	b = append(b, tc.prefix...)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, tc.zone...)
}

func appendValue(b []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return appendString(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindFloat64:
		return appendFloat(b, v.Float64())
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		// As slog's JSONHandler: nanoseconds.
		return strconv.AppendInt(b, int64(v.Duration()), 10)
	case slog.KindTime:
		b = append(b, '"')
		b = appendTime(b, v.Time())
		return append(b, '"')
	default:
		return appendAny(b, v.Any())
	}
}

func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return appendString(b, strconv.FormatFloat(f, 'g', -1, 64))
	}
	// encoding/json's choice of format, which slog's handler uses.
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// As encoding/json: e-09 becomes e-9.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendAny follows slog's JSONHandler: an error that is not a
// json.Marshaler is written as its message, anything else through
// encoding/json.
func appendAny(b []byte, v any) []byte {
	if err, ok := v.(error); ok {
		if _, jm := v.(json.Marshaler); !jm {
			return appendString(b, err.Error())
		}
	}
	j, err := json.Marshal(v)
	if err != nil {
		return appendString(b, "!ERROR:"+err.Error())
	}
	return append(b, j...)
}

const hexDigits = "0123456789abcdef"

// plain marks the ASCII bytes that go into a JSON string unescaped.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string, escaping as slog's JSONHandler
// does (no HTML escaping; invalid UTF-8 becomes U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

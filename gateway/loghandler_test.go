package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/vintner/arbor/gateway"
)

// TestJSONHandlerConformance runs the standard library's handler test suite.
func TestJSONHandlerConformance(t *testing.T) {
	var buf bytes.Buffer
	h := gateway.NewJSONHandler(&buf, nil)
	results := func() []map[string]any {
		var ms []map[string]any
		for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			m := map[string]any{}
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("not JSON: %v: %s", err, line)
			}
			ms = append(ms, m)
		}
		return ms
	}
	if err := slogtest.TestHandler(h, results); err != nil {
		t.Fatal(err)
	}
}

type marshalsItself struct{}

func (marshalsItself) MarshalJSON() ([]byte, error) { return []byte(`{"custom":true}`), nil }

// TestJSONHandlerMatchesSlog checks that lines are what slog's own
// JSONHandler writes, value kind by value kind.
func TestJSONHandlerMatchesSlog(t *testing.T) {
	when := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	attrs := []slog.Attr{
		slog.String("plain", "hello"),
		slog.String("escapes", "quote\" back\\ nl\n tab\t ctl\x01 <html>&amp; é ☃ \u2028 bad\xff"),
		slog.Int("int", -42),
		slog.Uint64("uint", math.MaxUint64),
		slog.Float64("float", 3.25),
		slog.Float64("tiny", 1e-9),
		slog.Float64("huge", 1e22),
		slog.Bool("bool", true),
		slog.Duration("dur", 1500*time.Millisecond),
		slog.Time("at", when),
		slog.Any("err", errors.New("boom")),
		slog.Any("custom", marshalsItself{}),
		slog.Any("map", map[string]int{"a": 1}),
		slog.Any("nil", nil),
		slog.Group("grp", slog.String("in", "side"), slog.Group("deeper", slog.Int("n", 1))),
		slog.Group("", slog.String("inlined", "yes")),
		slog.Group("empty"),
	}
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelInfo + 2} {
		var ours, theirs bytes.Buffer
		opts := &slog.HandlerOptions{Level: slog.LevelDebug}
		for _, h := range []struct {
			h   slog.Handler
			out *bytes.Buffer
		}{{gateway.NewJSONHandler(&ours, opts), &ours}, {slog.NewJSONHandler(&theirs, opts), &theirs}} {
			r := slog.NewRecord(when, level, "msg \"quoted\"", 0)
			r.AddAttrs(attrs...)
			hh := h.h.WithAttrs([]slog.Attr{slog.String("svc", "arbor")}).WithGroup("g").WithAttrs([]slog.Attr{slog.Int("pre", 1)})
			if err := hh.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
		if ours.String() != theirs.String() {
			t.Errorf("level %v:\nours:   %s\nslog's: %s", level, ours.String(), theirs.String())
		}
	}
}

func TestJSONHandlerLevel(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(gateway.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l.Info("dropped")
	l.Warn("kept")
	if strings.Contains(buf.String(), "dropped") || !strings.Contains(buf.String(), "kept") {
		t.Fatalf("level filter: %q", buf.String())
	}
}

func BenchmarkAccessLogLine(b *testing.B) {
	attrs := []slog.Attr{
		slog.String("request_id", "0123456789abcdef0123456789abcdef"), slog.String("method", "GET"),
		slog.String("route", "proxy"), slog.String("path", "/app/dashboard"), slog.Int("status", 200),
		slog.Int64("duration_us", 1234), slog.Int64("bytes", 13), slog.String("remote_ip", "127.0.0.1"),
	}
	for _, tc := range []struct {
		name string
		h    slog.Handler
	}{{"arbor", gateway.NewJSONHandler(discard{}, nil)}, {"slog", slog.NewJSONHandler(discard{}, nil)}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for range b.N {
				r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
				r.AddAttrs(slog.Attr{Value: slog.GroupValue(attrs...)})
				_ = tc.h.Handle(ctx, r)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

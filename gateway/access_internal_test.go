package gateway

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"regexp"
	"testing"
	"time"
)

// TestAccessLineSameEverywhere checks that the access log entry's fast path
// (appendJSONAttrs, used by the gateway's handler) writes what its
// LogValue writes through slog's own JSONHandler.
func TestAccessLineSameEverywhere(t *testing.T) {
	states := []*reqState{
		{id: "0123456789abcdef0123456789abcdef", method: "GET", class: ClassProxy, path: "/app/x", status: 200,
			peer: netip.MustParseAddr("127.0.0.1"), bytes: 13, duration: 1234 * time.Microsecond},
		{id: `odd"id`, method: "PROPFIND", class: ClassAuth, path: "/a\"b\\c\n\xff", status: 502,
			peer: netip.MustParseAddr("2001:db8::1"), client: "203.0.113.9", errCode: "upstream_unavailable",
			upstreamErr: errors.New("reset \"by\" peer"), clientErr: errors.New("broken pipe"), bytes: -1},
		{id: "x", method: "GET", class: ClassOther, status: 431},
	}
	when := time.Date(2024, 1, 2, 3, 4, 5, 600000000, time.UTC)
	ts := regexp.MustCompile(`"time":"[^"]*"`)
	for i, st := range states {
		var ours, theirs bytes.Buffer
		for _, h := range []slog.Handler{NewJSONHandler(&ours, nil), slog.NewJSONHandler(&theirs, nil)} {
			r := slog.NewRecord(when, slog.LevelInfo, "request", 0)
			r.AddAttrs(slog.Any("", st))
			if err := h.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			// A non-empty key nests the same fields.
			r = slog.NewRecord(when, slog.LevelInfo, "request", 0)
			r.AddAttrs(slog.Any("http", st))
			if err := h.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
		if ours.String() != theirs.String() {
			t.Errorf("state %d:\nours:   %s\nslog's: %s", i, ours.String(), theirs.String())
		}
		if !ts.MatchString(ours.String()) {
			t.Errorf("no time field: %s", ours.String())
		}
	}
}

func TestAppendTimeMatchesRFC3339Nano(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("x", -7*3600-30*60), time.FixedZone("y", 5*3600)}
	for _, loc := range zones {
		for _, ns := range []int{0, 1, 100, 123456789, 500000000, 999999999} {
			tm := time.Date(2024, 12, 31, 23, 59, 59, ns, loc)
			for range 2 { // cold and cached
				if got, want := string(appendTime(nil, tm)), tm.Format(time.RFC3339Nano); got != want {
					t.Errorf("appendTime = %s, want %s", got, want)
				}
			}
		}
	}
}

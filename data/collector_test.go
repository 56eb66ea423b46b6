package data_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
)

// logBuffer collects log lines from concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls the log until it contains every one of wants.
func (b *logBuffer) waitFor(t *testing.T, wants ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		log := b.String()
		missing := ""
		for _, w := range wants {
			if !strings.Contains(log, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s the collector's log lacks %q; it reads:\n%s", missing, log)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func openStore(t *testing.T) *boltdb.Store {
	t.Helper()
	s, err := boltdb.Open(filepath.Join(t.TempDir(), "arbor.db"), boltdb.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startCollector runs RunCollector in a goroutine and returns a function
// that stops it and waits for it to return.
func startCollector(t *testing.T, c data.Collector, every time.Duration, log *logBuffer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		data.RunCollector(ctx, c, every, slog.New(slog.NewJSONHandler(log, nil)))
	}()
	return func() {
		t.Helper()
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatal("RunCollector did not return within 2s of its context ending")
		}
	}
}

func TestRunCollectorDeletesExpiredRecords(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	if err := s.CreateUser(ctx, data.User{ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, ttl := range []time.Duration{30 * time.Millisecond, 40 * time.Millisecond, 50 * time.Millisecond, time.Hour} {
		sess := data.Session{ID: "s" + string(rune('0'+i)), UserID: "u1", CreatedAt: now, ExpiresAt: now.Add(ttl)}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateOAuthState(ctx, data.OAuthState{ID: "st", ExpiresAt: now.Add(30 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}

	var log logBuffer
	stop := startCollector(t, s, 10*time.Millisecond, &log)
	// The short-lived records may go in one collection or several: add up
	// what the log says was deleted.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if logged := countLogged(log.String()); logged == (data.CollectStats{Sessions: 3, OAuthStates: 1}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s the collector logged %+v deletions, want 3 sessions and 1 OAuth state; log:\n%s", countLogged(log.String()), log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := s.GetSession(ctx, "s3"); err != nil {
		t.Fatalf("the live session is gone: %v", err)
	}
	stop()

	// Exactly the expired ones went: two hours on, only s3 is left.
	st, err := s.CollectExpired(ctx, time.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st != (data.CollectStats{Sessions: 1}) {
		t.Fatalf("collecting two hours on deleted %+v, want only the live session", st)
	}
	if strings.Contains(log.String(), `"level":"WARN"`) || strings.Contains(log.String(), `"level":"ERROR"`) {
		t.Fatalf("the collector logged a failure:\n%s", log.String())
	}
}

// countLogged adds up the deletions in the collector's JSON log lines.
func countLogged(log string) data.CollectStats {
	var total data.CollectStats
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `"msg":"deleted expired records"`) {
			continue
		}
		total.Sessions += intField(line, "sessions")
		total.OAuthStates += intField(line, "oauth_states")
		total.DeviceCodes += intField(line, "device_codes")
		total.RefreshFamilies += intField(line, "refresh_families")
	}
	return total
}

func intField(line, name string) int {
	_, rest, ok := strings.Cut(line, `"`+name+`":`)
	if !ok {
		return 0
	}
	n := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func TestRunCollectorLogsFailuresAndKeepsGoing(t *testing.T) {
	s := openStore(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var log logBuffer
	stop := startCollector(t, s, 10*time.Millisecond, &log)
	log.waitFor(t, `"level":"ERROR"`, `"failures":1`, `"failures":2`, "store closed")
	stop()
}

func TestRunCollectorStopsWhenContextEnds(t *testing.T) {
	s := openStore(t)
	var log logBuffer
	stop := startCollector(t, s, time.Hour, &log) // waiting for a tick an hour away
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	stop()
	if took := time.Since(start); took > time.Second {
		t.Fatalf("RunCollector took %s to return after its context ended", took)
	}
	if log.String() != "" {
		t.Fatalf("a collection that found nothing logged:\n%s", log.String())
	}
}

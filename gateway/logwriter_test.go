package gateway_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/gateway"
)

type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) snapshot() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

func TestBufferedWriter(t *testing.T) {
	t.Run("batches and flushes on the interval", func(t *testing.T) {
		var out lockedBuffer
		w := gateway.NewBufferedWriter(&out, 1<<16, 50*time.Millisecond)
		defer w.Close()
		for i := range 100 {
			_, _ = w.Write([]byte("line " + strings.Repeat("x", i%7) + "\n"))
		}
		if s, _ := out.snapshot(); s != "" {
			t.Fatalf("written before the interval: %q", s)
		}
		waitFor(t, 2*time.Second, "the periodic flush", func() bool {
			s, _ := out.snapshot()
			return strings.Count(s, "\n") == 100
		})
		if _, writes := out.snapshot(); writes != 1 {
			t.Fatalf("100 lines took %d writes, want 1", writes)
		}
	})
	t.Run("flushes when full, whole lines only", func(t *testing.T) {
		var out lockedBuffer
		w := gateway.NewBufferedWriter(&out, 100, time.Hour)
		line := strings.Repeat("a", 29) + "\n" // 30 bytes
		for range 7 {
			_, _ = w.Write([]byte(line))
		}
		s, writes := out.snapshot()
		if writes != 2 || len(s) != 180 || !strings.HasSuffix(s, "\n") {
			t.Fatalf("after 7 lines of 30 B into 100 B: %d writes, %d bytes", writes, len(s))
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if s, _ := out.snapshot(); len(s) != 210 {
			t.Fatalf("Close did not flush: %d bytes", len(s))
		}
		_, _ = w.Write([]byte("after close\n"))
		if s, _ := out.snapshot(); !strings.HasSuffix(s, "after close\n") {
			t.Fatalf("writes after Close must go straight through")
		}
	})
	t.Run("oversized line", func(t *testing.T) {
		var out lockedBuffer
		w := gateway.NewBufferedWriter(&out, 10, time.Hour)
		defer w.Close()
		_, _ = w.Write([]byte("short\n"))
		_, _ = w.Write([]byte(strings.Repeat("b", 50) + "\n"))
		if s, _ := out.snapshot(); s != "short\n"+strings.Repeat("b", 50)+"\n" {
			t.Fatalf("got %q", s)
		}
	})
}

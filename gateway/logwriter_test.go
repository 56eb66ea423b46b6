package gateway_test

import (
	"bytes"
	"fmt"
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

// gateWriter blocks each Write until released, after telling entered.
type gateWriter struct {
	entered chan struct{}
	release chan struct{}
	lockedBuffer
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.lockedBuffer.Write(p)
}

// TestBufferedWriterDoesNotWaitForTheWriteOut: while a full buffer is being
// written out (a slow disk, a stalled pipe), requests still log into the
// other buffer instead of queueing behind the write; the lines come out
// whole and in order once the writer moves again.
func TestBufferedWriterDoesNotWaitForTheWriteOut(t *testing.T) {
	g := &gateWriter{entered: make(chan struct{}, 4), release: make(chan struct{})}
	w := gateway.NewBufferedWriter(g, 20, time.Hour)
	line := func(i int) []byte { return []byte(fmt.Sprintf("line %03d\n", i)) } // 9 bytes
	_, _ = w.Write(line(0))
	_, _ = w.Write(line(1))
	go func() { _, _ = w.Write(line(2)) }() // buffer full: writes lines 0 and 1 out, and blocks there
	<-g.entered
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = w.Write(line(3)) // into the other buffer, beside line 2
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		close(g.release)
		t.Fatal("a Write waited for the write-out of the other buffer")
	}
	close(g.release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ := g.snapshot()
	if s != "line 000\nline 001\nline 002\nline 003\n" {
		t.Fatalf("got %q", s)
	}
}

// TestBufferedWriterConcurrent: many writers and a small buffer (a swap
// every few lines): every line comes out once and whole, each writer's in
// its order.
func TestBufferedWriterConcurrent(t *testing.T) {
	var out lockedBuffer
	w := gateway.NewBufferedWriter(&out, 64, time.Millisecond)
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				_, _ = fmt.Fprintf(w, "%d %04d %s\n", g, i, strings.Repeat("x", i%13))
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ := out.snapshot()
	next := make([]int, writers)
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		var g, i int
		var pad string
		if n, _ := fmt.Sscanf(l, "%d %d %s", &g, &i, &pad); n < 2 || g < 0 || g >= writers {
			t.Fatalf("split or garbled line %q", l)
		}
		if i != next[g] || len(pad) != i%13 {
			t.Fatalf("writer %d: line %d (pad %d) where %d was next", g, i, len(pad), next[g])
		}
		next[g]++
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines out of %d", g, n, lines)
		}
	}
}

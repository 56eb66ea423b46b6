package gateway

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// BufferedWriter batches log lines for an access log, the way nginx's
// "access_log … buffer=… flush=…" does. Writing one line per request
// straight to a file or pipe costs a system call per request, taken under
// the logger's lock; at tens of thousands of requests per second that is a
// large share of the gateway's CPU. BufferedWriter instead copies each line
// into memory and writes them out when the buffer fills or every flush
// interval, whichever comes first.
//
// The price: a line reaches the log up to one interval late, and lines still
// buffered when the process is killed (SIGKILL, crash) are lost. Close (or
// Flush) writes them out; call it after Server.Shutdown. Use it for the
// access log only (Options.AccessLogger); error lines should not wait.
//
// Each Write must be whole lines, as slog handlers produce, so that flushed
// output never splits a line. BufferedWriter is safe for concurrent use.
type BufferedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	buf    bytes.Buffer
	size   int
	err    error // first write error, reported by Flush and Close
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

// Defaults for NewBufferedWriter.
const (
	DefaultLogBufferSize    = 64 << 10
	DefaultLogFlushInterval = 200 * time.Millisecond
)

// NewBufferedWriter returns a BufferedWriter on w that flushes when size
// bytes are buffered and every interval. Zero size or interval get the
// defaults (64 KiB, 200 ms).
func NewBufferedWriter(w io.Writer, size int, interval time.Duration) *BufferedWriter {
	if size <= 0 {
		size = DefaultLogBufferSize
	}
	if interval <= 0 {
		interval = DefaultLogFlushInterval
	}
	b := &BufferedWriter{w: w, size: size, stop: make(chan struct{}), done: make(chan struct{})}
	b.buf.Grow(size)
	go b.loop(interval)
	return b
}

func (b *BufferedWriter) loop(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Write buffers p (whole lines) and writes the buffer out first if p does
// not fit. After Close it writes through.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	if b.buf.Len()+len(p) > b.size {
		b.flushLocked()
		if len(p) > b.size {
			// A line bigger than the buffer goes out on its own.
			if _, err := b.w.Write(p); err != nil && b.err == nil {
				b.err = err
			}
			return len(p), nil
		}
	}
	b.buf.Write(p)
	return len(p), nil
}

func (b *BufferedWriter) flushLocked() {
	if b.buf.Len() == 0 {
		return
	}
	if _, err := b.w.Write(b.buf.Bytes()); err != nil && b.err == nil {
		b.err = err
	}
	b.buf.Reset()
}

// Flush writes out buffered lines and returns the first write error seen
// since the writer was created, if any.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	return b.err
}

// Close flushes, stops the background flusher, and makes later writes go
// straight to the underlying writer. It does not close that writer.
func (b *BufferedWriter) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return b.err
	}
	b.closed = true
	b.flushLocked()
	err := b.err
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	return err
}

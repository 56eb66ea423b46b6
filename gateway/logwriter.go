package gateway

import (
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
// output never splits a line. BufferedWriter is safe for concurrent use, and
// a Write never waits for the underlying writer (but when both buffers are
// full): a full buffer is written out while lines go into the other one.
type BufferedWriter struct {
	mu     sync.Mutex // guards buf and closed
	buf    []byte     // lines not yet handed to w
	closed bool

	// wmu is held while buffered lines are written to w, so that they go
	// out in order; it guards spare and err. Lock order: mu, then wmu.
	wmu   sync.Mutex
	w     io.Writer
	spare []byte // the other buffer, empty, when no write-out holds it
	err   error  // first write error, reported by Flush and Close

	size int
	stop chan struct{}
	done chan struct{}
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
	b := &BufferedWriter{
		w: w, size: size,
		buf: make([]byte, 0, size), spare: make([]byte, 0, size),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
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

// Write buffers p (whole lines); if p does not fit, the buffer is written
// out first. After Close it writes through.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	if !b.closed && len(b.buf)+len(p) <= b.size {
		b.buf = append(b.buf, p...)
		b.mu.Unlock()
		return len(p), nil
	}
	if b.closed {
		b.mu.Unlock()
		b.wmu.Lock()
		n, err := b.w.Write(p)
		b.wmu.Unlock()
		return n, err
	}
	full := b.swapLocked()
	var alone []byte
	if len(p) > b.size {
		alone = p // a line bigger than the buffer goes out on its own
	} else {
		b.buf = append(b.buf, p...)
	}
	b.mu.Unlock()
	b.writeOut(full, alone)
	return len(p), nil
}

// swapLocked, with mu held, takes the buffered lines for writing out and
// gives Write the other buffer. It returns with wmu held: the caller
// passes the lines to writeOut, which releases it.
func (b *BufferedWriter) swapLocked() []byte {
	b.wmu.Lock() // a previous write-out still running: wait for it
	full := b.buf
	b.buf, b.spare = b.spare[:0], nil
	return full
}

// writeOut writes full, then alone, to w, keeps full as the spare buffer,
// and releases wmu. It returns the first write error seen so far.
func (b *BufferedWriter) writeOut(full, alone []byte) error {
	for _, p := range [2][]byte{full, alone} {
		if len(p) == 0 {
			continue
		}
		if _, err := b.w.Write(p); err != nil && b.err == nil {
			b.err = err
		}
	}
	b.spare = full[:0]
	err := b.err
	b.wmu.Unlock()
	return err
}

// Flush writes out buffered lines and returns the first write error seen
// since the writer was created, if any.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	full := b.swapLocked()
	b.mu.Unlock()
	return b.writeOut(full, nil)
}

// Close flushes, stops the background flusher, and makes later writes go
// straight to the underlying writer. It does not close that writer.
func (b *BufferedWriter) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.wmu.Lock()
		defer b.wmu.Unlock()
		return b.err
	}
	b.closed = true
	full := b.swapLocked()
	b.mu.Unlock()
	err := b.writeOut(full, nil)
	close(b.stop)
	<-b.done
	return err
}

package gateway

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"time"
)

// Parking idle keep-alive connections.
//
// fasthttp serves each connection on a goroutine of its own, from the
// first request to the close, with its request context and, because the
// gateway streams request bodies (StreamRequestBody), its read buffer: it
// never releases that buffer between requests. An idle keep-alive
// connection thus holds a goroutine stack grown by the requests it served
// (8 KiB), the pages of the read buffer its requests touched (4 KiB or
// more) and the request context (about 1.7 KiB): 17 KB each, 170 MB for
// 10,000 idle clients (docs/benchmarks.md).
//
// So a connection idle for ParkIdleAfter is taken away from fasthttp and
// parked: the sweeper sets a read deadline in the past, fasthttp's read of
// the next request returns, trackedConn.Read turns that into an end of
// stream, and fasthttp returns its goroutine, context and buffers to its
// pools. The socket stays open under the tracker, which keeps enforcing
// the idle timeout and the per-address cap on it; a goroutine with a
// small stack waits for its next byte and then serves the connection
// again through fasthttp's ServeConn, the byte read first. A parked
// connection costs about 5 KB: the waiting goroutine (a 2 KiB stack and
// its g), the socket and the tracker's entry (10,000 parked: +47 MB
// resident, against +174 MB served by fasthttp).
//
// Only a connection waiting for its next request is parked: the read that
// times out is taken for a park only while the connection is in phaseIdle
// and nothing was read; any other read the deadline interrupts (a request
// that arrived while the sweeper decided) clears the deadline and reads
// again, and the client sees nothing. A request whose first byte arrives
// on a parked connection pays a goroutine start and fasthttp's set-up of a
// connection, a few microseconds.

// Park states of a trackedConn.
const (
	parkNone    int32 = iota
	parkWanted        // the sweeper set a past read deadline to take the connection from fasthttp
	parkLeaving       // trackedConn.Read ended fasthttp's read; fasthttp is closing its side
	parkParked        // waiting for the next byte outside fasthttp
)

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// requestPark asks fasthttp's goroutine, blocked in a read of the next
// request, to give the connection up. Called by the sweeper without t.mu.
func (c *trackedConn) requestPark() {
	if c.park.CompareAndSwap(parkNone, parkWanted) {
		_ = c.Conn.SetReadDeadline(aLongTimeAgo)
	}
}

// parkRead handles an error of a read while a park was wanted: the
// connection is handed over when fasthttp was waiting for a request and
// nothing came; otherwise the read is retried without the deadline.
func (c *trackedConn) parkRead(b []byte, err error) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Time{})
	if errors.Is(err, os.ErrDeadlineExceeded) && c.phase.Load() == phaseIdle && !c.t.draining.Load() {
		c.park.Store(parkLeaving)
		return 0, io.EOF // fasthttp closes its side quietly
	}
	c.park.Store(parkNone)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, c.slowErr(err)
	}
	return c.Read(b)
}

// leaving reports whether fasthttp is closing its side of a connection
// it gave up for a park: its Close must leave the socket open, and its
// StateClosed hands the connection to the tracker.
func (c *trackedConn) leaving() bool {
	return c.park.Load() == parkLeaving
}

// parked is called with fasthttp's last word on a connection it gave up
// (StateClosed): from here the tracker owns it, and a goroutine waits for
// the next byte. nc is the connection as fasthttp saw it (TLS or not).
func (t *connTracker) parked(c *trackedConn, nc net.Conn) {
	if t.draining.Load() || t.serve == nil {
		c.park.Store(parkNone)
		t.finished(c)
		_ = c.Conn.Close()
		return
	}
	c.park.Store(parkParked)
	c.st = nil // a request's state; the next request makes a new one
	t.parkedConns.Add(1)
	t.parksSinceRelease.Add(1)
	go t.waitParked(c, nc)
}

// waitParked waits for a parked connection's next byte and serves the
// connection again, or forgets it once it is closed: by the client, by
// the sweeper at the idle timeout, or at shutdown.
func (t *connTracker) waitParked(c *trackedConn, nc net.Conn) {
	n, err := c.Conn.Read(c.first[:])
	t.parkedConns.Add(-1)
	if n == 1 && err == nil && !t.draining.Load() {
		c.hasFirst = true
		c.park.Store(parkNone)
		c.set(phaseReading)
		t.unparked.Add(1)
		_ = t.serve(nc) // fasthttp closes the connection, or it parks again
		return
	}
	c.park.Store(parkNone)
	t.finished(c)
	_ = c.Conn.Close()
}

// readFirst returns the byte a parked connection's goroutine read.
func (c *trackedConn) readFirst(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	b[0] = c.first[0]
	c.hasFirst = false
	return 1, nil
}

// drain stops parking and closes the parked connections: Shutdown calls it
// before fasthttp's, which waits only for connections it serves.
func (t *connTracker) drain() {
	if t.draining.Swap(true) {
		return
	}
	var parked []*trackedConn
	t.mu.Lock()
	for c := range t.conns {
		if c.park.Load() == parkParked {
			parked = append(parked, c)
		}
	}
	t.mu.Unlock()
	for _, c := range parked {
		_ = c.Conn.Close() // waitParked forgets it
	}
}

// Giving the memory back. What a parked connection gave up goes to
// fasthttp's pools (sync.Pool: emptied over two collections) and its
// worker goroutine idles with its stack in fasthttp's pool for up to twice
// idleWorkerLifetime before fasthttp's cleaner ends it; the Go runtime
// would return the pages only after its next collections, which an idle
// process runs every two minutes, and then only as its scavenger gets to
// them (a measured 10,000 parked connections: no page back within 150 s).
// So once releaseAfterParks connections were parked, the sweeper collects
// twice and returns free memory to the OS (debug.FreeOSMemory, as the
// plugin host does after releasing instances) releaseDelay after the last
// park it saw, when those workers are gone; while connections keep being
// parked it waits, but not past maxReleaseWait after the first. At most one
// release every releaseDelay, a few milliseconds of collector work each.
const (
	releaseAfterParks  = 1024
	idleWorkerLifetime = 2 * time.Second // fasthttp's MaxIdleWorkerDuration (default 10 s)
	releaseDelay       = int64(2*idleWorkerLifetime + time.Second)
	maxReleaseWait     = int64(30 * time.Second)
)

// releaseDue is the sweeper's part: it schedules a release once enough
// connections were parked, postpones it while more are, and reports when
// its time has come (the caller then starts freeMemory). now is the
// tracker's clock; the release fields are the sweeper's own.
func (t *connTracker) releaseDue(now int64) bool {
	n, seen := t.parksSinceRelease.Load(), t.releaseSeen
	t.releaseSeen = n
	switch {
	case t.releaseAt == 0 && n >= releaseAfterParks:
		t.releaseFirst, t.releaseAt = now, now+releaseDelay
	case t.releaseAt == 0:
	case n > seen && now+releaseDelay <= t.releaseFirst+maxReleaseWait:
		// Still parking: wait for the workers of the last ones too.
		t.releaseAt = now + releaseDelay
	case now >= t.releaseAt:
		t.releaseAt, t.releaseSeen = 0, 0
		t.parksSinceRelease.Store(0)
		return true
	}
	return false
}

// freeMemory returns what the parked connections gave up to the OS.
func freeMemory() {
	debug.FreeOSMemory() // the pools' objects move to their victim caches
	debug.FreeOSMemory() // and are freed; the pages go back to the OS
}

package gateway

import (
	"net"
	"testing"
	"time"
)

// nopConn is a connection whose reads and writes return at once, to
// measure what trackedConn adds to each.
type nopConn struct{ net.Conn }

func (nopConn) Read(p []byte) (int, error)  { return len(p), nil }
func (nopConn) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkTrackedConnIO is what the slow-client accounting adds to each
// read and write of a client connection (a request costs at least one of
// each, and the entry middleware's startRequest).
func BenchmarkTrackedConnIO(b *testing.B) {
	t := newConnTracker(30*time.Second, 90*time.Second, 0)
	t.limits = slowLimits{uploadRate: 1024, downloadRate: 1024, grace: int64(30 * time.Second)}
	c := &trackedConn{Conn: nopConn{}, t: t}
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for range b.N {
		c.startRequest()
		_, _ = c.Read(buf)
		_, _ = c.Write(buf)
	}
}

func TestIOStateBucket(t *testing.T) {
	const sec = int64(time.Second)
	var s ioState
	rate, grace := int64(1000), 10*sec
	s.reset(grace)
	// 5 s waiting for 1000 bytes (1 s of credit): 6 s left.
	s.begin(1)
	s.end(1+5*sec, 1000, rate, grace)
	if got := s.credit.Load(); got != 6*sec {
		t.Fatalf("credit = %v, want 6s", time.Duration(got))
	}
	// A fast megabyte refills only up to the grace period.
	s.begin(10 * sec)
	s.end(10*sec, 1<<20, rate, grace)
	if got := s.credit.Load(); got != grace {
		t.Fatalf("credit = %v, want capped at %v", time.Duration(got), time.Duration(grace))
	}
	// Waiting: too slow once the bucket is empty, not before.
	s.begin(20 * sec)
	if s.tooSlow(20*sec+grace-sec, rate, 0, 0) {
		t.Fatal("cut before the bucket was empty")
	}
	if !s.tooSlow(20*sec+grace+sec, rate, 0, 0) {
		t.Fatal("not cut after the bucket ran out")
	}
	// The per-call limit applies without a rate.
	if s.tooSlow(20*sec+2*sec, 0, 3*sec, 0) || !s.tooSlow(20*sec+4*sec, 0, 3*sec, 0) {
		t.Fatal("call limit misapplied")
	}
	s.end(20*sec+4*sec, 0, rate, grace)
	if s.tooSlow(100*sec, rate, 3*sec, 0) {
		t.Fatal("a connection not waiting for the client was found too slow")
	}
}

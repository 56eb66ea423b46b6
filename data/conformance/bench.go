package conformance

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
)

// RunBenchmarks runs the store benchmarks every backend shares, so that
// the figures of two backends measure the same work:
//
//	func BenchmarkStore(b *testing.B) {
//		conformance.RunBenchmarks(b, func(b *testing.B) data.Store { return open(b) })
//	}
//
// newStore is called once per benchmark (and again for each b.N that
// benchmark tries); it returns an empty store on the real clock, closed by
// b.Cleanup. The benchmarks are:
//
//   - GetSession: a point read of one of 10,000 sessions, each read once
//     before (as a gateway that has seen them would have);
//   - CreateSession: one writer creating sessions (writes/s);
//   - UpdateSession: one writer touching one session's LastSeenAt, the
//     write a gateway makes on activity (writes/s).
func RunBenchmarks(b *testing.B, newStore func(b *testing.B) data.Store) {
	ctx := context.Background()
	open := func(b *testing.B) data.Store {
		s := newStore(b)
		if err := s.CreateUser(ctx, data.User{ID: BenchUser}); err != nil {
			b.Fatal(err)
		}
		return s
	}
	b.Run("GetSession", func(b *testing.B) {
		s := open(b)
		const n = 10000
		CreateSessions(b, s, n, 64, BenchSessionID)
		for i := range n {
			if _, err := s.GetSession(ctx, BenchSessionID(i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := s.GetSession(ctx, BenchSessionID(i*7919%n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CreateSession", func(b *testing.B) {
		s := open(b)
		n := 0
		for ; b.Loop(); n++ {
			if err := s.CreateSession(ctx, BenchSession(BenchSessionID(n))); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "writes/s")
	})
	b.Run("UpdateSession", func(b *testing.B) {
		s := open(b)
		if err := s.CreateSession(ctx, BenchSession("s1")); err != nil {
			b.Fatal(err)
		}
		n := 0
		for ; b.Loop(); n++ {
			if _, err := s.UpdateSession(ctx, "s1", func(v data.Session) (data.Session, error) {
				v.LastSeenAt = time.Now()
				return v, nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "writes/s")
	})
}

// BenchUser owns the benchmarks' sessions.
const BenchUser = "u1"

// BenchSessionID is the id of the i-th benchmark session.
func BenchSessionID(i int) string { return "sess-" + strconv.Itoa(i) }

// BenchSession is a session of BenchUser as a browser sign-in makes it,
// valid for 12 hours from now.
func BenchSession(id string) data.Session {
	now := time.Now()
	return data.Session{
		ID: id, UserID: BenchUser, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(12 * time.Hour),
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0", IP: "203.0.113.77",
	}
}

// CreateSessions creates the sessions id(0) ... id(n-1) of BenchUser (who
// must exist) from the given number of goroutines.
func CreateSessions(tb testing.TB, s data.Store, n, writers int, id func(int) string) {
	tb.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := s.CreateSession(context.Background(), BenchSession(id(i))); err != nil {
					failed.Store(&err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		tb.Fatal(*err)
	}
}

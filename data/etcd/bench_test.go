package etcd_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/etcd"
)

// The benchmarks run against the test binary's embedded single-member
// server (no fsync, see etcdtest), on loopback: they measure the store's
// round trips and encoding, not a disk. Their names match
// data/boltdb/bench_test.go so the two can be compared side by side.

func benchStore(b *testing.B) *etcd.Store {
	b.Helper()
	return benchStoreAt(b, newRoot())
}

func benchStoreAt(b *testing.B, root string) *etcd.Store {
	b.Helper()
	s := newStoreAt(b, root, nil)
	if err := s.CreateUser(context.Background(), data.User{ID: "u1"}); err != nil {
		b.Fatal(err)
	}
	return s
}

func benchSession(id string) data.Session {
	now := time.Now()
	return data.Session{
		ID: id, UserID: "u1", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(12 * time.Hour),
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0", IP: "203.0.113.77",
	}
}

// BenchmarkGetSession reads one existing session from a store of 10,000.
func BenchmarkGetSession(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	const n = 10000
	createSessions(b, s, n, 64)
	// Read each once, as a gateway that has seen the session would have.
	for i := range n {
		if _, err := s.GetSession(ctx, "sess-"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.GetSession(ctx, "sess-"+strconv.Itoa(i*7919%n)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetSessionCold reads sessions this store has not read before
// (another replica created them): the owner lookup costs a round trip.
func BenchmarkGetSessionCold(b *testing.B) {
	root := newRoot()
	s := benchStoreAt(b, root)
	ctx := context.Background()
	const n = 10000
	createSessions(b, s, n, 64)
	b.ReportAllocs()
	var cold *etcd.Store
	for i := 0; b.Loop(); i++ {
		if i%n == 0 { // a new replica has read none of them
			b.StopTimer()
			cold = newStoreAt(b, root, nil)
			b.StartTimer()
		}
		if _, err := cold.GetSession(ctx, "sess-"+strconv.Itoa(i%n)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateSession is one writer creating sessions.
func BenchmarkCreateSession(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	start := time.Now()
	n := 0
	for ; b.Loop(); n++ {
		if err := s.CreateSession(ctx, benchSession("s"+strconv.Itoa(n))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "writes/s")
}

// BenchmarkUpdateSession is one writer touching one session (LastSeenAt),
// the write a gateway makes on activity.
func BenchmarkUpdateSession(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	if err := s.CreateSession(ctx, benchSession("s1")); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	n := 0
	for ; b.Loop(); n++ {
		if _, err := s.UpdateSession(ctx, "s1", func(v data.Session) (data.Session, error) {
			v.LastSeenAt = time.Now()
			return v, nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "writes/s")
}

// createSessions creates sess-0 ... sess-(n-1) from the given number of
// goroutines.
func createSessions(b *testing.B, s *etcd.Store, n, writers int) {
	b.Helper()
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
				if err := s.CreateSession(context.Background(), benchSession("sess-"+strconv.Itoa(i))); err != nil {
					failed.Store(&err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
}

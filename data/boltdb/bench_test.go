package boltdb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
)

// The benchmarks write to a file in the test's temporary directory, so
// their figures include a real fsync per commit: run them on the disk the
// store will live on (TMPDIR=/var/lib/arbor go test -bench . ./data/boltdb/).

func benchStore(b *testing.B, opts Options) *Store {
	b.Helper()
	opts.Logger = quiet
	s, err := Open(filepath.Join(b.TempDir(), "arbor.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
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
	s := benchStore(b, Options{})
	ctx := context.Background()
	const n = 10000
	concurrentWrites(b, s, n, 64, func(i int) string { return "sess-" + strconv.Itoa(i) })
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.GetSession(ctx, "sess-"+strconv.Itoa(i*7919%n)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateSession is one writer: each write is a transaction of its
// own and waits for its fsync.
func BenchmarkCreateSession(b *testing.B) {
	s := benchStore(b, Options{})
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

// BenchmarkWriters is n goroutines creating sessions as fast as they can,
// with writes committed by the store's group committer (Group), by
// db.Update alone when no other write is in flight and db.Batch otherwise
// (Batch), and each in a db.Update transaction of its own (Update).
// writes/s is the throughput, µs/write the mean latency of one write.
func BenchmarkWriters(b *testing.B) {
	for _, n := range []int{4, 16, 64} {
		for _, mode := range []struct {
			name   string
			commit func(s *Store) func(func(*bolt.Tx) error) (error, error)
		}{{"Group", nil}, {"Batch", batchCommit}, {"Update", soloCommit}} {
			b.Run(fmt.Sprintf("n=%d/%s", n, mode.name), func(b *testing.B) {
				s := benchStore(b, Options{})
				if mode.commit != nil {
					s.commitWith = mode.commit(s)
				}
				// db.Batch's best settings in a grid of delays (0.1-10ms)
				// and sizes (64-1000) for 4 to 64 writers on this machine.
				s.db.MaxBatchDelay, s.db.MaxBatchSize = time.Millisecond, 256
				b.ResetTimer()
				concurrentWrites(b, s, b.N, n, func(i int) string { return "s" + strconv.Itoa(i) })
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
				b.ReportMetric(b.Elapsed().Seconds()*1e6*float64(n)/float64(b.N), "µs/write")
			})
		}
	}
}

// soloCommit gives every write a db.Update transaction of its own.
func soloCommit(s *Store) func(func(*bolt.Tx) error) (error, error) {
	return func(fn func(*bolt.Tx) error) (fnErr, commitErr error) {
		commitErr = s.db.Update(func(tx *bolt.Tx) error {
			fnErr = fn(tx)
			return fnErr
		})
		if commitErr == fnErr {
			commitErr = nil
		}
		return fnErr, commitErr
	}
}

// batchCommit is the scheme the committer replaced: db.Update when no other
// write is in flight, db.Batch otherwise. In a batch, an error from fn is
// kept aside and fn returns nil, so that the batch commits the other
// members' work without running them again (fn has changed nothing).
func batchCommit(s *Store) func(func(*bolt.Tx) error) (error, error) {
	var writers atomic.Int64
	solo := soloCommit(s)
	return func(fn func(*bolt.Tx) error) (fnErr, commitErr error) {
		defer writers.Add(-1)
		if writers.Add(1) == 1 {
			return solo(fn)
		}
		commitErr = s.db.Batch(func(tx *bolt.Tx) error {
			fnErr = fn(tx)
			var wf *writeFailure
			if errors.As(fnErr, &wf) {
				return fnErr
			}
			return nil
		})
		if commitErr == fnErr {
			commitErr = nil
		}
		return fnErr, commitErr
	}
}

// concurrentWrites creates n sessions from the given number of goroutines.
func concurrentWrites(b *testing.B, s *Store, n, writers int, id func(int) string) {
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
				if err := s.CreateSession(context.Background(), benchSession(id(i))); err != nil {
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

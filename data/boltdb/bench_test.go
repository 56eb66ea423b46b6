package boltdb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/conformance"
)

// The benchmarks write to a file in the test's temporary directory, so
// their figures include a real fsync per commit: run them on the disk the
// store will live on (TMPDIR=/var/lib/arbor go test -bench . ./data/boltdb/).

func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "arbor.db"), Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkStore is the workload data/etcd runs too
// (conformance.RunBenchmarks): a point read, a single write (a transaction
// of its own that waits for its fsync) and a compare-and-swap touch.
func BenchmarkStore(b *testing.B) {
	conformance.RunBenchmarks(b, func(b *testing.B) data.Store { return benchStore(b) })
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
				s := benchStore(b)
				if err := s.CreateUser(context.Background(), data.User{ID: conformance.BenchUser}); err != nil {
					b.Fatal(err)
				}
				if mode.commit != nil {
					s.commitWith = mode.commit(s)
				}
				// db.Batch's best settings in a grid of delays (0.1-10ms)
				// and sizes (64-1000) for 4 to 64 writers on this machine.
				s.db.MaxBatchDelay, s.db.MaxBatchSize = time.Millisecond, 256
				b.ResetTimer()
				conformance.CreateSessions(b, s, b.N, n, conformance.BenchSessionID)
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

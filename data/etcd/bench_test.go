package etcd_test

import (
	"context"
	"testing"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/conformance"
	"github.com/vintner/arbor/data/etcd"
)

// The benchmarks run against the test binary's embedded single-member
// server (no fsync, see etcdtest), on loopback: they measure the store's
// round trips and encoding, not a disk. BenchmarkStore is the workload
// data/boltdb runs too (conformance.RunBenchmarks), so the two compare
// side by side.

func BenchmarkStore(b *testing.B) {
	conformance.RunBenchmarks(b, func(b *testing.B) data.Store { return newStore(b, nil) })
}

// BenchmarkGetSessionCold reads sessions this store has not read before
// (another replica created them): the owner lookup costs a round trip.
func BenchmarkGetSessionCold(b *testing.B) {
	root := newRoot()
	s := newStoreAt(b, root, nil)
	ctx := context.Background()
	if err := s.CreateUser(ctx, data.User{ID: conformance.BenchUser}); err != nil {
		b.Fatal(err)
	}
	const n = 10000
	conformance.CreateSessions(b, s, n, 64, conformance.BenchSessionID)
	b.ReportAllocs()
	var cold *etcd.Store
	for i := 0; b.Loop(); i++ {
		if i%n == 0 { // a new replica has read none of them
			b.StopTimer()
			cold = newStoreAt(b, root, nil)
			b.StartTimer()
		}
		if _, err := cold.GetSession(ctx, conformance.BenchSessionID(i%n)); err != nil {
			b.Fatal(err)
		}
	}
}

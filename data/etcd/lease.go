package etcd

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Leases collect records whose lifetime has passed when nobody runs
// CollectExpired. They are garbage collection only: every expiry decision
// compares ExpiresAt with the store's clock, and a lease outlives its
// records by leaseSlack so that it never removes a record the clock still
// calls live (etcd's clock and the store's need not agree; in tests the
// store's clock is years away from the wall clock).
//
// One lease per record would mean one lease per session. Instead records
// share a lease per bucket of deadlines: a record's lease ends at the first
// bucket boundary at or after wall-clock now + (ExpiresAt - store now) +
// leaseSlack. The bucket width grows with the lifetime (10s for minutes,
// up to an hour for months), so a record outlives its ExpiresAt by at most
// slack plus one width, and a store holds a few hundred leases at most.
const leaseSlack = 5 * time.Minute

func bucketWidth(ttl time.Duration) time.Duration {
	switch {
	case ttl <= 15*time.Minute:
		return 10 * time.Second
	case ttl <= 4*time.Hour:
		return time.Minute
	case ttl <= 7*24*time.Hour:
		return 10 * time.Minute
	}
	return time.Hour
}

type leases struct {
	s  *Store
	mu sync.Mutex
	m  map[int64]clientv3.LeaseID // bucket end, unix seconds -> lease
}

func (l *leases) init(s *Store) { l.s = s }

// forExpiry returns a lease that lasts past expires (by the store's clock),
// granting one if its bucket has none yet.
func (l *leases) forExpiry(ctx context.Context, expires time.Time) (clientv3.LeaseID, error) {
	ttl := max(expires.Sub(l.s.now()), 0)
	wall := time.Now()
	width := bucketWidth(ttl)
	end := wall.Add(ttl + leaseSlack).Truncate(width).Add(width).Unix()

	l.mu.Lock()
	id, ok := l.m[end]
	l.mu.Unlock()
	if ok {
		return id, nil
	}
	resp, err := l.s.client.Grant(ctx, end-wall.Unix())
	if err != nil {
		// Called by write attempts: a member that went away is tried
		// again (writeErr). A grant whose answer was lost leaves a lease
		// that nobody uses, which expires by itself.
		return clientv3.NoLease, l.s.writeErr(ctx, "granting a lease", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[int64]clientv3.LeaseID)
	}
	if id, ok := l.m[end]; ok {
		return id, nil // another writer granted one meanwhile; ours expires unused
	}
	for k := range l.m { // forget leases about to end
		if k < wall.Unix()+int64(leaseSlack/time.Second)/2 {
			delete(l.m, k)
		}
	}
	l.m[end] = resp.ID
	return resp.ID, nil
}

// reset forgets every lease, after etcd said one no longer exists (it was
// revoked, or the cluster was restored from a backup).
func (l *leases) reset() {
	l.mu.Lock()
	l.m = nil
	l.mu.Unlock()
}

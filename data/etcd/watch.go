package etcd

import (
	"context"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Session watchers (data.Sessions.WatchSessions).
//
// Each store runs one etcd watch on the sessions prefix, from the revision
// it read in Open, and calls its watchers for every event: a put over an
// existing key (UpdateSession, or a create that replaced an expired record)
// and every delete (DeleteSession, DeleteUser's range delete,
// CollectExpired, a lease that ran out). A put that created the key is a
// CreateSession and calls nobody. Because the watch sees the cluster, not
// this process, watchers on every replica hear of every write, and a
// transaction whose answer was lost (a timeout after the commit) is
// reported if and only if it committed.
//
// The watch is re-established from the revision after the last event it
// delivered whenever it ends (a member restarted, lost its leader, or the
// connection dropped), so nothing in between is lost. If etcd compacted
// that revision away, the events in the gap cannot be had; then every
// session this store has handed out (handedOut) and that has not expired
// is reported. A cache in front of the store holds only sessions it read
// through the store, so that covers every entry that may be stale.

// The registry of watchers, with the concurrency data.Sessions promises
// (a lock-free Notify, a stop that waits for a call in progress), is
// package data/internal/watchers, shared with the bbolt backend.

// WatchSessions calls fn with the id of every session that a write updated
// or deleted, from the store's watch of the cluster, shortly after the
// write (see data.Sessions). Writes by other stores on the same cluster and
// Root are reported too.
func (s *Store) WatchSessions(fn func(sessionID string)) (stop func()) {
	return s.watchers.Add(fn)
}

// watchSessions runs the store's watch until ctx ends.
func (s *Store) watchSessions(ctx context.Context, from int64) {
	defer close(s.watchDone)
	prefix := s.root + prefixSessions
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		ch := s.client.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from))
		for resp := range ch {
			if resp.CompactRevision != 0 {
				s.logger.Warn("etcd: the session watch fell behind a compaction; reporting every session handed out",
					"from", from, "compacted", resp.CompactRevision)
				s.watchers.Notify(s.handed.live(s.now())...)
				from = resp.CompactRevision
				break
			}
			if err := resp.Err(); err != nil {
				if ctx.Err() == nil {
					s.logger.Warn("etcd: session watch ended; restarting", "from", from, "err", err)
				}
				break
			}
			var ids []string
			for _, ev := range resp.Events {
				from = ev.Kv.ModRevision + 1
				if ev.IsCreate() {
					continue
				}
				k := strings.TrimPrefix(string(ev.Kv.Key), prefix)
				if i := strings.IndexByte(k, 0); i >= 0 {
					ids = append(ids, k[i+1:])
				}
			}
			s.watchers.Notify(ids...)
			backoff = 10 * time.Millisecond
		}
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
			backoff = min(2*backoff, time.Second)
		}
	}
}

// handedOut remembers the sessions this store returned and until when they
// live, for the watch's compaction fallback.
type handedOut struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// handedCap bounds handedOut; beyond it, expired entries are dropped, and
// if that is not enough, arbitrary ones (see the package documentation).
const handedCap = 1 << 18

func (h *handedOut) add(id string, expires time.Time, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = make(map[string]time.Time)
	}
	if len(h.m) >= handedCap {
		for k, exp := range h.m {
			if !now.Before(exp) {
				delete(h.m, k)
			}
		}
		for k := range h.m {
			if len(h.m) < handedCap*3/4 {
				break
			}
			delete(h.m, k)
		}
	}
	h.m[id] = expires
}

func (h *handedOut) live(now time.Time) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for id, exp := range h.m {
		if now.Before(exp) {
			ids = append(ids, id)
		}
	}
	return ids
}

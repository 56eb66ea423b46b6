package etcd

import (
	"context"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vintner/arbor/data/internal/watchers"
)

// Session, worker and user watchers (data.Sessions.WatchSessions,
// data.Workers.WatchWorkers, data.Users.WatchUsers).
//
// Each store runs one etcd watch per watched prefix (sessions/, workers/
// and users/), from the revision it read in Open, and calls that prefix's
// watchers for every event: a put over an existing key (UpdateSession,
// UpdateWorker, UpdateUser, or a session create that replaced an expired
// record) and every delete (DeleteSession, DeleteWorker, DeleteUser's
// delete of the user key and its range deletes, CollectExpired, a lease
// that ran out). A put that created the key is a CreateSession,
// CreateWorker or CreateUser and calls nobody. Because the watch sees
// the cluster, not this process, watchers on every replica hear of every
// write, and a transaction whose answer was lost (a timeout after the
// commit) is reported if and only if it committed. The watches run the
// same loop (watchPrefix); they differ in prefix, Set and fallback.
//
// A watch is re-established from the revision after the last event it
// delivered whenever it ends (a member restarted, lost its leader, or the
// connection dropped), so nothing in between is lost. If etcd compacted
// that revision away, the events in the gap cannot be had; then every
// record of that prefix this store has handed out (handedOut) and that
// has not expired is reported: sessions read through GetSession,
// ListSessions or UpdateSession, workers read through GetWorker,
// ListWorkers or UpdateWorker, users read through GetUser, ListUsers or
// UpdateUser (workers and users never expire, so every one handed out is
// reported). A cache in front of the store holds only records it
// read through the store, so that covers every entry that may be stale.

// The registry of watchers, with the concurrency data.Sessions promises
// (a lock-free Notify, a stop that waits for a call in progress), is
// package data/internal/watchers, shared with the bbolt backend.

// WatchSessions calls fn with the id of every session that a write updated
// or deleted, from the store's watch of the cluster, shortly after the
// write (see data.Sessions). Writes by other stores on the same cluster and
// Root are reported too.
func (s *Store) WatchSessions(fn func(sessionID string)) (stop func()) {
	return s.sessionWatchers.Add(fn)
}

// WatchWorkers calls fn with the id of every worker that a write updated or
// deleted, from the store's watch of the cluster, shortly after the write
// (see data.Workers). Writes by other stores on the same cluster and Root
// are reported too.
func (s *Store) WatchWorkers(fn func(workerID string)) (stop func()) {
	return s.workerWatchers.Add(fn)
}

// WatchUsers calls fn with the id of every user that a write updated or
// deleted, from the store's watch of the cluster, shortly after the write
// (see data.Users). Writes by other stores on the same cluster and Root are
// reported too.
func (s *Store) WatchUsers(fn func(userID string)) (stop func()) {
	return s.userWatchers.Add(fn)
}

// watched is one prefix the store watches on behalf of its watchers.
type watched struct {
	what   string // "session" or "worker", for the log
	prefix string // relative to the root
	// id returns the record id of a key under prefix (prefix removed), or
	// false for a key that names no record.
	id     func(key string) (string, bool)
	set    *watchers.Set
	handed *handedOut // reported after a compaction
}

// watches returns what the store watches.
func (s *Store) watches() []watched {
	return []watched{
		{what: "session", prefix: prefixSessions, id: ownedID, set: &s.sessionWatchers, handed: &s.handedSessions},
		{what: "worker", prefix: prefixWorkers, id: ownedID, set: &s.workerWatchers, handed: &s.handedWorkers},
		{what: "user", prefix: prefixUsers, id: userID, set: &s.userWatchers, handed: &s.handedUsers},
	}
}

// ownedID is the id in an owned record's key: user id \x00 id.
func ownedID(key string) (string, bool) {
	_, id, ok := strings.Cut(key, sep)
	return id, ok
}

// userID is the id in a user's key: the key itself.
func userID(key string) (string, bool) { return key, !strings.Contains(key, sep) }

// watchPrefix runs one watch until ctx ends.
func (s *Store) watchPrefix(ctx context.Context, from int64, w watched) {
	prefix := s.root + w.prefix
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		ch := s.client.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from))
		for resp := range ch {
			if resp.CompactRevision != 0 {
				s.logger.Warn("etcd: the "+w.what+" watch fell behind a compaction; reporting every "+w.what+" handed out",
					"from", from, "compacted", resp.CompactRevision)
				w.set.Notify(w.handed.live(s.now())...)
				from = resp.CompactRevision
				break
			}
			if err := resp.Err(); err != nil {
				if ctx.Err() == nil {
					s.logger.Warn("etcd: "+w.what+" watch ended; restarting", "from", from, "err", err)
				}
				break
			}
			var ids []string
			for _, ev := range resp.Events {
				from = ev.Kv.ModRevision + 1
				if ev.IsCreate() {
					continue
				}
				if id, ok := w.id(strings.TrimPrefix(string(ev.Kv.Key), prefix)); ok {
					ids = append(ids, id)
				}
			}
			w.set.Notify(ids...)
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

// handedOut remembers the records of one kind that this store returned and
// until when they live (zero: for ever), for the watch's compaction
// fallback.
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
			if !alive(exp, now) {
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
		if alive(exp, now) {
			ids = append(ids, id)
		}
	}
	return ids
}

// alive reports whether a record that expires at exp (zero: never) lives
// at now.
func alive(exp, now time.Time) bool { return exp.IsZero() || now.Before(exp) }

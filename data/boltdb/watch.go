package boltdb

// Session watchers (data.Sessions.WatchSessions).
//
// The methods that update or delete sessions note the ids their write
// function changed, in variables the function sets afresh on every run (a
// group may run it more than once, see commit.go), and call watchers.Notify
// once the write has returned: by then the transaction has committed, or
// failed. They report the ids whenever the function's last run succeeded,
// even if the commit then failed: a failed commit may have reached the disk
// in part, and a spurious invalidation is harmless where a missed one is
// not. A function that failed, or whose run was rolled back and not run
// again, has set no ids.
//
// The registry of watchers, with the concurrency data.Sessions promises
// (a lock-free Notify, a stop that waits for a call in progress), is
// package data/internal/watchers, shared with the etcd backend.

// WatchSessions calls fn with the id of every session that a write updated
// or deleted, after the write has committed and before the method that made
// it returns (see data.Sessions). fn runs on the writer's goroutine.
func (s *Store) WatchSessions(fn func(sessionID string)) (stop func()) {
	return s.watchers.Add(fn)
}

package boltdb

// Session, worker and user watchers (data.Sessions.WatchSessions,
// data.Workers.WatchWorkers, data.Users.WatchUsers).
//
// The methods that update or delete sessions, workers or users note the ids their
// write function changed, in variables the function sets afresh on every
// run (a group may run it more than once, see commit.go), and call
// watchers.Notify once the write has returned: by then the transaction has
// committed, or failed. They report the ids whenever the function's last
// run succeeded, even if the commit then failed: a failed commit may have
// reached the disk in part, and a spurious invalidation is harmless where a
// missed one is not. A function that failed, or whose run was rolled back
// and not run again, has set no ids. updateWatched and deleteWatched
// (methods.go) do this for one record; DeleteUser notes the user and
// collects the ids of the user's sessions and workers it removed, and
// CollectExpired the sessions it swept (workers and users do not expire).
//
// The registry of watchers, with the concurrency data.Sessions promises
// (a lock-free Notify, a stop that waits for a call in progress), is
// package data/internal/watchers, shared with the etcd backend; the store
// has one Set per resource.

// WatchSessions calls fn with the id of every session that a write updated
// or deleted, after the write has committed and before the method that made
// it returns (see data.Sessions). fn runs on the writer's goroutine.
func (s *Store) WatchSessions(fn func(sessionID string)) (stop func()) {
	return s.sessionWatchers.Add(fn)
}

// WatchWorkers calls fn with the id of every worker that a write updated or
// deleted, after the write has committed and before the method that made it
// returns (see data.Workers). fn runs on the writer's goroutine.
func (s *Store) WatchWorkers(fn func(workerID string)) (stop func()) {
	return s.workerWatchers.Add(fn)
}

// WatchUsers calls fn with the id of every user that a write updated or
// deleted, after the write has committed and before the method that made it
// returns (see data.Users). fn runs on the writer's goroutine.
func (s *Store) WatchUsers(fn func(userID string)) (stop func()) {
	return s.userWatchers.Add(fn)
}

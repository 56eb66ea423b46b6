package boltdb

import (
	"errors"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Group commit.
//
// Every write transaction costs an fsync, so throughput under concurrency
// comes from committing many callers' changes in one transaction. bbolt's
// db.Batch does that, but it starts a batch on a timer (MaxBatchDelay): a
// batch waits for the timer even when the disk is idle, and one whose timer
// fires while a commit is running closes early and queues behind it. On the
// machine the defaults were measured on, timers fire no sooner than about a
// millisecond, twice an fsync, and db.Batch was the bottleneck at every
// level of concurrency (see BenchmarkWriters).
//
// The committer below has no timer. A writer that finds no commit running
// becomes the leader and commits at once, alone. Writers that arrive while a
// commit runs queue up; when it ends, its leader hands the lead to the first
// of them, which commits the whole queue (up to Options.BatchSize writes) in
// one transaction, and so on. A lone writer waits for one fsync; under load
// each transaction carries everyone who arrived during the previous one, so
// the batch size follows the load and no writer waits for more than the
// commit in progress and its own.
//
// The semantics are db.Batch's: the functions of a group run one after the
// other in one transaction; if one fails in a way that may have left part of
// its changes (a *writeFailure, or a panic), the transaction is rolled back
// and the others run again without it, so a function may run more than
// once. Errors a function returns before it changes anything do not abort
// the group (see write).

// committer queues write functions and elects the goroutine that commits
// them.
type committer struct {
	mu      sync.Mutex
	queue   []*pendingWrite
	leading bool // a goroutine is committing or about to
}

// pendingWrite is one caller's write function and its outcome.
type pendingWrite struct {
	fn func(*bolt.Tx) error
	// lead receives true when the caller is to commit the queue, or false
	// when its write has been committed (or failed) by another.
	lead chan bool

	err      error // fn's own error, if it failed without writing
	abort    error // fn's *writeFailure, after which its changes were undone
	panicked any   // what fn panicked with
	commit   error // the transaction's error
}

// errRollback makes db.Update roll back a group; never returned to callers.
var errRollback = errors.New("boltdb: roll back group")

// commit runs fn in a write transaction, possibly shared with other callers,
// and returns fn's error (see write for the contract).
func (s *Store) commit(fn func(*bolt.Tx) error) (fnErr, commitErr error) {
	p := &pendingWrite{fn: fn, lead: make(chan bool, 1)}
	c := &s.committer
	c.mu.Lock()
	c.queue = append(c.queue, p)
	lead := !c.leading
	c.leading = true
	c.mu.Unlock()

	if lead || <-p.lead {
		if !lead && s.groupDelay > 0 {
			time.Sleep(s.groupDelay) // handed the lead: writes overlap
		}
		// p is first in the queue, which only the leader drains: the
		// leader is elected when the queue is empty or handed the lead as
		// its head.
		c.mu.Lock()
		group := c.queue
		c.queue = nil
		if len(group) > s.maxGroup {
			c.queue = append(c.queue, group[s.maxGroup:]...)
			group = group[:s.maxGroup]
		}
		c.mu.Unlock()

		func() {
			// Whatever happens, wake the group and pass the lead on: a
			// panic in bbolt itself must not leave later writers waiting
			// for a leader that is gone (a recover middleware would keep
			// the process alive with a store that never writes again).
			defer func() {
				if r := recover(); r != nil {
					for _, q := range group {
						if q.panicked == nil {
							q.panicked = r
						}
					}
				}
				for _, q := range group {
					if q != p {
						q.lead <- false
					}
				}
				c.mu.Lock()
				if len(c.queue) > 0 {
					c.queue[0].lead <- true
				} else {
					c.leading = false
				}
				c.mu.Unlock()
			}()
			s.commitGroup(group)
		}()
	}

	if p.panicked != nil {
		panic(p.panicked)
	}
	if p.abort != nil {
		return p.abort, p.abort
	}
	return p.err, p.commit
}

// commitGroup runs the group's functions in one transaction and records
// each one's outcome. A function that aborts is taken out and the rest run
// again.
func (s *Store) commitGroup(group []*pendingWrite) {
	for len(group) > 0 {
		failed := -1
		err := s.db.Update(func(tx *bolt.Tx) error {
			changed := false
			for i, p := range group {
				p.err, p.panicked = nil, nil
				p.err = runSafely(p, tx)
				var wf *writeFailure
				if p.panicked != nil || errors.As(p.err, &wf) {
					failed = i
					return errRollback
				}
				changed = changed || p.err == nil
			}
			if !changed {
				return errRollback // nothing to write: no fsync
			}
			return nil
		})
		if failed >= 0 {
			// Report it with the rest; the others run again without it.
			p := group[failed]
			if p.panicked == nil {
				p.abort, p.err = p.err, nil
			}
			group = append(group[:failed:failed], group[failed+1:]...)
			continue
		}
		if err != nil && err != errRollback {
			for _, p := range group {
				p.commit = err
			}
		}
		return
	}
}

func runSafely(p *pendingWrite, tx *bolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			p.panicked = r
		}
	}()
	return p.fn(tx)
}

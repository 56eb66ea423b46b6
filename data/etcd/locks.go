package etcd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/namelock"
	"github.com/vintner/arbor/data/internal/records"
)

// keyLocks holds one key per waiter and holder of a lock:
// locks/<name>\x00<lease>, attached to the store's lock lease.
const keyLocks = "locks/"

// Lock implements data.Locks with etcd's lock recipe: every waiter puts a
// key under the name's prefix, attached to the store's lease, and the
// waiter whose key is oldest (lowest create revision) holds the lock. The
// others wait for the key just older than theirs to be deleted, by its
// holder's unlock or by its lease's expiry.
//
// This is what concurrency.Mutex does; it is written out here because
// Mutex.Lock runs its round trips and its wait under one context, and
// takes its key back under the client's lifetime context when the wait
// fails, so it can neither fail with data.ErrUnavailable within
// RequestTimeout nor promise to return promptly. The lease is a
// concurrency.Session's.
//
// A lease stands for the whole store, so etcd sees two callers of one
// store as one holder: a lock per name in this process comes first, and
// at most one caller per store and name is in etcd at a time (package
// data/internal/namelock, shared with the bbolt backend).
func (s *Store) Lock(ctx context.Context, name string) (unlock func(), err error) {
	if err := records.CheckKey("lock", "name", name); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	if s.closed.Load() {
		return nil, errClosed()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	what := "lock " + strconv.Quote(name)
	local, err := s.locks.local.Lock(ctx, name)
	if err != nil {
		return nil, s.lockErr(ctx, "waiting for "+what, err)
	}
	sess, err := s.lockSession(ctx, what)
	if err != nil {
		local()
		return nil, err
	}
	key, err := s.acquire(ctx, sess, what, s.root+keyLocks+name+sep)
	if err != nil {
		local()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.drop(sess, key)
			local()
		})
	}, nil
}

// lockState is the store's part in locks.
type lockState struct {
	ttl   int                // lease TTL in seconds
	ctx   context.Context    // ends at Close; the session's parent
	stop  context.CancelFunc // ends ctx
	local namelock.Locks     // the in-process queue; closed by Close

	mu   sync.Mutex
	sess *concurrency.Session // nil until the first Lock, or after it ended
}

func (l *lockState) init(ttl time.Duration) {
	if ttl <= 0 {
		ttl = data.LockTTL
	}
	l.ttl = int((ttl + time.Second - 1) / time.Second) // etcd counts seconds
	l.ctx, l.stop = context.WithCancel(context.Background())
}

// lockSession returns the store's lease, kept alive until Close, granting
// a new one if there is none or the last one ended (its keep-alives
// stopped reaching the cluster for longer than its TTL, or an unlock
// could not be sent).
func (s *Store) lockSession(ctx context.Context, what string) (*concurrency.Session, error) {
	s.locks.mu.Lock()
	defer s.locks.mu.Unlock()
	if s.closed.Load() {
		return nil, errClosed()
	}
	if sess := s.locks.sess; sess != nil {
		select {
		case <-sess.Done():
			s.locks.sess = nil // its keys are gone or going with its lease
		default:
			return sess, nil
		}
	}
	if s.client.Ctx().Err() != nil {
		return nil, fmt.Errorf("etcd: %s: the client is closed: %w", what, data.ErrUnavailable)
	}
	// Grant here rather than in NewSession, which would bound the grant
	// by the session's lifetime context instead of RequestTimeout.
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	g, err := s.client.Grant(rctx, int64(s.locks.ttl))
	if err != nil {
		return nil, s.lockErr(ctx, what+": granting the lock lease", err)
	}
	sess, err := concurrency.NewSession(s.client, concurrency.WithLease(g.ID),
		concurrency.WithTTL(s.locks.ttl), concurrency.WithContext(s.locks.ctx))
	if err != nil {
		s.revoke(g.ID)
		return nil, s.lockErr(ctx, what+": keeping the lock lease alive", err)
	}
	s.locks.sess = sess
	return sess, nil
}

// acquire puts the waiter key for prefix and waits until it is the oldest.
// On failure it takes the key back, so that a wait cut short never leaves
// the lock held.
func (s *Store) acquire(ctx context.Context, sess *concurrency.Session, what, prefix string) (string, error) {
	lease := sess.Lease()
	key := prefix + fmt.Sprintf("%016x", int64(lease))
	rctx, cancel := s.reqCtx(ctx)
	resp, err := s.client.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, "", clientv3.WithLease(lease))).
		Else(clientv3.OpGet(key)).
		Commit()
	cancel()
	if err != nil {
		s.drop(sess, key) // the put may have committed
		return "", s.lockErr(ctx, what, err)
	}
	myRev := resp.Header.Revision
	if !resp.Succeeded {
		// Left by a wait of this lease whose take-back failed; it still
		// stands in the queue.
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			myRev = kvs[0].CreateRevision
		}
	}

	// The wait ends with the caller's ctx or with the lease.
	wctx, stopWait := context.WithCancel(ctx)
	defer stopWait()
	defer context.AfterFunc(sess.Ctx(), stopWait)()
	failed := func(err error) (string, error) {
		s.drop(sess, key)
		if ctx.Err() == nil && sess.Ctx().Err() != nil && !s.closed.Load() {
			return "", fmt.Errorf("etcd: %s: the lock lease ended while waiting: %w", what, data.ErrUnavailable)
		}
		return "", s.lockErr(ctx, what, err)
	}
	for {
		rctx, cancel := s.reqCtx(wctx)
		ahead, err := s.client.Get(rctx, prefix, append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(myRev-1))...)
		cancel()
		if err != nil {
			return failed(err)
		}
		if len(ahead.Kvs) == 0 {
			break
		}
		if err := s.waitDelete(wctx, string(ahead.Kvs[0].Key), ahead.Header.Revision+1); err != nil {
			return failed(err)
		}
	}
	// The key goes with the lease: make sure it was not lost meanwhile.
	rctx, cancel = s.reqCtx(wctx)
	mine, err := s.client.Get(rctx, key)
	cancel()
	if err != nil {
		return failed(err)
	}
	if len(mine.Kvs) == 0 || mine.Kvs[0].CreateRevision != myRev {
		return failed(fmt.Errorf("the lock lease ended while waiting: %w", data.ErrUnavailable))
	}
	return key, nil
}

// waitDelete waits until key is deleted at or after revision rev.
func (s *Store) waitDelete(ctx context.Context, key string, rev int64) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	var last clientv3.WatchResponse
	for wr := range s.client.Watch(ctx, key, clientv3.WithRev(rev)) {
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
		last = wr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := last.Err(); err != nil {
		return err
	}
	return fmt.Errorf("the watch ended: %w", data.ErrUnavailable)
}

// drop deletes a waiter's or holder's key, within RequestTimeout whatever
// the caller's context. If that fails, the key is left to the lease, and
// the lease is given up so that it expires within its TTL: a store that
// kept it alive would hold the lock for good.
func (s *Store) drop(sess *concurrency.Session, key string) {
	ctx, cancel := s.reqCtx(context.Background())
	defer cancel()
	if s.client.Ctx().Err() == nil { // not a client closed under the store
		if _, err := s.client.Delete(ctx, key); err == nil {
			return
		}
	}
	s.locks.mu.Lock()
	if s.locks.sess == sess {
		s.locks.sess = nil
	}
	s.locks.mu.Unlock()
	orphan(sess)
	if !s.closed.Load() {
		s.logger.Warn("etcd: a lock could not be released; its lease is left to expire", "ttl", time.Duration(s.locks.ttl)*time.Second)
	}
}

// closeLocks ends the lease at Close, which releases every lock the store
// holds at once, and wakes the Locks still waiting.
func (s *Store) closeLocks() {
	s.locks.mu.Lock()
	sess := s.locks.sess
	s.locks.sess = nil
	s.locks.mu.Unlock()
	s.locks.stop()
	s.locks.local.Close()
	if sess != nil {
		orphan(sess)
		s.revoke(sess.Lease())
	}
}

// orphan stops keeping sess's lease alive. Session.Orphan waits for the
// keep-alive to wind down, which with a closed client takes until the
// lease's TTL runs out: that wait is left to a goroutine.
func orphan(sess *concurrency.Session) {
	go sess.Orphan()
}

// revoke ends a lease within RequestTimeout. If it cannot, the lease
// expires on its own within its TTL.
func (s *Store) revoke(id clientv3.LeaseID) {
	if s.client.Ctx().Err() != nil {
		return // a client closed under the store: the lease expires
	}
	ctx, cancel := s.reqCtx(context.Background())
	defer cancel()
	if _, err := s.client.Revoke(ctx, id); err != nil {
		s.logger.Warn("etcd: the lock lease could not be revoked; its locks are released when it expires", "ttl", time.Duration(s.locks.ttl)*time.Second, "err", err)
	}
}

// lockErr describes a failed Lock: data.ErrClosed after Close, the
// caller's context's own error if it ended (a deadline included: waiting
// longer than the caller allows is not the cluster's fault), otherwise as
// fail does.
func (s *Store) lockErr(ctx context.Context, what string, err error) error {
	switch {
	case s.closed.Load() || errors.Is(err, namelock.ErrClosed):
		return errClosed()
	case ctx.Err() != nil:
		return fmt.Errorf("etcd: %s: %w", what, ctx.Err())
	case errors.Is(err, data.ErrUnavailable):
		return fmt.Errorf("etcd: %s: %w", what, err)
	}
	return s.fail(ctx, what, err)
}

package boltdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Lock implements data.Locks. bbolt's file lock lets one process open the
// store, so a lock held in this process is held against every user of the
// store. A holder cannot die without its process, which releases
// everything, so there is no TTL.
func (s *Store) Lock(ctx context.Context, name string) (unlock func(), err error) {
	if err := checkKey("lock", "name", name); err != nil {
		return nil, fmt.Errorf("boltdb: %w", err)
	}
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	unlock, err = s.locks.lock(ctx, s.closeCh, name)
	switch {
	case err == nil && s.closed.Load():
		unlock()
		return nil, s.errClosed()
	case err == errLocksClosed:
		return nil, s.errClosed()
	case err != nil:
		return nil, fmt.Errorf("boltdb: waiting for lock %q: %w", name, err)
	}
	return unlock, nil
}

var errLocksClosed = errors.New("closed")

// namedLocks is a mutex per name. An entry lives while someone holds or
// waits for its name, so the map does not grow with every name ever used.
type namedLocks struct {
	mu    sync.Mutex
	names map[string]*namedLock
}

type namedLock struct {
	slot chan struct{} // full while held
	refs int           // holders and waiters; guarded by namedLocks.mu
}

// lock waits for name until ctx ends or closed is closed.
func (l *namedLocks) lock(ctx context.Context, closed <-chan struct{}, name string) (func(), error) {
	l.mu.Lock()
	if l.names == nil {
		l.names = map[string]*namedLock{}
	}
	nl := l.names[name]
	if nl == nil {
		nl = &namedLock{slot: make(chan struct{}, 1)}
		l.names[name] = nl
	}
	nl.refs++
	l.mu.Unlock()

	select {
	case nl.slot <- struct{}{}:
	case <-ctx.Done():
		l.release(name, nl)
		return nil, ctx.Err()
	case <-closed:
		l.release(name, nl)
		return nil, errLocksClosed
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-nl.slot
			l.release(name, nl)
		})
	}, nil
}

func (l *namedLocks) release(name string, nl *namedLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if nl.refs--; nl.refs == 0 {
		delete(l.names, name)
	}
}

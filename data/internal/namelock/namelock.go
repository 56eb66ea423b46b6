// Package namelock is a mutex per name, within one process, for the store
// backends' data.Locks.
//
// The bbolt backend uses it as its whole lock: one process holds the
// store file, so a lock held in the process is held against everyone. The
// etcd backend uses it as the in-process queue in front of its lease-backed
// lock, since etcd sees every caller of one store (one lease) as a single
// holder. Both need the same things, which is why they share this:
//
//   - A waiter gives up when its context ends, holding nothing.
//   - An entry lives only while someone holds or waits for its name, so a
//     long-running store does not keep one for every name ever locked.
//   - Close wakes every waiter with ErrClosed (which the backends turn
//     into data.ErrClosed) and refuses later Locks. Holders keep their
//     lock until they unlock it; unlocking after Close is fine.
package namelock

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by Lock after Close.
var ErrClosed = errors.New("namelock: closed")

// Locks is a set of named mutexes. The zero Locks is ready to use; a Locks
// must not be copied after first use.
type Locks struct {
	mu     sync.Mutex
	names  map[string]*entry
	closed chan struct{} // closed by Close; made on first use
	done   bool          // Close has been called
}

type entry struct {
	slot chan struct{} // full while held
	refs int           // holders and waiters; guarded by Locks.mu
}

// Lock waits until it holds name, ctx ends (returning ctx.Err()) or Close
// is called (returning ErrClosed). The returned unlock releases the name;
// calling it again does nothing.
func (l *Locks) Lock(ctx context.Context, name string) (unlock func(), err error) {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	closed := l.closedCh()
	if l.names == nil {
		l.names = map[string]*entry{}
	}
	e := l.names[name]
	if e == nil {
		e = &entry{slot: make(chan struct{}, 1)}
		l.names[name] = e
	}
	e.refs++
	l.mu.Unlock()

	select {
	case e.slot <- struct{}{}:
	case <-ctx.Done():
		l.release(name, e)
		return nil, ctx.Err()
	case <-closed:
		l.release(name, e)
		return nil, ErrClosed
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-e.slot
			l.release(name, e)
		})
	}, nil
}

// Close wakes every waiting Lock with ErrClosed and makes later ones
// return it at once. Locks already held stay held until unlocked. Calling
// Close more than once is harmless.
func (l *Locks) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.done = true
		close(l.closedCh())
	}
}

// closedCh returns l.closed, making it if need be. l.mu must be held.
func (l *Locks) closedCh() chan struct{} {
	if l.closed == nil {
		l.closed = make(chan struct{})
	}
	return l.closed
}

func (l *Locks) release(name string, e *entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(l.names, name)
	}
}

package conformance

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/vintner/arbor/data"
)

// lockWait bounds a Lock that must succeed, and prompt bounds how long a
// Lock may take to give up once its ctx ended or the store closed.
const (
	lockWait = 10 * time.Second
	prompt   = 3 * time.Second
)

var lockTests = []subtest{
	{"MutualExclusion", func(e *env) {
		const workers, rounds = 16, 4
		var inside, entered atomic.Int32
		var failures atomic.Int32
		concurrently(workers, func(int) {
			for range rounds {
				ctx, cancel := context.WithTimeout(e.ctx, 4*lockWait)
				unlock, err := e.s.Lock(ctx, "counter")
				cancel()
				if err != nil {
					e.t.Errorf("Lock: %v", err)
					failures.Add(1)
					return
				}
				if n := inside.Add(1); n != 1 {
					e.t.Errorf("%d holders of one lock at once", n)
				}
				entered.Add(1)
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				unlock()
			}
		})
		if failures.Load() == 0 && entered.Load() != workers*rounds {
			e.t.Fatalf("%d critical sections ran, want %d", entered.Load(), workers*rounds)
		}
	}},
	{"NamesAreIndependent", func(e *env) {
		unlock := e.lock("a", "holding a")
		defer unlock()
		// "a/b" and "ab" share a's prefix but are other locks.
		for _, name := range []string{"b", "a/b", "ab", "A"} {
			e.lock(name, "Lock "+name+" while a is held")()
		}
		e.locked("a")
	}},
	{"CancelWhileWaiting", func(e *env) {
		unlock := e.lock("x", "first holder")
		for _, end := range []struct {
			name string
			want error
			ctx  func() (context.Context, context.CancelFunc)
		}{
			{"cancel", context.Canceled, func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(e.ctx)
				time.AfterFunc(100*time.Millisecond, cancel)
				return ctx, cancel
			}},
			{"deadline", context.DeadlineExceeded, func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(e.ctx, 100*time.Millisecond)
			}},
		} {
			ctx, cancel := end.ctx()
			start := time.Now()
			u, err := e.s.Lock(ctx, "x")
			cancel()
			if err == nil {
				u()
				e.t.Fatalf("%s: Lock of a held name returned without error", end.name)
			}
			e.is(err, end.want, end.name+" while waiting")
			if d := time.Since(start); d > prompt {
				e.t.Fatalf("%s: Lock took %s to give up", end.name, d)
			}
		}
		// A ctx that has already ended: no wait at all.
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		_, err := e.s.Lock(ctx, "free")
		e.is(err, context.Canceled, "Lock with an ended ctx")
		// The waiters that gave up left nothing behind.
		unlock()
		e.lock("x", "Lock after the waiters gave up")()
	}},
	{"WaiterGetsLock", func(e *env) {
		unlock := e.lock("w", "first holder")
		got := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(e.ctx, lockWait)
			defer cancel()
			u, err := e.s.Lock(ctx, "w")
			if err == nil {
				u()
			}
			got <- err
		}()
		select {
		case err := <-got:
			e.t.Fatalf("second Lock returned while the first held the lock: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		unlock()
		e.ok(<-got, "waiter after unlock")
	}},
	{"UnlockTwice", func(e *env) {
		first := e.lock("u", "first")
		first()
		second := e.lock("u", "after unlock")
		first() // must not release the second holder's lock
		e.locked("u")
		second()
		second()
		e.lock("u", "after the second holder")()
	}},
	{"InvalidNames", func(e *env) {
		for _, name := range []string{"", "a\x00b"} {
			u, err := e.s.Lock(e.ctx, name)
			if err == nil {
				u()
			}
			e.is(err, data.ErrInvalid, "Lock "+strconv.Quote(name))
		}
	}},
	{"Closed", func(e *env) {
		held := e.lock("c", "before Close")
		waiting := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(e.ctx, lockWait)
			defer cancel()
			u, err := e.s.Lock(ctx, "c")
			if err == nil {
				u()
			}
			waiting <- err
		}()
		time.Sleep(100 * time.Millisecond)
		e.ok(e.s.Close(), "Close")
		select {
		case err := <-waiting:
			e.is(err, data.ErrClosed, "a Lock waiting at Close")
		case <-time.After(prompt):
			e.t.Fatal("a Lock waiting at Close did not return")
		}
		held() // harmless after Close
		held()
		_, err := e.s.Lock(e.ctx, "c")
		e.is(err, data.ErrClosed, "Lock after Close")
		_, err = e.s.Lock(e.ctx, "other")
		e.is(err, data.ErrClosed, "Lock of another name after Close")
	}},
}

// lock takes name, failing the test if that takes longer than lockWait.
func (e *env) lock(name, what string) (unlock func()) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, lockWait)
	defer cancel()
	unlock, err := e.s.Lock(ctx, name)
	e.ok(err, what)
	return unlock
}

// locked fails the test unless name is held: a Lock of it gives up.
func (e *env) locked(name string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 150*time.Millisecond)
	defer cancel()
	u, err := e.s.Lock(ctx, name)
	if err == nil {
		u()
		e.t.Fatalf("Lock %q succeeded while it was held", name)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		e.t.Fatalf("Lock %q while held: %v, want context.DeadlineExceeded", name, err)
	}
}

package namelock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func (l *Locks) entries() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.names)
}

// lockAsync starts a Lock and returns where its result arrives.
func lockAsync(ctx context.Context, l *Locks, name string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		unlock, err := l.Lock(ctx, name)
		ch <- result{unlock, err}
	}()
	return ch
}

type result struct {
	unlock func()
	err    error
}

func expectBlocked(t *testing.T, ch <-chan result, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s returned while the name was held (err %v)", what, r.err)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestMutualExclusion(t *testing.T) {
	var l Locks
	ctx := context.Background()
	unlock, err := l.Lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// Another name is independent.
	unlockB, err := l.Lock(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	second := lockAsync(ctx, &l, "a")
	expectBlocked(t, second, "a second Lock of a")
	unlock()
	unlock() // idempotent: must not release the second holder's lock
	r := <-second
	if r.err != nil {
		t.Fatal(r.err)
	}
	third := lockAsync(ctx, &l, "a")
	expectBlocked(t, third, "a third Lock of a after the first unlock was called twice")
	r.unlock()
	if r := <-third; r.err != nil {
		t.Fatal(r.err)
	} else {
		r.unlock()
	}
	unlockB()
	if n := l.entries(); n != 0 {
		t.Errorf("%d entries left after every unlock", n)
	}
}

// Many goroutines on a few names: never two holders of one name (run with
// -race).
func TestMutualExclusionConcurrent(t *testing.T) {
	var l Locks
	names := []string{"x", "y", "z"}
	held := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			name := names[i%len(names)]
			for range 100 {
				unlock, err := l.Lock(context.Background(), name)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				held[name]++
				if held[name] != 1 {
					t.Errorf("%d holders of %s", held[name], name)
				}
				mu.Unlock()
				mu.Lock()
				held[name]--
				mu.Unlock()
				unlock()
			}
		})
	}
	wg.Wait()
	if n := l.entries(); n != 0 {
		t.Errorf("%d entries left after every unlock", n)
	}
}

// A waiter whose context ends gets its error and holds nothing; the map
// does not keep entries for names nobody holds.
func TestCancelWhileWaiting(t *testing.T) {
	var l Locks
	unlock, err := l.Lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	waiter := lockAsync(ctx, &l, "a")
	expectBlocked(t, waiter, "a waiter")
	cancel()
	if r := <-waiter; !errors.Is(r.err, context.Canceled) || r.unlock != nil {
		t.Fatalf("cancelled waiter: err %v, unlock %v; want context.Canceled and nil", r.err, r.unlock != nil)
	}
	unlock()
	if n := l.entries(); n != 0 {
		t.Errorf("%d entries left after a cancelled wait and an unlock", n)
	}
	// The cancelled waiter took nothing: the name is free.
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	again, err := l.Lock(ctx2, "a")
	if err != nil {
		t.Fatalf("Lock after the cancelled wait: %v", err)
	}
	again()

	// Many distinct names, each waited for and given up: no growth.
	for i := range 100 {
		name := string(rune('A' + i%26))
		hold, err := l.Lock(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		if _, err := l.Lock(ctx, name); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock of a held name with a deadline: %v", err)
		}
		cancel()
		hold()
	}
	if n := l.entries(); n != 0 {
		t.Errorf("%d entries left after waits that timed out", n)
	}

	// An already-ended context with the name free may win or lose, but
	// never leaves anything held.
	done, cancel3 := context.WithCancel(context.Background())
	cancel3()
	if u, err := l.Lock(done, "b"); err == nil {
		u()
	}
	if n := l.entries(); n != 0 {
		t.Errorf("%d entries left after a Lock with an ended context", n)
	}
}

// Close wakes every waiter with ErrClosed, refuses later Locks, and leaves
// holders able to unlock.
func TestCloseWakesWaiters(t *testing.T) {
	var l Locks
	ctx := context.Background()
	unlock, err := l.Lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	w1 := lockAsync(ctx, &l, "a")
	w2 := lockAsync(ctx, &l, "a")
	expectBlocked(t, w1, "a waiter")
	l.Close()
	for _, w := range []<-chan result{w1, w2} {
		select {
		case r := <-w:
			if !errors.Is(r.err, ErrClosed) || r.unlock != nil {
				t.Errorf("waiter after Close: err %v, unlock %v; want ErrClosed and nil", r.err, r.unlock != nil)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not wake a waiter")
		}
	}
	if _, err := l.Lock(ctx, "b"); !errors.Is(err, ErrClosed) {
		t.Errorf("Lock of a free name after Close: %v, want ErrClosed", err)
	}
	l.Close() // idempotent
	unlock()
	if n := l.entries(); n != 0 {
		t.Errorf("%d entries left after Close and unlock", n)
	}
}

// Close on a Locks never used.
func TestCloseUnused(t *testing.T) {
	var l Locks
	l.Close()
	if _, err := l.Lock(context.Background(), "a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Lock after Close: %v, want ErrClosed", err)
	}
}

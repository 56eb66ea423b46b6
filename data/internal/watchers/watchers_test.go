package watchers

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) fn(id string) {
	r.mu.Lock()
	r.ids = append(r.ids, id)
	r.mu.Unlock()
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func TestAddNotify(t *testing.T) {
	var s Set
	if !s.Empty() {
		t.Fatal("a zero Set is not empty")
	}
	s.Notify("before") // nobody to tell
	var a, b recorder
	stopA := s.Add(a.fn)
	stopB := s.Add(b.fn)
	s.Notify("x", "y")
	s.Notify() // no ids: nothing
	if got, want := a.got(), []string{"x", "y"}; !slices.Equal(got, want) {
		t.Errorf("first watcher got %q, want %q", got, want)
	}
	if got, want := b.got(), []string{"x", "y"}; !slices.Equal(got, want) {
		t.Errorf("second watcher got %q, want %q", got, want)
	}
	stopA()
	s.Notify("z")
	if got, want := a.got(), []string{"x", "y"}; !slices.Equal(got, want) {
		t.Errorf("stopped watcher got %q, want %q", got, want)
	}
	if got, want := b.got(), []string{"x", "y", "z"}; !slices.Equal(got, want) {
		t.Errorf("remaining watcher got %q, want %q", got, want)
	}
	if s.Empty() {
		t.Error("Empty with a watcher registered")
	}
	stopB()
	if !s.Empty() {
		t.Error("the last stop left a watcher list behind")
	}
}

// Calling stop more than once is harmless, and does not remove another
// watcher registered with the same function.
func TestStopTwice(t *testing.T) {
	var s Set
	var r recorder
	stop1 := s.Add(r.fn)
	stop2 := s.Add(r.fn)
	stop1()
	stop1()
	s.Notify("a")
	if got, want := r.got(), []string{"a"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q (one watcher left)", got, want)
	}
	stop2()
	stop2()
	stop1()
	s.Notify("b")
	if got, want := r.got(), []string{"a"}; !slices.Equal(got, want) {
		t.Errorf("got %q after both stops, want %q", got, want)
	}
	if !s.Empty() {
		t.Error("Set not empty after every stop")
	}
}

// stop waits for a call in progress to return; later Notify calls, even
// ones that loaded the list before stop removed the watcher, do not reach
// it.
func TestStopDuringNotifyWaits(t *testing.T) {
	var s Set
	entered, unblock := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	stop := s.Add(func(string) {
		if calls.Add(1) == 1 {
			close(entered)
			<-unblock
		}
	})
	notified := make(chan struct{})
	go func() {
		s.Notify("a")
		close(notified)
	}()
	<-entered
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("stop returned while the watcher was running")
	case <-time.After(20 * time.Millisecond):
	}
	// A Notify that got hold of the old list (the watcher is still in it
	// or already out of it, depending on how far stop got) must not call
	// fn once stop has returned.
	close(unblock)
	<-stopped
	<-notified
	s.Notify("b")
	if n := calls.Load(); n != 1 {
		t.Errorf("watcher called %d times, want 1 (before stop)", n)
	}
}

// A watcher removed while a Notify holds the old list is turned away.
func TestStoppedWatcherInOldListIsSkipped(t *testing.T) {
	var s Set
	var r recorder
	s.Add(func(string) {}) // keeps the list non-nil
	stop := s.Add(r.fn)
	old := s.list.Load() // what a Notify racing with stop may have loaded
	stop()
	for _, w := range *old {
		w.notify([]string{"late"})
	}
	if got := r.got(); len(got) != 0 {
		t.Errorf("stopped watcher got %q from a list loaded before stop", got)
	}
}

// Add, stop and Notify from many goroutines at once (run with -race). A
// watcher that stays registered throughout sees every id.
func TestConcurrent(t *testing.T) {
	var s Set
	var steady atomic.Int64
	stopSteady := s.Add(func(string) { steady.Add(1) })
	defer stopSteady()

	const notifiers, adders, rounds = 4, 4, 200
	var wg sync.WaitGroup
	for range notifiers {
		wg.Go(func() {
			for range rounds {
				s.Notify("a", "b")
			}
		})
	}
	for range adders {
		wg.Go(func() {
			for range rounds {
				var after atomic.Bool
				var late atomic.Int64
				stop := s.Add(func(string) {
					if after.Load() {
						late.Add(1)
					}
				})
				s.Notify("c")
				stop()
				after.Store(true)
				stop()
				if n := late.Load(); n != 0 {
					t.Errorf("watcher called %d times after stop returned", n)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, want := steady.Load(), int64(notifiers*rounds*2+adders*rounds); got != want {
		t.Errorf("steady watcher called %d times, want %d", got, want)
	}
}

// With no watchers, Notify allocates nothing.
func TestNotifyNoWatchersAllocatesNothing(t *testing.T) {
	var s Set
	s.Add(func(string) {})()
	if n := testing.AllocsPerRun(100, func() { s.Notify("s1") }); n != 0 {
		t.Errorf("Notify with no watchers: %v allocations", n)
	}
}

package boltdb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
)

// queued holds the committer busy with a write that waits inside its
// transaction, starts n writes with fn(i) while it waits, and releases it
// once all n are queued, so that they commit as one group (or as several,
// if the group is capped). It returns each write's error, and a panic's
// value where one panicked.
func queued(t *testing.T, s *Store, n int, fn func(i int) func(*bolt.Tx) error) ([]error, []any) {
	t.Helper()
	ctx := context.Background()
	inside, release := make(chan struct{}), make(chan struct{})
	blocker := make(chan error, 1)
	go func() {
		blocker <- s.write(ctx, func(tx *bolt.Tx) error {
			close(inside)
			<-release
			return put(tx, bucketMeta, []byte("blocker"), []byte("x"))
		})
	}()
	<-inside
	errs, panics := make([]error, n), make([]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer func() { panics[i] = recover() }()
			errs[i] = s.write(ctx, fn(i))
		})
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		s.committer.mu.Lock()
		q := len(s.committer.queue)
		s.committer.mu.Unlock()
		if q == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d writes queued behind the blocked commit", q, n)
		}
	}
	close(release)
	wg.Wait()
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	return errs, panics
}

func openTemp(t *testing.T, opts Options) *Store {
	t.Helper()
	opts.Logger = quiet
	s, err := Open(filepath.Join(t.TempDir(), "arbor.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func metaKey(i int) []byte { return fmt.Appendf(nil, "k%02d", i) }

// keysPresent reports which of metaKey(0..n-1) are stored.
func keysPresent(t *testing.T, s *Store, n int) []bool {
	t.Helper()
	got := make([]bool, n)
	if err := s.db.View(func(tx *bolt.Tx) error {
		for i := range n {
			got[i] = tx.Bucket([]byte(bucketMeta)).Get(metaKey(i)) != nil
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestGroupAbortsOnlyTheFailingWrite(t *testing.T) {
	s := openTemp(t, Options{})
	const n, bad = 10, 4
	errBoom := errors.New("disk on fire")
	errs, _ := queued(t, s, n, func(i int) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			if err := put(tx, bucketMeta, metaKey(i), []byte("v")); err != nil {
				return err
			}
			if i == bad {
				return &writeFailure{errBoom} // after a change: must be undone
			}
			return nil
		}
	})
	for i, err := range errs {
		switch {
		case i == bad && (!errors.Is(err, data.ErrUnavailable) || !errors.Is(err, errBoom)):
			t.Errorf("write %d failed in bbolt: got %v, want ErrUnavailable wrapping its cause", i, err)
		case i != bad && err != nil:
			t.Errorf("write %d: %v", i, err)
		}
	}
	for i, ok := range keysPresent(t, s, n) {
		if ok != (i != bad) {
			t.Errorf("key %d stored: %v, want %v", i, ok, i != bad)
		}
	}
}

func TestGroupPanicReachesItsCaller(t *testing.T) {
	s := openTemp(t, Options{})
	const n, bad = 10, 7
	errs, panics := queued(t, s, n, func(i int) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			if err := put(tx, bucketMeta, metaKey(i), []byte("v")); err != nil {
				return err
			}
			if i == bad {
				panic("update function bug")
			}
			return nil
		}
	})
	for i := range n {
		switch {
		case i == bad && panics[i] != "update function bug":
			t.Errorf("write %d panicked in its function; its caller recovered %v", i, panics[i])
		case i != bad && (panics[i] != nil || errs[i] != nil):
			t.Errorf("write %d: error %v, panic %v", i, errs[i], panics[i])
		}
	}
	for i, ok := range keysPresent(t, s, n) {
		if ok != (i != bad) {
			t.Errorf("key %d stored: %v, want %v", i, ok, i != bad)
		}
	}
}

func TestGroupRespectsBatchSize(t *testing.T) {
	s := openTemp(t, Options{BatchSize: 3})
	const n = 10
	var mu sync.Mutex
	perTx := map[int]map[int]bool{} // tx id -> writes it committed
	errs, _ := queued(t, s, n, func(i int) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			mu.Lock()
			if perTx[tx.ID()] == nil {
				perTx[tx.ID()] = map[int]bool{}
			}
			perTx[tx.ID()][i] = true
			mu.Unlock()
			return put(tx, bucketMeta, metaKey(i), []byte("v"))
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	for id, ws := range perTx {
		if len(ws) > 3 {
			t.Errorf("transaction %d committed %d writes; BatchSize is 3", id, len(ws))
		}
	}
	if len(perTx) < 4 {
		t.Errorf("%d writes went into %d transactions; with BatchSize 3 they need at least 4", n, len(perTx))
	}
}

func TestGroupSharesCommits(t *testing.T) {
	s := openTemp(t, Options{})
	const n = 20
	var mu sync.Mutex
	txs := map[int]bool{}
	runs := make([]int, n)
	errs, _ := queued(t, s, n, func(i int) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			mu.Lock()
			txs[tx.ID()] = true
			runs[i]++
			mu.Unlock()
			if i%2 == 1 {
				return fmt.Errorf("write %d: %w", i, data.ErrAlreadyExists) // refused before changing anything
			}
			return put(tx, bucketMeta, metaKey(i), []byte("v"))
		}
	})
	for i, err := range errs {
		if (i%2 == 1) != errors.Is(err, data.ErrAlreadyExists) || (i%2 == 0 && err != nil) || errors.Is(err, data.ErrUnavailable) {
			t.Errorf("write %d: %v", i, err)
		}
		if runs[i] != 1 {
			t.Errorf("write %d ran %d times; a refused write must not make the group run again", i, runs[i])
		}
	}
	if len(txs) != 1 {
		t.Errorf("%d writes queued behind one commit went into %d transactions, want 1", n, len(txs))
	}
	for i, ok := range keysPresent(t, s, n) {
		if ok != (i%2 == 0) {
			t.Errorf("key %d stored: %v, want %v", i, ok, i%2 == 0)
		}
	}
}

// A write that changes nothing (it was refused) costs no commit.
func TestRefusedWriteDoesNotCommit(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := context.Background()
	txid := func() (id int) {
		s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
		return id
	}
	before := txid()
	if err := s.DeleteSession(ctx, "missing"); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("DeleteSession of a missing session: %v", err)
	}
	if _, err := s.UpdateUser(ctx, "missing", func(u data.User) (data.User, error) { return u, nil }); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("UpdateUser of a missing user: %v", err)
	}
	if after := txid(); after != before {
		t.Fatalf("two refused writes moved the transaction id from %d to %d: each cost an fsync", before, after)
	}
}

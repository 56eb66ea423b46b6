package boltdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
)

// TestBackupWhileWriting copies the store while eight goroutines write to
// it, and checks that the copy opens as a store, is consistent, and holds
// every write acknowledged before the copy began.
func TestBackupWhileWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "arbor.db")
	s, err := Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Path() != path {
		t.Fatalf("Path() = %q, want %q", s.Path(), path)
	}
	ctx := context.Background()
	if err := s.CreateUser(ctx, data.User{ID: crashUser}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("g%d-%d", g, i)
				if err := s.CreateSession(ctx, crashSession(id)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()

	copyPath := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.OpenFile(copyPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Backup(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if fi, err := os.Stat(copyPath); err != nil || fi.Size() != n {
		t.Fatalf("Backup reported %d bytes; the copy is %v (%v)", n, fi.Size(), err)
	}
	if len(before) == 0 {
		t.Fatal("no write was acknowledged before the backup: the test checked nothing")
	}

	b, err := Open(copyPath, Options{Logger: quiet})
	if err != nil {
		t.Fatalf("the backup does not open as a store: %v", err)
	}
	defer b.Close()
	if err := b.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("the backup is inconsistent: %v", err)
	}
	for _, id := range before {
		if _, err := b.GetSession(ctx, id); err != nil {
			t.Fatalf("session %s, acknowledged before the backup began: %v", id, err)
		}
	}
	inCopy, err := b.ListSessions(ctx, crashUser)
	if err != nil {
		t.Fatal(err)
	}
	for _, sess := range inCopy {
		if sess != crashSession(sess.ID) {
			t.Fatalf("session in the backup reads %+v, want %+v", sess, crashSession(sess.ID))
		}
	}
	t.Logf("backup of %d bytes holds %d sessions; %d were acknowledged before it began, %d by the end",
		n, len(inCopy), len(before), len(acked))

	s.Close()
	if _, err := s.Backup(f); !errors.Is(err, data.ErrClosed) {
		t.Fatalf("Backup after Close: %v, want ErrClosed", err)
	}
}

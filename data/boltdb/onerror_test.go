package boltdb

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
)

// OnError hears about failures (an undecodable record) and not about
// answers (not found).
func TestOnErrorReportsFailuresOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "arbor.db")
	var mu sync.Mutex
	var ops []string
	s, err := Open(path, Options{Logger: quiet, OnError: func(op string, _ error) {
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.GetSession(ctx, "missing"); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("GetSession(missing) = %v", err)
	}
	if err := s.CreateUser(ctx, data.User{ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, data.User{ID: "u1"}); !errors.Is(err, data.ErrAlreadyExists) {
		t.Fatalf("duplicate CreateUser = %v", err)
	}
	if len(ops) != 0 {
		t.Fatalf("answers were reported as failures: %v", ops)
	}
	// Damage one record behind the store's back.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketSessions)).Put([]byte("bad"), []byte("{not a record"))
	}); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetSession(ctx, "bad")
	if err == nil || errors.Is(err, data.ErrNotFound) {
		t.Fatalf("GetSession(damaged) = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ops) != 1 || ops[0] != "read" {
		t.Fatalf("reported %v, want [read]", ops)
	}
	_ = s.Close()
}

// Package bolttest holds test helpers that read a bbolt store file from
// outside the store: a census of what the file holds, for tests that check
// that a flood of requests wrote nothing.
package bolttest

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CountKeys opens the bbolt file at path read-only (a copy taken with
// Backup, or a closed store) and returns how many keys it holds, in every
// bucket and nested bucket.
func CountKeys(t testing.TB, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("bolttest: opening %s: %v", path, err)
	}
	defer db.Close()
	var count func(b *bolt.Bucket) int
	count = func(b *bolt.Bucket) int {
		n := 0
		_ = b.ForEach(func(k, v []byte) error {
			if v == nil {
				n += count(b.Bucket(k))
			} else {
				n++
			}
			return nil
		})
		return n
	}
	keys := 0
	if err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { keys += count(b); return nil })
	}); err != nil {
		t.Fatalf("bolttest: reading %s: %v", path, err)
	}
	return keys
}

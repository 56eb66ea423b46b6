package boltdb

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/seal"
)

// TestOpenAddsBlobsBucket: a store file written before blobs existed (format
// 1 without the blobs bucket) opens, keeps its records and its format, and
// stores blobs.
func TestOpenAddsBlobsBucket(t *testing.T) {
	path := newStoreFile(t, 2)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(bucketBlobs)) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatalf("a format-1 file without the blobs bucket does not open: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	if users, err := s.ListUsers(ctx); err != nil || len(users) != 2 {
		t.Fatalf("users after the upgrade: %d, %v; want 2", len(users), err)
	}
	if err := s.PutBlob(ctx, "certificates/a/a.crt", []byte("pem")); err != nil {
		t.Fatal(err)
	}
	if b, err := s.GetBlob(ctx, "certificates/a/a.crt"); err != nil || string(b.Value) != "pem" {
		t.Fatalf("GetBlob after the upgrade: %+v, %v", b, err)
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket([]byte(bucketMeta)).Get([]byte(keyFormat))); v != formatVersion {
			t.Errorf("format after the upgrade is %q, want %q", v, formatVersion)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestBackupHoldsCertificates: a backup restored holds the ACME account,
// the certificate and its sealed key, which open with the keyring that
// sealed them.
func TestBackupHoldsCertificates(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2031, 3, 14, 15, 9, 26, 535897932, time.UTC)
	s, err := Open(filepath.Join(t.TempDir(), "arbor.db"), Options{Logger: quiet, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	secret, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.NewKeyring(seal.Key{ID: "k1", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	const (
		account = "acme/ca/users/ops@example.com/ops.key"
		key     = "certificates/ca/example.com/example.com.key"
		cert    = "certificates/ca/example.com/example.com.crt"
	)
	plain := map[string][]byte{account: []byte("account key"), key: []byte("site key")}
	for k, p := range plain {
		v, err := data.SealBlob(kr, k, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutBlob(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	certPEM := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	if err := s.PutBlob(ctx, cert, certPEM); err != nil {
		t.Fatal(err)
	}
	want, err := s.ListBlobs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}

	backup := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.OpenFile(backup, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBlob(ctx, key); err != nil { // the original changes; the backup does not
		t.Fatal(err)
	}

	r, err := Open(backup, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.ListBlobs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("the backup lists %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("backup blob %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for k, p := range plain {
		b, err := r.GetBlob(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := data.OpenBlob(kr, k, b.Value)
		if err != nil || !bytes.Equal(pt, p) {
			t.Errorf("%s in the backup opens to %q, %v", k, pt, err)
		}
	}
	if b, err := r.GetBlob(ctx, cert); err != nil || !bytes.Equal(b.Value, certPEM) {
		t.Errorf("certificate in the backup: %q, %v", b.Value, err)
	}
}

// ImportBlob keeps Modified, refuses a blob without one, and refuses a key
// that holds a value.
func TestImportBlob(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := context.Background()
	when := time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	if err := s.ImportBlob(ctx, data.Blob{Key: "k", Value: []byte("v"), Modified: when}); err != nil {
		t.Fatal(err)
	}
	b, err := s.GetBlob(ctx, "k")
	if err != nil || !b.Modified.Equal(when) || b.Modified.Location() != time.UTC || string(b.Value) != "v" {
		t.Fatalf("imported blob reads %+v, %v; want Modified %v in UTC", b, err, when)
	}
	if err := s.ImportBlob(ctx, data.Blob{Key: "k", Value: []byte("w"), Modified: when}); !errors.Is(err, data.ErrAlreadyExists) {
		t.Errorf("ImportBlob over a stored key: %v, want ErrAlreadyExists", err)
	}
	for name, b := range map[string]data.Blob{
		"no Modified": {Key: "k2", Value: []byte("v")},
		"bad key":     {Key: "a/../b", Modified: when},
		"too large":   {Key: "k3", Value: make([]byte, data.MaxBlobSize+1), Modified: when},
	} {
		if err := s.ImportBlob(ctx, b); !errors.Is(err, data.ErrInvalid) {
			t.Errorf("ImportBlob with %s: %v, want ErrInvalid", name, err)
		}
	}
}

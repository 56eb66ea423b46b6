package boltdb

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/records"
)

// newStoreFile makes a closed store at a fresh path holding users u1..un,
// each in a transaction of its own.
func newStoreFile(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "arbor.db")
	s, err := Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if err := s.CreateUser(context.Background(), data.User{ID: "u" + string(rune('0'+i)), Name: strings.Repeat("x", 3000)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantOpenError opens path and checks that it fails with an error that
// contains every one of wants.
func wantOpenError(t *testing.T, path string, opts Options, wants ...string) error {
	t.Helper()
	opts.Logger = quiet
	s, err := Open(path, opts)
	if err == nil {
		s.Close()
		t.Fatalf("Open(%s) succeeded; want an error containing %q", path, wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("Open(%s) error %q does not contain %q", path, err, w)
		}
	}
	return err
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := newStoreFile(t, 0)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("new store file has mode %04o, want 0600", perm)
	}
}

func TestOpenRefusesFileOthersCanRead(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o606} {
		path := newStoreFile(t, 1)
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		wantOpenError(t, path, Options{}, path, "chmod 600 "+path)
	}
	path := newStoreFile(t, 1)
	if err := os.Chmod(path, 0o700); err != nil { // the owner's execute bit is harmless
		t.Fatal(err)
	}
	s, err := Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatalf("Open of a 0700 file: %v", err)
	}
	s.Close()
}

func TestOpenRefusesDirectory(t *testing.T) {
	dir := t.TempDir()
	wantOpenError(t, dir, Options{}, dir, "is a directory")
	wantOpenError(t, "", Options{}, "no store file given")
}

func TestOpenFailsFastWhenLocked(t *testing.T) {
	path := newStoreFile(t, 1)
	first, err := Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	wantOpenError(t, path, Options{OpenTimeout: 200 * time.Millisecond},
		path, "in use by another Arbor process", "arbor backup")
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the second Open took %s to fail; the lock timeout was 200ms", took)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatalf("Open after the first store closed: %v", err)
	}
	second.Close()
}

func TestOpenRefusesDamagedFile(t *testing.T) {
	const pageSize = 4096
	flip := func(b []byte, at ...int) {
		for _, i := range at {
			b[i] ^= 0x5a
		}
	}
	var used int
	cases := []struct {
		name string
		// damage changes a good store file's bytes (nil: replaces it).
		// used is how much of the file the store's pages take; bbolt grows
		// the file ahead of need, so the tail past it is free.
		damage func(good []byte) []byte
		wants  []string
	}{
		{"Garbage", func([]byte) []byte {
			b := make([]byte, 64<<10)
			for i := range b {
				b[i] = byte(rand.IntN(256))
			}
			return b
		}, []string{"damaged", "backup"}},
		{"ShortGarbage", func([]byte) []byte { return []byte("this is not a database\n") }, []string{"damaged", "backup"}},
		{"TextFileOfAPage", func([]byte) []byte { return bytes.Repeat([]byte("arbor "), pageSize) }, []string{"damaged", "backup"}},
		{"TruncatedToOnePage", func(b []byte) []byte { return b[:pageSize] }, []string{"damaged", "backup"}},
		{"TruncatedToTwoPages", func(b []byte) []byte { return b[:2*pageSize] }, []string{"damaged", "backup"}},
		{"TruncatedInHalf", func(b []byte) []byte { return b[:used/2/pageSize*pageSize] }, []string{"damaged", "backup"}},
		{"TruncatedInLastPage", func(b []byte) []byte { return b[:used-100] }, []string{"damaged", "truncated", "backup"}},
		{"BothMetaPagesFlipped", func(b []byte) []byte {
			flip(b, 16+20, pageSize+16+20) // inside each meta (past the page header)
			return b
		}, []string{"damaged", "backup"}},
		{"BothMetaMagicsFlipped", func(b []byte) []byte {
			flip(b, 16, pageSize+16)
			return b
		}, []string{"damaged", "backup"}},
		{"BothMetaPagesZeroed", func(b []byte) []byte {
			clear(b[:2*pageSize])
			return b
		}, []string{"damaged", "backup"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := newStoreFile(t, 6)
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			used = storeSize(t, path)
			if err := os.WriteFile(path, tc.damage(good), 0o600); err != nil {
				t.Fatal(err)
			}
			err = wantOpenError(t, path, Options{}, append([]string{path}, tc.wants...)...)
			t.Log(err)
		})
	}
}

// storeSize is the size of a closed store's pages, as bbolt sees it.
func storeSize(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var size int64
	db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	return int(size)
}

// One damaged meta page is what a crash in the middle of a meta write
// leaves: bbolt falls back to the other one and the store opens.
func TestOpenSurvivesOneDamagedMetaPage(t *testing.T) {
	for _, page := range []int{0, 1} {
		path := newStoreFile(t, 2)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[page*4096+16+24] ^= 0xff
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{Logger: quiet})
		if err != nil {
			t.Fatalf("meta page %d damaged: Open: %v", page, err)
		}
		ctx := context.Background()
		// The newer meta may be the damaged one, losing the last commit
		// (u2), never the ones before it.
		if _, err := s.GetUser(ctx, "u1"); err != nil {
			t.Fatalf("meta page %d damaged: GetUser u1: %v", page, err)
		}
		if err := s.CreateUser(ctx, data.User{ID: "u9"}); err != nil {
			t.Fatalf("meta page %d damaged: the store does not take writes: %v", page, err)
		}
		s.Close()
		s, err = Open(path, Options{Logger: quiet})
		if err != nil {
			t.Fatalf("meta page %d damaged, then written: reopen: %v", page, err)
		}
		if _, err := s.GetUser(ctx, "u9"); err != nil {
			t.Fatalf("meta page %d damaged: u9 written after recovery is lost: %v", page, err)
		}
		s.Close()
	}
}

func TestOpenRefusesForeignBoltFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("widgets"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	wantOpenError(t, path, Options{}, path, "another program", "widgets")
}

func TestOpenRefusesNewerFormat(t *testing.T) {
	path := newStoreFile(t, 1)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keyFormat), []byte("2"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	wantOpenError(t, path, Options{}, path, `format "2"`)
}

// An empty file is what a crash during the very first Open leaves; it
// becomes a new store.
func TestOpenEmptyFileIsNewStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "arbor.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestKeysAreChecked(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "arbor.db"), Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.CreateUser(ctx, data.User{ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	for name, err := range map[string]error{
		"session with empty id":        s.CreateSession(ctx, data.Session{UserID: "u1", ExpiresAt: exp}),
		"user id with a NUL byte":      s.CreateUser(ctx, data.User{ID: "u1\x00x"}),
		"identity provider with NUL":   s.CreateIdentity(ctx, data.Identity{Provider: "git\x00hub", Subject: "1", UserID: "u1"}),
		"connection provider with NUL": s.CreateConnection(ctx, data.Connection{UserID: "u1", Provider: "a\x00b"}),
		"worker id too long":           s.CreateWorker(ctx, data.Worker{ID: strings.Repeat("w", records.MaxKeyLen+1), UserID: "u1"}),
		"device user code with NUL":    s.CreateDeviceCode(ctx, data.DeviceCode{Code: "c", UserCode: "A\x00B", ExpiresAt: exp}),
	} {
		if !errors.Is(err, data.ErrInvalid) {
			t.Errorf("%s: got %v, want data.ErrInvalid", name, err)
		}
	}
	// Secret keys stay out of error messages; other keys are named.
	if _, err := s.GetSession(ctx, "secret-session-id"); !errors.Is(err, data.ErrNotFound) || strings.Contains(err.Error(), "secret-session-id") {
		t.Errorf("GetSession error %q: want ErrNotFound without the session id", err)
	}
	if _, err := s.GetWorker(ctx, "w-17"); !errors.Is(err, data.ErrNotFound) || !strings.Contains(err.Error(), "w-17") {
		t.Errorf("GetWorker error %q: want ErrNotFound naming the worker", err)
	}
}

package acme

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStorage checks the certmagic.Storage semantics over Blobs: file and
// directory keys, listing, deleting a directory, sealing private keys.
func TestStorage(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	s := newStorage(st, testSealer(t))
	files := map[string]string{
		"certificates/ca/a.example/a.example.crt":  "CERT A",
		"certificates/ca/a.example/a.example.key":  "KEY A",
		"certificates/ca/a.example/a.example.json": "{}",
		"certificates/ca/b.example/b.example.crt":  "CERT B",
		"acme/ca/users/ops/ops.key":                "ACCOUNT KEY",
		"top":                                      "T",
	}
	for k, v := range files {
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("load", func(t *testing.T) {
		for k, v := range files {
			got, err := s.Load(ctx, k)
			if err != nil || string(got) != v {
				t.Errorf("Load(%s) = %q, %v; want %q", k, got, err, v)
			}
		}
		if _, err := s.Load(ctx, "certificates/ca/none.crt"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load of an absent key: %v, want fs.ErrNotExist", err)
		}
		if _, err := s.Load(ctx, "certificates/ca"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load of a directory: %v, want fs.ErrNotExist", err)
		}
	})

	t.Run("sealed at rest", func(t *testing.T) {
		raw := raw(t, st)
		for k, v := range files {
			stored, ok := raw[keyPrefix+k]
			if !ok {
				t.Fatalf("%s not stored under %s", k, keyPrefix+k)
			}
			sealedHere := bytes.Contains(stored, []byte(v))
			if wantSealed := strings.HasSuffix(k, ".key"); wantSealed == sealedHere {
				t.Errorf("%s stored as %q: sealed = %v, want %v", k, stored, !sealedHere, wantSealed)
			}
		}
		// A sealed value moved to another key does not open.
		key := keyPrefix + "certificates/ca/a.example/a.example.key"
		if err := st.PutBlob(ctx, keyPrefix+"certificates/ca/b.example/b.example.key", raw[key]); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(ctx, "certificates/ca/b.example/b.example.key"); err == nil {
			t.Error("a sealed key copied under another name opened")
		}
		if err := s.Delete(ctx, "certificates/ca/b.example/b.example.key"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("exists and stat", func(t *testing.T) {
		for _, tc := range []struct {
			key            string
			exists, isFile bool
		}{
			{"certificates/ca/a.example/a.example.crt", true, true},
			{"certificates/ca/a.example", true, false},
			{"certificates", true, false},
			{"top", true, true},
			{"certificates/ca/a.ex", false, false}, // a string prefix is not a directory
			{"nothing", false, false},
		} {
			if got := s.Exists(ctx, tc.key); got != tc.exists {
				t.Errorf("Exists(%s) = %v, want %v", tc.key, got, tc.exists)
			}
			info, err := s.Stat(ctx, tc.key)
			if !tc.exists {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Stat(%s): %v, want fs.ErrNotExist", tc.key, err)
				}
				continue
			}
			if err != nil || info.Key != tc.key || info.IsTerminal != tc.isFile || info.Modified.IsZero() || time.Since(info.Modified) > time.Hour {
				t.Errorf("Stat(%s) = %+v, %v; want terminal=%v and a modification time", tc.key, info, err, tc.isFile)
			}
		}
	})

	t.Run("list", func(t *testing.T) {
		for _, tc := range []struct {
			dir       string
			recursive bool
			want      []string
		}{
			{"certificates/ca", false, []string{"certificates/ca/a.example", "certificates/ca/b.example"}},
			{"certificates/ca/a.example", false, []string{"certificates/ca/a.example/a.example.crt", "certificates/ca/a.example/a.example.json", "certificates/ca/a.example/a.example.key"}},
			{"acme", true, []string{"acme/ca", "acme/ca/users", "acme/ca/users/ops", "acme/ca/users/ops/ops.key"}},
			{"", false, []string{"acme", "certificates", "top"}},
		} {
			got, err := s.List(ctx, tc.dir, tc.recursive)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("List(%q, %v) = %q, %v; want %q", tc.dir, tc.recursive, got, err, tc.want)
			}
		}
		if _, err := s.List(ctx, "nothing", true); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("List of an absent directory: %v, want fs.ErrNotExist", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := s.Delete(ctx, "certificates/ca/a.example"); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"certificates/ca/a.example", "certificates/ca/a.example/a.example.crt"} {
			if s.Exists(ctx, k) {
				t.Errorf("%s exists after deleting its directory", k)
			}
		}
		if !s.Exists(ctx, "certificates/ca/b.example/b.example.crt") {
			t.Error("deleting a directory deleted its sibling")
		}
		if err := s.Delete(ctx, "top"); err != nil || s.Exists(ctx, "top") {
			t.Errorf("Delete(top): %v, exists after: %v", err, s.Exists(ctx, "top"))
		}
		if err := s.Delete(ctx, "nothing"); err != nil {
			t.Errorf("Delete of an absent key: %v, want nil", err)
		}
	})
}

// TestStorageLocks: Lock excludes every other holder of the store's lock
// of that name (the bbolt store's locks here), Unlock releases it, and an
// Unlock without a Lock says so.
func TestStorageLocks(t *testing.T) {
	st := newTestStore(t)
	a, b := newStorage(st, nil), newStorage(st, nil)
	ctx := context.Background()
	if err := a.Lock(ctx, "issue_cert_a.example"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := b.Lock(short, "issue_cert_a.example"); err == nil {
		t.Fatal("a second replica took a held lock")
	}
	if err := b.Lock(ctx, "issue_cert_b.example"); err != nil {
		t.Fatalf("another name's lock: %v", err)
	}
	if err := a.Unlock(ctx, "issue_cert_a.example"); err != nil {
		t.Fatal(err)
	}
	if err := b.Lock(ctx, "issue_cert_a.example"); err != nil {
		t.Fatalf("lock after its release: %v", err)
	}
	if err := a.Unlock(ctx, "issue_cert_c.example"); err == nil {
		t.Error("Unlock of a lock never taken succeeded")
	}
	_ = b.Unlock(ctx, "issue_cert_a.example")
	_ = b.Unlock(ctx, "issue_cert_b.example")
}

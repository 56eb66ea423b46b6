package acme

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/seal"
)

// Blobs, Blob and BlobInfo are the store's (data.Blobs): named byte
// values under path-like keys, in bbolt or etcd. GetBlob answers
// data.ErrNotFound for an absent key; so may DeleteBlob, taken as "absent".
type (
	Blobs    = data.Blobs
	Blob     = data.Blob
	BlobInfo = data.BlobInfo
)

// Store is what the Manager keeps its state in: values (Blobs) and the
// store's named locks (data.Locks), which every replica sharing the store
// honours. Arbor's bbolt and etcd stores are both.
type Store interface {
	Blobs
	data.Locks
}

// Sealer encrypts values at rest. key is the value's storage key: a sealer
// binds the ciphertext to it (as additional data), so a sealed value copied
// under another key does not open.
type Sealer interface {
	Seal(key string, plaintext []byte) ([]byte, error)
	Open(key string, sealed []byte) ([]byte, error)
}

// SealWith is the Sealer of Arbor's encryption keys (the same keyring that
// seals provider tokens, AES-256-GCM with the key id in the envelope; see
// docs/encryption-at-rest.md), in the store's sealed-blob format
// (data.SealBlob: bound to the storage key), so that `arbor keys rotate`
// re-seals the private keys with the provider tokens (data.Reseal).
func SealWith(kr *seal.Keyring) Sealer { return keyringSealer{kr} }

type keyringSealer struct{ kr *seal.Keyring }

func (s keyringSealer) Seal(key string, plaintext []byte) ([]byte, error) {
	return data.SealBlob(s.kr, key, plaintext)
}

func (s keyringSealer) Open(key string, sealed []byte) ([]byte, error) {
	return data.OpenBlob(s.kr, key, sealed)
}

// keyPrefix puts everything certmagic stores under one name in Arbor's
// store, apart from other users of Blobs and Locks.
const keyPrefix = "acme/"

// storage is certmagic.Storage over Arbor's store.
//
// certmagic keys are slash-separated paths with file-system semantics
// ("a" is a directory of "a/b"); Blobs has flat keys, so directories are
// implied by the keys below them: Exists, Stat and List derive them from
// ListBlobs, and Delete of a directory deletes every key below it.
//
// Values whose key ends in ".key" (the private keys of certificates and of
// ACME accounts, certmagic's KeyBuilder names them so) are sealed when a
// Sealer is given.
type storage struct {
	store  Store
	sealer Sealer

	mu      sync.Mutex
	unlocks map[string]func() // certmagic lock name → the store's unlock
}

var _ certmagic.Storage = (*storage)(nil)

func newStorage(s Store, sealer Sealer) *storage {
	return &storage{store: s, sealer: sealer, unlocks: map[string]func(){}}
}

func sealed(key string) bool { return strings.HasSuffix(key, ".key") }

func (s *storage) Store(ctx context.Context, key string, value []byte) error {
	full := keyPrefix + key
	if s.sealer != nil && sealed(key) {
		v, err := s.sealer.Seal(full, value)
		if err != nil {
			return fmt.Errorf("acme storage: sealing %s: %w", key, err)
		}
		value = v
	}
	if err := s.store.PutBlob(ctx, full, value); err != nil {
		return fmt.Errorf("acme storage: storing %s: %w", key, err)
	}
	return nil
}

func (s *storage) Load(ctx context.Context, key string) ([]byte, error) {
	full := keyPrefix + key
	b, err := s.store.GetBlob(ctx, full)
	if errors.Is(err, data.ErrNotFound) {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("acme storage: loading %s: %w", key, err)
	}
	if s.sealer != nil && sealed(key) {
		v, err := s.sealer.Open(full, b.Value)
		if err != nil {
			return nil, fmt.Errorf("acme storage: opening %s (sealed with a key Arbor no longer has, or stored without sealing?): %w", key, err)
		}
		return v, nil
	}
	return b.Value, nil
}

// Delete deletes key and, if key is a directory, every key below it.
func (s *storage) Delete(ctx context.Context, key string) error {
	full := keyPrefix + key
	below, err := s.store.ListBlobs(ctx, full+"/")
	if err != nil {
		return fmt.Errorf("acme storage: deleting %s: %w", key, err)
	}
	keys := []string{full}
	for _, b := range below {
		keys = append(keys, b.Key)
	}
	for _, k := range keys {
		if err := s.store.DeleteBlob(ctx, k); err != nil && !errors.Is(err, data.ErrNotFound) {
			return fmt.Errorf("acme storage: deleting %s: %w", strings.TrimPrefix(k, keyPrefix), err)
		}
	}
	return nil
}

func (s *storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// List lists the keys (files and directories) directly in dir, or, when
// recursive, every key below it, as full keys ("dir/a", "dir/a/b").
func (s *storage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	full := keyPrefix
	if dir != "" {
		full += dir + "/"
	}
	infos, err := s.store.ListBlobs(ctx, full)
	if err != nil {
		return nil, fmt.Errorf("acme storage: listing %s: %w", dir, err)
	}
	seen := map[string]bool{}
	for _, b := range infos {
		rel := strings.TrimPrefix(b.Key, full)
		parts := strings.Split(rel, "/")
		if !recursive {
			parts = parts[:1]
		}
		for i := range parts {
			seen[path.Join(dir, strings.Join(parts[:i+1], "/"))] = true
		}
	}
	if len(seen) == 0 {
		return nil, fs.ErrNotExist
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// Stat describes a value (terminal) or a directory (the prefix of values).
// Size is the stored size, which for a sealed value includes the envelope.
func (s *storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	full := keyPrefix + key
	b, err := s.store.GetBlob(ctx, full)
	switch {
	case err == nil:
		return certmagic.KeyInfo{Key: key, Modified: b.Modified, Size: int64(len(b.Value)), IsTerminal: true}, nil
	case !errors.Is(err, data.ErrNotFound):
		return certmagic.KeyInfo{}, fmt.Errorf("acme storage: stat %s: %w", key, err)
	}
	below, err := s.store.ListBlobs(ctx, full+"/")
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("acme storage: stat %s: %w", key, err)
	}
	if len(below) == 0 {
		return certmagic.KeyInfo{}, fs.ErrNotExist
	}
	var newest time.Time
	for _, b := range below {
		if b.Modified.After(newest) {
			newest = b.Modified
		}
	}
	return certmagic.KeyInfo{Key: key, Modified: newest, IsTerminal: false}, nil
}

// Lock takes the store's lock of that name (shared by every replica on the
// store) and keeps its unlock for Unlock. certmagic takes it around each
// issuance and renewal, and checks storage again once it holds it, so a
// second replica finds the certificate the first one obtained.
func (s *storage) Lock(ctx context.Context, name string) error {
	unlock, err := s.store.Lock(ctx, keyPrefix+name)
	if err != nil {
		return fmt.Errorf("acme storage: lock %s: %w", name, err)
	}
	s.mu.Lock()
	if prev := s.unlocks[name]; prev != nil {
		// Not reachable while locks exclude each other; never leak one.
		prev()
	}
	s.unlocks[name] = unlock
	s.mu.Unlock()
	return nil
}

// Unlock releases a lock taken by Lock.
func (s *storage) Unlock(_ context.Context, name string) error {
	s.mu.Lock()
	unlock := s.unlocks[name]
	delete(s.unlocks, name)
	s.mu.Unlock()
	if unlock == nil {
		return fmt.Errorf("acme storage: unlock %s: not locked by this Manager", name)
	}
	unlock()
	return nil
}

// String names the storage in logs.
func (s *storage) String() string { return "arbor store" }

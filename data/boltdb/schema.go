package boltdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/codec"
	"github.com/vintner/arbor/data/internal/records"
)

// Format of the file. Bump formatVersion when a record's encoding or a
// bucket's key changes incompatibly, and teach prepare to migrate. A new
// bucket needs no bump: prepare creates the buckets an existing file lacks.
const (
	bucketMeta    = "meta"
	keyFormat     = "format"
	formatVersion = "1"
)

// Record buckets. Values are the records in package codec's binary form.
const (
	bucketUsers       = "users"            // id
	bucketIdentities  = "identities"       // provider \x00 subject
	bucketSessions    = "sessions"         // id
	bucketOAuthStates = "oauth_states"     // id
	bucketDeviceCodes = "device_codes"     // code
	bucketRefresh     = "refresh_families" // id
	bucketWorkers     = "workers"          // id
	bucketConnections = "connections"      // user id \x00 provider
	bucketAudit       = "audit"            // seq, 8 bytes big-endian
	// bucketBlobs holds data.Blobs (ACME accounts and certificates). It
	// was added within format 1: a file written before it lacks only this
	// bucket, and prepare creates it on open (an older Arbor opening the
	// file afterwards ignores it).
	bucketBlobs = "blobs" // blob key
)

// Index buckets. Values are empty unless noted.
const (
	idxUserIdentities = "idx_user_identities"   // user id \x00 provider \x00 subject
	idxUserSessions   = "idx_user_sessions"     // user id \x00 session id
	idxUserRefresh    = "idx_user_refresh"      // user id \x00 family id
	idxUserWorkers    = "idx_user_workers"      // user id \x00 worker id
	idxUserCodes      = "idx_device_user_codes" // user code -> device code
	idxAuditUser      = "idx_audit_user"        // user id \x00 seq
	idxExpiry         = "idx_expiry"            // expiry stamp, kind, key
)

var allBuckets = []string{
	bucketMeta, bucketUsers, bucketIdentities, bucketSessions, bucketOAuthStates,
	bucketDeviceCodes, bucketRefresh, bucketWorkers, bucketConnections, bucketAudit, bucketBlobs,
	idxUserIdentities, idxUserSessions, idxUserRefresh, idxUserWorkers, idxUserCodes,
	idxAuditUser, idxExpiry,
}

// Resource kinds in idx_expiry keys.
const (
	kindSession    byte = 's'
	kindOAuthState byte = 'o'
	kindDeviceCode byte = 'd'
	kindRefresh    byte = 'r'
)

// sep joins the parts of a composite key. Keys may not contain it, so the
// byte order of composite keys is the order of their parts.
const sep = "\x00"

func join(parts ...string) string { return strings.Join(parts, sep) }

// ownerPrefix is the prefix of an owner's keys in an index.
func ownerPrefix(owner string) []byte { return []byte(owner + sep) }

var (
	minStampTime = time.Unix(0, math.MinInt64)
	maxStampTime = time.Unix(0, math.MaxInt64)
)

// expiryStamp encodes t so that byte order is time order: unix nanoseconds
// with the sign bit flipped, clamped to the range UnixNano can express.
func expiryStamp(t time.Time) uint64 {
	switch {
	case t.Before(minStampTime):
		return 0
	case t.After(maxStampTime):
		return math.MaxUint64
	}
	return uint64(t.UnixNano()) ^ 1<<63
}

func expiryKey(t time.Time, kind byte, key string) []byte {
	k := make([]byte, 9, 9+len(key))
	binary.BigEndian.PutUint64(k, expiryStamp(t))
	k[8] = kind
	return append(k, key...)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// put and del wrap bbolt's errors so that write can tell them from the
// validation errors that come before any change.
func put(tx *bolt.Tx, bucket string, key, value []byte) error {
	if err := tx.Bucket([]byte(bucket)).Put(key, value); err != nil {
		return &writeFailure{fmt.Errorf("put %s: %w", bucket, err)}
	}
	return nil
}

func del(tx *bolt.Tx, bucket string, key []byte) error {
	if err := tx.Bucket([]byte(bucket)).Delete(key); err != nil {
		return &writeFailure{fmt.Errorf("delete %s: %w", bucket, err)}
	}
	return nil
}

var empty = []byte{}

// resource describes how one record type is stored: its bucket and key, its
// owner and its lifetime, and the indexes that follow from them. The generic
// methods below keep every index in step with the record.
type resource[T any] struct {
	name   string // in error messages: "session"
	bucket string
	// codec encodes the record (package codec: compact binary, see why there).
	codec codec.Codec[T]
	// secret marks keys that are credentials (session ids, OAuth states,
	// device codes): error messages leave them out, as they end up in logs.
	secret bool
	key    func(*T) string

	// owner is the owning user's id, or nil for records without one.
	owner func(*T) string
	// ownerIndex is the bucket of owner\x00key entries; empty when the
	// primary key itself begins with owner\x00.
	ownerIndex string
	// movable allows an update to change the owner (to another user that
	// exists); otherwise it is data.ErrInvalid.
	movable bool

	// expires is the record's ExpiresAt, or nil if it does not expire.
	expires    func(*T) time.Time
	expiryKind byte

	// validate returns data.ErrInvalid errors; normalize puts times in UTC.
	validate  func(*T) error
	normalize func(*T)

	// precheck runs before a create writes anything (unique secondary keys).
	precheck func(tx *bolt.Tx, v *T, now time.Time) error
	// onInsert and onRemove maintain indexes the fields above do not cover.
	onInsert func(tx *bolt.Tx, v *T) error
	onRemove func(tx *bolt.Tx, v *T) error
}

func (r *resource[T]) show(key string) string        { return records.Show(r.name, r.secret, key) }
func (r *resource[T]) errNotFound(key string) error  { return records.NotFound(r.name, r.secret, key) }
func (r *resource[T]) live(v *T, now time.Time) bool { return records.Live(r.expires, v, now) }

func (r *resource[T]) decode(key string, raw []byte, v *T) error {
	if err := r.codec.Decode(raw, v); err != nil {
		return fmt.Errorf("%s: stored record cannot be decoded (%v): delete it or restore the store from a backup", r.show(key), err)
	}
	return nil
}

// get reads a record whether or not it has expired.
func (r *resource[T]) get(tx *bolt.Tx, key string) (v T, ok bool, err error) {
	raw := tx.Bucket([]byte(r.bucket)).Get([]byte(key))
	if raw == nil {
		return v, false, nil
	}
	if err := r.decode(key, raw, &v); err != nil {
		return v, false, err
	}
	return v, true, nil
}

// load reads a live record; a missing or expired one is data.ErrNotFound.
func (r *resource[T]) load(tx *bolt.Tx, key string, now time.Time) (T, error) {
	v, ok, err := r.get(tx, key)
	if err == nil && (!ok || !r.live(&v, now)) {
		err = r.errNotFound(key)
	}
	return v, err
}

func (r *resource[T]) ownerExists(tx *bolt.Tx, v *T) error {
	id := r.owner(v)
	if tx.Bucket([]byte(bucketUsers)).Get([]byte(id)) == nil {
		return fmt.Errorf("%s: owner user %q: %w", r.name, id, data.ErrNotFound)
	}
	return nil
}

// create stores v unless a live record has its key. An expired record with
// the same key is replaced: for the caller it no longer exists.
func (r *resource[T]) create(tx *bolt.Tx, v T, now time.Time) error {
	if err := r.validate(&v); err != nil {
		return err
	}
	r.normalize(&v)
	key := r.key(&v)
	old, exists, err := r.get(tx, key)
	if err != nil {
		return err
	}
	if exists && r.live(&old, now) {
		return fmt.Errorf("%s: %w", r.show(key), data.ErrAlreadyExists)
	}
	if r.owner != nil {
		if err := r.ownerExists(tx, &v); err != nil {
			return err
		}
	}
	if r.precheck != nil {
		if err := r.precheck(tx, &v, now); err != nil {
			return err
		}
	}
	if exists {
		if err := r.remove(tx, &old); err != nil {
			return err
		}
	}
	return r.insert(tx, &v)
}

func (r *resource[T]) insert(tx *bolt.Tx, v *T) error {
	raw := r.codec.Encode(v)
	key := r.key(v)
	if err := put(tx, r.bucket, []byte(key), raw); err != nil {
		return err
	}
	if r.ownerIndex != "" {
		if err := put(tx, r.ownerIndex, []byte(join(r.owner(v), key)), empty); err != nil {
			return err
		}
	}
	if r.expires != nil {
		if err := put(tx, idxExpiry, expiryKey(r.expires(v), r.expiryKind, key), empty); err != nil {
			return err
		}
	}
	if r.onInsert != nil {
		return r.onInsert(tx, v)
	}
	return nil
}

func (r *resource[T]) remove(tx *bolt.Tx, v *T) error {
	key := r.key(v)
	if err := del(tx, r.bucket, []byte(key)); err != nil {
		return err
	}
	if r.ownerIndex != "" {
		if err := del(tx, r.ownerIndex, []byte(join(r.owner(v), key))); err != nil {
			return err
		}
	}
	if r.expires != nil {
		if err := del(tx, idxExpiry, expiryKey(r.expires(v), r.expiryKind, key)); err != nil {
			return err
		}
	}
	if r.onRemove != nil {
		return r.onRemove(tx, v)
	}
	return nil
}

// replace overwrites old with nv (same key) and moves the index entries
// that changed.
func (r *resource[T]) replace(tx *bolt.Tx, old, nv *T) error {
	raw := r.codec.Encode(nv)
	key := r.key(nv)
	if err := put(tx, r.bucket, []byte(key), raw); err != nil {
		return err
	}
	if r.ownerIndex != "" && r.owner(old) != r.owner(nv) {
		if err := del(tx, r.ownerIndex, []byte(join(r.owner(old), key))); err != nil {
			return err
		}
		if err := put(tx, r.ownerIndex, []byte(join(r.owner(nv), key)), empty); err != nil {
			return err
		}
	}
	if r.expires != nil && expiryStamp(r.expires(old)) != expiryStamp(r.expires(nv)) {
		if err := del(tx, idxExpiry, expiryKey(r.expires(old), r.expiryKind, key)); err != nil {
			return err
		}
		if err := put(tx, idxExpiry, expiryKey(r.expires(nv), r.expiryKind, key), empty); err != nil {
			return err
		}
	}
	return nil
}

// update applies fn to the live record at key. before may refuse the
// update after the record is read and before fn runs; after may adjust the
// new value from the old (store-maintained fields) or refuse it.
func (r *resource[T]) update(tx *bolt.Tx, key string, now time.Time, fn func(T) (T, error),
	before func(old *T) error, after func(old, nv *T) error) (T, error) {
	var zero T
	old, err := r.load(tx, key, now)
	if err != nil {
		return zero, err
	}
	if before != nil {
		if err := before(&old); err != nil {
			return zero, err
		}
	}
	// fn gets a copy; the maps in it are shared with old, which only its
	// key, owner and expiry are read from below.
	nv, err := fn(old)
	if err != nil {
		return zero, err
	}
	if r.key(&nv) != key {
		return zero, fmt.Errorf("%s: an update may not change the key: %w", r.show(key), data.ErrInvalid)
	}
	if r.owner != nil && r.owner(&nv) != r.owner(&old) {
		if !r.movable {
			return zero, fmt.Errorf("%s: an update may not change the owning user: %w", r.show(key), data.ErrInvalid)
		}
		if err := r.validate(&nv); err != nil {
			return zero, err
		}
		if err := r.ownerExists(tx, &nv); err != nil {
			return zero, err
		}
	}
	if after != nil {
		if err := after(&old, &nv); err != nil {
			return zero, err
		}
	}
	if err := r.validate(&nv); err != nil {
		return zero, err
	}
	r.normalize(&nv)
	if err := r.replace(tx, &old, &nv); err != nil {
		return zero, err
	}
	return nv, nil
}

func (r *resource[T]) delete(tx *bolt.Tx, key string, now time.Time) error {
	v, err := r.load(tx, key, now)
	if err != nil {
		return err
	}
	return r.remove(tx, &v)
}

// owned returns the owner's records in index order, with or without the
// expired ones.
func (r *resource[T]) owned(tx *bolt.Tx, owner string, now time.Time, withExpired bool) ([]T, error) {
	prefix := ownerPrefix(owner)
	var out []T
	if r.ownerIndex == "" {
		c := tx.Bucket([]byte(r.bucket)).Cursor()
		for k, raw := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, raw = c.Next() {
			var v T
			if err := r.decode(string(k), raw, &v); err != nil {
				return nil, err
			}
			if withExpired || r.live(&v, now) {
				out = append(out, v)
			}
		}
		return out, nil
	}
	c := tx.Bucket([]byte(r.ownerIndex)).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		v, ok, err := r.get(tx, string(k[len(prefix):]))
		if err != nil {
			return nil, err
		}
		if ok && (withExpired || r.live(&v, now)) {
			out = append(out, v)
		}
	}
	return out, nil
}

// all returns every record in key order.
func (r *resource[T]) all(tx *bolt.Tx) ([]T, error) {
	var out []T
	err := tx.Bucket([]byte(r.bucket)).ForEach(func(k, raw []byte) error {
		var v T
		if err := r.decode(string(k), raw, &v); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// removeOwnedBy deletes every record of the owner, expired or not, and
// passes the key of each to removed unless it is nil. It is part of
// DeleteUser's cascade.
func (r *resource[T]) removeOwnedBy(tx *bolt.Tx, owner string, removed func(key string)) error {
	vs, err := r.owned(tx, owner, time.Time{}, true)
	if err != nil {
		return err
	}
	for i := range vs {
		if err := r.remove(tx, &vs[i]); err != nil {
			return err
		}
		if removed != nil {
			removed(r.key(&vs[i]))
		}
	}
	return nil
}

// collect handles one idx_expiry entry for this resource. It deletes the
// record if it has expired by now and reports whether it did; an entry
// whose record is gone or has another expiry is dropped.
func (r *resource[T]) collect(tx *bolt.Tx, entry []byte, now time.Time) (bool, error) {
	key := string(entry[9:])
	v, ok, err := r.get(tx, key)
	if err != nil {
		return false, err
	}
	if ok && !r.live(&v, now) {
		if err := r.remove(tx, &v); err != nil {
			return false, err
		}
		return true, del(tx, idxExpiry, entry)
	}
	if !ok || !bytes.Equal(expiryKey(r.expires(&v), r.expiryKind, key), entry) {
		return false, del(tx, idxExpiry, entry)
	}
	return false, nil
}

type ownedResource interface {
	removeOwnedBy(tx *bolt.Tx, owner string, removed func(key string)) error
}

type expiringResource interface {
	collect(tx *bolt.Tx, entry []byte, now time.Time) (bool, error)
}

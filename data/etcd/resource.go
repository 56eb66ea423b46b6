package etcd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/codec"
	"github.com/vintner/arbor/data/internal/records"
)

// resource describes how one record type is stored; the generic methods
// below keep its index and lease in step with it.
type resource[T any] struct {
	name   string // in error messages: "session"
	prefix string // of the record keys
	// index is the prefix of the id -> owner index, or "" when the id
	// alone is the key (users, OAuth states, device codes, and connections,
	// whose id begins with the owner).
	index string
	codec codec.Codec[T]
	// secret marks ids that are credentials: messages leave them out.
	secret bool
	id     func(*T) string
	// owner is the owning user's id, or nil for records without one.
	owner   func(*T) string
	movable bool // an update may move the record to another user
	// expires is the record's ExpiresAt, or nil if it does not expire.
	expires   func(*T) time.Time
	validate  func(*T) error
	normalize func(*T)

	// Device codes: extra guards and writes for a create or an update.
	createHook func(s *Store, ctx context.Context, v *T, old *found[T], lease clientv3.LeaseID) ([]clientv3.Cmp, []clientv3.Op, error)
	updateHook func(s *Store, v *T, lease clientv3.LeaseID) []clientv3.Op
}

// found is a record as read, with what a compare-and-swap needs.
type found[T any] struct {
	v      T
	raw    []byte // its stored bytes
	ok     bool   // the record exists (live or expired)
	key    string // its key; for a missing indexed record, ""
	rev    int64  // its mod revision
	owner  string // indexed records: the owner the index names
	idxRev int64  // indexed records: the index entry's mod revision (0: none)
}

func (r *resource[T]) show(id string) string         { return records.Show(r.name, r.secret, id) }
func (r *resource[T]) errNotFound(id string) error   { return records.NotFound(r.name, r.secret, id) }
func (r *resource[T]) live(v *T, now time.Time) bool { return records.Live(r.expires, v, now) }

// key is the record key of id owned by owner.
func (r *resource[T]) key(s *Store, owner, id string) string {
	if r.index != "" {
		return s.root + r.prefix + owner + sep + id
	}
	return s.root + r.prefix + id
}

func (r *resource[T]) idxKey(s *Store, id string) string { return s.root + r.index + id }

func (r *resource[T]) decode(id string, raw []byte, v *T) error {
	if err := r.codec.Decode(raw, v); err != nil {
		return reqErr{fmt.Errorf("etcd: %s: stored record cannot be decoded (%v): delete it or restore the store from a backup", r.show(id), err)}
	}
	return nil
}

func (r *resource[T]) fromKV(id string, kv *mvccpb.KeyValue, f *found[T]) error {
	if kv == nil {
		return nil
	}
	if err := r.decode(id, kv.Value, &f.v); err != nil {
		return err
	}
	f.ok, f.key, f.rev, f.raw = true, string(kv.Key), kv.ModRevision, kv.Value
	return nil
}

func firstKV(kvs []*mvccpb.KeyValue) *mvccpb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	return kvs[0]
}

// locate reads the record with id, live or not. For an indexed record it
// reads the index and the record where the owner memo guesses it is in one
// round trip, and reads again if the guess was wrong.
func (r *resource[T]) locate(s *Store, ctx context.Context, id string) (found[T], error) {
	var f found[T]
	what := "reading " + r.show(id)
	if r.index == "" {
		resp, err := s.client.Get(ctx, r.key(s, "", id))
		if err != nil {
			return f, s.fail(ctx, what, err)
		}
		return f, r.fromKV(id, firstKV(resp.Kvs), &f)
	}
	memo := r.index + id
	guess, _ := s.owners.get(memo)
	ops := []clientv3.Op{clientv3.OpGet(r.idxKey(s, id))}
	if guess != "" {
		ops = append(ops, clientv3.OpGet(r.key(s, guess, id)))
	}
	resp, err := s.readTxn(ctx, ops...)
	if err != nil {
		return f, s.fail(ctx, what, err)
	}
	idx := firstKV(resp.Responses[0].GetResponseRange().Kvs)
	if idx == nil {
		s.owners.forget(memo)
		return f, nil
	}
	f.owner, f.idxRev = string(idx.Value), idx.ModRevision
	if f.owner == guess {
		return f, r.fromKV(id, firstKV(resp.Responses[1].GetResponseRange().Kvs), &f)
	}
	s.owners.put(memo, f.owner)
	got, err := s.client.Get(ctx, r.key(s, f.owner, id))
	if err != nil {
		return f, s.fail(ctx, what, err)
	}
	return f, r.fromKV(id, firstKV(got.Kvs), &f)
}

// get reads the live record with id. On the hot path (an indexed record
// whose owner the memo knows) it is one read of the record key.
func (r *resource[T]) get(s *Store, ctx context.Context, id string) (T, error) {
	var zero T
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return zero, err
	}
	defer cancel()
	now := s.now()
	if r.index != "" {
		if guess, ok := s.owners.get(r.index + id); ok {
			resp, err := s.client.Get(ctx, r.key(s, guess, id))
			if err != nil {
				return zero, s.fail(ctx, "reading "+r.show(id), err)
			}
			var f found[T]
			if err := r.fromKV(id, firstKV(resp.Kvs), &f); err != nil {
				return zero, err
			}
			if f.ok && r.live(&f.v, now) {
				return f.v, nil
			}
			// Deleted, expired, or the id passed to another user: ask
			// the index.
		}
	}
	f, err := r.locate(s, ctx, id)
	if err != nil {
		return zero, err
	}
	if !f.ok || !r.live(&f.v, now) {
		return zero, r.errNotFound(id)
	}
	return f.v, nil
}

// userGuard reads user id and returns a compare that holds while that
// user (this incarnation of it) exists.
func (s *Store) userGuard(ctx context.Context, what, id string) (clientv3.Cmp, error) {
	key := s.root + prefixUsers + id
	resp, err := s.client.Get(ctx, key, clientv3.WithKeysOnly())
	if err != nil {
		return clientv3.Cmp{}, s.fail(ctx, what, err)
	}
	kv := firstKV(resp.Kvs)
	if kv == nil {
		return clientv3.Cmp{}, fmt.Errorf("%s: owner user %q: %w", what, id, data.ErrNotFound)
	}
	return clientv3.Compare(clientv3.CreateRevision(key), "=", kv.CreateRevision), nil
}

// putOpts attaches the lease for v's lifetime, if it has one.
func (r *resource[T]) putOpts(s *Store, ctx context.Context, v *T) (clientv3.LeaseID, []clientv3.OpOption, error) {
	if r.expires == nil {
		return clientv3.NoLease, nil, nil
	}
	id, err := s.leases.forExpiry(ctx, r.expires(v))
	if err != nil {
		return clientv3.NoLease, nil, err
	}
	return id, []clientv3.OpOption{clientv3.WithLease(id)}, nil
}

// commit runs one guarded transaction. It reports false when a guard
// failed (another write won) or a cached lease had gone.
//
// A transaction that failed because the member serving it went away
// (stopped, lost its leader, could not be reached) while there is still
// time left is reported as ambiguousError: it may or may not have been
// committed. retry runs the attempt again, which re-reads the record, so
// the guard makes a second commit of a stale value impossible, and the
// attempt recognises its own earlier write (see ambiguous.go).
func (s *Store) commit(ctx context.Context, what string, cmps []clientv3.Cmp, ops []clientv3.Op) (bool, error) {
	resp, err := s.client.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			s.leases.reset()
			return false, nil
		}
		return false, s.writeErr(ctx, what, err)
	}
	return resp.Succeeded, nil
}

// writeErr describes a failed write for retry: ambiguousError when the
// member went away and there is time left (retry tries again), else as
// fail does.
func (s *Store) writeErr(ctx context.Context, what string, err error) error {
	if ctx.Err() == nil && !s.closed.Load() && unavailable(err) {
		return ambiguousError{s.fail(ctx, what, err)}
	}
	return s.fail(ctx, what, err)
}

// readTxn runs a read-only transaction. The client retries a plain Get on
// another member by itself but not a transaction, so a member that stops
// while serving this one is retried here, within ctx.
func (s *Store) readTxn(ctx context.Context, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	for {
		resp, err := s.client.Txn(ctx).Then(ops...).Commit()
		if err == nil || ctx.Err() != nil || s.closed.Load() || !unavailable(err) {
			return resp, err
		}
		select {
		case <-time.After(50*time.Millisecond + time.Duration(rand.Int64N(int64(50*time.Millisecond)))):
		case <-ctx.Done():
			return resp, err
		}
	}
}

// create stores v unless a live record has its id. An expired record with
// the same id is replaced: for the caller it no longer exists.
func (r *resource[T]) create(s *Store, ctx context.Context, v T) error {
	if err := r.validate(&v); err != nil {
		return err
	}
	r.normalize(&v)
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	id := r.id(&v)
	what := "creating " + r.show(id)
	raw := r.codec.Encode(&v)
	unlock, err := s.lock(ctx, what, r.prefix+id)
	if err != nil {
		return err
	}
	defer unlock()
	var mine written[struct{}] // see ambiguous.go
	return s.retry(ctx, what, func() (bool, error) {
		var cmps []clientv3.Cmp
		if r.owner != nil {
			guard, err := s.userGuard(ctx, what, r.owner(&v))
			if err != nil {
				return false, err
			}
			cmps = append(cmps, guard)
		}
		old, err := r.locate(s, ctx, id)
		if err != nil {
			return false, err
		}
		if old.ok && r.live(&old.v, s.now()) {
			if _, ok := mine.find(old.raw); ok {
				return true, nil // the attempt that failed had in fact been committed
			}
			return false, fmt.Errorf("%s: %w", r.show(id), data.ErrAlreadyExists)
		}
		lease, opts, err := r.putOpts(s, ctx, &v)
		if err != nil {
			return false, err
		}
		owner := ""
		if r.owner != nil {
			owner = r.owner(&v)
		}
		key := r.key(s, owner, id)
		var ops []clientv3.Op
		if old.ok {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(old.key), "=", old.rev))
			if old.key != key {
				ops = append(ops, clientv3.OpDelete(old.key))
			}
		} else if r.index == "" {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", 0))
		}
		ops = append(ops, clientv3.OpPut(key, string(raw), opts...))
		if r.index != "" {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r.idxKey(s, id)), "=", old.idxRev))
			ops = append(ops, clientv3.OpPut(r.idxKey(s, id), owner, opts...))
		}
		if r.createHook != nil {
			hc, ho, err := r.createHook(s, ctx, &v, &old, lease)
			if err != nil {
				return false, err
			}
			cmps, ops = append(cmps, hc...), append(ops, ho...)
		}
		ok, err := s.commit(ctx, what, cmps, ops)
		if ok && r.index != "" {
			s.owners.put(r.index+id, owner)
		}
		mine.note(err, raw, struct{}{})
		return ok, err
	})
}

// update applies fn to the live record with id. before may refuse the
// update after the record is read and before fn runs; after may adjust the
// new value from the old (store-maintained fields) or refuse it.
func (r *resource[T]) update(s *Store, ctx context.Context, id string, fn func(T) (T, error),
	before func(old *T) error, after func(old, nv *T) error) (T, error) {
	var zero, out T
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return zero, err
	}
	defer cancel()
	what := "updating " + r.show(id)
	unlock, err := s.lock(ctx, what, r.prefix+id)
	if err != nil {
		return zero, err
	}
	defer unlock()
	var mine written[T] // see ambiguous.go
	err = s.retry(ctx, what, func() (bool, error) {
		old, err := r.locate(s, ctx, id)
		if err != nil {
			return false, err
		}
		if !old.ok || !r.live(&old.v, s.now()) {
			return false, r.errNotFound(id)
		}
		if v, ok := mine.find(old.raw); ok {
			out = v // the attempt that failed had in fact been committed
			return true, nil
		}
		if before != nil {
			if err := before(&old.v); err != nil {
				return false, err
			}
		}
		// fn gets a copy; maps in it are shared with old.v, of which only
		// the id, owner and expiry are read below.
		nv, err := fn(old.v)
		if err != nil {
			return false, err
		}
		if r.id(&nv) != id {
			return false, fmt.Errorf("%s: an update may not change the key: %w", r.show(id), data.ErrInvalid)
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(old.key), "=", old.rev)}
		owner := ""
		if r.owner != nil {
			owner = r.owner(&old.v)
			if n := r.owner(&nv); n != owner {
				if !r.movable {
					return false, fmt.Errorf("%s: an update may not change the owning user: %w", r.show(id), data.ErrInvalid)
				}
				if err := r.validate(&nv); err != nil {
					return false, err
				}
				guard, err := s.userGuard(ctx, what, n)
				if err != nil {
					return false, err
				}
				cmps = append(cmps, guard)
				owner = n
			}
		}
		if after != nil {
			if err := after(&old.v, &nv); err != nil {
				return false, err
			}
		}
		if err := r.validate(&nv); err != nil {
			return false, err
		}
		r.normalize(&nv)
		lease, opts, err := r.putOpts(s, ctx, &nv)
		if err != nil {
			return false, err
		}
		key := r.key(s, owner, id)
		var ops []clientv3.Op
		if key != old.key {
			ops = append(ops, clientv3.OpDelete(old.key))
		}
		raw := r.codec.Encode(&nv)
		ops = append(ops, clientv3.OpPut(key, string(raw), opts...))
		if r.index != "" && (key != old.key || r.expires != nil) {
			// A moved record's index names its new owner; an expiring
			// one's shares the record's new lease.
			ops = append(ops, clientv3.OpPut(r.idxKey(s, id), owner, opts...))
		}
		if r.updateHook != nil {
			ops = append(ops, r.updateHook(s, &nv, lease)...)
		}
		ok, err := s.commit(ctx, what, cmps, ops)
		if ok {
			out = nv
			if r.index != "" {
				s.owners.put(r.index+id, owner)
			}
		}
		mine.note(err, raw, nv)
		return ok, err
	})
	if err != nil {
		return zero, err
	}
	return out, nil
}

// delete deletes the live record with id and its index entry.
func (r *resource[T]) delete(s *Store, ctx context.Context, id string) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	what := "deleting " + r.show(id)
	unlock, err := s.lock(ctx, what, r.prefix+id)
	if err != nil {
		return err
	}
	defer unlock()
	maybeDeleted := false // see ambiguous.go
	return s.retry(ctx, what, func() (bool, error) {
		old, err := r.locate(s, ctx, id)
		if err != nil {
			return false, err
		}
		if !old.ok || !r.live(&old.v, s.now()) {
			if maybeDeleted {
				return true, nil
			}
			return false, r.errNotFound(id)
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(old.key), "=", old.rev)}
		ops := []clientv3.Op{clientv3.OpDelete(old.key)}
		if r.index != "" {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r.idxKey(s, id)), "=", old.idxRev))
			ops = append(ops, clientv3.OpDelete(r.idxKey(s, id)))
		}
		ok, err := s.commit(ctx, what, cmps, ops)
		maybeDeleted = maybeDeleted || isAmbiguous(err)
		return ok, err
	})
}

// owned returns the live records of owner in key order.
func (r *resource[T]) owned(s *Store, ctx context.Context, owner string) ([]T, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	return r.scan(s, ctx, s.root+r.prefix+owner+sep, s.now())
}

// scan returns the live records under prefix in key order (now zero: all
// of them).
func (r *resource[T]) scan(s *Store, ctx context.Context, prefix string, now time.Time) ([]T, error) {
	resp, err := s.client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, s.fail(ctx, "listing "+r.name+"s", err)
	}
	out := make([]T, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var v T
		if err := r.decode(strings.TrimPrefix(string(kv.Key), s.root), kv.Value, &v); err != nil {
			return nil, err
		}
		if now.IsZero() || r.live(&v, now) {
			out = append(out, v)
		}
	}
	return out, nil
}

// byCreated orders records by creation time, ties by id.
func byCreated[T any](vs []T, created func(*T) time.Time, id func(*T) string) {
	slices.SortFunc(vs, func(a, b T) int {
		if c := created(&a).Compare(created(&b)); c != 0 {
			return c
		}
		return cmp.Compare(id(&a), id(&b))
	})
}

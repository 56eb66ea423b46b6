package boltdb

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/codec"
	"github.com/vintner/arbor/data/internal/records"
	"github.com/vintner/arbor/data/internal/watchers"
)

// The data.Store methods. Each is one transaction: a read (view) or a write
// (write), whose function sets its results afresh on every run because a
// batch may run it more than once.

// getOne reads the live record at key.
func getOne[T any](s *Store, ctx context.Context, r *resource[T], key string) (T, error) {
	var v T
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		v, err = r.load(tx, key, s.now())
		return err
	})
	return v, err
}

func createOne[T any](s *Store, ctx context.Context, r *resource[T], v T) error {
	if err := r.validate(&v); err != nil {
		return err
	}
	return s.write(ctx, func(tx *bolt.Tx) error { return r.create(tx, v, s.now()) })
}

func updateOne[T any](s *Store, ctx context.Context, r *resource[T], key string, fn func(T) (T, error),
	before func(*T) error, after func(old, nv *T) error) (T, error) {
	var out T
	err := s.write(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = r.update(tx, key, s.now(), fn, before, after)
		return err
	})
	return out, err
}

func deleteOne[T any](s *Store, ctx context.Context, r *resource[T], key string) error {
	return s.write(ctx, func(tx *bolt.Tx) error { return r.delete(tx, key, s.now()) })
}

// updateWatched is updateOne for a resource with watchers: once the write
// has returned, it tells set about key if the function's last run
// succeeded (see watch.go).
func updateWatched[T any](s *Store, ctx context.Context, r *resource[T], key string, fn func(T) (T, error), set *watchers.Set) (T, error) {
	var out T
	var changed bool
	err := s.write(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = r.update(tx, key, s.now(), fn, nil, nil)
		changed = err == nil
		return err
	})
	if changed {
		set.Notify(key)
	}
	return out, err
}

// deleteWatched is deleteOne for a resource with watchers, as
// updateWatched.
func deleteWatched[T any](s *Store, ctx context.Context, r *resource[T], key string, set *watchers.Set) error {
	var deleted bool
	err := s.write(ctx, func(tx *bolt.Tx) error {
		err := r.delete(tx, key, s.now())
		deleted = err == nil
		return err
	})
	if deleted {
		set.Notify(key)
	}
	return err
}

func listOwned[T any](s *Store, ctx context.Context, r *resource[T], owner string) ([]T, error) {
	var out []T
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = r.owned(tx, owner, s.now(), false)
		return err
	})
	return out, err
}

// byCreated orders records by creation time, ties by key.
func byCreated[T any](vs []T, created func(*T) time.Time, key func(*T) string) {
	slices.SortFunc(vs, func(a, b T) int {
		if c := created(&a).Compare(created(&b)); c != 0 {
			return c
		}
		return cmp.Compare(key(&a), key(&b))
	})
}

// Users

func (s *Store) CreateUser(ctx context.Context, u data.User) error {
	return createOne(s, ctx, users, u)
}

func (s *Store) GetUser(ctx context.Context, id string) (data.User, error) {
	if err := records.CheckKey("user", "id", id); err != nil {
		return data.User{}, err
	}
	return getOne(s, ctx, users, id)
}

func (s *Store) UpdateUser(ctx context.Context, id string, fn func(data.User) (data.User, error)) (data.User, error) {
	if err := records.CheckKey("user", "id", id); err != nil {
		return data.User{}, err
	}
	return updateWatched(s, ctx, users, id, fn, &s.userWatchers)
}

// DeleteUser deletes the user with their identities, sessions, refresh
// families, workers and connections, in one transaction. Audit events, OAuth
// states and device codes that name the user are kept: the former are the
// record of what happened, the latter expire within minutes.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if err := records.CheckKey("user", "id", id); err != nil {
		return err
	}
	// The user and their sessions and workers, for the watchers.
	var goneUser bool
	var goneSessions, goneWorkers []string
	err := s.write(ctx, func(tx *bolt.Tx) error {
		goneUser, goneSessions, goneWorkers = false, nil, nil
		u, err := users.load(tx, id, s.now())
		if err != nil {
			return err
		}
		var rmSessions, rmWorkers []string
		for _, r := range userOwned {
			var note func(key string)
			switch r {
			case ownedResource(sessions):
				note = func(key string) { rmSessions = append(rmSessions, key) }
			case ownedResource(workers):
				note = func(key string) { rmWorkers = append(rmWorkers, key) }
			}
			if err := r.removeOwnedBy(tx, id, note); err != nil {
				return err
			}
		}
		if err := users.remove(tx, &u); err != nil {
			return err
		}
		goneUser, goneSessions, goneWorkers = true, rmSessions, rmWorkers
		return nil
	})
	if goneUser {
		s.userWatchers.Notify(id)
	}
	s.sessionWatchers.Notify(goneSessions...)
	s.workerWatchers.Notify(goneWorkers...)
	return err
}

func (s *Store) ListUsers(ctx context.Context) ([]data.User, error) {
	var out []data.User
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = users.all(tx)
		return err
	})
	return out, err
}

// Identities

func (s *Store) CreateIdentity(ctx context.Context, id data.Identity) error {
	return createOne(s, ctx, identities, id)
}

func (s *Store) GetIdentity(ctx context.Context, provider, subject string) (data.Identity, error) {
	if err := records.CheckIdentityKey(provider, subject); err != nil {
		return data.Identity{}, err
	}
	return getOne(s, ctx, identities, join(provider, subject))
}

// UpdateIdentity changes an identity. fn may set another UserID (linking
// accounts), which must name an existing user.
func (s *Store) UpdateIdentity(ctx context.Context, provider, subject string, fn func(data.Identity) (data.Identity, error)) (data.Identity, error) {
	if err := records.CheckIdentityKey(provider, subject); err != nil {
		return data.Identity{}, err
	}
	return updateOne(s, ctx, identities, join(provider, subject), fn, nil, nil)
}

func (s *Store) DeleteIdentity(ctx context.Context, provider, subject string) error {
	if err := records.CheckIdentityKey(provider, subject); err != nil {
		return err
	}
	return deleteOne(s, ctx, identities, join(provider, subject))
}

func (s *Store) ListIdentities(ctx context.Context, userID string) ([]data.Identity, error) {
	if userID == "" {
		var out []data.Identity
		err := s.view(ctx, func(tx *bolt.Tx) error {
			var err error
			out, err = identities.all(tx) // key order: provider, subject
			return err
		})
		slices.SortFunc(out, func(a, b data.Identity) int {
			return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Subject, b.Subject))
		})
		return out, err
	}
	if err := records.CheckKey("identity", "user_id", userID); err != nil {
		return nil, err
	}
	return listOwned(s, ctx, identities, userID) // index order: provider, subject
}

// Sessions

func (s *Store) CreateSession(ctx context.Context, sess data.Session) error {
	return createOne(s, ctx, sessions, sess)
}

func (s *Store) GetSession(ctx context.Context, id string) (data.Session, error) {
	if err := records.CheckKey("session", "id", id); err != nil {
		return data.Session{}, err
	}
	return getOne(s, ctx, sessions, id)
}

func (s *Store) UpdateSession(ctx context.Context, id string, fn func(data.Session) (data.Session, error)) (data.Session, error) {
	if err := records.CheckKey("session", "id", id); err != nil {
		return data.Session{}, err
	}
	return updateWatched(s, ctx, sessions, id, fn, &s.sessionWatchers)
}

func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := records.CheckKey("session", "id", id); err != nil {
		return err
	}
	return deleteWatched(s, ctx, sessions, id, &s.sessionWatchers)
}

func (s *Store) ListSessions(ctx context.Context, userID string) ([]data.Session, error) {
	if err := records.CheckKey("session", "user_id", userID); err != nil {
		return nil, err
	}
	out, err := listOwned(s, ctx, sessions, userID)
	byCreated(out, func(v *data.Session) time.Time { return v.CreatedAt }, sessions.key)
	return out, err
}

// OAuth states

func (s *Store) CreateOAuthState(ctx context.Context, st data.OAuthState) error {
	return createOne(s, ctx, oauthStates, st)
}

func (s *Store) GetOAuthState(ctx context.Context, id string) (data.OAuthState, error) {
	if err := records.CheckKey("oauth state", "id", id); err != nil {
		return data.OAuthState{}, err
	}
	return getOne(s, ctx, oauthStates, id)
}

func (s *Store) ConsumeOAuthState(ctx context.Context, id string) (data.OAuthState, error) {
	if err := records.CheckKey("oauth state", "id", id); err != nil {
		return data.OAuthState{}, err
	}
	var out data.OAuthState
	err := s.write(ctx, func(tx *bolt.Tx) error {
		st, err := oauthStates.load(tx, id, s.now())
		if err != nil {
			return err
		}
		out = st
		return oauthStates.remove(tx, &st)
	})
	if err != nil {
		return data.OAuthState{}, err
	}
	return out, nil
}

// Device codes

func (s *Store) CreateDeviceCode(ctx context.Context, d data.DeviceCode) error {
	return createOne(s, ctx, deviceCodes, d)
}

func (s *Store) GetDeviceCode(ctx context.Context, code string) (data.DeviceCode, error) {
	if err := records.CheckKey("device code", "code", code); err != nil {
		return data.DeviceCode{}, err
	}
	return getOne(s, ctx, deviceCodes, code)
}

func (s *Store) GetDeviceCodeByUserCode(ctx context.Context, userCode string) (data.DeviceCode, error) {
	if err := records.CheckKey("device code", "user_code", userCode); err != nil {
		return data.DeviceCode{}, err
	}
	var out data.DeviceCode
	err := s.view(ctx, func(tx *bolt.Tx) error {
		code := tx.Bucket([]byte(idxUserCodes)).Get([]byte(userCode))
		if code == nil {
			return fmt.Errorf("device code for user code: %w", data.ErrNotFound)
		}
		d, err := deviceCodes.load(tx, string(code), s.now())
		if err != nil || d.UserCode != userCode {
			return fmt.Errorf("device code for user code: %w", data.ErrNotFound)
		}
		out = d
		return nil
	})
	return out, err
}

// UpdateDeviceCode changes a device code that has not been consumed. The
// store keeps ConsumedAt (ConsumeDeviceCode sets it) and the user code.
func (s *Store) UpdateDeviceCode(ctx context.Context, code string, fn func(data.DeviceCode) (data.DeviceCode, error)) (data.DeviceCode, error) {
	if err := records.CheckKey("device code", "code", code); err != nil {
		return data.DeviceCode{}, err
	}
	return updateOne(s, ctx, deviceCodes, code, fn,
		records.CheckUnconsumed, records.KeepDeviceCodeFields)
}

func (s *Store) ConsumeDeviceCode(ctx context.Context, code string, check func(data.DeviceCode) error) (data.DeviceCode, error) {
	if err := records.CheckKey("device code", "code", code); err != nil {
		return data.DeviceCode{}, err
	}
	var out data.DeviceCode
	err := s.write(ctx, func(tx *bolt.Tx) error {
		now := s.now()
		d, err := deviceCodes.load(tx, code, now)
		if err != nil {
			return err
		}
		if err := records.CheckUnconsumed(&d); err != nil {
			return err
		}
		if err := check(d); err != nil {
			return err
		}
		nd := d
		nd.ConsumedAt = records.UTC(now)
		out = nd
		return deviceCodes.replace(tx, &d, &nd)
	})
	if err != nil {
		return data.DeviceCode{}, err
	}
	return out, nil
}

// Refresh families

func (s *Store) CreateRefreshFamily(ctx context.Context, f data.RefreshFamily) error {
	return createOne(s, ctx, refreshFamilies, f)
}

func (s *Store) GetRefreshFamily(ctx context.Context, id string) (data.RefreshFamily, error) {
	if err := records.CheckKey("refresh family", "id", id); err != nil {
		return data.RefreshFamily{}, err
	}
	return getOne(s, ctx, refreshFamilies, id)
}

func (s *Store) UpdateRefreshFamily(ctx context.Context, id string, fn func(data.RefreshFamily) (data.RefreshFamily, error)) (data.RefreshFamily, error) {
	if err := records.CheckKey("refresh family", "id", id); err != nil {
		return data.RefreshFamily{}, err
	}
	return updateOne(s, ctx, refreshFamilies, id, fn, nil, nil)
}

func (s *Store) DeleteRefreshFamily(ctx context.Context, id string) error {
	if err := records.CheckKey("refresh family", "id", id); err != nil {
		return err
	}
	return deleteOne(s, ctx, refreshFamilies, id)
}

func (s *Store) ListRefreshFamilies(ctx context.Context, userID string) ([]data.RefreshFamily, error) {
	if err := records.CheckKey("refresh family", "user_id", userID); err != nil {
		return nil, err
	}
	out, err := listOwned(s, ctx, refreshFamilies, userID)
	byCreated(out, func(v *data.RefreshFamily) time.Time { return v.CreatedAt }, refreshFamilies.key)
	return out, err
}

// Workers

func (s *Store) CreateWorker(ctx context.Context, w data.Worker) error {
	return createOne(s, ctx, workers, w)
}

func (s *Store) GetWorker(ctx context.Context, id string) (data.Worker, error) {
	if err := records.CheckKey("worker", "id", id); err != nil {
		return data.Worker{}, err
	}
	return getOne(s, ctx, workers, id)
}

func (s *Store) UpdateWorker(ctx context.Context, id string, fn func(data.Worker) (data.Worker, error)) (data.Worker, error) {
	if err := records.CheckKey("worker", "id", id); err != nil {
		return data.Worker{}, err
	}
	return updateWatched(s, ctx, workers, id, fn, &s.workerWatchers)
}

func (s *Store) DeleteWorker(ctx context.Context, id string) error {
	if err := records.CheckKey("worker", "id", id); err != nil {
		return err
	}
	return deleteWatched(s, ctx, workers, id, &s.workerWatchers)
}

func (s *Store) ListWorkers(ctx context.Context, userID string) ([]data.Worker, error) {
	if err := records.CheckKey("worker", "user_id", userID); err != nil {
		return nil, err
	}
	out, err := listOwned(s, ctx, workers, userID)
	byCreated(out, func(v *data.Worker) time.Time { return v.CreatedAt }, workers.key)
	return out, err
}

// Connections

// CreateConnection stores c with Version 1, whatever c.Version says.
func (s *Store) CreateConnection(ctx context.Context, c data.Connection) error {
	c.Version = 1
	return createOne(s, ctx, connections, c)
}

func (s *Store) GetConnection(ctx context.Context, userID, provider string) (data.Connection, error) {
	if err := records.CheckConnectionKey(userID, provider); err != nil {
		return data.Connection{}, err
	}
	return getOne(s, ctx, connections, join(userID, provider))
}

func (s *Store) UpdateConnection(ctx context.Context, userID, provider string, fn func(data.Connection) (data.Connection, error)) (data.Connection, error) {
	if err := records.CheckConnectionKey(userID, provider); err != nil {
		return data.Connection{}, err
	}
	return updateOne(s, ctx, connections, join(userID, provider), fn, nil,
		func(old, nv *data.Connection) error {
			nv.Version = old.Version + 1
			return nil
		})
}

func (s *Store) DeleteConnection(ctx context.Context, userID, provider string) error {
	if err := records.CheckConnectionKey(userID, provider); err != nil {
		return err
	}
	return deleteOne(s, ctx, connections, join(userID, provider))
}

func (s *Store) ListConnections(ctx context.Context, userID string) ([]data.Connection, error) {
	if userID == "" {
		var out []data.Connection
		err := s.view(ctx, func(tx *bolt.Tx) error {
			var err error
			out, err = connections.all(tx) // key order: user, provider
			return err
		})
		return out, err
	}
	if err := records.CheckKey("connection", "user_id", userID); err != nil {
		return nil, err
	}
	return listOwned(s, ctx, connections, userID)
}

// Audit

// DefaultAuditLimit is the number of events ListAudit returns when the query
// sets no limit.
const DefaultAuditLimit = records.DefaultAuditLimit

func (s *Store) AppendAudit(ctx context.Context, e data.AuditEvent) (data.AuditEvent, error) {
	if err := records.CheckAuditEvent(&e); err != nil {
		return data.AuditEvent{}, err
	}
	var out data.AuditEvent
	err := s.write(ctx, func(tx *bolt.Tx) error {
		ev := e
		if ev.Time.IsZero() {
			ev.Time = s.now()
		}
		ev.Time = records.UTC(ev.Time)
		b := tx.Bucket([]byte(bucketAudit))
		seq, err := b.NextSequence()
		if err != nil {
			return &writeFailure{fmt.Errorf("audit sequence: %w", err)}
		}
		ev.Seq = seq
		raw := codec.AuditEvent.Encode(&ev)
		if err := put(tx, bucketAudit, seqKey(seq), raw); err != nil {
			return err
		}
		if ev.UserID != "" {
			if err := put(tx, idxAuditUser, append(ownerPrefix(ev.UserID), seqKey(seq)...), empty); err != nil {
				return err
			}
		}
		out = ev
		return nil
	})
	if err != nil {
		return data.AuditEvent{}, err
	}
	return out, nil
}

// Collector

// collectChunk bounds the deletions of one CollectExpired transaction, so
// that a large backlog does not hold the writer lock for long.
const collectChunk = 1000

// CollectExpired deletes every record whose ExpiresAt is at or before now.
// It walks idx_expiry from its start and stops at the first live entry, in
// transactions of at most collectChunk deletions.
func (s *Store) CollectExpired(ctx context.Context, now time.Time) (data.CollectStats, error) {
	var total data.CollectStats
	limit := expiryStamp(now)
	for {
		if err := s.usable(ctx); err != nil {
			return total, err
		}
		var stats data.CollectStats
		var more, done bool
		var swept []string // deleted sessions, for the watchers
		err := s.db.Update(func(tx *bolt.Tx) error {
			stats, more, done, swept = data.CollectStats{}, false, false, nil
			var entries [][]byte
			c := tx.Bucket([]byte(idxExpiry)).Cursor()
			for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= limit; k, _ = c.Next() {
				if len(entries) == collectChunk {
					more = true
					break
				}
				entries = append(entries, bytes.Clone(k))
			}
			for _, k := range entries {
				var r expiringResource
				if len(k) > 8 {
					r = expiring[k[8]]
				}
				if r == nil { // not an entry this version writes

					if err := del(tx, idxExpiry, k); err != nil {
						return err
					}
					continue
				}
				deleted, err := r.collect(tx, k, now)
				if err != nil {
					return err
				}
				if deleted {
					switch k[8] {
					case kindSession:
						stats.Sessions++
						swept = append(swept, string(k[9:]))
					case kindOAuthState:
						stats.OAuthStates++
					case kindDeviceCode:
						stats.DeviceCodes++
					case kindRefresh:
						stats.RefreshFamilies++
					}
				}
			}
			done = true
			return nil
		})
		if done {
			// Committed, or a commit that failed may have reached the
			// disk in part: report the sessions either way.
			s.sessionWatchers.Notify(swept...)
		}
		if err != nil {
			if s.closed.Load() {
				return total, s.errClosed()
			}
			return total, fmt.Errorf("boltdb: collecting expired records in %s: %w", s.path, err)
		}
		total.Sessions += stats.Sessions
		total.OAuthStates += stats.OAuthStates
		total.DeviceCodes += stats.DeviceCodes
		total.RefreshFamilies += stats.RefreshFamilies
		if !more {
			return total, nil
		}
	}
}

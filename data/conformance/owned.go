package conformance

import (
	"context"
	"time"

	"github.com/vintner/arbor/data"
)

// Sessions, refresh families and workers are the same kind of record to
// the store: each belongs to a user, is keyed by an id of its own, and is
// listed by user, oldest first. ownedTests are the tests they pass alike;
// what is particular to one (a session's expiry, a family's rotation, a
// worker's token) stays in its own tests.

// ownedKind is one kind of user-owned record: the store methods the
// shared tests call and the record's fields they read and set.
type ownedKind[T any] struct {
	name   string // the stem of the store's method names ("Session")
	plural string // "Sessions", for ListSessions
	ops    func(s data.Store) ownedOps[T]
	new    func(e *env, id, userID string) T
	id     func(T) string
	// fields returns pointers to the record's UserID and CreatedAt.
	fields func(v *T) (userID *string, createdAt *time.Time)
	// change is the kind's typical update (a session seen, a family
	// rotated, a worker's token rotated), at the clock's time.
	change func(e *env, v *T)
}

// ownedOps are a kind's store methods.
type ownedOps[T any] struct {
	create func(context.Context, T) error
	get    func(context.Context, string) (T, error)
	update func(context.Context, string, func(T) (T, error)) (T, error)
	delete func(context.Context, string) error
	list   func(context.Context, string) ([]T, error)
}

var sessionsOwned = ownedKind[data.Session]{
	name: "Session", plural: "Sessions", id: sessionID,
	ops: func(s data.Store) ownedOps[data.Session] {
		return ownedOps[data.Session]{s.CreateSession, s.GetSession, s.UpdateSession, s.DeleteSession, s.ListSessions}
	},
	new:    func(e *env, id, userID string) data.Session { return e.newSession(id, userID, time.Hour) },
	fields: func(s *data.Session) (*string, *time.Time) { return &s.UserID, &s.CreatedAt },
	change: func(e *env, s *data.Session) {
		s.LastSeenAt, s.ExpiresAt = e.clock.Now(), e.clock.Now().Add(time.Hour)
	},
}

var familiesOwned = ownedKind[data.RefreshFamily]{
	name: "RefreshFamily", plural: "RefreshFamilies", id: familyID,
	ops: func(s data.Store) ownedOps[data.RefreshFamily] {
		return ownedOps[data.RefreshFamily]{s.CreateRefreshFamily, s.GetRefreshFamily, s.UpdateRefreshFamily,
			s.DeleteRefreshFamily, s.ListRefreshFamilies}
	},
	new:    func(e *env, id, userID string) data.RefreshFamily { return e.newRefreshFamily(id, userID, time.Hour) },
	fields: func(f *data.RefreshFamily) (*string, *time.Time) { return &f.UserID, &f.CreatedAt },
	change: func(e *env, f *data.RefreshFamily) {
		f.PreviousJTI, f.CurrentJTI, f.Generation = f.CurrentJTI, "jti-rotated", f.Generation+1
		f.RotatedAt, f.LastUsedAt = e.clock.Now(), e.clock.Now()
	},
}

var workersOwned = ownedKind[data.Worker]{
	name: "Worker", plural: "Workers", id: workerID,
	ops: func(s data.Store) ownedOps[data.Worker] {
		return ownedOps[data.Worker]{s.CreateWorker, s.GetWorker, s.UpdateWorker, s.DeleteWorker, s.ListWorkers}
	},
	new:    func(e *env, id, userID string) data.Worker { return e.newWorker(id, userID) },
	fields: func(w *data.Worker) (*string, *time.Time) { return &w.UserID, &w.CreatedAt },
	change: func(e *env, w *data.Worker) {
		w.TokenHash, w.RotatedAt = []byte("a new sha-256 of thirty-two by"), e.clock.Now()
		w.Scopes, w.Repos = append(w.Scopes, "git:write"), nil
	},
}

// ownedTests are the tests every user-owned kind passes, followed by the
// kind's own.
func ownedTests[T any](k ownedKind[T], own []subtest) []subtest {
	create, get, update := "Create"+k.name, "Get"+k.name, "Update"+k.name
	return append([]subtest{
		{"CreateGet", func(e *env) {
			s := k.ops(e.s)
			e.user("u1")
			v := k.new(e, "r1", "u1")
			e.ok(s.create(e.ctx, v), create)
			got, err := s.get(e.ctx, "r1")
			e.ok(err, get)
			e.equal(got, v, get+" returns what "+create+" stored")
			e.is(s.create(e.ctx, k.new(e, "r1", "u1")), data.ErrAlreadyExists, "second "+create)
			_, err = s.get(e.ctx, "r2")
			e.is(err, data.ErrNotFound, get+" of a missing record")
		}},
		{"CreateNeedsUser", func(e *env) {
			s := k.ops(e.s)
			e.is(s.create(e.ctx, k.new(e, "r1", "ghost")), data.ErrNotFound, create+" for a missing user")
			_, err := s.get(e.ctx, "r1")
			e.is(err, data.ErrNotFound, get+" after the refused create")
		}},
		{"Update", func(e *env) {
			s := k.ops(e.s)
			e.user("u1")
			v := k.new(e, "r1", "u1")
			e.ok(s.create(e.ctx, v), create)
			e.clock.Advance(time.Minute)
			want := v
			k.change(e, &want)
			got, err := s.update(e.ctx, "r1", func(old T) (T, error) {
				e.equal(old, v, "update function's argument")
				k.change(e, &old)
				return old, nil
			})
			e.returned(got, err, want, update)
			got, err = s.get(e.ctx, "r1")
			e.returned(got, err, want, get+" after "+update)
		}},
		{"UpdateRefused", func(e *env) {
			s := k.ops(e.s)
			e.user("u1")
			e.user("u2")
			v := k.new(e, "r1", "u1")
			e.ok(s.create(e.ctx, v), create)
			_, err := s.update(e.ctx, "r1", func(old T) (T, error) {
				_, createdAt := k.fields(&old)
				*createdAt = createdAt.Add(time.Hour)
				return old, errBoom
			})
			e.is(err, errBoom, update+" whose function fails")
			_, err = s.update(e.ctx, "r1", func(old T) (T, error) {
				userID, _ := k.fields(&old)
				*userID = "u2"
				return old, nil
			})
			e.is(err, data.ErrInvalid, update+" giving the record to another user")
			got, err := s.get(e.ctx, "r1")
			e.returned(got, err, v, "record after refused updates")
			_, err = s.update(e.ctx, "r2", keep[T])
			e.is(err, data.ErrNotFound, update+" of a missing record")
		}},
		{"Delete", func(e *env) {
			s := k.ops(e.s)
			e.user("u1")
			e.ok(s.create(e.ctx, k.new(e, "r1", "u1")), create)
			e.ok(s.delete(e.ctx, "r1"), "Delete"+k.name)
			_, err := s.get(e.ctx, "r1")
			e.is(err, data.ErrNotFound, get+" after Delete"+k.name)
			e.is(s.delete(e.ctx, "r1"), data.ErrNotFound, "second Delete"+k.name)
			l, err := s.list(e.ctx, "u1")
			e.ok(err, "List"+k.plural)
			e.orderIs(ids(l, k.id), nil, "List"+k.plural+" after Delete"+k.name)
		}},
		{"ListOrderedByCreatedAt", func(e *env) {
			s := k.ops(e.s)
			e.user("u1")
			e.user("u2")
			// Ids in the opposite order of creation times, and one tie.
			for i, id := range []string{"z", "y", "x", "w"} {
				v := k.new(e, id, "u1")
				_, createdAt := k.fields(&v)
				*createdAt = Start.Add(time.Duration(min(i, 2)) * time.Second)
				e.ok(s.create(e.ctx, v), create+" "+id)
			}
			e.ok(s.create(e.ctx, k.new(e, "other", "u2")), create+" for u2")
			got, err := s.list(e.ctx, "u1")
			e.ok(err, "List"+k.plural)
			e.orderIs(ids(got, k.id), []string{"z", "y", "w", "x"}, "List"+k.plural+" order (CreatedAt, then id)")
		}},
	}, own...)
}

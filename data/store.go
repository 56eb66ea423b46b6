// Package data defines what Arbor keeps and the contract every storage
// backend fulfils.
//
// Arbor has two backends: an embedded bbolt file (package boltdb, the
// default) and an etcd cluster for several replicas. The gateway talks only
// to the interfaces in this package, and both backends pass the same
// conformance suite (package conformance), so behaviour does not change when
// an operator moves from one replica to many.
//
// # Design notes
//
//   - Every method takes a context. bbolt ignores cancellation once a
//     transaction has started; etcd honours it on every round trip.
//   - Updates go through a function func(old T) (T, error). A backend may call
//     it more than once (bbolt runs concurrent writes in one shared
//     transaction and runs it again when one member fails; etcd retries a
//     compare-and-swap that lost a race), so the function must be free of
//     side effects other than computing the new value. If it returns an
//     error, nothing is written and that error is returned unchanged. The
//     new value may not change the record's key or its owning user
//     (ErrInvalid), except that UpdateIdentity may move an identity to
//     another existing user.
//   - Keys (ids, codes, provider names) are non-empty and contain no NUL
//     byte; anything else is ErrInvalid, checked before any lookup.
//   - Records with a lifetime (sessions, OAuth states, device codes,
//     refresh families) must carry ExpiresAt (ErrInvalid if zero). Once
//     ExpiresAt <= now, the record no longer exists for any method: reads,
//     updates, deletes and consumes report ErrNotFound and a Create may reuse
//     its key, even before the collector (CollectExpired) has deleted it, so
//     correctness never depends on the collector's timing.
//   - Single-use records (OAuth states, device codes) are consumed in one
//     atomic step: under any number of concurrent consumers exactly one wins.
//   - The store never sees a provider token in the clear: a Connection holds
//     only Sealed bytes produced by package seal. Copying a store from one
//     backend to another therefore keeps sealed records sealed.
//   - All times a store returns are in UTC.
//   - Sessions.WatchSessions tells in-process caches which sessions a
//     write changed. The gateway keeps a cache of live sessions in front of
//     the store, because reading the store on every request is the hot path;
//     without a signal from the store, a logout, a revoked session or a
//     deleted user would stay valid in that cache (on this replica or, with
//     etcd, on another) until its entry aged out, instead of at once.
//     Workers.WatchWorkers does the same for worker records, which the
//     gateway reads on every request a worker makes, and Users.WatchUsers
//     for user records, so that disabling a user or a lost membership ends
//     access at once on every replica.
package data

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them with %w and a description of the
// record, so callers test with errors.Is.
var (
	// ErrNotFound is returned when a record does not exist, has expired, or
	// (for a single-use record) was already deleted by consumption.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists is returned by Create* when a record with the same key
	// is already stored.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict is returned when an update lost a race it could not retry,
	// or a caller's expected Version no longer matches the stored one.
	ErrConflict = errors.New("conflict")
	// ErrConsumed is returned by ConsumeDeviceCode when the device code was
	// consumed before (the record is kept until it expires so that a second
	// exchange is told apart from an unknown code).
	ErrConsumed = errors.New("already consumed")
	// ErrUnavailable is returned when the backend cannot be reached or has
	// no quorum. The gateway answers 503 for it.
	ErrUnavailable = errors.New("store unavailable")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("store closed")
	// ErrInvalid is returned when a record or key fails validation before
	// anything is read or written: an empty key, a missing ExpiresAt, an
	// update that changes a record's key.
	ErrInvalid = errors.New("invalid record")
)

// Store is everything Arbor keeps. It is composed of one small interface per
// resource so that a component can ask for only what it uses.
type Store interface {
	Users
	Identities
	Sessions
	OAuthStates
	DeviceCodes
	RefreshFamilies
	Workers
	Connections
	Audit
	Blobs
	Collector
	Locks

	// Ping reports whether the backend is reachable (used by /readyz).
	Ping(ctx context.Context) error
	// Close releases the backend. Methods called afterwards return
	// ErrClosed; a second Close returns nil.
	Close() error
}

// Users stores Arbor's own user accounts.
type Users interface {
	// CreateUser stores u. ErrAlreadyExists if u.ID is taken.
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	UpdateUser(ctx context.Context, id string, fn func(User) (User, error)) (User, error)
	// DeleteUser deletes the user and everything that belongs to them:
	// identities, sessions, refresh-token families, workers and connections,
	// in one atomic step. Audit events are kept, and so are OAuth states and
	// device codes that name the user (they expire within minutes, and
	// nothing can be created for a user who no longer exists).
	DeleteUser(ctx context.Context, id string) error
	// ListUsers returns every user ordered by ID.
	ListUsers(ctx context.Context) ([]User, error)

	// WatchUsers calls fn with the id of a user after a write that updated
	// or deleted the user record has committed: UpdateUser and DeleteUser.
	// CreateUser need not call it. Writes to what a user owns (sessions,
	// identities, ...) do not count as writes to the user.
	//
	// Everything else is as for WatchSessions: a signal to drop a cached
	// copy, not a change feed; spurious calls are harmless and missed ones
	// are not (a missed call would let a disabled user, or one who lost a
	// membership, keep access through a replica's cache); the same timing
	// (before the writing method returns on the embedded backend, from
	// the cluster's watch on every replica on a replicated one), ordering
	// and concurrency rules; the same guard needed by a cache that fills
	// itself from reads; and the same stop.
	WatchUsers(fn func(userID string)) (stop func())
}

// Identities maps a login provider's subject to an Arbor user.
type Identities interface {
	// CreateIdentity stores id. ErrAlreadyExists if (Provider, Subject) is
	// taken; ErrNotFound if id.UserID does not exist.
	CreateIdentity(ctx context.Context, id Identity) error
	GetIdentity(ctx context.Context, provider, subject string) (Identity, error)
	UpdateIdentity(ctx context.Context, provider, subject string, fn func(Identity) (Identity, error)) (Identity, error)
	DeleteIdentity(ctx context.Context, provider, subject string) error
	// ListIdentities returns the user's identities ordered by provider,
	// subject, or every identity of every user (ordered by user, provider,
	// subject) when userID is empty, which key rotation (the sealed
	// Grant) and the operators' listings use.
	ListIdentities(ctx context.Context, userID string) ([]Identity, error)
}

// Sessions stores web sessions.
type Sessions interface {
	// CreateSession stores s. ErrAlreadyExists if s.ID is taken;
	// ErrNotFound if s.UserID does not exist.
	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	UpdateSession(ctx context.Context, id string, fn func(Session) (Session, error)) (Session, error)
	DeleteSession(ctx context.Context, id string) error
	// ListSessions returns the user's live sessions ordered by CreatedAt.
	ListSessions(ctx context.Context, userID string) ([]Session, error)

	// WatchSessions calls fn with the id of a session after a write that
	// updated or deleted it has committed: UpdateSession, DeleteSession,
	// DeleteUser's cascade (every session of the user) and CollectExpired
	// (every session it deleted). CreateSession need not call it, even
	// when the new session takes the id of an expired one.
	//
	// It is a signal to drop a cached copy, not a change feed: fn gets no
	// record and must read the store (later, not from fn) if it wants one.
	// A missed call would leave a stale session usable, so backends err the
	// other way: fn may also be called for a session whose write failed or
	// whose outcome is unknown (a commit that failed half-way), and a
	// spurious call is harmless. A write that refused before changing
	// anything (ErrNotFound, ErrInvalid, an update function's error) need
	// not call it.
	//
	// Timing: the embedded backend calls fn once the write's transaction
	// has ended (committed and durable, or failed as above) and before the
	// writing method returns; a replicated backend calls it from its watch
	// of the cluster, shortly after the write, on every replica. Calls for
	// writes made one after the other (the second begun after the first
	// returned) come in that order. fn may be called from several
	// goroutines at once. It must be quick, must not block, must not call
	// the store and must not call stop. A cache that fills itself from
	// reads must still guard against a read that began before a write and
	// finishes after its call (for example with a generation counter).
	//
	// Any number of watchers may be registered; writes that start after
	// WatchSessions returns are reported to fn. The returned stop function
	// ends the calls: after it returns fn is not called again. Calling stop
	// more than once is harmless.
	WatchSessions(fn func(sessionID string)) (stop func())
}

// OAuthStates stores the single-use state of an OAuth authorization request.
// The web sign-in keeps its state in the `state` parameter instead (package
// flowstate) and records here only that a sign-in's state is spent, once
// the provider's code exchange has succeeded.
type OAuthStates interface {
	// CreateOAuthState stores s. ErrAlreadyExists if s.ID is taken.
	CreateOAuthState(ctx context.Context, s OAuthState) error
	// GetOAuthState returns the live state with id without consuming it.
	// ErrNotFound if there is none or it has expired.
	GetOAuthState(ctx context.Context, id string) (OAuthState, error)
	// ConsumeOAuthState deletes and returns the state. Exactly one of any
	// number of concurrent callers gets it; the others get ErrNotFound.
	ConsumeOAuthState(ctx context.Context, id string) (OAuthState, error)
}

// DeviceCodes stores CLI and RFC 8628 device authorisations.
type DeviceCodes interface {
	// CreateDeviceCode stores d. ErrAlreadyExists if d.Code is taken, or if
	// d.UserCode is set and taken by a live device code.
	CreateDeviceCode(ctx context.Context, d DeviceCode) error
	GetDeviceCode(ctx context.Context, code string) (DeviceCode, error)
	// GetDeviceCodeByUserCode finds a live device code by its RFC 8628 user code.
	GetDeviceCodeByUserCode(ctx context.Context, userCode string) (DeviceCode, error)
	// UpdateDeviceCode changes a device code that has not been consumed.
	// ErrConsumed if it has been. The store keeps ConsumedAt, and fn may not
	// change UserCode (ErrInvalid).
	UpdateDeviceCode(ctx context.Context, code string, fn func(DeviceCode) (DeviceCode, error)) (DeviceCode, error)
	// ConsumeDeviceCode marks the code consumed (ConsumedAt = the store's
	// now) if check(current) returns nil, in one atomic step, and returns the
	// consumed record. Exactly one of any number of concurrent callers
	// succeeds; later callers get ErrConsumed without check being called. If
	// check returns an error, nothing changes and that error is returned.
	// Like an update function, check may be called more than once.
	ConsumeDeviceCode(ctx context.Context, code string, check func(DeviceCode) error) (DeviceCode, error)
}

// RefreshFamilies stores CLI refresh-token families (one per CLI login).
type RefreshFamilies interface {
	// CreateRefreshFamily stores f. ErrAlreadyExists if f.ID is taken;
	// ErrNotFound if f.UserID does not exist.
	CreateRefreshFamily(ctx context.Context, f RefreshFamily) error
	GetRefreshFamily(ctx context.Context, id string) (RefreshFamily, error)
	UpdateRefreshFamily(ctx context.Context, id string, fn func(RefreshFamily) (RefreshFamily, error)) (RefreshFamily, error)
	DeleteRefreshFamily(ctx context.Context, id string) error
	// ListRefreshFamilies returns the user's live families ordered by CreatedAt.
	ListRefreshFamilies(ctx context.Context, userID string) ([]RefreshFamily, error)
}

// Workers stores Tendril workers. Only the SHA-256 of a worker's token is
// ever stored.
type Workers interface {
	// CreateWorker stores w. ErrAlreadyExists if w.ID is taken;
	// ErrNotFound if w.UserID does not exist.
	CreateWorker(ctx context.Context, w Worker) error
	GetWorker(ctx context.Context, id string) (Worker, error)
	UpdateWorker(ctx context.Context, id string, fn func(Worker) (Worker, error)) (Worker, error)
	DeleteWorker(ctx context.Context, id string) error
	// ListWorkers returns the user's workers ordered by CreatedAt.
	ListWorkers(ctx context.Context, userID string) ([]Worker, error)

	// WatchWorkers calls fn with the id of a worker after a write that
	// updated or deleted it has committed: UpdateWorker, DeleteWorker and
	// DeleteUser's cascade (every worker of the user). CreateWorker need
	// not call it. Workers do not expire, so the collector deletes none.
	//
	// Everything else is as for WatchSessions: a signal to drop a cached
	// copy, not a change feed; spurious calls are harmless and missed ones
	// are not; the same timing (before the writing method returns on the
	// embedded backend, from the cluster's watch on every replica on a
	// replicated one), ordering and concurrency rules; the same guard
	// needed by a cache that fills itself from reads; and the same stop.
	WatchWorkers(fn func(workerID string)) (stop func())
}

// Connections stores Git provider connections, one per (user, provider).
type Connections interface {
	// CreateConnection stores c with Version 1. ErrAlreadyExists if the user
	// already has a connection to c.Provider; ErrNotFound if the user does
	// not exist.
	CreateConnection(ctx context.Context, c Connection) error
	GetConnection(ctx context.Context, userID, provider string) (Connection, error)
	// UpdateConnection changes a connection. The store increments Version on
	// every successful write; fn sees the current Version.
	UpdateConnection(ctx context.Context, userID, provider string, fn func(Connection) (Connection, error)) (Connection, error)
	DeleteConnection(ctx context.Context, userID, provider string) error
	// ListConnections returns the user's connections ordered by provider, or
	// every connection of every user (ordered by user, provider) when userID
	// is empty, which key rotation and store copies use.
	ListConnections(ctx context.Context, userID string) ([]Connection, error)
}

// Audit is an append-only trail of security-relevant events.
type Audit interface {
	// AppendAudit stores e, assigning e.Seq (strictly increasing, never 0)
	// and, if zero, e.Time. It returns the stored event. ErrInvalid if
	// e.Action is empty.
	AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)
	// ListAudit returns events matching q in ascending Seq order, or
	// descending with q.Newest (see AuditQuery). ErrInvalid if q.Limit is
	// negative.
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, error)
}

// LockTTL is how long a lock outlives a holder that died, when the backend
// is not told otherwise (the etcd backend's Options.LockTTL).
const LockTTL = 10 * time.Second

// Locks are named locks held across every process that shares the store:
// within one process for the embedded backend (its file admits one
// process), across every replica for a shared one. They make work that
// must happen once, such as spending a provider's single-use refresh
// token, happen on one replica at a time.
//
// A lock is advisory: it excludes only other callers of Lock with the same
// name, and guards no record.
//
// # Notes
//
//   - Not reentrant: a second Lock of a name the caller holds waits for
//     the first to be unlocked (until its ctx ends).
//   - A holder that dies (a killed process, a replica cut off from the
//     cluster) loses the lock at most a TTL later (LockTTL unless the
//     backend is configured otherwise), and a waiter then gets it. The
//     holder is not told, so work under a lock should take well under the
//     TTL, and should re-read what it is about to change once it holds the
//     lock: the previous holder may have done the work already.
//   - Close releases every lock the store holds, at once.
//
// # Errors
//
//   - ErrInvalid: name is empty or contains a NUL byte (checked first).
//   - ErrClosed: the store is closed, before or while waiting.
//   - ErrUnavailable: the backend could not be reached, or the lease behind
//     the wait ended.
//   - ctx's error (errors.Is ctx.Err()) when ctx ends while waiting; the
//     lock is then not held, and the wait leaves nothing behind.
type Locks interface {
	// Lock waits until the caller holds name, or ctx ends, and returns the
	// function that releases it. unlock may be called more than once (the
	// calls after the first do nothing) and returns without waiting for
	// longer than the backend's request timeout; if it cannot reach the
	// backend, the lock is released by expiry instead, at most a TTL later.
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// Collector deletes records whose lifetime has passed.
type Collector interface {
	// CollectExpired deletes every record whose ExpiresAt is at or before
	// now and reports how many it deleted per resource.
	CollectExpired(ctx context.Context, now time.Time) (CollectStats, error)
}

// CollectStats counts what one CollectExpired call deleted, by resource.
type CollectStats struct {
	Sessions        int
	OAuthStates     int
	DeviceCodes     int
	RefreshFamilies int
}

// Total is the number of records deleted.
func (s CollectStats) Total() int {
	return s.Sessions + s.OAuthStates + s.DeviceCodes + s.RefreshFamilies
}

// Exporter is implemented by stores that can list the single-use records
// the Store interface reaches only by key. Copy needs it to carry sign-ins
// that are in flight (OAuth states, device codes) to another backend; the
// gateway never lists them. Both backends implement it.
type Exporter interface {
	// ListOAuthStates returns every live OAuth state ordered by ID.
	ListOAuthStates(ctx context.Context) ([]OAuthState, error)
	// ListDeviceCodes returns every live device code, consumed or not,
	// ordered by Code.
	ListDeviceCodes(ctx context.Context) ([]DeviceCode, error)
}

// Importer is implemented by stores that can take records with the fields
// a store normally assigns itself, so that Copy keeps them exactly. Both
// backends implement it.
type Importer interface {
	// ImportConnection stores c as CreateConnection does, but keeps
	// c.Version (which must be at least 1, else ErrInvalid).
	ImportConnection(ctx context.Context, c Connection) error
	// ImportAudit stores events with the Seq and Time they carry (Seqs
	// non-zero and strictly increasing, Time set, else ErrInvalid), and
	// makes sure that a later
	// AppendAudit assigns a Seq above every imported one. ErrAlreadyExists
	// if an event with one of the Seqs is already stored. Events are
	// stored in order, in as few transactions as the backend allows; after
	// an error, a prefix of them may have been stored.
	ImportAudit(ctx context.Context, events []AuditEvent) error
	// ImportBlob stores b as it is, keeping b.Modified (which must be set,
	// else ErrInvalid). ErrAlreadyExists if b.Key holds a value.
	ImportBlob(ctx context.Context, b Blob) error
}

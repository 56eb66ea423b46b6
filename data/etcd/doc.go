// Package etcd is Arbor's store for several replicas: a data.Store on an
// etcd cluster, passing the same conformance suite as the bbolt store.
//
// # Why etcd
//
// bbolt allows one process per file. Replicas of the gateway need one
// store they all see, with serialisable writes, single-use records that
// exactly one replica can consume, and a way to hear about each other's
// writes so that a logout on one replica ends the session on all of them
// at once. etcd gives all three: multi-key transactions guarded by
// compares, linearizable reads, and watches. Records are encoded with
// package codec, as in the bbolt store.
//
// # Key layout
//
// Every key is under Config.Root (default "/arbor/"); parts of composite
// keys are joined with a NUL byte, which ids may not contain.
//
//	users/<user>                         user
//	sessions/<user>\x00<session>         session            (leased)
//	families/<user>\x00<family>          refresh family     (leased)
//	workers/<user>\x00<worker>           worker
//	identities/<user>\x00<prov>\x00<sub> identity
//	connections/<user>\x00<provider>     connection
//	oauth/<state>                        OAuth state        (leased)
//	device/<code>                        device code        (leased)
//	audit/<seq as 16 hex digits>         audit event
//	blobs/<key>                          blob (data.Blobs: ACME accounts, certificates)
//	idx/session/<session>                -> user            (the session's lease)
//	idx/family/<family>                  -> user            (the family's lease)
//	idx/worker/<worker>                  -> user
//	idx/identity/<prov>\x00<sub>         -> user
//	idx/usercode/<user code>             -> device code     (the code's lease)
//	idx/audit/<user>\x00<seq>            copy of the event
//	meta/audit-seq                       last audit Seq
//	locks/<name>\x00<lease>              lock waiter/holder (the store's lock lease)
//
// Owned records are keyed by their owner first. That is what makes
// DeleteUser atomic however many records a user has: etcd refuses a
// transaction of more than 128 operations (--max-txn-ops; nested
// transactions count towards it too), and a user with 150 sessions would
// need more than that with one key per record. Here DeleteUser is one
// transaction of six operations whatever the count: delete the user key,
// and one range delete of <prefix><user>\x00 per owned kind. Listing a
// user's sessions is one range read for the same reason.
//
// The price is that a lookup by id needs the owner: the idx/ entries map
// an id to its owner, and are written in the same transaction as the
// record. DeleteUser's range deletes cannot remove them (they are keyed by
// id), so it removes them after its transaction, in batches, each entry
// guarded by its value still naming the deleted user. An entry left behind
// (a crash in between) is harmless: it names a record that does not exist,
// which every lookup treats as not found and every create replaces. Session
// and family entries share their record's lease and vanish with it.
//
// A read of a session by id would be two round trips (index, then record).
// The store remembers the owner of ids it has read or written (an owner
// never changes while its record lives), so the hot path, a session this
// replica has seen, is one read of the record key; a wrong guess falls back
// to the index.
//
// # Writes: compare-and-swap
//
// Every update reads the record and its mod revision, runs the caller's
// function, and commits a transaction that compares the mod revision (and,
// for records that need an owner, the owner's create revision, so a
// record cannot be created for a user being deleted or re-created
// meanwhile). If the compare fails another writer won: the attempt runs
// again on fresh data, the update function included, up to maxAttempts
// times, with jittered back-off, and then fails with data.ErrConflict.
// Writers of one record within one process take a striped lock first, so
// they do not race each other; only writers on other replicas can make a
// compare fail. Consuming an OAuth state is a guarded delete, consuming a
// device code a guarded put: of any number of concurrent consumers, on any
// replicas, exactly one commits. AppendAudit takes the next Seq from a
// counter key and stores the event in the same guarded transaction, so Seq
// strictly increases across replicas; the store keeps the counter's last
// value, so an append is one round trip unless another replica appended.
//
// # Lifetimes and leases
//
// Expiry is decided by the store's clock (Options.Now) against ExpiresAt,
// as in the bbolt store: a record past its ExpiresAt reads as not found
// whether or not it is still in etcd, and CollectExpired deletes what has
// expired by the time it is given. Leases only collect garbage when no one
// runs the collector: a record with a lifetime is attached to a lease that
// ends a little after its ExpiresAt (measured from the store's now, plus a
// slack of minutes), and leases are shared per bucket of end times, so
// a store holds a few hundred at most, not one per session (lease.go).
//
// # Timeouts and errors
//
// Every method runs under the caller's context bounded by
// Config.RequestTimeout (default 5s), retries included, so a lost cluster
// makes a method fail within that time and never hang. A deadline, an
// unreachable cluster, a cluster without a leader or out of space is
// data.ErrUnavailable, with a message that says what failed (never a secret
// id: sessions, states, device codes and refresh families are not named).
// A caller's own cancellation is returned as context.Canceled. After Close
// every method returns data.ErrClosed.
//
// A write whose member went away before answering may have been applied
// or not. It is tried again within the timeout, and the new attempt
// recognises its own earlier write (by its bytes, or for a consumed OAuth
// state by a marker written with the delete), so the caller is told the
// write succeeded rather than that its code was already consumed, its
// record already gone or its audit event appended twice (ambiguous.go).
//
// # Locks
//
// Lock (data.Locks) is etcd's lock recipe (locks.go): each waiter puts a
// key under locks/<name>\x00, and the oldest key holds the lock. Keys are
// attached to one lease per store, a concurrency.Session with a TTL of
// Options.LockTTL, kept alive while the store is open and revoked by
// Close. A replica that dies holding a lock stops keeping its lease alive,
// and etcd deletes its keys when the TTL runs out, which hands the lock to
// the next waiter. One lease stands for every caller in a store, so callers
// of one store queue in process first and only one per name waits in etcd.
// A key whose deletion fails (an unlock during an outage) cannot be left
// to a lease kept alive for ever: the store then gives the lease up and
// takes a new one for the next Lock.
//
// # Watching sessions, workers and users
//
// The bbolt store calls session, worker and user watchers from the writing
// goroutine, since it is the only writer. Here writes come from every
// replica, so each store runs one etcd watch on each of sessions/,
// workers/ and users/ from the revision it read when it opened (the same
// loop, see watch.go), and calls that prefix's watchers for every put over
// an existing key and every delete, including range deletes (DeleteUser),
// the collector's deletes and lease expiry. Puts that create a key
// (CreateSession, CreateWorker, CreateUser) call nobody. Events arrive in revision
// order on one goroutine per watch, so calls for writes made one after
// the other come in that order, on every replica. A write whose outcome
// the writer never learnt (a timeout after the commit) is reported if and
// only if it committed.
//
// When a watch ends (a member restarts or loses its leader; the watch
// requires one) it is re-established from the revision after the last
// event it delivered, so nothing is missed. The one gap etcd cannot fill
// is a compaction past that revision: the events are gone. Calling the
// watchers for the right ids is then impossible, and the store cannot
// tell them to drop everything (fn takes an id). So the store remembers
// every session it has handed out (GetSession, ListSessions,
// UpdateSession) until it expires, every worker it has handed out
// (GetWorker, ListWorkers, UpdateWorker; workers do not expire) and every
// user (GetUser, ListUsers, UpdateUser; users do not expire either), and
// after a compacted watch calls that prefix's watchers for each of them:
// a cache in front of the store only holds records it read through it, so
// every entry that may be stale is reported, along with many that are not
// (spurious calls are harmless). The memory is bounded (handedCap ids per
// kind); beyond it, a compaction could miss ids evicted from it, which
// needs a watch that fell behind a compaction and a replica that read
// more than a quarter of a million live sessions, workers or users.
package etcd

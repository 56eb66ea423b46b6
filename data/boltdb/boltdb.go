// Package boltdb is Arbor's default store: one bbolt file on local disk.
//
// # Why bbolt
//
// A gateway in front of one web app should not need a database server.
// bbolt gives serialisable transactions, a crash-safe file (every commit is
// fsynced; a process killed at any moment leaves the last committed state),
// and reads that never block writes. Its limits are the reasons Arbor also
// has an etcd backend: one process at a time owns the file (an exclusive
// lock), and every write transaction costs one fsync.
//
// # Layout
//
// Every record is the JSON of its type in package data, in a bucket of its
// own, with all times in UTC. Secondary indexes live in their own buckets
// and are written in the same transaction as the record, so they are never
// out of step with it:
//
//   - idx_user_* buckets map owner\x00key to nothing, so listing a user's
//     sessions or deleting a user touches only that user's records
//     (connections need none: their key already begins with the user id);
//   - idx_device_user_codes maps an RFC 8628 user code to its device code;
//   - idx_expiry is keyed by (ExpiresAt as big-endian unix nanoseconds,
//     resource, key), so CollectExpired walks exactly the expired entries
//     from the start of the bucket and stops at the first live one.
//
// Key components may not contain a NUL byte (the separator); the store
// refuses them with data.ErrInvalid.
//
// # Writes
//
// Every write transaction costs an fsync, so concurrent writes share
// transactions: a write that arrives while another commits waits for that
// commit, then goes in the next transaction with every other write that
// arrived meanwhile (group commit, see commit.go). A lone write commits at
// once. Under 64 concurrent writers this gives about twenty times the
// throughput of one transaction per write. It also beat bbolt's db.Batch at
// every concurrency measured (at 4 to 64 writers, 1.1 to 1.8 times the
// throughput at about half the latency): db.Batch starts its batches on a
// timer, which was the bottleneck on the machine the figures come from
// (BenchmarkWriters). As with db.Batch, the update functions callers pass
// in may run more than once.
//
// # Files
//
// The file is created with mode 0600 and an existing file that group or
// others can read is refused: it holds sessions and sealed provider tokens.
// A file that is not a bbolt file, was truncated, or has damaged meta pages
// is reported with an error that names it; the store never panics on open.
// Damage deeper in the file (a flipped bit in a data page) is found only when
// that page is read, and bbolt panics then; restore from a backup
// ((*Store).Backup, `arbor backup`).
package boltdb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/namelock"
	"github.com/vintner/arbor/data/internal/watchers"
)

// Defaults for Options.
const (
	DefaultOpenTimeout = time.Second
	DefaultBatchSize   = 256
)

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Now is the store's clock: records whose ExpiresAt is at or before
	// Now() read as data.ErrNotFound, and AppendAudit and ConsumeDeviceCode
	// stamp times with it. Default: time.Now. Tests pass a fake clock.
	Now func() time.Time

	// BatchSize caps how many concurrent writes share one transaction
	// (and one fsync); the rest wait for the next. It bounds how long one
	// transaction holds the writer lock. Default: DefaultBatchSize (256).
	BatchSize int
	// BatchDelay makes a group of concurrent writes wait this long for
	// more members before it commits. It never delays a write that arrives
	// while no other is in flight. Default: 0, no wait: writes are grouped
	// while the previous transaction commits, which measured best (see
	// commit.go); a delay only lowers throughput on a disk whose fsync is
	// much faster than the time between writes.
	BatchDelay time.Duration

	// OpenTimeout is how long Open waits for the file lock held by another
	// process before it gives up. Default: DefaultOpenTimeout (1s).
	OpenTimeout time.Duration

	// Logger receives the store's own messages (open, close). Default:
	// slog.Default().
	Logger *slog.Logger

	// OnError is told about every failure of the store itself — a write
	// that could not be committed, a record that cannot be decoded — with
	// op "read" or "write", for metrics. Answers such as data.ErrNotFound or
	// data.ErrAlreadyExists are not failures and are not reported.
	OnError func(op string, err error)
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BatchDelay < 0 {
		o.BatchDelay = 0
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = DefaultOpenTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Store is a data.Store backed by one bbolt file. It is safe for concurrent
// use. Create it with Open and release it with Close.
type Store struct {
	db      *bolt.DB
	path    string
	now     func() time.Time
	logger  *slog.Logger
	onError func(op string, err error)

	committer  committer
	maxGroup   int           // Options.BatchSize
	groupDelay time.Duration // Options.BatchDelay
	// commitWith replaces the committer; only the benchmarks set it, to
	// compare it with db.Batch and with a transaction per write.
	commitWith func(fn func(*bolt.Tx) error) (fnErr, commitErr error)
	closed     atomic.Bool

	sessionWatchers watchers.Set   // WatchSessions, see watch.go
	workerWatchers  watchers.Set   // WatchWorkers, see watch.go
	userWatchers    watchers.Set   // WatchUsers, see watch.go
	locks           namelock.Locks // Lock, see locks.go; closed by Close
}

var _ data.Store = (*Store)(nil)

// Open opens the store file at path, creating it (mode 0600) and its buckets
// if it does not exist.
//
// # Errors
//
// Open refuses, with an error that names the file and says what to do:
//   - an existing file that group or others may read or write;
//   - a file locked by another process for longer than Options.OpenTimeout
//     (another Arbor server owns it);
//   - a file that is not a bbolt file, is truncated or has damaged meta
//     pages, or is a bbolt file of some other program;
//   - a store written by a newer Arbor with a format this one cannot read.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if path == "" {
		return nil, errors.New("boltdb: no store file given: set the path of the store file (for example /var/lib/arbor/arbor.db)")
	}
	if err := checkPermissions(path); err != nil {
		return nil, err
	}
	start := time.Now()
	db, err := openFile(path, opts.OpenTimeout)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path, now: opts.Now, logger: opts.Logger, onError: opts.OnError,
		maxGroup: opts.BatchSize, groupDelay: opts.BatchDelay}
	opts.Logger.Info("store opened", "path", path, "took", time.Since(start).Round(time.Microsecond))
	return s, nil
}

// checkPermissions refuses an existing store file that others can read.
func checkPermissions(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // bbolt creates it with mode 0600
	}
	if err != nil {
		return fmt.Errorf("boltdb: cannot inspect store file %s: %w", path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("boltdb: store file %s is a directory: give the path of a file inside it (for example %s)", path, strings.TrimSuffix(path, "/")+"/arbor.db")
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("boltdb: store file %s has mode %04o, so users other than its owner can read or change sessions and sealed tokens: run `chmod 600 %s` and start again", path, perm, path)
	}
	return nil
}

// openFile opens the bbolt file and makes sure it is an Arbor store. A
// damaged file can make bbolt panic, or fault on a page past the end of a
// truncated file; both become an error here.
func openFile(path string, timeout time.Duration) (db *bolt.DB, err error) {
	var file *os.File
	bopts := &bolt.Options{
		Timeout: timeout,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			if file == nil {
				file = f
			}
			return f, err
		},
	}

	// A read of the memory-mapped file past its end raises SIGBUS; with
	// panic-on-fault it becomes a panic this goroutine can recover.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if db != nil {
			_ = db.Close()
		} else if file != nil {
			_ = file.Close() // releases the lock; the mapping stays until exit
		}
		db, err = nil, errDamaged(path, fmt.Errorf("bbolt panicked: %v", p))
	}()

	db, err = bolt.Open(path, 0o600, bopts)
	switch {
	case err == nil:
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("boltdb: store file %s is in use by another Arbor process (no lock within %s): stop that process, or let it make the copy with `arbor backup`, which talks to the running server", path, timeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), strings.Contains(err.Error(), "file size too small"):
		return nil, errDamaged(path, err)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("boltdb: cannot open store file %s: %w: the user running Arbor must be able to read and write it and its directory", path, err)
	default:
		return nil, fmt.Errorf("boltdb: cannot open store file %s: %w", path, err)
	}
	if err := prepare(db, path); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

func errDamaged(path string, cause error) error {
	return fmt.Errorf("boltdb: store file %s is damaged or is not an Arbor store (%v): restore it from a backup (made with `arbor backup`), or move it aside to start with an empty store", path, cause)
}

// prepare creates the buckets of a new store, checks the format of an
// existing one, and touches the root page of every bucket so that damage
// there is found now rather than on the first request.
func prepare(db *bolt.DB, path string) error {
	var ready bool
	err := db.View(func(tx *bolt.Tx) error {
		var err error
		ready, err = checkFormat(tx, path)
		return err
	})
	if err != nil {
		return err
	}
	if !ready {
		err := db.Update(func(tx *bolt.Tx) error {
			if _, err := checkFormat(tx, path); err != nil {
				return err
			}
			for _, name := range allBuckets {
				if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			return tx.Bucket([]byte(bucketMeta)).Put([]byte(keyFormat), []byte(formatVersion))
		})
		if err != nil {
			return fmt.Errorf("boltdb: cannot initialise store file %s: %w", path, err)
		}
	}
	return db.View(func(tx *bolt.Tx) error {
		// A file cut short (a copy that stopped, a full disk) still has
		// valid meta pages; reading a page past its end would fault.
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("boltdb: cannot inspect store file %s: %w", path, err)
		}
		if fi.Size() < tx.Size() {
			return errDamaged(path, fmt.Errorf("the file is %d bytes but its pages need %d: it was truncated", fi.Size(), tx.Size()))
		}
		for _, name := range allBuckets {
			c := tx.Bucket([]byte(name)).Cursor()
			c.First()
			c.Last()
		}
		return nil
	})
}

// checkFormat reports whether tx holds a complete Arbor store of a format
// this code reads. It returns an error for a bbolt file of another program
// and for a newer format.
func checkFormat(tx *bolt.Tx, path string) (bool, error) {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		var foreign string
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			foreign = string(name)
			return errors.New("stop")
		})
		if foreign != "" {
			return false, fmt.Errorf("boltdb: %s is a bbolt file of another program (it has a bucket %q and no Arbor format marker): give Arbor a path of its own", path, foreign)
		}
		return false, nil
	}
	if v := string(meta.Get([]byte(keyFormat))); v != formatVersion {
		return false, fmt.Errorf("boltdb: store file %s has format %q, and this Arbor reads format %q: run the Arbor version that wrote it, or restore a backup made by this one", path, v, formatVersion)
	}
	for _, name := range allBuckets {
		if tx.Bucket([]byte(name)) == nil {
			return false, nil
		}
	}
	return true, nil
}

// Path is the store file's path as given to Open.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock, after waiting for transactions in
// progress. Methods called afterwards return data.ErrClosed; a second Close
// returns nil.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.locks.Close() // wakes waiting Locks
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltdb: closing store file %s: %w", s.path, err)
	}
	s.logger.Info("store closed", "path", s.path)
	return nil
}

// Ping reports whether the store is open and its file readable.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(bucketMeta)) == nil {
			return fmt.Errorf("boltdb: store file %s has lost its meta bucket: restore it from a backup", s.path)
		}
		return nil
	})
}

// Backup writes a consistent copy of the whole store file to w and returns
// the number of bytes written. It runs in one read transaction, so the store
// keeps serving reads and writes meanwhile; the copy is the state as of the
// moment Backup started, and Open accepts it as a store file.
//
// A long copy keeps the pages it reads from being reused, so the store file
// may grow while it runs.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.view(context.Background(), func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("boltdb: backup of %s failed after %d bytes: %w", s.path, n, err)
	}
	return n, nil
}

// usable returns the error a method must return before it starts.
func (s *Store) usable(ctx context.Context) error {
	if s.closed.Load() {
		return s.errClosed()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltdb: %w", err)
	}
	return nil
}

func (s *Store) errClosed() error {
	return fmt.Errorf("boltdb: %s: %w", s.path, data.ErrClosed)
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return s.errClosed()
	}
	if err != nil && !isAnswer(err) {
		s.reportError("read", err)
	}
	return err
}

// isAnswer tells the store's answers (not found, invalid, …) from failures.
func isAnswer(err error) bool {
	for _, e := range []error{data.ErrNotFound, data.ErrAlreadyExists, data.ErrConflict, data.ErrConsumed, data.ErrInvalid, data.ErrClosed, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *Store) reportError(op string, err error) {
	if s.onError != nil {
		s.onError(op, err)
	}
}

// writeFailure marks an error bbolt returned while changing a transaction.
// Unlike the other errors a write function returns, it may come after part
// of the function's changes were made, so the transaction must roll back.
type writeFailure struct{ err error }

func (e *writeFailure) Error() string { return e.err.Error() }
func (e *writeFailure) Unwrap() error { return e.err }

// write runs fn in a write transaction and returns fn's error unchanged.
//
// fn must return every error other than a *writeFailure before it changes
// anything: such an error does not undo the other writes that share fn's
// transaction. fn may run more than once and must set its results afresh on
// every run.
func (s *Store) write(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	commit := s.commit
	if s.commitWith != nil {
		commit = s.commitWith
	}
	fnErr, commitErr := commit(fn)
	var wf *writeFailure
	switch {
	case errors.Is(commitErr, berrors.ErrDatabaseNotOpen):
		return s.errClosed()
	case commitErr != nil || errors.As(fnErr, &wf):
		// A failed Put or commit: the disk is full, read-only or failing.
		s.reportError("write", cmp.Or(commitErr, fnErr))
		return fmt.Errorf("boltdb: writing store file %s: %w: %w", s.path, data.ErrUnavailable, cmp.Or(commitErr, fnErr))
	}
	return fnErr
}

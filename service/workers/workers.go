// Package workers authenticates Tendril workers: machines that call the
// upstream's worker API with X-Worker-ID and X-Worker-Token; and
// repository credentials, the same kind of token with scopes, which Git
// clients present to Arbor's Git proxy with HTTP Basic (repos.go).
//
// # Tokens
//
// A token is 256 random bits with a recognisable prefix (arbw_, so secret
// scanners find leaked ones) and a checksum (so a mistyped or truncated
// token is refused before any lookup); the format lives in sdk/client so
// that workers and Arbor agree on it. Arbor keeps only the token's SHA-256
// in the worker record and shows the token once, at registration or
// rotation. A fast hash is right here: the token has 256 bits of entropy,
// so there is nothing for a slow hash to protect against, and it is
// computed on every request.
//
// # One answer for every failure
//
// A missing header, a malformed or unknown id, a wrong token, a revoked
// worker or a worker of a deleted user all get the same 401: probing learns
// nothing. The comparison of hashes is constant-time, and a request for an
// unknown worker still hashes its token, so timing does not tell unknown
// ids from wrong tokens either.
//
// # The record cache
//
// Authenticate runs on every request a worker makes, so the worker record
// (token hash, user, name) comes from an in-process cache, not from the
// store: on bbolt a read is a transaction, on etcd a round trip. The cache
// is kept correct by the store: the Service subscribes to
// data.Workers.WatchWorkers and drops an entry as soon as its worker is
// updated or deleted, by this process, by another replica, or by a
// cascade (a deleted user). Rotate, Revoke and Rename also drop the entry
// themselves, so that on a replicated store, whose watch reports a moment
// after the write, the old token is refused on this replica at once.
// Entries also age out after cacheTTL, which bounds how long an entry
// could outlive a change whose signal never came; the watch, not the TTL,
// is what makes revocation immediate.
//
// Only known workers are cached: an unknown id is read from the store
// every time, so a flood of made-up ids cannot fill the cache (and an id
// registered after it was looked up is found at once). A cached worker is
// therefore answered faster than an unknown id; that tells a prober only
// that an id, which is not a secret, belongs to a worker in recent use,
// and nothing about its token, which is still compared in constant time.
//
// # Last used
//
// Recording "last used" with a store write per request would put an fsync
// on the hot path. The service keeps the latest time and address per
// worker in memory and writes them in one batch every FlushInterval (and
// at Close). The time is kept to the second: further requests of a worker
// within a second of the recorded one change nothing, so a worker making
// thousands of requests a second costs a map read per request, and its
// recorded address is at most a second old.
package workers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/internal/expcache"
	"github.com/vintner/arbor/sdk/client"
)

// Header names.
const (
	HeaderID    = client.HeaderWorkerID
	HeaderToken = client.HeaderWorkerToken
	// MaxName is the longest worker name.
	MaxName = 64
	// DefaultFlushInterval is how often last-used times are written.
	DefaultFlushInterval = 30 * time.Second
	// DefaultCacheSize bounds the worker record cache.
	DefaultCacheSize = 100_000
	// cacheTTL is how long a cached record is served without a signal
	// from the store (see the package documentation).
	cacheTTL = 10 * time.Minute
)

// ErrUnauthorized is the single answer to every failed worker
// authentication.
var ErrUnauthorized = errors.New("workers: not an active worker with that token")

// ErrNotFound: the user has no worker with that id.
var ErrNotFound = errors.New("workers: no such worker")

// ErrBadName: a worker name is empty, too long or has control characters.
var ErrBadName = errors.New("workers: bad name")

// Store is what the service needs.
type Store interface {
	data.Workers
	data.Audit
}

// Options configure a Service.
type Options struct {
	// FlushInterval is how often last-used times are written. Default
	// DefaultFlushInterval.
	FlushInterval time.Duration
	// CacheSize bounds the number of worker records cached for
	// Authenticate; a full cache evicts an arbitrary entry. Default
	// DefaultCacheSize.
	CacheSize int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger gets errors of the background writes. Default slog.Default().
	Logger *slog.Logger
}

// record is what Authenticate needs of a worker, as cached.
type record struct {
	id     string
	hash   []byte
	userID string
	name   string
	scopes []string // a repository credential's (shared, read-only)
	repos  []string
	until  time.Time // served until then (cacheTTL)
}

// Identity is an authenticated worker or repository credential.
type Identity struct {
	WorkerID string
	UserID   string
	Name     string
	// Scopes and Repos are a repository credential's (see Grant); nil for
	// a worker. Shared with the cache: read-only.
	Scopes, Repos []string
}

// Service registers and authenticates workers.
type Service struct {
	store Store
	opts  Options

	mu    sync.Mutex
	seen  map[string]seen // worker id → latest use, not yet written
	stop  chan struct{}
	done  chan struct{}
	close sync.Once

	cache     *expcache.Cache[string, record] // worker id → record, see lookup
	stopWatch func()
}

type seen struct {
	at   time.Time
	addr string
}

// New starts a Service; Close writes pending last-used times.
func New(store Store, opts Options) *Service {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	s := &Service{
		store: store, opts: opts, seen: map[string]seen{}, stop: make(chan struct{}), done: make(chan struct{}),
		cache: expcache.New[string](opts.CacheSize, func(r record) time.Time { return r.until }),
	}
	s.stopWatch = store.WatchWorkers(s.invalidate)
	go s.loop()
	return s
}

func (s *Service) loop() {
	defer close(s.done)
	t := time.NewTicker(s.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.Flush(context.Background())
			return
		case <-t.C:
			s.Flush(context.Background())
		}
	}
}

// Close stops the flusher after a last flush, and stops watching the
// store. Authenticate must not be called afterwards.
func (s *Service) Close() {
	s.close.Do(func() { close(s.stop) })
	<-s.done
	s.stopWatch()
}

// invalidate drops a worker from the cache. It is the store's watch
// callback and is also called directly after this service's own writes.
func (s *Service) invalidate(id string) { s.cache.Invalidate(id) }

// lookup returns worker id's record, from the cache or the store.
//
// A lookup that misses reads the store and then caches what it read. If the
// worker was changed or deleted between that read and the put, the watch
// callback may already have run and would not remove an entry put after
// it. So lookup notes the invalidation count before reading, and the cache
// refuses the put if the count moved meanwhile (expcache.PutFresh): a
// spurious miss at worst, never a stale hit. Errors, data.ErrNotFound included, are
// not cached.
func (s *Service) lookup(ctx context.Context, rawID []byte, now time.Time) (record, error) {
	// The cache is asked with the id where it is (the header buffer): a
	// hit copies nothing, and the record carries its own copy of the id.
	if r, ok := s.cache.Get(unsafe.String(unsafe.SliceData(rawID), len(rawID)), now); ok {
		return r, nil
	}
	id := string(rawID)
	g := s.cache.Generation()
	w, err := s.store.GetWorker(ctx, id)
	if err != nil {
		return record{}, err
	}
	r := record{id: id, hash: w.TokenHash, userID: w.UserID, name: w.Name, scopes: w.Scopes, repos: w.Repos, until: now.Add(cacheTTL)}
	s.cache.PutFresh(id, r, now, g)
	return r, nil
}

// Flush writes the pending last-used times.
func (s *Service) Flush(ctx context.Context) {
	s.mu.Lock()
	pending := s.seen
	s.seen = map[string]seen{}
	s.mu.Unlock()
	for id, u := range pending {
		_, err := s.store.UpdateWorker(ctx, id, func(w data.Worker) (data.Worker, error) {
			if u.at.After(w.LastUsedAt) {
				w.LastUsedAt, w.LastAddr = u.at, u.addr
			}
			return w, nil
		})
		if err != nil && !errors.Is(err, data.ErrNotFound) {
			s.opts.Logger.Error("recording a worker's last use failed", "worker_id", id, "err", err)
		}
	}
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// validID accepts the canonical lower-case UUID form only.
func validID[T ~string | ~[]byte](s T) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// CleanName checks a worker name: 1 to MaxName printable characters.
func CleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > MaxName {
		return "", fmt.Errorf("%w: a name has 1 to %d characters", ErrBadName, MaxName)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: a name has no control characters", ErrBadName)
		}
	}
	return name, nil
}

// Register creates a worker for userID and returns it with its token,
// which is never available again.
func (s *Service) Register(ctx context.Context, userID, name string) (data.Worker, string, error) {
	return s.RegisterWith(ctx, userID, name, Grant{})
}

// RegisterWith is Register with a grant: a zero Grant registers a worker,
// one with scopes a repository credential (see repos.go). Errors:
// ErrBadName, ErrBadScope, ErrBadRepoPattern, or the store's.
func (s *Service) RegisterWith(ctx context.Context, userID, name string, g Grant) (data.Worker, string, error) {
	name, err := CleanName(name)
	if err != nil {
		return data.Worker{}, "", err
	}
	if g, err = CleanGrant(g); err != nil {
		return data.Worker{}, "", err
	}
	u, err := uuid.NewRandom() // crypto/rand
	if err != nil {
		return data.Worker{}, "", err
	}
	id := u.String()
	tok, err := client.NewWorkerToken()
	if err != nil {
		return data.Worker{}, "", err
	}
	w := data.Worker{ID: id, UserID: userID, Name: name, TokenHash: hashToken(tok), CreatedAt: s.opts.Now().UTC(),
		Scopes: g.Scopes, Repos: g.Repos}
	if err := s.store.CreateWorker(ctx, w); err != nil {
		return data.Worker{}, "", fmt.Errorf("workers: registering: %w", err)
	}
	s.audit(ctx, auditAction(w, "register"), userID, id)
	return w, tok, nil
}

// auditAction names what was done to w in the audit trail:
// "worker.<verb>", or "repo_credential.<verb>" for a repository
// credential, so that an operator's `arbor audit --type` tells them apart.
func auditAction(w data.Worker, verb string) string {
	if IsRepoCredential(w.Scopes) {
		return "repo_credential." + verb
	}
	return "worker." + verb
}

func (s *Service) audit(ctx context.Context, action, userID, workerID string) {
	if _, err := s.store.AppendAudit(context.WithoutCancel(ctx), data.AuditEvent{
		Action: action, Actor: userID, UserID: userID, Target: "worker:" + workerID, Outcome: "ok",
	}); err != nil {
		s.opts.Logger.Error("writing an audit event failed", "action", action, "err", err)
	}
}

// Get returns one of userID's workers: ErrNotFound if there is none with
// that id or it belongs to someone else.
func (s *Service) Get(ctx context.Context, userID, id string) (data.Worker, error) {
	if !validID(id) {
		return data.Worker{}, ErrNotFound
	}
	w, err := s.store.GetWorker(ctx, id)
	if errors.Is(err, data.ErrNotFound) || (err == nil && w.UserID != userID) {
		return data.Worker{}, ErrNotFound
	}
	return w, err
}

// List returns userID's workers, oldest first, with last-used times that
// are not yet written included.
func (s *Service) List(ctx context.Context, userID string) ([]data.Worker, error) {
	list, err := s.store.ListWorkers(ctx, userID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	for i, w := range list {
		if u, ok := s.seen[w.ID]; ok && u.at.After(w.LastUsedAt) {
			list[i].LastUsedAt, list[i].LastAddr = u.at, u.addr
		}
	}
	s.mu.Unlock()
	return list, nil
}

// Rename changes the name of one of userID's workers.
func (s *Service) Rename(ctx context.Context, userID, id, name string) (data.Worker, error) {
	name, err := CleanName(name)
	if err != nil {
		return data.Worker{}, err
	}
	if _, err := s.Get(ctx, userID, id); err != nil {
		return data.Worker{}, err
	}
	defer s.invalidate(id) // the store's watch may report it later
	return s.store.UpdateWorker(ctx, id, func(w data.Worker) (data.Worker, error) {
		w.Name = name
		return w, nil
	})
}

// Rotate gives one of userID's workers a new token; the old one stops
// working at once.
func (s *Service) Rotate(ctx context.Context, userID, id string) (data.Worker, string, error) {
	if _, err := s.Get(ctx, userID, id); err != nil {
		return data.Worker{}, "", err
	}
	tok, err := client.NewWorkerToken()
	if err != nil {
		return data.Worker{}, "", err
	}
	now := s.opts.Now().UTC()
	w, err := s.store.UpdateWorker(ctx, id, func(w data.Worker) (data.Worker, error) {
		w.TokenHash, w.RotatedAt = hashToken(tok), now
		return w, nil
	})
	s.invalidate(id) // even after an error: the write may have committed
	if err != nil {
		return data.Worker{}, "", fmt.Errorf("workers: rotating: %w", err)
	}
	s.audit(ctx, auditAction(w, "rotate"), userID, id)
	return w, tok, nil
}

// Revoke deletes one of userID's workers.
func (s *Service) Revoke(ctx context.Context, userID, id string) error {
	w, err := s.Get(ctx, userID, id)
	if err != nil {
		return err
	}
	err = s.store.DeleteWorker(ctx, id)
	s.invalidate(id) // even after an error: the write may have committed
	if err != nil && !errors.Is(err, data.ErrNotFound) {
		return fmt.Errorf("workers: revoking: %w", err)
	}
	s.audit(ctx, auditAction(w, "revoke"), userID, id)
	return nil
}

// dummyHash is compared against when there is no worker, so that an
// unknown id costs what a wrong token costs.
var dummyHash = hashToken("arbw_no-such-worker")

var workerTokenPrefix = []byte(client.WorkerTokenPrefix)

// Authenticate checks a worker's id and token (the X-Worker-ID and
// X-Worker-Token headers, as fasthttp holds them: neither is kept) against
// the worker's record, cached (see the package documentation). Every
// failure is ErrUnauthorized, a repository credential's token included;
// a store outage is returned as is. from gives
// the client's address, asked for only when the worker's last use is
// recorded (at most once a second per worker).
//
// It runs on every worker request, so the id and token are checked and
// hashed where they are, without copies: a cached worker costs no
// allocation.
func (s *Service) Authenticate(ctx context.Context, rawID, rawTok []byte, from func() string) (Identity, error) {
	return s.authenticate(ctx, rawID, rawTok, from, false)
}

// AuthenticateRepo is Authenticate for a repository credential (HTTP
// Basic on the Git proxy: the user name is rawID, the password rawTok): a
// worker's token is refused with the same ErrUnauthorized.
func (s *Service) AuthenticateRepo(ctx context.Context, rawID, rawTok []byte, from func() string) (Identity, error) {
	return s.authenticate(ctx, rawID, rawTok, from, true)
}

func (s *Service) authenticate(ctx context.Context, rawID, rawTok []byte, from func() string, repo bool) (Identity, error) {
	// The token's shape only (prefix and length): its checksum
	// (client.ValidWorkerToken) would cost a second SHA-256 on every
	// request, and a token that hashes to a worker's was well formed when
	// it was issued. The shape keeps other credentials, and anything of
	// the wrong length, from a store read.
	if !validID(rawID) || len(rawTok) != client.WorkerTokenLength || !bytes.HasPrefix(rawTok, workerTokenPrefix) {
		return Identity{}, ErrUnauthorized
	}
	sum := sha256.Sum256(rawTok)
	now := s.opts.Now()
	w, err := s.lookup(ctx, rawID, now)
	if errors.Is(err, data.ErrNotFound) {
		subtle.ConstantTimeCompare(sum[:], dummyHash)
		return Identity{}, ErrUnauthorized
	}
	if err != nil {
		return Identity{}, err
	}
	if subtle.ConstantTimeCompare(sum[:], w.hash) != 1 || IsRepoCredential(w.scopes) != repo {
		return Identity{}, ErrUnauthorized
	}
	s.noteUse(w.id, now, from)
	return Identity{WorkerID: w.id, UserID: w.userID, Name: w.name, Scopes: w.scopes, Repos: w.repos}, nil
}

// noteUse records that worker id was used now by the request's client,
// for the next Flush. Last use is kept to the second: a worker's further
// requests within the second cost a map read, not an update, so a busy
// worker's recorded address may be up to a second old.
func (s *Service) noteUse(id string, now time.Time, from func() string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.seen[id]; ok && now.Sub(u.at) < time.Second {
		return
	}
	s.seen[id] = seen{at: now.UTC(), addr: from()}
}

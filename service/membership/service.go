package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/internal/sealedgrant"
	"github.com/vintner/arbor/service/providers"
)

// Defaults for Options.
const (
	DefaultRecheckInterval = 10 * time.Minute
	// DefaultCacheSize bounds the Member cache.
	DefaultCacheSize = 100_000
	// cacheTTL is how long a cached Member is served without a signal
	// from the store (see the package documentation).
	cacheTTL = 10 * time.Minute
	// maxGroupName is the longest group name kept from a provider.
	maxGroupName = 256
)

// ErrUnknownUser is returned by Member for a user that does not exist (any
// more): the authentication chain treats it as refused. It wraps
// data.ErrNotFound.
var ErrUnknownUser = fmt.Errorf("membership: no such user: %w", data.ErrNotFound)

// Store is what the Service needs from the store (data.Store is one).
type Store interface {
	data.Users
	data.Identities
	data.Sessions
	data.RefreshFamilies
	data.Audit
	data.Locks
}

// Sealer seals and opens the identities' grants: *seal.Keyring, as for
// the connections broker.
type Sealer = sealedgrant.Sealer

// Providers finds a provider's plugin by name: *providers.Set, as the
// connections broker takes it.
type Providers interface {
	Get(name string) (providers.Provider, providers.Info, bool)
}

// Options configure a Service.
type Options struct {
	// Store is required.
	Store Store
	// Keys seals and opens the identities' grants (*seal.Keyring, the
	// same keys the connections broker seals with). Required when
	// GroupProviders is not empty.
	Keys Sealer
	// Providers reaches a provider's plugin by name (*providers.Set, as
	// for the connections broker). Required when GroupProviders is not
	// empty.
	Providers Providers
	// Judge is the policy (package gateway/authz/policy); nil admits every
	// user who is neither disabled nor Unavailable, and shows the
	// upstream no groups.
	Judge Judge
	// GroupProviders are the providers whose groups the policy uses
	// (config.Policy.GroupProviders()). Only their sign-ins keep a grant
	// and ask for the groups scopes.
	GroupProviders []string
	// Wanted are the groups the policy names, by provider, without the
	// "<provider>:" prefix (WantedGroups builds it from the policy's
	// "<provider>:<group>" names); passed to the plugin's groups
	// operation.
	Wanted map[string][]string
	// RecheckInterval is how often a signed-in user's memberships are
	// fetched again (policy.recheck_interval). Default
	// DefaultRecheckInterval.
	RecheckInterval time.Duration
	// GracePeriod is how long the last known groups stand while the
	// providers fail to answer (policy.grace_period, whose default is an
	// hour). 0 refuses from the first failed re-check on.
	GracePeriod time.Duration
	// CacheSize bounds the Member cache. Default DefaultCacheSize.
	CacheSize int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger gets the re-check's failures. Default slog.Default().
	Logger *slog.Logger
}

// Service keeps members: see the package documentation. It is safe for
// concurrent use.
type Service struct {
	store Store
	opts  Options
	log   *slog.Logger

	// cache maps a user id to its *entry. Reads do not lock; writers hold
	// mu, so that putFresh and invalidate are ordered (see lookup).
	cache sync.Map
	mu    sync.Mutex
	size  int           // entries in cache, under mu
	gen   atomic.Uint64 // invalidations so far

	stopWatch func()

	// tried holds, by user, when this replica last tried to re-check a
	// user whose check is due (see Run), so that a failing provider or a
	// user without a grant is not asked every tick.
	triedMu sync.Mutex
	tried   map[string]time.Time
}

type entry struct {
	m     *Member
	until time.Time
}

// New returns a Service watching opts.Store's users. Close it to stop
// watching; Run does the background re-check.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("membership: Options.Store is required")
	}
	if len(opts.GroupProviders) > 0 && (opts.Keys == nil || opts.Providers == nil) {
		return nil, errors.New("membership: Options.Keys and Options.Providers are required when the policy uses groups")
	}
	if opts.RecheckInterval <= 0 {
		opts.RecheckInterval = DefaultRecheckInterval
	}
	opts.GracePeriod = max(opts.GracePeriod, 0)
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.GroupProviders = slices.Clone(opts.GroupProviders)
	s := &Service{store: opts.Store, opts: opts, log: opts.Logger, tried: map[string]time.Time{}}
	s.stopWatch = opts.Store.WatchUsers(s.invalidate)
	return s, nil
}

// Close stops watching the store. Member may still be called (it then
// reads the store on every call after an invalidation it can no longer
// see, so do not).
func (s *Service) Close() { s.stopWatch() }

// GroupProvider reports whether the policy uses provider's groups: its
// sign-ins ask for the groups scopes and keep their grant.
func (s *Service) GroupProvider(provider string) bool {
	return slices.Contains(s.opts.GroupProviders, provider)
}

// invalidate drops a user's Member. It is the store's watch callback and
// is also called after this service's own writes.
func (s *Service) invalidate(userID string) {
	s.gen.Add(1) // before the delete: see lookup
	s.mu.Lock()
	if _, ok := s.cache.LoadAndDelete(userID); ok {
		s.size--
	}
	s.mu.Unlock()
}

// putFresh caches e unless an invalidation happened since the generation
// g was read. Under mu, so that an invalidate either moved the generation
// before this check (nothing is stored) or deletes after the store.
func (s *Service) putFresh(userID string, e *entry, g uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen.Load() != g {
		return
	}
	if _, loaded := s.cache.Swap(userID, e); !loaded {
		s.size++
	}
	if s.size > s.opts.CacheSize {
		// Full: drop one other entry (a miss only costs a store read).
		s.cache.Range(func(k, _ any) bool {
			if k.(string) == userID {
				return true
			}
			s.cache.Delete(k)
			s.size--
			return false
		})
	}
}

// Member returns userID's standing, with the policy's Verdict: from the
// cache, without locking or allocating, when it holds the user; else
// built from the store and cached. ErrUnknownUser for a user that does
// not exist; any other error is the store's (the caller answers 503).
//
// A lookup that misses reads the store and then caches what it built. If
// the user was written between that read and the put, the watch callback
// may already have run and would not remove an entry put after it; so the
// generation is noted before reading, and putFresh refuses if it moved: a
// spurious miss at worst, never a stale hit.
func (s *Service) Member(ctx context.Context, userID string) (*Member, error) {
	now := s.opts.Now()
	if v, ok := s.cache.Load(userID); ok {
		if e := v.(*entry); now.Before(e.until) {
			return e.m, nil
		}
	}
	g := s.gen.Load()
	u, err := s.store.GetUser(ctx, userID)
	if errors.Is(err, data.ErrNotFound) {
		return nil, ErrUnknownUser
	}
	if err != nil {
		return nil, fmt.Errorf("membership: reading user %s: %w", userID, err)
	}
	ids, err := s.store.ListIdentities(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("membership: reading the identities of %s: %w", userID, err)
	}
	m, until := s.build(u, ids, now)
	s.putFresh(userID, &entry{m: m, until: until}, g)
	return m, nil
}

// build makes u's Member as of now, and says until when it may be served.
func (s *Service) build(u data.User, ids []data.Identity, now time.Time) (*Member, time.Time) {
	m := &Member{
		UserID:     u.ID,
		Disabled:   u.Disabled,
		Emails:     verifiedEmails(ids, ""),
		Groups:     sortedCopy(u.Memberships.Groups),
		Restricted: sortedCopy(u.Memberships.Restricted),
		CheckedAt:  u.Memberships.CheckedAt,
	}
	until := now.Add(cacheTTL)
	// Failures count only while the policy reads groups: a failure left
	// from a policy that no longer does must not refuse anyone.
	if fs := u.Memberships.FailingSince; !fs.IsZero() && len(s.opts.GroupProviders) > 0 {
		end := fs.Add(s.opts.GracePeriod)
		if now.After(end) {
			m.Unavailable = true
		} else if end.Before(until) {
			until = end.Add(time.Nanosecond) // rebuilt once the grace is over
		}
	}
	s.judge(m)
	return m, until
}

// judge sets m's Verdict and the groups the upstream may see.
func (s *Service) judge(m *Member) {
	switch {
	case m.Disabled:
		m.Verdict = VerdictDisabled
	case m.Unavailable:
		m.Verdict = VerdictUnavailable
	case s.opts.Judge != nil:
		m.Verdict = s.opts.Judge.Admit(m)
	}
	if s.opts.Judge != nil {
		m.Visible = safeGroups(s.opts.Judge.Visible(m))
		m.VisibleHeader = strings.Join(m.Visible, ",")
	}
}

// verifiedEmails returns the verified addresses of ids, lower case, sorted
// and without duplicates, and extra if not empty.
func verifiedEmails(ids []data.Identity, extra string) []string {
	var out []string
	for _, id := range ids {
		if id.EmailVerified && id.Email != "" {
			out = append(out, strings.ToLower(id.Email))
		}
	}
	if extra != "" {
		out = append(out, strings.ToLower(extra))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func sortedCopy(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// safeGroups keeps the names made only of characters that cannot end or
// split a header value or a list in it: letters, digits and - _ . : / @ +.
// A provider's group name with anything else (a comma, a quote, a control
// character, a space) is dropped, not rewritten, so that it can never be
// read as another group.
func safeGroups(in []string) []string {
	out := in[:0:0]
	for _, g := range in {
		if safeGroup(g) {
			out = append(out, g)
		}
	}
	return out
}

func safeGroup(g string) bool {
	if g == "" || len(g) > maxGroupName {
		return false
	}
	for i := 0; i < len(g); i++ {
		c := g[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '@' || c == '+':
		default:
			return false
		}
	}
	return true
}

// WantedGroups splits the policy's "<provider>:<group>" names by provider,
// without the prefix (Options.Wanted); names without a provider are
// skipped.
func WantedGroups(groups []string) map[string][]string {
	out := map[string][]string{}
	for _, g := range groups {
		p, name, ok := strings.Cut(g, ":")
		if !ok || p == "" || name == "" || slices.Contains(out[p], name) {
			continue
		}
		out[p] = append(out[p], name)
	}
	return out
}

func (s *Service) audit(ctx context.Context, e data.AuditEvent) {
	if _, err := s.store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("writing an audit event failed", "action", e.Action, "err", err)
	}
}

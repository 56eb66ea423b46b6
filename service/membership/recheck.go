package membership

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/internal/printable"
)

// ticksPerInterval is how many times per RecheckInterval Run looks for
// users whose check is due. Each tick takes at most a batch of them, so
// that users who all became due at once (a restart, the end of an outage)
// are spread over about half an interval instead of hitting the
// providers in one burst.
const ticksPerInterval = 10

// minBatch is the smallest batch a tick takes.
const minBatch = 4

// callTimeout bounds one user's re-check (refresh and groups of each
// provider); well under data.LockTTL, which the work runs under.
const callTimeout = 8 * time.Second

// Run re-checks memberships in the background until ctx ends; see the
// package documentation. It returns when ctx ends, with nothing left
// running. Without group providers it only waits.
func (s *Service) Run(ctx context.Context) {
	if len(s.opts.GroupProviders) == 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(s.tick())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.RecheckDue(ctx)
		}
	}
}

func (s *Service) tick() time.Duration {
	return max(s.opts.RecheckInterval/ticksPerInterval, time.Millisecond)
}

// RecheckDue runs one tick of Run: it re-checks the users whose check is
// due, at most a batch of them (oldest check first), and returns how many
// it tried. Tests call it to step the re-check without waiting.
func (s *Service) RecheckDue(ctx context.Context) int {
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("membership re-check: listing users failed", "err", err)
		}
		return 0
	}
	now := s.opts.Now()
	// Due one tick early: ticks are interval/ticksPerInterval apart, so a
	// user is re-checked within one interval of the last check (a removal
	// ends access within the interval), not up to a tick later.
	dueAge := s.opts.RecheckInterval - s.tick()
	s.triedMu.Lock()
	var due []data.User
	for _, u := range users {
		last := u.Memberships.CheckedAt
		if t := s.tried[u.ID]; t.After(last) {
			last = t
		}
		if now.Sub(last) >= dueAge {
			due = append(due, u)
		}
	}
	// Forget users that are gone.
	if len(s.tried) > len(users) {
		keep := make(map[string]bool, len(users))
		for _, u := range users {
			keep[u.ID] = true
		}
		for id := range s.tried {
			if !keep[id] {
				delete(s.tried, id)
			}
		}
	}
	s.triedMu.Unlock()
	slices.SortFunc(due, func(a, b data.User) int { return a.Memberships.CheckedAt.Compare(b.Memberships.CheckedAt) })
	batch := max(minBatch, (2*len(users)+ticksPerInterval-1)/ticksPerInterval)
	if len(due) > batch {
		due = due[:batch]
	}
	for _, u := range due {
		if ctx.Err() != nil {
			break
		}
		s.triedMu.Lock()
		s.tried[u.ID] = now
		s.triedMu.Unlock()
		if err := s.Recheck(ctx, u.ID); err != nil && ctx.Err() == nil {
			s.log.Warn("membership re-check failed", "user_id", u.ID, "err", err)
		}
	}
	return len(due)
}

// lockName names the store lock of one user's re-check, shared by every
// replica.
func lockName(userID string) string { return "membership/" + url.PathEscape(userID) }

// Recheck fetches userID's groups again now, if they are due (another
// replica may have just done it), under the user's store lock; writes
// them; and ends the user's access if they no longer pass. A provider
// that fails is recorded on the user (FailingSince, LastError), not
// returned: the error is the store's or the lock's.
func (s *Service) Recheck(ctx context.Context, userID string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	unlock, err := s.store.Lock(ctx, lockName(userID))
	if err != nil {
		return err
	}
	defer unlock()
	u, err := s.store.GetUser(ctx, userID)
	if errors.Is(err, data.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	now := s.opts.Now()
	if now.Sub(u.Memberships.CheckedAt) < s.opts.RecheckInterval-s.tick() {
		return nil // another replica did it meanwhile
	}
	ids, err := s.store.ListIdentities(ctx, userID)
	if err != nil {
		return err
	}
	// Group the identities that carry a grant by provider.
	byProvider := map[string][]data.Identity{}
	for _, id := range ids {
		if len(id.Grant) > 0 && s.GroupProvider(id.Provider) {
			byProvider[id.Provider] = append(byProvider[id.Provider], id)
		}
	}
	if len(byProvider) == 0 {
		return nil // nothing to read groups with
	}
	before, _ := s.build(u, ids, now)

	next := u.Memberships
	next.Groups, next.Restricted = slices.Clone(next.Groups), slices.Clone(next.Restricted)
	var failures []string
	for _, provider := range s.opts.GroupProviders {
		list := byProvider[provider]
		if len(list) == 0 {
			continue
		}
		var groups, restricted []string
		failed := false
		for _, id := range list {
			g, r, err := s.readGroups(ctx, id)
			if err != nil {
				failed = true
				failures = append(failures, provider+": "+printable.Clean(err.Error(), 300))
				break
			}
			groups, restricted = append(groups, g...), append(restricted, r...)
		}
		if failed {
			continue // the last known groups of provider stand
		}
		next.Groups = replaceProvider(next.Groups, provider, sortedCopy(groups))
		next.Restricted = replaceProvider(next.Restricted, provider, sortedCopy(restricted))
	}
	now = s.opts.Now().UTC()
	if len(failures) == 0 {
		next.CheckedAt, next.FailingSince, next.LastError = now, time.Time{}, ""
	} else {
		if next.FailingSince.IsZero() {
			next.FailingSince = now
		}
		next.LastError = strings.Join(failures, "; ")
	}
	nu, err := s.store.UpdateUser(ctx, userID, func(cur data.User) (data.User, error) {
		cur.Memberships = next
		return cur, nil
	})
	s.invalidate(userID) // even after an error: the write may have committed
	if errors.Is(err, data.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(failures) > 0 {
		s.log.Warn("could not read a user's groups; the last known groups stand for the grace period",
			"user_id", userID, "failing_since", next.FailingSince, "err", next.LastError)
	}
	s.noteChange(ctx, userID, "system", u.Memberships.Groups, next.Groups)
	after, _ := s.build(nu, ids, s.opts.Now())
	if !after.Verdict.Admitted() {
		if _, err := s.endAccess(ctx, userID, "system", after.Verdict.Code, before.Verdict.Admitted()); err != nil {
			return err
		}
	}
	return nil
}

// readGroups reads the groups of one identity with its grant.
func (s *Service) readGroups(ctx context.Context, id data.Identity) (groups, restricted []string, err error) {
	tok, err := s.accessToken(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return s.fetchGroups(ctx, id.Provider, tok)
}

// noteChange audits a change of userID's groups.
func (s *Service) noteChange(ctx context.Context, userID, actor string, old, cur []string) {
	added, removed := diff(old, cur)
	if len(added) == 0 && len(removed) == 0 {
		return
	}
	s.audit(ctx, data.AuditEvent{Action: "policy.memberships_changed", Actor: actor, UserID: userID, Outcome: "ok",
		Details: map[string]string{"added": strings.Join(added, ","), "removed": strings.Join(removed, ",")}})
}

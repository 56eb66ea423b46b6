package membership

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/vintner/arbor/data"
)

// EndAccess ends userID's access at once, on every replica: it deletes
// their sessions (the store's WatchSessions drops them from every
// replica's session cache), revokes their CLI logins (RevokedAt and
// RevokeReason on each refresh family; a CLI bearer token is checked
// against its family on every request) and drops their cached Member, so
// that workers (whose records stay) are refused by the authentication
// chain as soon as the user's Verdict refuses. It appends the audit event
// "policy.access_ended" (Details: reason, sessions, cli_logins).
//
// actor is who ended it ("system" for the re-check, an operator's name);
// reason is a stable word or code (account_disabled, not_allowed, …)
// kept as the families' RevokeReason. EndAccess does not itself refuse
// future requests: that is the user's standing (Disabled, memberships),
// which the caller changes first. A user that does not exist is not an
// error. Errors are the store's; what was ended before one stays ended.
func (s *Service) EndAccess(ctx context.Context, userID, actor, reason string) error {
	_, err := s.endAccess(ctx, userID, actor, reason, true)
	return err
}

// endAccess is EndAccess; it audits only when something was ended or
// always is set, and reports whether anything was ended.
func (s *Service) endAccess(ctx context.Context, userID, actor, reason string, always bool) (bool, error) {
	defer s.invalidate(userID)
	sessions, err := s.store.ListSessions(ctx, userID)
	if err != nil {
		return false, fmt.Errorf("membership: listing the sessions of %s: %w", userID, err)
	}
	ended := 0
	var errs []error
	for _, ss := range sessions {
		switch err := s.store.DeleteSession(ctx, ss.ID); {
		case err == nil:
			ended++
		case !errors.Is(err, data.ErrNotFound):
			errs = append(errs, err)
		}
	}
	families, err := s.store.ListRefreshFamilies(ctx, userID)
	if err != nil {
		errs = append(errs, err)
	}
	now := s.opts.Now().UTC()
	revoked := 0
	for _, f := range families {
		if !f.RevokedAt.IsZero() {
			continue
		}
		_, err := s.store.UpdateRefreshFamily(ctx, f.ID, func(cur data.RefreshFamily) (data.RefreshFamily, error) {
			if cur.RevokedAt.IsZero() {
				cur.RevokedAt, cur.RevokeReason = now, reason
			}
			return cur, nil
		})
		switch {
		case err == nil:
			revoked++
		case !errors.Is(err, data.ErrNotFound):
			errs = append(errs, err)
		}
	}
	if ended > 0 || revoked > 0 || always {
		s.audit(ctx, data.AuditEvent{Action: "policy.access_ended", Actor: actor, UserID: userID, Outcome: "ok",
			Details: map[string]string{"reason": reason, "sessions": strconv.Itoa(ended), "cli_logins": strconv.Itoa(revoked)}})
		s.log.Info("ended a user's access", "user_id", userID, "reason", reason, "sessions", ended, "cli_logins", revoked)
	}
	if err := errors.Join(errs...); err != nil {
		return ended > 0 || revoked > 0, fmt.Errorf("membership: ending the access of %s: %w", userID, err)
	}
	return ended > 0 || revoked > 0, nil
}

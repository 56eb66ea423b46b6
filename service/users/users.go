// Package users is what an operator does to Arbor's accounts: list and
// show them, disable, enable and delete them, end their sessions, and read
// the audit trail.
//
// # Why no HTTP
//
// Nothing here is served to users of the gateway. An operator reaches it
// through `arbor users …`, `arbor sessions revoke` and `arbor audit`, which
// ask the running server over its admin socket (package admin) or, when no
// server runs on the store, open the store and call this package in the
// command's own process. Both paths run the same code, so the commands
// answer the same either way; the only difference is who is recorded as
// the actor (see Actor).
//
// # Ending access at once
//
// Disable sets data.User.Disabled first, then ends what the user holds
// (EndAccess):
//
//   - every browser session is deleted: the store's WatchSessions tells
//     every replica's session cache, so the next request with the cookie
//     is signed out, on every replica;
//   - every CLI login (refresh family) is revoked: the CLI bearer reads its
//     family on every request, so the next access token is refused, and a
//     refresh is refused too;
//   - workers are left in place: a worker acts for its owner, and the
//     authentication chain refuses it while its owner is disabled (the
//     user's standing, package service/membership). Their records stay,
//     so enabling the user gives the machines back without new tokens.
//
// Disabled is set before anything is ended so that a sign-in racing the
// disable is refused (account_disabled) instead of creating a session
// after the sweep.
//
// # Idempotent, audited
//
// Every change appends one audit event (user.disabled, user.enabled,
// user.deleted, sessions.revoked) naming the actor. Asking for what is
// already so (disabling a disabled user) changes nothing, appends nothing,
// and says so in Change.Already.
package users

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vintner/arbor/data"
)

// Audit event actions written by this package.
const (
	ActionDisabled        = "user.disabled"
	ActionEnabled         = "user.enabled"
	ActionDeleted         = "user.deleted"
	ActionSessionsRevoked = "sessions.revoked"
)

// Reasons kept on the CLI logins a change revokes (RefreshFamily.
// RevokeReason); the audit event names the actor.
const (
	ReasonDisabled = "account_disabled"
	ReasonRevoked  = "sessions_revoked"
)

// Actor is the audit actor of a change made by a command that opened the
// store itself; over the admin socket the server records
// "operator:uid=<uid>" (the peer's user id, from the socket).
const Actor = "operator"

// MaxReason is the longest disable reason, in bytes.
const MaxReason = 500

// DefaultAuditLimit and MaxAuditLimit bound one page of Audit.
const (
	DefaultAuditLimit = 50
	MaxAuditLimit     = 1000
)

// Errors. Each message says what to do.
var (
	// ErrNoUser: no user has that id (or e-mail address).
	ErrNoUser = errors.New("`arbor users list` shows them")
	// ErrAmbiguous: several users have that e-mail address.
	ErrAmbiguous = errors.New("name the user by id instead; `arbor users show EMAIL` cannot choose")
	// ErrBadReason: a disable reason that is too long or has control
	// characters.
	ErrBadReason = fmt.Errorf("a reason is at most %d bytes of text without control characters", MaxReason)
	// ErrBadQuery: an audit query with a negative or too large limit.
	ErrBadQuery = errors.New("bad audit query")
)

// NoUserError is ErrNoUser for one name.
type NoUserError struct{ Name string }

func (e *NoUserError) Error() string {
	return fmt.Sprintf("no user %q; %v", e.Name, ErrNoUser)
}

func (e *NoUserError) Unwrap() error { return ErrNoUser }

// Options configure a Service.
type Options struct {
	// Store is where the accounts are.
	Store data.Store
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger records each change. Default slog.Default().
	Logger *slog.Logger
	// EndAccess, when set, ends a user's access instead of
	// (*Service).EndAccess: the server passes service/membership's, which
	// also drops the user's cached standing and records
	// policy.access_ended. What Disable and RevokeSessions report as ended
	// is then counted just before it runs. Default: (*Service).EndAccess.
	EndAccess func(ctx context.Context, userID, actor, reason string) error
}

// Service carries out operators' commands on accounts.
type Service struct {
	store data.Store
	now   func() time.Time
	log   *slog.Logger
	end   func(ctx context.Context, userID, actor, reason string) error
}

// New returns a Service on opts.Store.
func New(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Service{store: opts.Store, now: opts.Now, log: opts.Logger, end: opts.EndAccess}
}

// Ended counts what EndAccess ended.
type Ended struct {
	// Sessions is the number of browser sessions deleted.
	Sessions int `json:"sessions"`
	// Logins is the number of CLI logins revoked.
	Logins int `json:"cli_logins"`
	// Workers is the number of the user's workers, refused while the user
	// is disabled (their records stay).
	Workers int `json:"workers,omitempty"`
}

// Change is the answer to Disable, Enable, Delete and RevokeSessions.
type Change struct {
	// User is the user after the change (before it, for Delete).
	User data.User `json:"user"`
	// Already: the user was in the asked-for state; nothing was changed
	// and no audit event appended (Disable still ends anything left).
	Already bool `json:"already,omitempty"`
	// Ended is what was ended.
	Ended Ended `json:"ended"`
	// Event is the audit event appended (Seq 0: none).
	Event data.AuditEvent `json:"event,omitzero"`
}

// user reads a user by id, turning not-found into a NoUserError.
func (s *Service) user(ctx context.Context, id string) (data.User, error) {
	if id == "" {
		return data.User{}, &NoUserError{Name: id}
	}
	u, err := s.store.GetUser(ctx, id)
	if errors.Is(err, data.ErrNotFound) || errors.Is(err, data.ErrInvalid) {
		return data.User{}, &NoUserError{Name: id}
	}
	if err != nil {
		return data.User{}, fmt.Errorf("reading user %s: %w", id, err)
	}
	return u, nil
}

// Disable disables userID and ends its access at once (see the package
// documentation). reason is kept on the user and in the audit event.
// Disabling a disabled user changes nothing but still ends any session or
// CLI login left (Change.Already). Errors: *NoUserError, ErrBadReason, the
// store's.
func (s *Service) Disable(ctx context.Context, actor, userID, reason string) (Change, error) {
	if err := checkReason(reason); err != nil {
		return Change{}, err
	}
	if _, err := s.user(ctx, userID); err != nil {
		return Change{}, err
	}
	now := s.now().UTC()
	already := false
	u, err := s.store.UpdateUser(ctx, userID, func(u data.User) (data.User, error) {
		already = u.Disabled
		if already {
			return u, nil
		}
		u.Disabled, u.DisabledAt, u.DisabledBy, u.DisabledReason = true, now, actor, reason
		u.UpdatedAt = now
		return u, nil
	})
	if errors.Is(err, data.ErrNotFound) {
		return Change{}, &NoUserError{Name: userID}
	}
	if err != nil {
		return Change{}, fmt.Errorf("disabling user %s: %w", userID, err)
	}
	ended, endErr := s.endAccess(ctx, userID, actor, ReasonDisabled)
	ch := Change{User: u, Already: already, Ended: ended}
	if !already || ended.Sessions > 0 || ended.Logins > 0 || endErr != nil {
		details := map[string]string{"sessions": itoa(ended.Sessions), "cli_logins": itoa(ended.Logins), "workers": itoa(ended.Workers)}
		if reason != "" {
			details["reason"] = reason
		}
		if already {
			details["already"] = "true"
		}
		if endErr != nil {
			// Disabled stands (the chain refuses the user), so the event
			// is recorded; it says that some access may be left.
			details["error"] = endErr.Error()
		}
		var err error
		if ch.Event, err = s.audit(ctx, actor, ActionDisabled, u, details); err != nil && endErr == nil {
			return ch, err
		}
	}
	if endErr != nil {
		return ch, fmt.Errorf("user %s is disabled, but ending their sessions failed (run `arbor users disable %s` again): %w", userID, userID, endErr)
	}
	s.log.Info("user disabled", "user_id", userID, "actor", actor, "already", already, "sessions", ended.Sessions, "cli_logins", ended.Logins)
	return ch, nil
}

// Enable lets a disabled user in again. Their workers work again at once;
// sessions and CLI logins ended by Disable stay ended (the user signs in
// again). Enabling an enabled user changes nothing (Change.Already).
// Errors: *NoUserError, the store's.
func (s *Service) Enable(ctx context.Context, actor, userID string) (Change, error) {
	if _, err := s.user(ctx, userID); err != nil {
		return Change{}, err
	}
	now := s.now().UTC()
	already := false
	var was data.User
	u, err := s.store.UpdateUser(ctx, userID, func(u data.User) (data.User, error) {
		already, was = !u.Disabled, u
		if already {
			return u, nil
		}
		u.Disabled, u.DisabledAt, u.DisabledBy, u.DisabledReason = false, time.Time{}, "", ""
		u.UpdatedAt = now
		return u, nil
	})
	if errors.Is(err, data.ErrNotFound) {
		return Change{}, &NoUserError{Name: userID}
	}
	if err != nil {
		return Change{}, fmt.Errorf("enabling user %s: %w", userID, err)
	}
	ch := Change{User: u, Already: already}
	if already {
		return ch, nil
	}
	details := map[string]string{"disabled_at": was.DisabledAt.Format(time.RFC3339), "disabled_by": was.DisabledBy}
	ch.Event, err = s.audit(ctx, actor, ActionEnabled, u, details)
	s.log.Info("user enabled", "user_id", userID, "actor", actor)
	return ch, err
}

// Delete deletes userID and everything that belongs to them (identities,
// sessions, CLI logins, workers, connections: data.Users.DeleteUser, one
// atomic step that every replica's caches hear of). Audit events about
// the user are kept. Deleting a user that was deleted before answers
// Change.Already (found in the audit trail); one that never existed is a
// *NoUserError. The user's provider tokens are not revoked at the
// provider. Errors: *NoUserError, the store's.
func (s *Service) Delete(ctx context.Context, actor, userID string) (Change, error) {
	u, err := s.user(ctx, userID)
	if errors.Is(err, ErrNoUser) {
		if prev, ok := s.deletedBefore(ctx, userID); ok {
			return Change{User: data.User{ID: userID}, Already: true, Event: prev}, nil
		}
	}
	if err != nil {
		return Change{}, err
	}
	var ended Ended
	if ss, err := s.store.ListSessions(ctx, userID); err == nil {
		ended.Sessions = len(ss)
	}
	if fs, err := s.store.ListRefreshFamilies(ctx, userID); err == nil {
		for _, f := range fs {
			if f.RevokedAt.IsZero() {
				ended.Logins++
			}
		}
	}
	if ws, err := s.store.ListWorkers(ctx, userID); err == nil {
		ended.Workers = len(ws)
	}
	err = s.store.DeleteUser(ctx, userID)
	if errors.Is(err, data.ErrNotFound) {
		return Change{}, &NoUserError{Name: userID}
	}
	if err != nil {
		return Change{}, fmt.Errorf("deleting user %s: %w", userID, err)
	}
	ch := Change{User: u, Ended: ended}
	details := map[string]string{"sessions": itoa(ended.Sessions), "cli_logins": itoa(ended.Logins), "workers": itoa(ended.Workers)}
	if u.Login != "" {
		details["login"] = u.Login
	}
	if u.Email != "" {
		details["email"] = u.Email
	}
	ch.Event, err = s.audit(ctx, actor, ActionDeleted, u, details)
	s.log.Info("user deleted", "user_id", userID, "actor", actor)
	return ch, err
}

// RevokeSessions signs userID out everywhere: every browser session is
// deleted and every CLI login revoked (EndAccess). The user may sign in
// again; workers are not touched (revoke one on the account page, or
// disable the user). Errors: *NoUserError, the store's.
func (s *Service) RevokeSessions(ctx context.Context, actor, userID string) (Change, error) {
	u, err := s.user(ctx, userID)
	if err != nil {
		return Change{}, err
	}
	ended, err := s.endAccess(ctx, userID, actor, ReasonRevoked)
	ch := Change{User: u, Ended: ended, Already: ended.Sessions == 0 && ended.Logins == 0}
	if err != nil {
		return ch, fmt.Errorf("revoking the sessions of user %s (run the command again): %w", userID, err)
	}
	if ch.Already {
		return ch, nil
	}
	ch.Event, err = s.audit(ctx, actor, ActionSessionsRevoked, u,
		map[string]string{"sessions": itoa(ended.Sessions), "cli_logins": itoa(ended.Logins)})
	s.log.Info("sessions revoked", "user_id", userID, "actor", actor, "sessions", ended.Sessions, "cli_logins", ended.Logins)
	return ch, err
}

// EndAccess ends what userID holds, at once and on every replica: it
// deletes every browser session (the store's WatchSessions drops them
// from every replica's cache) and revokes every CLI login that is not
// revoked yet (RevokedAt now, RevokeReason reason; the CLI bearer reads
// its login on every request). Workers are counted, not touched: the
// chain refuses them through their owner's standing. It appends no audit
// event (its callers record why) and does not check that the user exists.
// actor is for the log; reason, a stable word (ReasonDisabled,
// ReasonRevoked), is kept as the logins' RevokeReason.
//
// service/membership has an EndAccess of its own that also drops the
// user's cached standing; the server passes it as Options.EndAccess, and
// this one serves where no membership service runs (a command on the
// store itself).
//
// A session or login that ends by itself meanwhile is not an error. On an
// error, what was ended before it stays ended; calling again finishes.
func (s *Service) EndAccess(ctx context.Context, userID, actor, reason string) (Ended, error) {
	var ended Ended
	sessions, err := s.store.ListSessions(ctx, userID)
	if err != nil {
		return ended, fmt.Errorf("listing sessions: %w", err)
	}
	for _, ss := range sessions {
		err := s.store.DeleteSession(ctx, ss.ID)
		switch {
		case err == nil:
			ended.Sessions++
		case !errors.Is(err, data.ErrNotFound):
			return ended, fmt.Errorf("deleting a session: %w", err)
		}
	}
	families, err := s.store.ListRefreshFamilies(ctx, userID)
	if err != nil {
		return ended, fmt.Errorf("listing CLI logins: %w", err)
	}
	now := s.now().UTC()
	for _, f := range families {
		if !f.RevokedAt.IsZero() {
			continue
		}
		revoked := false
		_, err := s.store.UpdateRefreshFamily(ctx, f.ID, func(cur data.RefreshFamily) (data.RefreshFamily, error) {
			revoked = cur.RevokedAt.IsZero()
			if revoked {
				cur.RevokedAt, cur.RevokeReason = now, reason
			}
			return cur, nil
		})
		switch {
		case err == nil:
			if revoked {
				ended.Logins++
			}
		case !errors.Is(err, data.ErrNotFound):
			return ended, fmt.Errorf("revoking CLI login %s: %w", f.ID, err)
		}
	}
	if ws, err := s.store.ListWorkers(ctx, userID); err == nil {
		ended.Workers = len(ws)
	}
	if ended.Sessions > 0 || ended.Logins > 0 {
		s.log.Info("access ended", "user_id", userID, "actor", actor, "sessions", ended.Sessions, "cli_logins", ended.Logins)
	}
	return ended, nil
}

// endAccess runs Options.EndAccess, counting first what it will end, or
// else EndAccess.
func (s *Service) endAccess(ctx context.Context, userID, actor, reason string) (Ended, error) {
	if s.end == nil {
		return s.EndAccess(ctx, userID, actor, reason)
	}
	var e Ended
	if ss, err := s.store.ListSessions(ctx, userID); err == nil {
		e.Sessions = len(ss)
	}
	if fs, err := s.store.ListRefreshFamilies(ctx, userID); err == nil {
		for _, f := range fs {
			if f.RevokedAt.IsZero() {
				e.Logins++
			}
		}
	}
	if ws, err := s.store.ListWorkers(ctx, userID); err == nil {
		e.Workers = len(ws)
	}
	return e, s.end(ctx, userID, actor, reason)
}

func (s *Service) audit(ctx context.Context, actor, action string, u data.User, details map[string]string) (data.AuditEvent, error) {
	e, err := s.store.AppendAudit(ctx, data.AuditEvent{
		Time: s.now().UTC(), Action: action, Actor: actor, UserID: u.ID, Target: u.ID, Outcome: "ok", Details: details,
	})
	if err != nil {
		return e, fmt.Errorf("the change is made but recording it in the audit trail failed: %w", err)
	}
	return e, nil
}

func checkReason(r string) error {
	if len(r) > MaxReason || !utf8.ValidString(r) || strings.IndexFunc(r, unicode.IsControl) >= 0 {
		return ErrBadReason
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

package users

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vintner/arbor/data"
)

// Summary is one line of `arbor users list`.
type Summary struct {
	ID    string `json:"id"`
	Login string `json:"login,omitempty"`
	Email string `json:"email,omitempty"`
	// Providers are the login providers the user signs in with, sorted.
	Providers []string `json:"providers"`
	Disabled  bool     `json:"disabled,omitempty"`
	// Groups is how many groups the providers last reported.
	Groups int `json:"groups"`
	// LastSignIn is the latest sign-in through any identity (zero: none
	// recorded).
	LastSignIn time.Time `json:"last_sign_in,omitzero"`
	CreatedAt  time.Time `json:"created_at"`
}

// Identity is a user's login identity without its sealed grant.
type Identity struct {
	Provider      string    `json:"provider"`
	Subject       string    `json:"subject"`
	Login         string    `json:"login,omitempty"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	LastLoginAt   time.Time `json:"last_login_at,omitzero"`
	// Grant says whether a sealed login grant is kept (for re-reading
	// memberships); the grant itself is never shown.
	Grant          bool      `json:"grant"`
	GrantExpiresAt time.Time `json:"grant_expires_at,omitzero"`
}

// Session is a live browser session, without its id (which names the
// session in its cookie).
type Session struct {
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent,omitempty"`
	IP         string    `json:"ip,omitempty"`
}

// Login is a CLI login (refresh family).
type Login struct {
	ID           string    `json:"id"`
	ClientID     string    `json:"client_id,omitempty"`
	Host         string    `json:"host,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	LastUsedAt   time.Time `json:"last_used_at,omitzero"`
	ExpiresAt    time.Time `json:"expires_at"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
}

// Worker is a Tendril worker without its token hash.
type Worker struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	LastAddr   string    `json:"last_addr,omitempty"`
}

// Connection is a Git provider connection without its sealed tokens.
type Connection struct {
	Provider       string    `json:"provider"`
	AccountLogin   string    `json:"account_login,omitempty"`
	Scopes         []string  `json:"scopes,omitempty"`
	Status         string    `json:"status"`
	StatusReason   string    `json:"status_reason,omitempty"`
	TokenExpiresAt time.Time `json:"token_expires_at,omitzero"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Detail is `arbor users show`: everything Arbor keeps about a user,
// except secrets (sealed grants and tokens, token hashes, session ids).
type Detail struct {
	// User is the account, memberships and disabled state included.
	User        data.User    `json:"user"`
	Identities  []Identity   `json:"identities"`
	Sessions    []Session    `json:"sessions"`
	Logins      []Login      `json:"cli_logins"`
	Workers     []Worker     `json:"workers"`
	Connections []Connection `json:"connections"`
}

// List returns every user, ordered by id.
func (s *Service) List(ctx context.Context) ([]Summary, error) {
	us, err := s.store.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	out := make([]Summary, 0, len(us))
	for _, u := range us {
		ids, err := s.store.ListIdentities(ctx, u.ID)
		if err != nil && !errors.Is(err, data.ErrNotFound) {
			return nil, fmt.Errorf("listing the identities of user %s: %w", u.ID, err)
		}
		sum := Summary{ID: u.ID, Login: u.Login, Email: u.Email, Disabled: u.Disabled,
			Groups: len(u.Memberships.Groups), CreatedAt: u.CreatedAt, Providers: []string{}}
		for _, id := range ids {
			if !slices.Contains(sum.Providers, id.Provider) {
				sum.Providers = append(sum.Providers, id.Provider)
			}
			if id.LastLoginAt.After(sum.LastSignIn) {
				sum.LastSignIn = id.LastLoginAt
			}
		}
		slices.Sort(sum.Providers)
		out = append(out, sum)
	}
	return out, nil
}

// Resolve finds a user by id or, for a name with an '@', by e-mail
// address (the user's, or a verified one of their identities; case does
// not matter). Errors: *NoUserError, ErrAmbiguous, the store's.
func (s *Service) Resolve(ctx context.Context, idOrEmail string) (data.User, error) {
	if !strings.Contains(idOrEmail, "@") {
		return s.user(ctx, idOrEmail)
	}
	us, err := s.store.ListUsers(ctx)
	if err != nil {
		return data.User{}, fmt.Errorf("listing users: %w", err)
	}
	var found []data.User
	for _, u := range us {
		match := strings.EqualFold(u.Email, idOrEmail)
		if !match {
			ids, err := s.store.ListIdentities(ctx, u.ID)
			if err != nil && !errors.Is(err, data.ErrNotFound) {
				return data.User{}, fmt.Errorf("listing the identities of user %s: %w", u.ID, err)
			}
			match = slices.ContainsFunc(ids, func(id data.Identity) bool {
				return id.EmailVerified && strings.EqualFold(id.Email, idOrEmail)
			})
		}
		if match {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return data.User{}, &NoUserError{Name: idOrEmail}
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, u := range found {
		ids[i] = u.ID
	}
	return data.User{}, fmt.Errorf("%d users have the address %s (%s): %w", len(found), idOrEmail, strings.Join(ids, ", "), ErrAmbiguous)
}

// Show returns everything about the user named by id or e-mail address
// (see Resolve), without secrets. Errors: *NoUserError, ErrAmbiguous, the
// store's.
func (s *Service) Show(ctx context.Context, idOrEmail string) (Detail, error) {
	u, err := s.Resolve(ctx, idOrEmail)
	if err != nil {
		return Detail{}, err
	}
	d := Detail{User: u, Identities: []Identity{}, Sessions: []Session{}, Logins: []Login{}, Workers: []Worker{}, Connections: []Connection{}}
	fail := func(what string, err error) (Detail, error) {
		return Detail{}, fmt.Errorf("reading the %s of user %s: %w", what, u.ID, err)
	}
	ids, err := s.store.ListIdentities(ctx, u.ID)
	if err != nil {
		return fail("identities", err)
	}
	for _, id := range ids {
		d.Identities = append(d.Identities, Identity{Provider: id.Provider, Subject: id.Subject, Login: id.Login,
			Email: id.Email, EmailVerified: id.EmailVerified, CreatedAt: id.CreatedAt, LastLoginAt: id.LastLoginAt,
			Grant: len(id.Grant) > 0, GrantExpiresAt: id.GrantExpiresAt})
	}
	ss, err := s.store.ListSessions(ctx, u.ID)
	if err != nil {
		return fail("sessions", err)
	}
	for _, x := range ss {
		d.Sessions = append(d.Sessions, Session{CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, ExpiresAt: x.ExpiresAt, UserAgent: x.UserAgent, IP: x.IP})
	}
	fs, err := s.store.ListRefreshFamilies(ctx, u.ID)
	if err != nil {
		return fail("CLI logins", err)
	}
	for _, f := range fs {
		d.Logins = append(d.Logins, Login{ID: f.ID, ClientID: f.ClientID, Host: f.ClientInfo["hostname"], CreatedAt: f.CreatedAt,
			LastUsedAt: f.LastUsedAt, ExpiresAt: f.ExpiresAt, RevokedAt: f.RevokedAt, RevokeReason: f.RevokeReason})
	}
	ws, err := s.store.ListWorkers(ctx, u.ID)
	if err != nil {
		return fail("workers", err)
	}
	for _, w := range ws {
		d.Workers = append(d.Workers, Worker{ID: w.ID, Name: w.Name, CreatedAt: w.CreatedAt, LastUsedAt: w.LastUsedAt, LastAddr: w.LastAddr})
	}
	cs, err := s.store.ListConnections(ctx, u.ID)
	if err != nil {
		return fail("connections", err)
	}
	for _, c := range cs {
		d.Connections = append(d.Connections, Connection{Provider: c.Provider, AccountLogin: c.AccountLogin, Scopes: c.Scopes,
			Status: c.Status, StatusReason: c.StatusReason, TokenExpiresAt: c.TokenExpiresAt, UpdatedAt: c.UpdatedAt})
	}
	return d, nil
}

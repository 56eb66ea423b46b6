package membership

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/internal/sealedgrant"
	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
)

// Profile is what the provider vouched for at sign-in, as the sign-in
// cleaned it.
type Profile struct {
	// Email is the account's address, lower case; it counts for the
	// policy only when EmailVerified.
	Email         string
	EmailVerified bool
}

// Admission is SignIn's answer: the Verdict, and what Keep writes once the
// user is resolved.
type Admission struct {
	Verdict Verdict
	// Member is what the Verdict was computed on. Its UserID is "" for a
	// person who has no account yet.
	Member *Member

	// fetched: the groups of the sign-in's provider were read (a group
	// provider); groups and restricted are those, prefixed.
	fetched            bool
	groups, restricted []string
}

// Admitted reports whether the sign-in may go on.
func (a Admission) Admitted() bool { return a.Verdict.Admitted() }

// RefusedError is returned by Keep when the user the sign-in resolved to
// does not pass (an account linked by e-mail that is disabled, say): the
// sign-in shows Verdict and starts no session.
type RefusedError struct{ Verdict Verdict }

func (e *RefusedError) Error() string { return "membership: sign-in refused: " + e.Verdict.Code }

// SignIn decides whether the person the provider just vouched for may sign
// in, before any user is created or session started. For a group provider
// it reads their groups with the sign-in's own token and combines them
// with the existing user's other memberships and Disabled flag (the user
// of the identity (provider, subject), if any); the Judge decides. A
// failed read refuses with memberships_unavailable: admitting without
// knowing would let in whoever the policy means to keep out while the
// provider is down. The error is the store's (503).
func (s *Service) SignIn(ctx context.Context, provider, subject string, p Profile, tok *abi.Token) (Admission, error) {
	now := s.opts.Now()
	m := &Member{}
	var u data.User
	var ids []data.Identity
	ident, err := s.store.GetIdentity(ctx, provider, subject)
	switch {
	case err == nil:
		if u, err = s.store.GetUser(ctx, ident.UserID); err != nil && !errors.Is(err, data.ErrNotFound) {
			return Admission{}, fmt.Errorf("membership: reading the user of %s/%s: %w", provider, subject, err)
		}
		if err == nil {
			if ids, err = s.store.ListIdentities(ctx, u.ID); err != nil {
				return Admission{}, fmt.Errorf("membership: reading the identities of %s: %w", u.ID, err)
			}
			built, _ := s.build(u, ids, now)
			*m = *built
		}
	case !errors.Is(err, data.ErrNotFound):
		return Admission{}, fmt.Errorf("membership: reading the identity %s/%s: %w", provider, subject, err)
	}
	// This sign-in's own address replaces what its identity said before.
	others := slices.DeleteFunc(slices.Clone(ids), func(id data.Identity) bool { return id.Provider == provider && id.Subject == subject })
	email := ""
	if p.EmailVerified {
		email = p.Email
	}
	m.Emails = verifiedEmails(others, email)

	adm := Admission{}
	if s.GroupProvider(provider) && !m.Disabled {
		if tok == nil || tok.AccessToken == "" {
			return s.refuse(adm, m, unavailableAtSignIn(s.displayName(provider), errors.New("no access token")), nil)
		}
		rctx, cancel := context.WithTimeout(ctx, callTimeout)
		groups, restricted, err := s.fetchGroups(rctx, provider, tok.AccessToken)
		cancel()
		if err != nil {
			s.log.Warn("could not read the groups of a person signing in; refusing", "provider", provider, "err", err)
			return s.refuse(adm, m, unavailableAtSignIn(s.displayName(provider), err), nil)
		}
		adm.fetched, adm.groups, adm.restricted = true, groups, restricted
		m.Groups = replaceProvider(m.Groups, provider, groups)
		m.Restricted = replaceProvider(m.Restricted, provider, restricted)
		m.CheckedAt = now.UTC()
		// The groups of this provider were just read: only others' failures
		// could make the member Unavailable, and this sign-in settles them.
		m.Unavailable = false
	}
	m.Verdict, m.Visible, m.VisibleHeader = Verdict{}, nil, ""
	s.judge(m)
	adm.Verdict, adm.Member = m.Verdict, m
	return adm, nil
}

func (s *Service) refuse(adm Admission, m *Member, v Verdict, err error) (Admission, error) {
	m.Verdict = v
	adm.Verdict, adm.Member = v, m
	return adm, err
}

// displayName is provider's name as people know it (the plugin's display
// name, "GitHub"), for the words of a refusal; the configured name if the
// plugin does not say.
func (s *Service) displayName(provider string) string {
	if s.opts.Providers != nil {
		if _, info, ok := s.opts.Providers.Get(provider); ok && info.DisplayName != "" {
			return info.DisplayName
		}
	}
	return provider
}

// unavailableAtSignIn is the Verdict of a sign-in whose groups could not
// be read; provider is its display name.
func unavailableAtSignIn(provider string, err error) Verdict {
	v := Verdict{Code: CodeMembershipsUnavailable,
		Rule: "This site lets people in by their groups at " + provider + ", and " + provider + " did not say which groups you are in.",
		Fix:  "Try signing in again in a minute. If it keeps failing, tell an administrator."}
	switch plugins.CodeOf(err) {
	case abi.CodeInvalidToken, abi.CodeInvalidGrant:
		v.Rule = "This site lets people in by their groups at " + provider + ", and " + provider + " refused to tell them (the permission to read them was withdrawn)."
		v.Fix = "Sign in again and allow this site to read your groups."
	case abi.CodeUnsupported:
		v.Rule = "This site lets people in by their groups at " + provider + ", but its " + provider + " plugin cannot read groups."
		v.Fix = "Tell an administrator: the " + provider + " plugin must be updated."
	case abi.CodeRateLimited:
		v.Fix = "The provider is limiting requests right now; try again in a few minutes."
	}
	return v
}

// Keep records what the sign-in learnt, once the sign-in has resolved the
// user (after SignIn admitted): for a group provider, the sign-in's grant
// sealed onto the Identity (Grant, GrantExpiresAt), so that Run can read
// the groups again, and the groups on the user (Memberships, CheckedAt
// now). It then judges the resolved user again and returns a
// *RefusedError if they do not pass (a user linked by verified e-mail who
// is disabled, say). Other errors are the store's or the keys'.
func (s *Service) Keep(ctx context.Context, userID, provider, subject string, tok *abi.Token, adm Admission) error {
	defer s.invalidate(userID)
	now := s.opts.Now().UTC()
	if adm.fetched && s.GroupProvider(provider) && tok != nil && tok.AccessToken != "" {
		g := sealedgrant.From(tok, now, grant{})
		sealed, err := s.sealGrant(provider, subject, g)
		if err != nil {
			return err
		}
		if _, err := s.store.UpdateIdentity(ctx, provider, subject, func(id data.Identity) (data.Identity, error) {
			id.Grant, id.GrantExpiresAt = sealed, g.Expiry()
			return id, nil
		}); err != nil {
			return fmt.Errorf("membership: storing the grant of %s/%s: %w", provider, subject, err)
		}
	}
	var u data.User
	var err error
	if adm.fetched {
		var old []string
		u, err = s.store.UpdateUser(ctx, userID, func(u data.User) (data.User, error) {
			old = u.Memberships.Groups
			u.Memberships.Groups = replaceProvider(u.Memberships.Groups, provider, adm.groups)
			u.Memberships.Restricted = replaceProvider(u.Memberships.Restricted, provider, adm.restricted)
			u.Memberships.CheckedAt, u.Memberships.FailingSince, u.Memberships.LastError = now, time.Time{}, ""
			return u, nil
		})
		if err != nil {
			return fmt.Errorf("membership: storing the memberships of %s: %w", userID, err)
		}
		s.noteChange(ctx, userID, userID, old, u.Memberships.Groups)
	} else if u, err = s.store.GetUser(ctx, userID); err != nil {
		return fmt.Errorf("membership: reading user %s: %w", userID, err)
	}
	ids, err := s.store.ListIdentities(ctx, userID)
	if err != nil {
		return fmt.Errorf("membership: reading the identities of %s: %w", userID, err)
	}
	m, _ := s.build(u, ids, s.opts.Now())
	if adm.fetched {
		m.Unavailable = false // just read, as in SignIn
		m.Verdict = Verdict{}
		s.judge(m)
	}
	if !m.Verdict.Admitted() {
		return &RefusedError{Verdict: m.Verdict}
	}
	return nil
}

// Explain is v's Rule and Fix as one text for a page.
func (v Verdict) Explain() string { return strings.TrimSpace(v.Rule + " " + v.Fix) }

// Link records what a newly linked sign-in method says about the
// signed-in user userID (the account page's "link another sign-in
// method"): for a group provider, the link's grant, sealed onto the
// Identity, and the groups it reads, so that the policy counts them and
// Run can read them again. A provider that cannot say now leaves the
// memberships as they were (the grant is kept for the re-check). Errors
// are the store's or the keys'; the link itself stands either way.
func (s *Service) Link(ctx context.Context, userID, provider, subject string, tok *abi.Token) error {
	if !s.GroupProvider(provider) || tok == nil || tok.AccessToken == "" {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, callTimeout)
	groups, restricted, err := s.fetchGroups(rctx, provider, tok.AccessToken)
	cancel()
	adm := Admission{fetched: err == nil, groups: groups, restricted: restricted}
	if err != nil {
		s.log.Warn("could not read the groups of a linked sign-in method; the re-check will", "user_id", userID, "provider", provider, "err", err)
		g := sealedgrant.From(tok, s.opts.Now().UTC(), grant{})
		sealed, err := s.sealGrant(provider, subject, g)
		if err != nil {
			return err
		}
		defer s.invalidate(userID)
		if _, err := s.store.UpdateIdentity(ctx, provider, subject, func(id data.Identity) (data.Identity, error) {
			id.Grant, id.GrantExpiresAt = sealed, g.Expiry()
			return id, nil
		}); err != nil {
			return fmt.Errorf("membership: storing the grant of %s/%s: %w", provider, subject, err)
		}
		return nil
	}
	if err := s.Keep(ctx, userID, provider, subject, tok, adm); err != nil {
		if _, refused := errors.AsType[*RefusedError](err); !refused {
			return err
		}
	}
	return nil
}

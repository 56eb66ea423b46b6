package clilogin

import (
	"context"
	"errors"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/internal/scopeset"
	"github.com/vintner/arbor/service/clilogin/clitoken"
)

var errRotated = errors.New("clilogin: rotated meanwhile")

// Refresh rotates the refresh token raw and mints new tokens (see the
// package doc for reuse detection). It serves the Grape endpoint and the
// RFC 8628 token endpoint's refresh_token grant; clientID, if not empty,
// must be the login's client. Errors: those wrapping ErrInvalidGrant
// (ErrReused revoked the login), *StoreError.
func (s *Service) Refresh(ctx context.Context, from From, raw, clientID string) (Tokens, error) {
	claims, err := s.opts.Tokens.Verify(raw, clitoken.TypeRefresh)
	if err != nil {
		return Tokens{}, ErrTokenInvalid
	}
	f, err := s.store.GetRefreshFamily(ctx, claims.FamilyID)
	switch {
	case errors.Is(err, data.ErrNotFound):
		return Tokens{}, ErrLoginEnded
	case err != nil:
		return Tokens{}, storeErr("read the login", err)
	case !f.RevokedAt.IsZero():
		return Tokens{}, ErrLoginRevoked
	case f.UserID != claims.Subject:
		return Tokens{}, ErrTokenMismatch
	case clientID != "" && clientID != f.ClientID:
		return Tokens{}, ErrRefreshOtherClient
	case s.grantedScopes(f) == 0:
		return Tokens{}, ErrClientGone
	}
	now := s.opts.Now().UTC()
	newJTI, err := clitoken.NewID()
	if err != nil {
		return Tokens{}, err
	}
	jti, rotated := newJTI, false
	if claims.ID == f.CurrentJTI {
		f, err = s.store.UpdateRefreshFamily(ctx, f.ID, func(cur data.RefreshFamily) (data.RefreshFamily, error) {
			if !cur.RevokedAt.IsZero() || cur.CurrentJTI != claims.ID {
				return cur, errRotated
			}
			cur.PreviousJTI, cur.CurrentJTI, cur.RotatedAt = cur.CurrentJTI, newJTI, now
			cur.Generation++
			cur.LastUsedAt = now
			return cur, nil
		})
		if errors.Is(err, errRotated) {
			// A concurrent refresh with the same token won; this one is
			// now a second use of the previous token.
			if f, err = s.store.GetRefreshFamily(ctx, claims.FamilyID); err != nil {
				return Tokens{}, ErrLoginEnded
			}
		} else if err != nil {
			return Tokens{}, storeErr("rotate the refresh token", err)
		} else {
			rotated = true
		}
	}
	if !rotated {
		// Not (or no longer) the current token.
		switch {
		case !f.RevokedAt.IsZero():
			return Tokens{}, ErrLoginRevoked
		case claims.ID == f.PreviousJTI && s.opts.RefreshGrace > 0 && now.Sub(f.RotatedAt) <= s.opts.RefreshGrace:
			// The client lost the rotation's response: hand it the
			// current refresh token again, without rotating.
			jti = f.CurrentJTI
		default:
			s.revoke(ctx, from, f, "refresh token reuse")
			s.audit(ctx, from, data.AuditEvent{Action: "cli.refresh_reuse", Actor: f.UserID, UserID: f.UserID, Target: f.ClientID, Outcome: "family_revoked",
				Details: map[string]string{"family": f.ID}})
			s.logger(from).Warn("a rotated CLI refresh token was used again; the login is revoked", "user_id", f.UserID, "family", f.ID)
			return Tokens{}, ErrReused
		}
	}
	user, err := s.store.GetUser(ctx, f.UserID)
	if err != nil {
		return Tokens{}, ErrUserGone
	}
	return s.tokens(user, f, jti)
}

// revoke ends a family.
func (s *Service) revoke(ctx context.Context, from From, f data.RefreshFamily, reason string) {
	now := s.opts.Now().UTC()
	_, err := s.store.UpdateRefreshFamily(context.WithoutCancel(ctx), f.ID, func(cur data.RefreshFamily) (data.RefreshFamily, error) {
		if cur.RevokedAt.IsZero() {
			cur.RevokedAt, cur.RevokeReason = now, reason
		}
		return cur, nil
	})
	if err != nil && !errors.Is(err, data.ErrNotFound) {
		s.logger(from).Error("revoking a CLI login failed", "family", f.ID, "err", err)
	}
}

// Logout ends the login of refreshToken, or else of accessToken (either
// may be empty). A token of someone else's login changes nothing.
// Errors: ErrNoToken (neither verifies).
func (s *Service) Logout(ctx context.Context, from From, refreshToken, accessToken string) error {
	var fid, uid string
	if refreshToken != "" {
		if cl, err := s.opts.Tokens.Verify(refreshToken, clitoken.TypeRefresh); err == nil {
			fid, uid = cl.FamilyID, cl.Subject
		}
	}
	if fid == "" && accessToken != "" {
		if cl, err := s.opts.Tokens.Verify(accessToken, clitoken.TypeAccess); err == nil {
			fid, uid = cl.FamilyID, cl.Subject
		}
	}
	if fid == "" {
		return ErrNoToken
	}
	f, err := s.store.GetRefreshFamily(ctx, fid)
	if err == nil && f.UserID == uid {
		s.revoke(ctx, from, f, "logout")
		s.audit(ctx, from, data.AuditEvent{Action: "cli.logout", Actor: uid, UserID: uid, Target: f.ClientID, Outcome: "ok"})
	}
	return nil
}

// Bearer is the caller an access token speaks for.
type Bearer struct {
	UserID, Email, Login string
	// LoginID is the token's login (refresh family).
	LoginID string
	// Scopes are the token's, within what its client is allowed now.
	Scopes scopeset.Set
}

// Authenticate checks a CLI access token: it must verify as an access
// token and its login must still be alive. Errors: ErrBadBearer (joined
// with the reason) for a token that is not a live access token; a store
// error as is.
func (s *Service) Authenticate(ctx context.Context, token string) (Bearer, error) {
	cl, err := s.opts.Tokens.Verify(token, clitoken.TypeAccess)
	if err != nil {
		return Bearer{}, errors.Join(ErrBadBearer, err)
	}
	f, err := s.store.GetRefreshFamily(ctx, cl.FamilyID)
	switch {
	case errors.Is(err, data.ErrNotFound):
		return Bearer{}, errors.Join(ErrBadBearer, errors.New("login ended"))
	case err != nil:
		return Bearer{}, err
	case !f.RevokedAt.IsZero() || f.UserID != cl.Subject:
		return Bearer{}, errors.Join(ErrBadBearer, errors.New("login revoked"))
	}
	granted := cl.Scopes & s.grantedScopes(f)
	if granted == 0 {
		return Bearer{}, errors.Join(ErrBadBearer, errors.New("no scope left: the device client is no longer registered"))
	}
	return Bearer{UserID: cl.Subject, Email: cl.Email, Login: cl.Login, LoginID: cl.FamilyID, Scopes: granted}, nil
}

// Logins lists a user's live CLI logins, newest last.
func (s *Service) Logins(ctx context.Context, userID string) ([]data.RefreshFamily, error) {
	fs, err := s.store.ListRefreshFamilies(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := fs[:0]
	for _, f := range fs {
		if f.RevokedAt.IsZero() {
			out = append(out, f)
		}
	}
	return out, nil
}

// RevokeLogin ends one of userID's CLI logins (the account page).
func (s *Service) RevokeLogin(ctx context.Context, userID, familyID string) error {
	now := s.opts.Now().UTC()
	_, err := s.store.UpdateRefreshFamily(ctx, familyID, func(cur data.RefreshFamily) (data.RefreshFamily, error) {
		if cur.UserID != userID {
			return cur, data.ErrNotFound
		}
		if cur.RevokedAt.IsZero() {
			cur.RevokedAt, cur.RevokeReason = now, "revoked on the account page"
		}
		return cur, nil
	})
	return err
}

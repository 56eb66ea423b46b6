package cliauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/service/clilogin/clitoken"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
)

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

var errRotated = errors.New("cliauth: rotated meanwhile")

func invalidGrant(msg string) *httperr.Error {
	return httperr.New(http.StatusUnauthorized, CodeInvalidGrant, msg)
}

// refresh rotates a refresh token. See the package doc for reuse detection.
func (a *CLIAuth) refresh(c *fiber.Ctx) error {
	var req refreshRequest
	if err := json.Unmarshal(reqbody.Raw(c), &req); err != nil || req.RefreshToken == "" {
		return apiError(400, "invalid_request", "The body must be JSON: {refresh_token}")
	}
	t, err := a.RefreshToken(c, req.RefreshToken, "")
	if err != nil {
		return err
	}
	return a.tokens(c, t.user, t.family, t.jti)
}

// refreshed is the outcome of a successful rotation.
type refreshed struct {
	user   data.User
	family data.RefreshFamily
	jti    string // the refresh token to hand out
}

// RefreshToken rotates raw and returns what to mint. It is shared by the
// Grape endpoint and the RFC 8628 token endpoint's refresh_token grant;
// clientID, if not empty, must be the login's client.
func (a *CLIAuth) RefreshToken(c *fiber.Ctx, raw, clientID string) (refreshed, error) {
	ctx := c.UserContext()
	claims, err := a.opts.Tokens.Verify(raw, clitoken.TypeRefresh)
	if err != nil {
		return refreshed{}, invalidGrant("The refresh token is invalid or expired; log in again")
	}
	f, err := a.opts.Store.GetRefreshFamily(ctx, claims.FamilyID)
	switch {
	case errors.Is(err, data.ErrNotFound):
		return refreshed{}, invalidGrant("This login has ended; log in again")
	case err != nil:
		return refreshed{}, httperr.StoreUnavailable(err, "Arbor could not read the login")
	case !f.RevokedAt.IsZero():
		return refreshed{}, invalidGrant("This login was revoked; log in again")
	case f.UserID != claims.Subject:
		return refreshed{}, invalidGrant("The refresh token is invalid; log in again")
	case clientID != "" && clientID != f.ClientID:
		return refreshed{}, invalidGrant("The refresh token was issued to another client")
	case a.grantedScopes(f) == 0:
		return refreshed{}, invalidGrant("This device client is no longer registered with Arbor; its logins have ended")
	}
	now := a.opts.Now().UTC()
	newJTI, err := clitoken.NewID()
	if err != nil {
		return refreshed{}, httperr.Internal(err)
	}
	jti, rotated := newJTI, false
	if claims.ID == f.CurrentJTI {
		f, err = a.opts.Store.UpdateRefreshFamily(ctx, f.ID, func(cur data.RefreshFamily) (data.RefreshFamily, error) {
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
			if f, err = a.opts.Store.GetRefreshFamily(ctx, claims.FamilyID); err != nil {
				return refreshed{}, invalidGrant("This login has ended; log in again")
			}
		} else if err != nil {
			return refreshed{}, httperr.StoreUnavailable(err, "Arbor could not rotate the refresh token")
		} else {
			rotated = true
		}
	}
	if !rotated {
		// Not (or no longer) the current token.
		switch {
		case !f.RevokedAt.IsZero():
			return refreshed{}, invalidGrant("This login was revoked; log in again")
		case claims.ID == f.PreviousJTI && a.opts.RefreshGrace > 0 && now.Sub(f.RotatedAt) <= a.opts.RefreshGrace:
			// The client lost the rotation's response: hand it the
			// current refresh token again, without rotating.
			jti = f.CurrentJTI
		default:
			a.revoke(c, f, "refresh token reuse")
			a.audit(c, data.AuditEvent{Action: "cli.refresh_reuse", Actor: f.UserID, UserID: f.UserID, Target: f.ClientID, Outcome: "family_revoked",
				Details: map[string]string{"family": f.ID}})
			gateway.Logger(c).Warn("a rotated CLI refresh token was used again; the login is revoked", "user_id", f.UserID, "family", f.ID)
			return refreshed{}, invalidGrant("This refresh token was already used; the login is revoked. Log in again")
		}
	}
	user, err := a.opts.Store.GetUser(ctx, f.UserID)
	if err != nil {
		return refreshed{}, invalidGrant("The user no longer exists")
	}
	return refreshed{user: user, family: f, jti: jti}, nil
}

// revoke ends a family.
func (a *CLIAuth) revoke(c *fiber.Ctx, f data.RefreshFamily, reason string) {
	now := a.opts.Now().UTC()
	_, err := a.opts.Store.UpdateRefreshFamily(context.WithoutCancel(c.UserContext()), f.ID, func(cur data.RefreshFamily) (data.RefreshFamily, error) {
		if cur.RevokedAt.IsZero() {
			cur.RevokedAt, cur.RevokeReason = now, reason
		}
		return cur, nil
	})
	if err != nil && !errors.Is(err, data.ErrNotFound) {
		gateway.Logger(c).Error("revoking a CLI login failed", "family", f.ID, "err", err)
	}
}

// logout revokes the login of the presented refresh or access token.
func (a *CLIAuth) logout(c *fiber.Ctx) error {
	var req refreshRequest
	_ = json.Unmarshal(reqbody.Raw(c), &req)
	var fid, uid string
	if req.RefreshToken != "" {
		if cl, err := a.opts.Tokens.Verify(req.RefreshToken, clitoken.TypeRefresh); err == nil {
			fid, uid = cl.FamilyID, cl.Subject
		}
	}
	if fid == "" {
		if tok, ok := bearer(c); ok {
			if cl, err := a.opts.Tokens.Verify(tok, clitoken.TypeAccess); err == nil {
				fid, uid = cl.FamilyID, cl.Subject
			}
		}
	}
	if fid == "" {
		return invalidGrant("Send the refresh token (or the access token as Authorization: Bearer) of the login to end")
	}
	f, err := a.opts.Store.GetRefreshFamily(c.UserContext(), fid)
	if err == nil && f.UserID == uid {
		a.revoke(c, f, "logout")
		a.audit(c, data.AuditEvent{Action: "cli.logout", Actor: uid, UserID: uid, Target: f.ClientID, Outcome: "ok"})
	}
	return c.SendStatus(http.StatusNoContent)
}

func bearer(c *fiber.Ctx) (string, bool) {
	tok, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	return strings.TrimSpace(tok), ok && strings.TrimSpace(tok) != ""
}

// ErrBadBearer is why Authenticate refused a bearer token: it is not a
// live CLI access token.
var ErrBadBearer = errors.New("cliauth: invalid bearer token")

// Authenticate authenticates a request by its CLI access token, for the
// chain (package authn, KindCLI): the token must verify as an access token
// and its login must still be alive. The identity's Scopes are the
// token's, within what its client is allowed now (clients.go); the chain
// checks the one a route needs. No Authorization: Bearer header is None;
// a token that is not a live access token is Refused (ErrBadBearer); a
// store that cannot be read is Failed.
func (a *CLIAuth) Authenticate(c *fiber.Ctx) (authn.Identity, authn.Outcome, error) {
	tok, ok := bearer(c)
	if !ok {
		return authn.Identity{}, authn.None, nil
	}
	cl, err := a.opts.Tokens.Verify(tok, clitoken.TypeAccess)
	if err != nil {
		return authn.Identity{}, authn.Refused, errors.Join(ErrBadBearer, err)
	}
	f, err := a.opts.Store.GetRefreshFamily(c.UserContext(), cl.FamilyID)
	switch {
	case errors.Is(err, data.ErrNotFound):
		return authn.Identity{}, authn.Refused, errors.Join(ErrBadBearer, errors.New("login ended"))
	case err != nil:
		return authn.Identity{}, authn.Failed, err
	case !f.RevokedAt.IsZero() || f.UserID != cl.Subject:
		return authn.Identity{}, authn.Refused, errors.Join(ErrBadBearer, errors.New("login revoked"))
	}
	granted := cl.Scopes & a.grantedScopes(f)
	if granted == 0 {
		return authn.Identity{}, authn.Refused, errors.Join(ErrBadBearer, errors.New("no scope left: the device client is no longer registered"))
	}
	return authn.Identity{Kind: authn.KindCLI, UserID: cl.Subject, Email: cl.Email, Login: cl.Login, LoginID: cl.FamilyID, Scopes: granted}, authn.Authenticated, nil
}

var _ authn.Authenticator = (*CLIAuth)(nil)

// me answers who the bearer token (or session) belongs to.
func (a *CLIAuth) me(c *fiber.Ctx) error {
	id, err := a.opts.Chain.Who(c)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"user_id": id.UserID, "email": id.Email, "login": id.Login})
}

// Logins lists a user's live CLI logins, newest last.
func (a *CLIAuth) Logins(ctx context.Context, userID string) ([]data.RefreshFamily, error) {
	fs, err := a.opts.Store.ListRefreshFamilies(ctx, userID)
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
func (a *CLIAuth) RevokeLogin(ctx context.Context, userID, familyID string) error {
	now := a.opts.Now().UTC()
	_, err := a.opts.Store.UpdateRefreshFamily(ctx, familyID, func(cur data.RefreshFamily) (data.RefreshFamily, error) {
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

package authn

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/membership"
)

// Members answers a user's standing: whether an operator disabled them,
// their verified addresses and groups, and the policy's Verdict on them
// (membership.Member). The membership service implements it, from a cache
// it keeps current; authz.Members is the same interface.
type Members interface {
	Member(ctx context.Context, userID string) (*membership.Member, error)
}

// standing consults Members about the user of an authenticated id (a
// session, a CLI token, a worker: a worker acts for its owner, who must
// still pass) and keeps the Member on id for what follows (the Gate's
// route rules, the groups header and claim). A refused Verdict is 403 with
// its code and words (httperr.Denied); a Member that cannot be read is
// the 503 store_unavailable of a credential that cannot be checked.
// Without Members (no policy) it does nothing. It does not allocate.
func (ch *Chain) standing(c *fiber.Ctx, id *Identity) *httperr.Error {
	if ch.members == nil || id.UserID == "" {
		return nil
	}
	m, err := ch.members.Member(c.UserContext(), id.UserID)
	if err != nil || m == nil {
		return httperr.StoreUnavailable(err, "Arbor could not check your account's standing; try again in a moment")
	}
	if !m.Verdict.Admitted() {
		gateway.Logger(c).Info("policy refused the caller", "user_id", id.UserID, "kind", id.Kind.String(), "error", m.Verdict.Code)
		return httperr.Denied(m.Verdict)
	}
	id.Member = m
	return nil
}

package workers

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway/authn"
)

// Credentials is the service as the chain's worker authenticator (package
// authn, KindWorker).
type Credentials struct{ s *Service }

// Credentials returns the service as the chain's worker authenticator.
func (s *Service) Credentials() Credentials { return Credentials{s} }

// Authenticate sorts Service.Authenticate's answers into the chain's
// outcomes: neither worker header is None; a store that is unavailable or
// closed is Failed (the worker may retry); every other failure is Refused.
func (cr Credentials) Authenticate(c *fiber.Ctx) (authn.Identity, authn.Outcome, error) {
	h := &c.Request().Header
	if len(h.Peek(HeaderID)) == 0 && len(h.Peek(HeaderToken)) == 0 {
		return authn.Identity{}, authn.None, nil
	}
	id, err := cr.s.Authenticate(c)
	switch {
	case err == nil:
		return authn.Identity{Kind: authn.KindWorker, UserID: id.UserID, WorkerID: id.WorkerID}, authn.Authenticated, nil
	case errors.Is(err, data.ErrUnavailable), errors.Is(err, data.ErrClosed):
		return authn.Identity{}, authn.Failed, err
	}
	return authn.Identity{}, authn.Refused, err
}

var _ authn.Authenticator = Credentials{}

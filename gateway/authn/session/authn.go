package session

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/authn"
)

// Cookies is the session cookie as an authenticator of the chain (package
// authn, KindSession).
type Cookies struct{ m *Manager }

// Cookies returns the manager as the chain's session authenticator.
func (m *Manager) Cookies() Cookies { return Cookies{m} }

// Authenticate sorts Manager.Authenticate's answers into the chain's
// outcomes: no cookie is None; an invalid cookie or an ended session is
// Refused; any other error (the store) is Failed.
func (s Cookies) Authenticate(c *fiber.Ctx) (authn.Identity, authn.Outcome, error) {
	id, err := s.m.Authenticate(c)
	switch {
	case err == nil:
		return id, authn.Authenticated, nil
	case errors.Is(err, ErrNoSession):
		return id, authn.None, nil
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrEnded):
		return id, authn.Refused, err
	}
	return id, authn.Failed, err
}

// ClearCookie removes the session cookie (Manager.ClearCookie).
func (s Cookies) ClearCookie(c *fiber.Ctx) { s.m.ClearCookie(c) }

var _ authn.Sessions = Cookies{}

package api

import (
	"errors"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/httperr"
)

// PathWhoami answers, as JSON, who is signed in.
const PathWhoami = "/auth/whoami"

// WhoamiOptions configure /auth/whoami.
type WhoamiOptions struct {
	// Chain finds the signed-in person: the session cookie only
	// (authn.Chain.Session).
	Chain *authn.Chain
	// Sessions clears a refused session cookie (session.Manager).
	Sessions interface{ ClearCookie(c *fiber.Ctx) }
}

// Whoami serves /auth/whoami: who is signed in, for single-page apps that
// want to know without a round trip through their own backend.
type Whoami struct {
	opts WhoamiOptions
}

// NewWhoami checks opts.
func NewWhoami(opts WhoamiOptions) (*Whoami, error) {
	if opts.Chain == nil || opts.Sessions == nil {
		return nil, errors.New("api: WhoamiOptions.Chain and Sessions are required")
	}
	return &Whoami{opts: opts}, nil
}

// Routes registers the route; mount with gateway.ClassAPI.
func (a *Whoami) Routes(r fiber.Router) {
	r.Get(PathWhoami, a.whoami)
}

// whoami answers the session's user; without a session 401
// unauthenticated (a refused cookie is cleared), and 503 when the session
// cannot be checked.
func (a *Whoami) whoami(c *fiber.Ctx) error {
	id, out, err := a.opts.Chain.Session(c)
	switch out {
	case authn.Authenticated:
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(fiber.Map{"user_id": id.UserID, "email": id.Email, "login": id.Login})
	case authn.Failed:
		return httperr.StoreUnavailable(err, "Arbor could not check the session")
	case authn.Refused:
		a.opts.Sessions.ClearCookie(c)
	}
	c.Set(fiber.HeaderWWWAuthenticate, `Cookie realm="arbor"`)
	return httperr.New(http.StatusUnauthorized, httperr.CodeUnauthenticated, "Not signed in")
}

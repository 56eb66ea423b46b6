package authn

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/service/clilogin"
)

// CLI is the CLI login service as the chain's CLI authenticator
// (KindCLI): it reads Authorization: Bearer and asks the service, which
// checks that the token verifies as an access token and that its login is
// still alive. The identity's Scopes are the token's, within what its
// client is allowed now; the chain checks the one a route needs. No
// bearer token is None; a token that is not a live access token is
// Refused (clilogin.ErrBadBearer); a store that cannot be read is Failed.
func CLI(s *clilogin.Service) Authenticator { return cliBearer{s} }

type cliBearer struct{ s *clilogin.Service }

func (b cliBearer) Authenticate(c *fiber.Ctx) (Identity, Outcome, error) {
	tok, ok := BearerToken(c)
	if !ok {
		return Identity{}, None, nil
	}
	id, err := b.s.Authenticate(c.UserContext(), tok)
	switch {
	case err == nil:
		return Identity{Kind: KindCLI, UserID: id.UserID, Email: id.Email, Login: id.Login, LoginID: id.LoginID, Scopes: id.Scopes}, Authenticated, nil
	case errors.Is(err, clilogin.ErrBadBearer):
		return Identity{}, Refused, err
	}
	return Identity{}, Failed, err
}

// BearerToken is the token of an Authorization: Bearer header, spaces
// trimmed; false without one. It points into the request: copy what
// outlives it.
func BearerToken(c *fiber.Ctx) (string, bool) {
	tok, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	tok = strings.TrimSpace(tok)
	return tok, ok && tok != ""
}

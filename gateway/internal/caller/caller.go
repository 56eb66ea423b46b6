// Package caller answers "who is asking?" for Arbor's own pages and JSON
// APIs (Integrations, Workers): the signed-in person behind a session
// cookie or, for the APIs, a CLI bearer token.
//
// Every such route acts for exactly the user this returns; none takes a
// parameter naming another user. Keeping the one copy here means the pages
// cannot drift apart in which credentials they accept or in the 401 they
// answer with.
package caller

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/gateway/scope"
	"github.com/vintner/arbor/gateway/session"
)

// Sessions authenticates a session cookie (session.Manager).
type Sessions interface {
	Authenticate(c *fiber.Ctx) (session.Identity, error)
}

// Auth finds the caller of a page or an API route.
type Auth struct {
	Sessions Sessions
	// Bearer, if set, authenticates API requests that carry
	// Authorization: Bearer (CLI access tokens); it returns an error
	// wrapping NoBearer when the request has none.
	Bearer   func(c *fiber.Ctx) (session.Identity, error)
	NoBearer error
	// Scope is what a bearer token needs on these routes (package scope);
	// a token without it gets 403 insufficient_scope. Sessions are not
	// scoped. Left zero, every bearer token is refused.
	Scope scope.Set
}

// API returns the caller of a JSON API request: the bearer token's user if
// there is a token, else the session's. Without either it answers 401
// "unauthenticated"; when the store cannot be read, 503.
func (a Auth) API(c *fiber.Ctx) (session.Identity, error) {
	if a.Bearer != nil {
		id, err := a.Bearer(c)
		switch {
		case err == nil && (a.Scope == 0 || !id.Scopes.Has(a.Scope)):
			return id, scope.Refuse(c, a.Scope)
		case err == nil:
			return id, nil
		case !errors.Is(err, a.NoBearer):
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="arbor", error="invalid_token"`)
			return id, httperr.Wrap(err, http.StatusUnauthorized, "unauthenticated", "The bearer token is not a live CLI access token; log in again")
		}
	}
	id, err := a.Sessions.Authenticate(c)
	switch {
	case err == nil:
		return id, nil
	case errors.Is(err, session.ErrNoSession), errors.Is(err, session.ErrInvalid), errors.Is(err, session.ErrEnded):
		c.Set(fiber.HeaderWWWAuthenticate, `Cookie realm="arbor"`)
		return id, httperr.New(http.StatusUnauthorized, "unauthenticated", "Sign in first: this API needs a signed-in session or a CLI access token")
	default:
		return id, httperr.Wrap(err, http.StatusServiceUnavailable, httperr.CodeStoreUnavailable, "Arbor could not check the session")
	}
}

// Page returns the signed-in person of a page request. Without a session
// it redirects to the sign-in page, which comes back here afterwards, and
// reports ok false with the redirect's error to return.
func (a Auth) Page(c *fiber.Ctx) (id session.Identity, ok bool, err error) {
	id, err = a.Sessions.Authenticate(c)
	if err != nil {
		return id, false, c.Redirect("/auth/sign-in?return_to="+url.QueryEscape(c.OriginalURL()), http.StatusFound)
	}
	return id, true, nil
}

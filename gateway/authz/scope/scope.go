// Package scope is the fixed set of permissions a CLI access token can
// carry, and the one refusal Arbor answers when a token lacks one.
//
// # Why scopes
//
// RFC 8628 lets any program start a device login, and the user approves it
// on a page of Arbor's, so a phishing link ("enter this code to connect
// Trellis") can make a victim hand an attacker a token. Before scopes every
// such token could read the user's Git provider tokens, register a worker
// (a credential that outlives the login) and reach the whole app. Now each
// registered device client (config cli.device_clients) is allowed only the
// scopes the operator gave it, the token says which it holds (the "scope"
// claim, space-separated as RFC 8693 and RFC 9068 do), and each use checks
// its own scope:
//
//   - providers: Arbor's provider API (/api/providers/…: the list of
//     connections, a provider's access token, repositories, disconnect).
//   - workers: Arbor's worker API (/api/workers/…: list, register, rename,
//     rotate, revoke Tendril workers).
//   - proxy: the app behind Arbor, with the token as Authorization: Bearer.
//
// Grape, the first-party CLI, always gets All. A token minted before scopes
// existed has no scope claim and counts as All, what it could do when it
// was issued (its login can still be revoked on the account page). Session
// cookies are not scoped. A token lacking a scope gets 403
// insufficient_scope with WWW-Authenticate: Bearer error="insufficient_scope",
// scope="…" (RFC 6750 3.1).
package scope

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/internal/scopeset"
)

// Set is a set of scopes. The zero Set allows nothing. It is
// internal/scopeset's, where the CLI login service reads and grants it.
type Set = scopeset.Set

// The scopes.
const (
	Providers = scopeset.Providers
	Workers   = scopeset.Workers
	Proxy     = scopeset.Proxy
	// All is every scope: Grape's, and that of a token without a scope
	// claim.
	All = scopeset.All
)

// CodeInsufficient is the error code of a token lacking a scope.
const CodeInsufficient = "insufficient_scope"

// Names lists the scope names, in a fixed order.
func Names() []string { return scopeset.Names() }

// Parse reads a space-separated list of scope names (RFC 6749 3.3). An
// unknown name is an error; duplicates are allowed.
func Parse(s string) (Set, error) { return scopeset.Parse(s) }

// ParseKnown reads a space-separated list and ignores names it does not
// know: a token's claim, which a newer Arbor may have minted.
func ParseKnown(s string) Set { return scopeset.ParseKnown(s) }

// Refuse answers a bearer token that lacks need: 403 insufficient_scope
// and RFC 6750's WWW-Authenticate header naming the scope.
func Refuse(c *fiber.Ctx, need Set) *httperr.Error {
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="arbor", error="insufficient_scope", scope="`+need.String()+`"`)
	return httperr.New(http.StatusForbidden, CodeInsufficient,
		"This access token may not do this: it lacks the scope "+need.String()+"; log in with a client that is allowed it")
}

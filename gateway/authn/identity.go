package authn

import (
	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/service/membership"
)

// Kind is the kind of credential that authenticated a caller.
type Kind uint8

// Kinds. The zero Kind is no caller.
const (
	KindNone Kind = iota
	// KindSession is a person's browser, by its session cookie (package
	// session). SessionID is set.
	KindSession
	// KindCLI is a CLI access token (service/clilogin, CLI). LoginID and Scopes
	// are set.
	KindCLI
	// KindWorker is a registered worker, by its X-Worker-ID and
	// X-Worker-Token (package workers). WorkerID is set; UserID is the
	// worker's owner.
	KindWorker
	// KindService is a configured backend, by its service token. Service
	// is set; UserID is empty (the route names the user).
	KindService
	// KindRepo is a repository credential, by HTTP Basic on the Git proxy
	// (package workers, repos.go). WorkerID is the credential's id; UserID
	// its owner, whose provider connections it uses. Its scopes and
	// repository patterns come from Chain.Repo, not in Identity.
	KindRepo
	numKinds
)

var kindNames = [numKinds]string{"none", "session", "cli", "worker", "service", "repo"}

// String names the kind ("session", "cli", …) for logs.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// Identity is the caller of a request, as an Authenticator found it.
type Identity struct {
	Kind Kind
	// Scopes is what a CLI access token may do (package scope), set only
	// for KindCLI: the other kinds are not scoped. (Next to Kind, so that
	// both share a word and an Identity stays in the 128-byte size class
	// the Gate allocates per request.)
	Scopes scope.Set
	// UserID is the person the request acts for: the signed-in user, the
	// CLI token's user or the worker's owner. Empty for a service.
	UserID string
	Email  string
	Login  string
	// SessionID is the browser session (KindSession).
	SessionID string
	// WorkerID is the worker (KindWorker) or repository credential
	// (KindRepo).
	WorkerID string
	// LoginID is the CLI login (refresh family) of a CLI access token
	// (KindCLI), so that what it opened (a WebSocket tunnel) can end with
	// the login.
	LoginID string
	// Service is the configured backend's name (KindService).
	Service string
	// Member is the user's standing as the chain found it when it
	// consulted Members (Config.Members): set for a session, a CLI token
	// or a worker when a policy is configured, nil otherwise. Shared and
	// read-only.
	Member *membership.Member
}

// Outcome is an Authenticator's answer (see the package documentation).
type Outcome uint8

// Outcomes.
const (
	// None: the request carries no credential of this kind.
	None Outcome = iota
	// Authenticated: the Identity is the caller.
	Authenticated
	// Refused: a credential of this kind is present but not valid; the
	// error says why, for the log.
	Refused
	// Failed: the credential could not be checked; the error is the
	// technical failure (the store is unavailable).
	Failed
)

// Authenticator checks one kind of credential on a request. The error is
// nil for None and Authenticated, the reason for Refused and the failure
// for Failed; it is for logs, never sent to the client.
type Authenticator interface {
	Authenticate(c *fiber.Ctx) (Identity, Outcome, error)
}

// AuthenticatorFunc is a function as an Authenticator.
type AuthenticatorFunc func(c *fiber.Ctx) (Identity, Outcome, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(c *fiber.Ctx) (Identity, Outcome, error) { return f(c) }

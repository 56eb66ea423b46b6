package authn

import (
	"errors"

	"github.com/gofiber/fiber/v2"
)

// Sessions authenticates the session cookie (session.Manager.Cookies).
type Sessions interface {
	Authenticator
	// ClearCookie removes the session cookie from the browser, after the
	// chain refused it on a proxied route.
	ClearCookie(c *fiber.Ctx)
}

// Config is the chain's authenticators, one per kind of credential.
type Config struct {
	// Session authenticates the session cookie. Required.
	Session Sessions
	// CLI authenticates CLI access tokens sent as Authorization: Bearer
	// (CLI). Nil: no route accepts them.
	CLI Authenticator
	// Worker authenticates X-Worker-ID and X-Worker-Token
	// (workers.Service). Nil: no worker routes.
	Worker Authenticator
	// Repo authenticates repository credentials sent as HTTP Basic
	// (RepoCredentials). Nil: the Git proxy accepts no one.
	Repo RepoAuthenticator
	// ServiceTokens may call the service route (KindService). None: the
	// route answers 404.
	ServiceTokens []ServiceToken
	// Members answers the standing of an authenticated user (the
	// membership service): every route but Session refuses a user the
	// policy refuses, 403 with the Verdict's code. Nil: no policy, and no
	// cost.
	Members Members
}

// Chain is the one ordered chain of authenticators. Build it once with
// New; it is safe for concurrent use.
type Chain struct {
	by      [numKinds]Authenticator
	session Sessions
	members Members
	repo    RepoAuthenticator // the same as by[KindRepo]
}

// New builds the chain from cfg.
func New(cfg Config) (*Chain, error) {
	if cfg.Session == nil {
		return nil, errors.New("authn: Config.Session is required")
	}
	ch := &Chain{session: cfg.Session, members: cfg.Members}
	ch.by[KindSession] = cfg.Session
	ch.by[KindCLI], ch.by[KindWorker] = cfg.CLI, cfg.Worker
	if cfg.Repo != nil {
		ch.by[KindRepo], ch.repo = cfg.Repo, cfg.Repo
	}
	if len(cfg.ServiceTokens) > 0 {
		s, err := newServiceTokens(cfg.ServiceTokens)
		if err != nil {
			return nil, err
		}
		ch.by[KindService] = s
	}
	return ch, nil
}

// Accepts reports whether the chain has an authenticator for kind k.
func (ch *Chain) Accepts(k Kind) bool { return k < numKinds && ch.by[k] != nil }

// ConsultsMembers reports whether the chain consults Members (a policy is
// configured), so that identities carry their Member.
func (ch *Chain) ConsultsMembers() bool { return ch.members != nil }

// Authenticator returns the chain's authenticator of kind k, nil if it has
// none.
func (ch *Chain) Authenticator(k Kind) Authenticator {
	if k < numKinds {
		return ch.by[k]
	}
	return nil
}

// authenticate is the one function that authenticates a request: it asks
// the authenticators of order, in order, and the first whose credential
// is present decides. It returns the outcome, the kind that decided
// (KindNone when none was present) and the authenticator's error.
func (ch *Chain) authenticate(c *fiber.Ctx, order []Kind) (Identity, Outcome, Kind, error) {
	for _, k := range order {
		a := ch.by[k]
		if a == nil {
			continue
		}
		id, out, err := a.Authenticate(c)
		switch out {
		case None:
			continue
		case Authenticated:
			id.Kind = k
			return id, out, k, nil
		}
		if err == nil {
			err = errNoReason
		}
		return Identity{}, out, k, err
	}
	return Identity{}, None, KindNone, nil
}

var errNoReason = errors.New("authn: the authenticator gave no reason")

// errNoCredentials is logged when a route that needs a credential of one
// kind found none.
var errNoCredentials = errors.New("authn: no credentials")

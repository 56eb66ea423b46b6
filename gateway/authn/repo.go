package authn

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/workers"
)

// CodeRepoUnauthorized is the one answer to a Git proxy request without a
// valid repository credential.
const CodeRepoUnauthorized = "repo_unauthorized"

// RepoAuthenticator authenticates repository credentials. Besides the
// chain's Identity it returns the credential's grant (scopes, repository
// patterns), which Identity does not carry: only the Git proxy needs it,
// and every other request would pay for the room.
type RepoAuthenticator interface {
	Authenticator
	AuthenticateRepo(c *fiber.Ctx) (Identity, workers.Identity, Outcome, error)
}

// RepoCredentials is the worker service as the chain's repository
// credential authenticator (KindRepo): HTTP Basic, whose user name must be
// the credential's id and whose password is its token (what ArgoCD's
// repository secret and git's credential helpers send).
func RepoCredentials(s *workers.Service) RepoAuthenticator { return repoCredentials{s} }

type repoCredentials struct{ s *workers.Service }

var (
	errNotBasic   = errors.New("authn: the Authorization header is not HTTP Basic")
	errBadBasic   = errors.New("authn: the Basic credentials are not base64 of id:token")
	errTwoAuthors = errors.New("authn: more than one Authorization header")
)

func (cr repoCredentials) Authenticate(c *fiber.Ctx) (Identity, Outcome, error) {
	id, _, out, err := cr.AuthenticateRepo(c)
	return id, out, err
}

// AuthenticateRepo sorts the service's answers into the chain's outcomes:
// no Authorization header is None; another scheme, a malformed or
// repeated header, an unknown id or a wrong token are Refused; a store
// that is unavailable or closed is Failed.
func (cr repoCredentials) AuthenticateRepo(c *fiber.Ctx) (Identity, workers.Identity, Outcome, error) {
	all := c.Request().Header.PeekAll(fiber.HeaderAuthorization)
	switch {
	case len(all) == 0:
		return Identity{}, workers.Identity{}, None, nil
	case len(all) > 1:
		return Identity{}, workers.Identity{}, Refused, errTwoAuthors
	}
	scheme, enc, _ := bytes.Cut(bytes.TrimSpace(all[0]), []byte(" "))
	if !bytes.EqualFold(scheme, []byte("Basic")) {
		return Identity{}, workers.Identity{}, Refused, errNotBasic
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
	n, err := base64.StdEncoding.Decode(raw, bytes.TrimSpace(enc))
	if err != nil {
		return Identity{}, workers.Identity{}, Refused, errBadBasic
	}
	user, tok, ok := bytes.Cut(raw[:n], []byte(":"))
	if !ok {
		return Identity{}, workers.Identity{}, Refused, errBadBasic
	}
	w, err := cr.s.AuthenticateRepo(c.UserContext(), user, tok, func() string { return clientAddr(c) })
	clear(raw) // the token
	switch {
	case err == nil:
		return Identity{Kind: KindRepo, UserID: w.UserID, WorkerID: w.WorkerID}, w, Authenticated, nil
	case errors.Is(err, data.ErrUnavailable), errors.Is(err, data.ErrClosed):
		return Identity{}, workers.Identity{}, Failed, err
	}
	return Identity{}, workers.Identity{}, Refused, err
}

// Repo finds the repository credential of a Git proxy request: HTTP Basic
// only. Every refusal, and a request without credentials, gets 401
// repo_unauthorized with WWW-Authenticate: Basic, so that git asks its
// credential helper (or the user) and tries again; the reason is logged.
// A store that cannot be read is 503. The owner must still pass the
// policy (Members), as a worker's must.
func (ch *Chain) Repo(c *fiber.Ctx) (Identity, workers.Identity, error) {
	if ch.repo == nil {
		return Identity{}, workers.Identity{}, httperr.NotFound("This Arbor does not serve Git repositories")
	}
	id, grant, out, err := ch.repo.AuthenticateRepo(c)
	switch out {
	case Authenticated:
		id.Kind = KindRepo
		if e := ch.standing(c, &id); e != nil {
			return Identity{}, workers.Identity{}, e
		}
		return id, grant, nil
	case Failed:
		return Identity{}, workers.Identity{}, httperr.StoreUnavailable(err, "Arbor could not check the repository credential; try again in a moment")
	case None:
		err = errNoCredentials
	}
	gateway.Logger(c).Info("repository credential refused", "err", err)
	c.Set(fiber.HeaderWWWAuthenticate, `Basic realm="arbor", charset="UTF-8"`)
	return Identity{}, workers.Identity{}, httperr.Wrap(err, http.StatusUnauthorized, CodeRepoUnauthorized,
		"This URL needs a repository credential: HTTP Basic with the credential's id as user name and its token as password (create one with POST /api/workers or on the Workers page)")
}

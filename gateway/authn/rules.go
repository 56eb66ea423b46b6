package authn

import (
	"net/http"
	"net/url"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/sdk/client"
)

// The rules of each class of route: which kinds count, in which order (the
// first present decides), and the answer when there is no caller. Every
// route that needs a caller calls one of the methods below; they all go
// through Chain.authenticate.

// Orders.
var (
	orderUpstream = []Kind{KindSession, KindCLI}
	orderWorker   = []Kind{KindWorker}
	orderBearer   = []Kind{KindCLI, KindSession}
	orderSession  = []Kind{KindSession}
	orderService  = []Kind{KindService}
)

// CodeWorkerUnauthorized is the one answer to a failed worker
// authentication (the SDK's constant: the worker client matches on it).
const CodeWorkerUnauthorized = client.CodeWorkerUnauthorized

// CodeInvalidServiceToken answers a service route request without a
// configured service token.
const CodeInvalidServiceToken = "invalid_service_token"

// PathSignIn is where a page without a session sends the browser.
const PathSignIn = "/auth/sign-in"

// Upstream finds the caller of a request relayed to the upstream app: the
// session cookie, else a CLI access token with the proxy scope. ok false
// with a nil error means no caller; the route's class decides whether that
// is allowed. A refused cookie is cleared. A bearer token that is refused
// or cannot be checked counts as none: it may be the upstream's own.
// public says the route is public: a session that cannot be checked is
// then logged and treated as none, where other routes answer 503.
func (ch *Chain) Upstream(c *fiber.Ctx, public bool) (id Identity, ok bool, err error) {
	id, out, kind, err := ch.authenticate(c, orderUpstream)
	switch {
	case out == Authenticated && kind == KindCLI && !id.Scopes.Has(scope.Proxy):
		// A live token that may not reach the app is refused on every
		// proxied route, public ones too: relayed without an identity, it
		// would reach the upstream, which could use it on Arbor's API.
		return Identity{}, false, scope.Refuse(c, scope.Proxy)
	case out == Authenticated:
		if e := ch.standing(c, &id); e != nil {
			if public && e.Status >= 500 {
				gateway.Logger(c).Warn("membership check failed; serving a public route without identity", "err", e.Err)
				return Identity{}, false, nil
			}
			return Identity{}, false, e
		}
		return id, true, nil
	case kind == KindCLI, out == None:
		return Identity{}, false, nil
	case out == Refused:
		gateway.Logger(c).Debug("session cookie refused", "err", err)
		ch.session.ClearCookie(c)
		return Identity{}, false, nil
	case public:
		gateway.Logger(c).Warn("session check failed; serving a public route without identity", "err", err)
		return Identity{}, false, nil
	}
	return Identity{}, false, httperr.StoreUnavailable(err, "Arbor could not check your session; try again in a moment")
}

// Worker finds the worker of a worker route: worker credentials only, and
// every refusal gets the same answer.
func (ch *Chain) Worker(c *fiber.Ctx) (Identity, error) {
	id, out, _, err := ch.authenticate(c, orderWorker)
	switch out {
	case Authenticated:
		if e := ch.standing(c, &id); e != nil {
			return Identity{}, e
		}
		return id, nil
	case Failed:
		// Not the worker's fault: it may retry.
		return Identity{}, httperr.StoreUnavailable(err, "Arbor could not check the worker's credentials; try again in a moment")
	case None:
		err = errNoCredentials
	}
	gateway.Logger(c).Info("worker authentication refused", "err", err)
	c.Set(fiber.HeaderWWWAuthenticate, `X-Worker-Token realm="arbor"`)
	return Identity{}, httperr.New(http.StatusUnauthorized, CodeWorkerUnauthorized, "This route needs a registered worker's X-Worker-ID and X-Worker-Token")
}

// API finds the caller of one of Arbor's JSON APIs: a CLI access token
// when one is sent (it must carry need, else 403 insufficient_scope; a
// zero need refuses every token), else the session cookie. Without either,
// 401 unauthenticated; when the store cannot be read, 503.
func (ch *Chain) API(c *fiber.Ctx, need scope.Set) (Identity, error) {
	id, out, kind, err := ch.authenticate(c, orderBearer)
	switch {
	case out == Authenticated && kind == KindCLI && (need == 0 || !id.Scopes.Has(need)):
		return id, scope.Refuse(c, need)
	case out == Authenticated:
		if e := ch.standing(c, &id); e != nil {
			return Identity{}, e
		}
		return id, nil
	case out == Failed:
		return Identity{}, httperr.StoreUnavailable(err, "Arbor could not check the "+credential(kind))
	case kind == KindCLI:
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="arbor", error="invalid_token"`)
		return Identity{}, httperr.Wrap(err, http.StatusUnauthorized, httperr.CodeUnauthenticated, "The bearer token is not a live CLI access token; log in again")
	}
	c.Set(fiber.HeaderWWWAuthenticate, `Cookie realm="arbor"`)
	return Identity{}, httperr.New(http.StatusUnauthorized, httperr.CodeUnauthenticated, "Sign in first: this API needs a signed-in session or a CLI access token")
}

// Who finds the caller of /api/auth/me: a CLI access token when one is
// sent, else the session cookie, whatever the token's scopes.
func (ch *Chain) Who(c *fiber.Ctx) (Identity, error) {
	id, out, _, err := ch.authenticate(c, orderBearer)
	switch out {
	case Authenticated:
		if e := ch.standing(c, &id); e != nil {
			return Identity{}, e
		}
		return id, nil
	case Failed:
		return Identity{}, httperr.StoreUnavailable(err, "Arbor could not check the credentials")
	}
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="arbor"`)
	return Identity{}, httperr.New(http.StatusUnauthorized, httperr.CodeUnauthenticated, "Send a CLI access token as Authorization: Bearer, or sign in")
}

// Page finds the signed-in person of a page request. Without a session it
// redirects to the sign-in page, which comes back here afterwards, and
// reports ok false with the redirect's error to return.
func (ch *Chain) Page(c *fiber.Ctx) (id Identity, ok bool, err error) {
	id, out, _, _ := ch.authenticate(c, orderSession)
	if out != Authenticated {
		return Identity{}, false, c.Redirect(PathSignIn+"?return_to="+url.QueryEscape(c.OriginalURL()), http.StatusFound)
	}
	if e := ch.standing(c, &id); e != nil {
		return Identity{}, false, e
	}
	return id, true, nil
}

// Form finds the signed-in person of a page's form POST: without a
// session, 401 unauthenticated.
func (ch *Chain) Form(c *fiber.Ctx) (Identity, error) {
	id, out, _, _ := ch.authenticate(c, orderSession)
	if out != Authenticated {
		return Identity{}, httperr.New(http.StatusUnauthorized, httperr.CodeUnauthenticated, "Sign in first")
	}
	if e := ch.standing(c, &id); e != nil {
		return Identity{}, e
	}
	return id, nil
}

// Session finds the signed-in person for the routes that decide
// themselves what a missing or refused session means (sign-in's own
// steps, the account page, /auth/whoami): the session cookie only, with
// the outcome kept apart (None, Refused, Failed: the authenticator's
// error) and nothing written to the response. It does not consult
// Members: a user the policy refuses can still sign out, and sign-in
// judges its new session itself.
func (ch *Chain) Session(c *fiber.Ctx) (Identity, Outcome, error) {
	id, out, _, err := ch.authenticate(c, orderSession)
	return id, out, err
}

// Service finds the configured backend calling the service route: a
// service token only.
func (ch *Chain) Service(c *fiber.Ctx) (Identity, error) {
	id, out, _, err := ch.authenticate(c, orderService)
	switch out {
	case Authenticated:
		return id, nil
	case Failed:
		return Identity{}, httperr.StoreUnavailable(err, "Arbor could not check the service token")
	}
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="arbor-service"`)
	return Identity{}, httperr.New(http.StatusUnauthorized, CodeInvalidServiceToken, "This route needs a configured service token as Authorization: Bearer …")
}

// credential names the kind of credential in a 503's message.
func credential(k Kind) string {
	if k == KindCLI {
		return "bearer token"
	}
	return "session"
}

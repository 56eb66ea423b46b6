package signin

import (
	"net/http"
	"net/url"
	"unsafe"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authz/access"
	"github.com/vintner/arbor/gateway/authz/assertion"
	"github.com/vintner/arbor/gateway/httperr"
)

// identityKey is the Locals key of the request's *authn.Identity.
type identityKey struct{}

// IdentityOf returns the identity Guard found on the request.
func IdentityOf(c *fiber.Ctx) (authn.Identity, bool) {
	id, ok := c.Locals(identityKey{}).(*authn.Identity)
	if !ok {
		return authn.Identity{}, false
	}
	return *id, true
}

type headerNames struct {
	userID, email, login, assertion, worker []byte
}

func newHeaderNames(h Headers) headerNames {
	canon := func(s string) []byte {
		var hh fasthttp.RequestHeader
		hh.Set(s, "x")
		var out []byte
		hh.VisitAll(func(k, _ []byte) { out = append([]byte(nil), k...) })
		return out
	}
	return headerNames{canon(h.UserID), canon(h.Email), canon(h.Login), canon(h.Assertion), canon("X-Arbor-Worker-Id")}
}

// Guard runs before every request relayed to the upstream (it is
// gateway.Options.Guard). It classifies the path with the policy, asks the
// chain who is calling (package authn: worker credentials on worker
// routes, else a session cookie or a CLI token), keeps the identity for
// Director, and stops requests that need a session and have none: a
// redirect to sign-in for a page (GET or HEAD of a session route), 401
// JSON otherwise.
func (w *SignIn) Guard(c *fiber.Ctx) (bool, error) {
	class, err := w.opts.Policy.Classify(c.Request().URI().PathOriginal())
	if err != nil {
		return false, httperr.Wrap(err, http.StatusBadRequest, httperr.CodeBadPath,
			"The request path is malformed (dot segments, backslashes, bad escapes or control characters)")
	}
	if w.opts.WorkerRoutes != nil && w.opts.Chain.Accepts(authn.KindWorker) {
		if wc, err := w.opts.WorkerRoutes.Classify(c.Request().URI().PathOriginal()); err == nil && wc == access.API {
			// A worker route: only worker credentials count.
			id, err := w.opts.Chain.Worker(c)
			if err != nil {
				return false, err
			}
			keepIdentity(c, id)
			return true, nil
		}
	}
	id, ok, err := w.opts.Chain.Upstream(c, class == access.Public)
	if err != nil {
		return false, err
	}
	if ok {
		keepIdentity(c, id)
		return true, nil
	}
	switch class {
	case access.Public:
		return true, nil
	case access.Session:
		if c.Method() == fiber.MethodGet || c.Method() == fiber.MethodHead {
			rt := returnPath(c.OriginalURL(), w.opts.AfterSignIn)
			c.Set(fiber.HeaderCacheControl, "no-store")
			return false, c.Redirect(PathSignIn+"?return_to="+url.QueryEscape(rt), http.StatusFound)
		}
	}
	c.Set(fiber.HeaderWWWAuthenticate, `Cookie realm="arbor"`)
	return false, httperr.New(http.StatusUnauthorized, httperr.CodeUnauthenticated, "Sign in first: this route needs a signed-in session")
}

// keepIdentity keeps id for Director and IdentityOf: the one allocation of
// an authenticated request, none for an anonymous one.
func keepIdentity(c *fiber.Ctx, id authn.Identity) {
	p := new(authn.Identity)
	*p = id
	c.Locals(identityKey{}, p)
}

// Director adds the identity headers to a request Guard let through with a
// session (it is gateway.Options.Director). The proxy has already stripped
// every client-sent X-Arbor-* header and the configured identity headers,
// so the upstream sees only these.
//
// It also removes Arbor's own cookies from the relayed Cookie header: the
// upstream has no use for the session token, and an upstream that logs
// headers or is compromised must not be able to replay it.
func (w *SignIn) Director(c *fiber.Ctx, req *fasthttp.Request) error {
	if len(req.Header.Cookie(w.opts.Sessions.CookieName())) > 0 {
		req.Header.DelCookie(w.opts.Sessions.CookieName())
	}
	if len(req.Header.Cookie(w.flow)) > 0 {
		req.Header.DelCookie(w.flow)
	}
	id, ok := c.Locals(identityKey{}).(*authn.Identity)
	if !ok {
		return nil
	}
	switch id.Kind {
	case authn.KindWorker:
		// The upstream gets the worker's identity, never its token.
		req.Header.Del("X-Worker-Token")
		req.Header.Del("X-Worker-ID")
		req.Header.SetCanonical(w.hdr.worker, bytesOf(id.WorkerID))
	case authn.KindCLI:
		// Authenticated by a CLI access token: the upstream gets the
		// identity, not the token, which would let it act as the user on
		// Arbor's API (provider tokens included) for the rest of the hour.
		req.Header.Del(fiber.HeaderAuthorization)
	}
	req.Header.SetCanonical(w.hdr.userID, bytesOf(id.UserID))
	if id.Email != "" {
		req.Header.SetCanonical(w.hdr.email, bytesOf(id.Email))
	}
	if id.Login != "" {
		req.Header.SetCanonical(w.hdr.login, bytesOf(id.Login))
	}
	if w.opts.Assertions != nil {
		tok, err := w.opts.Assertions.Sign(assertion.Identity{UserID: id.UserID, Email: id.Email, Login: id.Login, WorkerID: id.WorkerID})
		if err != nil {
			return httperr.Wrap(err, http.StatusInternalServerError, httperr.CodeInternal, "Arbor could not sign the identity assertion")
		}
		req.Header.SetCanonical(w.hdr.assertion, bytesOf(tok))
	}
	return nil
}

// bytesOf views s as bytes for fasthttp's setters, which copy: converting
// would allocate four times per request for nothing.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

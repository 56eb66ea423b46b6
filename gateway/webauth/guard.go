package webauth

import (
	"errors"
	"net/http"
	"net/url"
	"unsafe"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/access"
	"github.com/vintner/arbor/gateway/assertion"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/gateway/scope"
	"github.com/vintner/arbor/gateway/session"
)

// CodeUnauthenticated is the error code of a 401 for a route that needs a
// session.
const CodeUnauthenticated = "unauthenticated"

// CodeWorkerUnauthorized is the one answer to a failed worker
// authentication.
const CodeWorkerUnauthorized = "worker_unauthorized"

// identityKey is the Locals key of the request's session.Identity.
type identityKey struct{}

// IdentityOf returns the identity Guard found on the request.
func IdentityOf(c *fiber.Ctx) (session.Identity, bool) {
	id, ok := c.Locals(identityKey{}).(*session.Identity)
	if !ok {
		return session.Identity{}, false
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
// gateway.Options.Guard). It classifies the path with the policy,
// authenticates the session cookie, keeps the identity for Director, and
// stops requests that need a session and have none: a redirect to sign-in
// for a page (GET or HEAD of a session route), 401 JSON otherwise.
func (w *WebAuth) Guard(c *fiber.Ctx) (bool, error) {
	class, err := w.opts.Policy.Classify(c.Request().URI().PathOriginal())
	if err != nil {
		return false, httperr.Wrap(err, http.StatusBadRequest, httperr.CodeBadPath,
			"The request path is malformed (dot segments, backslashes, bad escapes or control characters)")
	}
	if w.opts.Workers != nil && w.opts.WorkerRoutes != nil {
		if wc, err := w.opts.WorkerRoutes.Classify(c.Request().URI().PathOriginal()); err == nil && wc == access.API {
			// A worker route: only worker credentials count, and every
			// failure gets the same answer.
			id, err := w.opts.Workers(c)
			if errors.Is(err, data.ErrUnavailable) || errors.Is(err, data.ErrClosed) {
				// Not the worker's fault: it may retry.
				return false, httperr.Wrap(err, http.StatusServiceUnavailable, httperr.CodeStoreUnavailable,
					"Arbor could not check the worker's credentials; try again in a moment")
			}
			if err != nil {
				gateway.Logger(c).Info("worker authentication refused", "err", err)
				c.Set(fiber.HeaderWWWAuthenticate, `X-Worker-Token realm="arbor"`)
				return false, httperr.New(http.StatusUnauthorized, CodeWorkerUnauthorized, "This route needs a registered worker's X-Worker-ID and X-Worker-Token")
			}
			c.Locals(identityKey{}, &id)
			return true, nil
		}
	}
	id, err := w.opts.Sessions.Authenticate(c)
	if errors.Is(err, session.ErrNoSession) && w.opts.Bearer != nil && len(c.Request().Header.Peek(fiber.HeaderAuthorization)) > 0 {
		if bid, berr := w.opts.Bearer(c); berr == nil {
			if !bid.Scopes.Has(scope.Proxy) {
				// A live token that may not reach the app is refused on
				// every proxied route, public ones too: relayed without an
				// identity, it would reach the upstream, which could use it
				// on Arbor's API.
				return false, scope.Refuse(c, scope.Proxy)
			}
			id, err = bid, nil
		}
	}
	switch {
	case err == nil:
		c.Locals(identityKey{}, &id)
		return true, nil
	case errors.Is(err, session.ErrNoSession):
	case errors.Is(err, session.ErrInvalid), errors.Is(err, session.ErrEnded):
		gateway.Logger(c).Debug("session cookie refused", "err", err)
		w.opts.Sessions.ClearCookie(c)
	default:
		if class != access.Public {
			return false, httperr.Wrap(err, http.StatusServiceUnavailable, httperr.CodeStoreUnavailable,
				"Arbor could not check your session; try again in a moment")
		}
		gateway.Logger(c).Warn("session check failed; serving a public route without identity", "err", err)
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
	return false, httperr.New(http.StatusUnauthorized, CodeUnauthenticated, "Sign in first: this route needs a signed-in session")
}

// Director adds the identity headers to a request Guard let through with a
// session (it is gateway.Options.Director). The proxy has already stripped
// every client-sent X-Arbor-* header and the configured identity headers,
// so the upstream sees only these.
//
// It also removes Arbor's own cookies from the relayed Cookie header: the
// upstream has no use for the session token, and an upstream that logs
// headers or is compromised must not be able to replay it.
func (w *WebAuth) Director(c *fiber.Ctx, req *fasthttp.Request) error {
	if len(req.Header.Cookie(w.opts.Sessions.CookieName())) > 0 {
		req.Header.DelCookie(w.opts.Sessions.CookieName())
	}
	if len(req.Header.Cookie(w.flow)) > 0 {
		req.Header.DelCookie(w.flow)
	}
	id, ok := c.Locals(identityKey{}).(*session.Identity)
	if !ok {
		return nil
	}
	if id.WorkerID != "" {
		// The upstream gets the worker's identity, never its token.
		req.Header.Del("X-Worker-Token")
		req.Header.Del("X-Worker-ID")
		req.Header.SetCanonical(w.hdr.worker, bytesOf(id.WorkerID))
	} else if id.SessionID == "" {
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

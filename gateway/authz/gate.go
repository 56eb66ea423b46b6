package authz

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unsafe"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authz/access"
	"github.com/vintner/arbor/gateway/authz/assertion"
	"github.com/vintner/arbor/gateway/authz/policy"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/gateway/signin/returnto"
	"github.com/vintner/arbor/service/workers"
)

// Headers names the request headers carrying the identity to the upstream.
type Headers struct {
	UserID    string
	Email     string
	Login     string
	Assertion string
	// Groups carries the user's visible groups, comma separated
	// (identity.groups_header; membership.Member.VisibleHeader), sent only
	// when the chain consults a policy.
	Groups string
}

// DefaultHeaders are the standard identity header names.
var DefaultHeaders = Headers{
	UserID:    "X-Arbor-User-Id",
	Email:     "X-Arbor-User-Email",
	Login:     "X-Arbor-User-Login",
	Assertion: "X-Arbor-Assertion",
	Groups:    "X-Arbor-User-Groups",
}

// GateOptions configure a Gate.
type GateOptions struct {
	// Policy classifies upstream paths (what a request needs). Required.
	Policy *access.Policy
	// WorkerRoutes classifies paths: those it calls access.API are worker
	// routes (when the chain accepts workers), where only worker
	// credentials count. Nil: none.
	WorkerRoutes *access.Policy
	// Chain decides who is calling (package authn). Required.
	Chain *authn.Chain
	// SignInPath is where an anonymous page load of a session route is
	// redirected, with its return_to (signin.PathSignIn). Required.
	SignInPath string
	// AfterSignIn is the return path when the request's own is not one
	// (config auth.after_sign_in). Default "/".
	AfterSignIn string
	// FlowPaths are the sign-in flow's paths, never a return path
	// (signin.FlowPaths()).
	FlowPaths []string
	// Headers are the identity header names. Zero fields: DefaultHeaders.
	Headers Headers
	// Assertions signs the identity assertion header; nil sends none.
	Assertions *assertion.Signer
	// Rules are the policy's route rules (package policy: policy.routes):
	// a signed-in caller on a path a rule governs must pass it, else 403
	// route_not_allowed; an anonymous one is sent to sign in. They need a
	// Chain that consults Members (authn.Config.Members), whose Member the
	// rules judge. Nil: none, and no cost.
	Rules *policy.Policy
	// SessionCookie and FlowCookie are the names of Arbor's cookies
	// (session.Manager.CookieName, SignIn.FlowCookieName), which Director
	// removes from the relayed Cookie header. Required.
	SessionCookie, FlowCookie string
}

// Gate decides whether a proxied request may reach the upstream and what
// the upstream learns of the caller. See the package doc.
type Gate struct {
	opts GateOptions
	hdr  headerNames
}

// NewGate checks opts and returns a Gate.
func NewGate(opts GateOptions) (*Gate, error) {
	var missing []string
	if opts.Policy == nil {
		missing = append(missing, "Policy")
	}
	if opts.Chain == nil {
		missing = append(missing, "Chain")
	}
	if opts.SignInPath == "" {
		missing = append(missing, "SignInPath")
	}
	if opts.SessionCookie == "" {
		missing = append(missing, "SessionCookie")
	}
	if opts.FlowCookie == "" {
		missing = append(missing, "FlowCookie")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("authz: GateOptions.%s required", strings.Join(missing, ", GateOptions."))
	}
	if !strings.HasPrefix(opts.SignInPath, "/") || strings.HasPrefix(opts.SignInPath, "//") {
		return nil, fmt.Errorf("authz: GateOptions.SignInPath %q must be a path on Arbor, starting with one /", opts.SignInPath)
	}
	if opts.AfterSignIn == "" {
		opts.AfterSignIn = "/"
	}
	if opts.SessionCookie == opts.FlowCookie {
		return nil, errors.New("authz: GateOptions.SessionCookie and FlowCookie must differ")
	}
	if opts.Headers.UserID == "" {
		opts.Headers.UserID = DefaultHeaders.UserID
	}
	if opts.Headers.Email == "" {
		opts.Headers.Email = DefaultHeaders.Email
	}
	if opts.Headers.Login == "" {
		opts.Headers.Login = DefaultHeaders.Login
	}
	if opts.Headers.Assertion == "" {
		opts.Headers.Assertion = DefaultHeaders.Assertion
	}
	if opts.Headers.Groups == "" {
		opts.Headers.Groups = DefaultHeaders.Groups
	}
	if !opts.Rules.HasRoutes() {
		opts.Rules = nil
	} else if !opts.Chain.ConsultsMembers() {
		return nil, errors.New("authz: GateOptions.Rules need a Chain that consults Members (authn.Config.Members): route rules judge the caller's memberships")
	}
	opts.FlowPaths = append([]string(nil), opts.FlowPaths...)
	return &Gate{opts: opts, hdr: newHeaderNames(opts.Headers)}, nil
}

// StrippedHeaders are the identity header names that are not X-Arbor-*,
// and the worker credentials; the proxy must strip them from client
// requests as it strips X-Arbor-* (gateway.Options.IdentityHeaders).
// Worker credentials never reach the upstream: Guard reads them on worker
// routes before the proxy strips them (the upstream gets the worker's id
// in its own header), and on any other route they mean nothing to Arbor
// and must not mean something to the app.
func (g *Gate) StrippedHeaders() []string {
	out := []string{workers.HeaderID, workers.HeaderToken}
	for _, h := range []string{g.opts.Headers.UserID, g.opts.Headers.Email, g.opts.Headers.Login, g.opts.Headers.Assertion, g.opts.Headers.Groups} {
		if !strings.HasPrefix(strings.ToLower(h), "x-arbor-") {
			out = append(out, h)
		}
	}
	return out
}

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
	userID, email, login, assertion, worker, groups []byte
}

func newHeaderNames(h Headers) headerNames {
	canon := func(s string) []byte {
		var hh fasthttp.RequestHeader
		hh.Set(s, "x")
		var out []byte
		hh.VisitAll(func(k, _ []byte) { out = append([]byte(nil), k...) })
		return out
	}
	return headerNames{canon(h.UserID), canon(h.Email), canon(h.Login), canon(h.Assertion), canon("X-Arbor-Worker-Id"), canon(h.Groups)}
}

// Guard runs before every request relayed to the upstream (it is
// gateway.Options.Guard). It classifies the path with the policy, asks the
// chain who is calling (package authn: worker credentials on worker
// routes, else a session cookie or a CLI token), keeps the identity for
// Director, and stops requests that need a session and have none: a
// redirect to sign-in for a page (GET or HEAD of a session route), 401
// JSON otherwise. On a path a route rule governs (GateOptions.Rules), the
// caller must pass it (403 route_not_allowed, in words), and an anonymous
// caller is treated as on a session route.
func (g *Gate) Guard(c *fiber.Ctx) (bool, error) {
	class, err := g.opts.Policy.Classify(c.Request().URI().PathOriginal())
	if err != nil {
		return false, httperr.Wrap(err, http.StatusBadRequest, httperr.CodeBadPath,
			"The request path is malformed (dot segments, backslashes, bad escapes or control characters)")
	}
	var route *policy.Route
	if g.opts.Rules != nil {
		route = g.opts.Rules.Route(c.Request().URI().PathOriginal())
		if route != nil && class == access.Public {
			class = access.Session
		}
	}
	if g.opts.WorkerRoutes != nil && g.opts.Chain.Accepts(authn.KindWorker) {
		if wc, err := g.opts.WorkerRoutes.Classify(c.Request().URI().PathOriginal()); err == nil && wc == access.API {
			// A worker route: only worker credentials count.
			id, err := g.opts.Chain.Worker(c)
			if err != nil {
				return false, err
			}
			if route != nil {
				if v := route.Admit(id.Member); !v.Admitted() {
					return false, httperr.Denied(v)
				}
			}
			keepIdentity(c, id)
			return true, nil
		}
	}
	id, ok, err := g.opts.Chain.Upstream(c, class == access.Public)
	if err != nil {
		return false, err
	}
	if ok {
		if route != nil {
			if v := route.Admit(id.Member); !v.Admitted() {
				return false, httperr.Denied(v)
			}
		}
		keepIdentity(c, id)
		return true, nil
	}
	switch class {
	case access.Public:
		return true, nil
	case access.Session:
		if c.Method() == fiber.MethodGet || c.Method() == fiber.MethodHead {
			rt := returnto.OrDefault(c.OriginalURL(), g.opts.AfterSignIn, g.opts.FlowPaths)
			c.Set(fiber.HeaderCacheControl, "no-store")
			return false, c.Redirect(g.opts.SignInPath+"?return_to="+url.QueryEscape(rt), http.StatusFound)
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
// so the upstream sees only these. With a policy, they include the groups
// header and the assertion's groups claim: the caller's Member.Visible
// (Member.VisibleHeader, built once per Member, so nothing is allocated
// here).
//
// It also removes Arbor's own cookies from the relayed Cookie header: the
// upstream has no use for the session token, and an upstream that logs
// headers or is compromised must not be able to replay it.
func (g *Gate) Director(c *fiber.Ctx, req *fasthttp.Request) error {
	if len(req.Header.Cookie(g.opts.SessionCookie)) > 0 {
		req.Header.DelCookie(g.opts.SessionCookie)
	}
	if len(req.Header.Cookie(g.opts.FlowCookie)) > 0 {
		req.Header.DelCookie(g.opts.FlowCookie)
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
		req.Header.SetCanonical(g.hdr.worker, bytesOf(id.WorkerID))
	case authn.KindCLI:
		// Authenticated by a CLI access token: the upstream gets the
		// identity, not the token, which would let it act as the user on
		// Arbor's API (provider tokens included) for the rest of the hour.
		req.Header.Del(fiber.HeaderAuthorization)
	}
	req.Header.SetCanonical(g.hdr.userID, bytesOf(id.UserID))
	if id.Email != "" {
		req.Header.SetCanonical(g.hdr.email, bytesOf(id.Email))
	}
	if id.Login != "" {
		req.Header.SetCanonical(g.hdr.login, bytesOf(id.Login))
	}
	groups := ""
	if id.Member != nil {
		groups = id.Member.VisibleHeader
	}
	if groups != "" {
		req.Header.SetCanonical(g.hdr.groups, bytesOf(groups))
	}
	if g.opts.Assertions != nil {
		tok, err := g.opts.Assertions.Sign(assertion.Identity{UserID: id.UserID, Email: id.Email, Login: id.Login, WorkerID: id.WorkerID, Groups: groups})
		if err != nil {
			return httperr.Wrap(err, http.StatusInternalServerError, httperr.CodeInternal, "Arbor could not sign the identity assertion")
		}
		req.Header.SetCanonical(g.hdr.assertion, bytesOf(tok))
	}
	return nil
}

// bytesOf views s as bytes for fasthttp's setters, which copy: converting
// would allocate four times per request for nothing.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

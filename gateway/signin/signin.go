// Package signin is Arbor's browser sign-in: the sign-in page, the OAuth
// 2.0 authorization code flow through provider plugins (signing in,
// linking another sign-in method, connecting a Git provider), logout and
// the assertion keys (/.well-known/jwks.json). The account page is
// pages.Account, and /auth/whoami is api.Whoami. Whether a proxied request
// needs a session, and what the upstream learns of the caller, is
// authz.Gate's: sign-in only starts and ends sessions.
//
// # Providers are plugins
//
// Nothing here knows a provider by name. The sign-in page shows one button
// per loaded plugin that can sign users in and has an OAuth client
// configured (Providers), so adding a provider is adding a plugin.
//
// # The flow, and what each step defends against
//
//   - /auth/start/{provider} writes nothing to the store. It seals the
//     flow's state (a PKCE verifier, the exact redirect URI, the provider,
//     the purpose, the return path, a 10-minute expiry) with AES-GCM into
//     the `state` parameter itself (package flowstate), bound to this
//     browser: the sealed value holds an HMAC of a random value kept in a
//     short-lived HttpOnly cookie, one per browser, so two tabs signing in
//     at once both work. A state that leaks (logs, Referer) is useless in
//     another browser and shows nothing (the verifier is encrypted), and an
//     attacker cannot make a victim's browser finish the attacker's
//     sign-in (login CSRF). An anonymous flood of starts therefore costs
//     the store nothing (it used to write a record per request).
//   - Each provider has its own redirect URI, /auth/callback/{provider},
//     and the state names the provider it was made for, so a code from
//     one provider cannot be replayed at another's callback.
//   - The callback opens the state (authentic, unexpired, this provider,
//     this browser; binding compared in constant time) and refuses one
//     already spent, all without writing: a callback that fails leaves no
//     trace, and does not burn the genuine user's sign-in either. Only
//     after the provider has exchanged the code (with the PKCE verifier)
//     does it record the state as spent, atomically (CreateOAuthState of
//     "spent:"+id, kept until the state's expiry), so that of two
//     callbacks with one state exactly one goes on. A replay is refused
//     before its code reaches the provider, which may revoke what it
//     issued for a code used twice. Then it asks the plugin who the user
//     is, and finds or creates the Arbor user by (provider, subject) —
//     never by login or unverified e-mail.
//   - With a policy (Options.Admission, package service/membership), the
//     person is judged before the user is found for writing or created:
//     for a provider whose groups the policy uses, their groups are read
//     with the sign-in's own token (the authorization asked for the groups
//     scopes). A refused person gets a 403 page with the Verdict's code,
//     the rule in words and what to do, and leaves no user, identity,
//     session or cookie behind; the refusal is audited. Once admitted and
//     resolved, the grant is kept sealed on the identity for the
//     background re-check (Admission.Keep).
//   - The state's keys derive from the session key: changing that key
//     makes sign-ins in flight fail (state_invalid); they start again.
//   - Every sign-in gets a new session id (package session), so a cookie
//     planted before sign-in is worthless after it.
//   - Return paths pass returnto.Validate: same-origin absolute paths only.
//
// Linking a second provider to a user happens only when that user is signed
// in and asks to (account page), or, when the operator enables it, by a
// verified e-mail address both providers vouch for.
package signin

import (
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/authz/assertion"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/gateway/internal/flowstate"
	"github.com/vintner/arbor/gateway/pages"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/service/membership"
)

// Paths of the routes Routes registers.
const (
	PathSignIn      = "/auth/sign-in"
	PathStart       = "/auth/start/"    // + provider
	PathLink        = "/auth/link/"     // + provider
	PathCallback    = "/auth/callback/" // + provider
	PathLogout      = "/auth/logout"
	PathAssets      = "/auth/assets/"
	PathJWKS        = "/.well-known/jwks.json"
	DefaultStateTTL = 10 * time.Minute
)

// Store is what the web flow needs from the store.
type Store interface {
	data.Users
	data.Identities
	data.OAuthStates
	data.Audit
}

// Connector stores a Git provider connection (package connections).
type Connector interface {
	Connect(ctx context.Context, userID, provider string, tok *abi.Token, user *abi.User) error
}

// Admission decides, after the provider vouched for a person and before
// any user is created or session started, whether they may sign in
// (*membership.Service is one; see package service/membership).
type Admission interface {
	// SignIn judges the person (provider, subject) with the sign-in's
	// token. The error is the store's.
	SignIn(ctx context.Context, provider, subject string, p membership.Profile, tok *abi.Token) (membership.Admission, error)
	// Keep records what SignIn learnt once the user is resolved; a
	// *membership.RefusedError refuses the sign-in after all.
	Keep(ctx context.Context, userID, provider, subject string, tok *abi.Token, adm membership.Admission) error
	// Link records what a sign-in method the signed-in user just linked
	// says about them (its grant and groups, for a group provider).
	Link(ctx context.Context, userID, provider, subject string, tok *abi.Token) error
	// GroupProvider reports whether the sign-in asks provider for the
	// groups scopes.
	GroupProvider(provider string) bool
}

// Options configure SignIn.
type Options struct {
	Store     Store
	Sessions  *session.Manager
	Providers Providers
	// Assertions is the identity assertion signer, whose public keys
	// /.well-known/jwks.json serves; nil serves none (404).
	Assertions *assertion.Signer
	// PublicURL is the external base URL (scheme://host[:port]); redirect
	// URIs are PublicURL + /auth/callback/{provider}.
	PublicURL string
	// Secure: browsers reach Arbor over https (the flow cookie gets the
	// __Host- prefix and Secure).
	Secure bool
	// LinkByVerifiedEmail: see package doc.
	LinkByVerifiedEmail bool
	// AfterSignIn is where a sign-in without a return path lands. Default "/".
	AfterSignIn string
	// StateTTL bounds a sign-in from start to callback. Default 10 minutes.
	StateTTL time.Duration
	// BindingKey (32+ bytes) keys the sealed OAuth state and its browser
	// binding (package flowstate). Changing it makes sign-ins in flight
	// fail with state_invalid; they start again.
	BindingKey []byte
	// Connector stores Git provider connections made through the flow;
	// nil disables BeginConnect.
	Connector Connector
	// Chain decides who is signed in (package authn). Required.
	Chain *authn.Chain
	// Admission, if set, admits or refuses each sign-in by the policy
	// (package service/membership); nil admits everyone the provider
	// vouches for.
	Admission Admission
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives what the flow logs besides the request logger.
	Logger *slog.Logger
	// AppName is the app's name in the pages and messages (config
	// ui.app_name). Empty: config.DefaultAppName.
	AppName string
}

// SignIn serves the sign-in routes.
type SignIn struct {
	opts    Options
	pages   *template.Template
	css     []byte
	cssETag string
	flow    string // the flow cookie's name
	states  *flowstate.Sealer
}

//go:embed assets
var assets embed.FS

// New checks opts and returns a SignIn.
func New(opts Options) (*SignIn, error) {
	var missing []string
	if opts.Store == nil {
		missing = append(missing, "Store")
	}
	if opts.Sessions == nil {
		missing = append(missing, "Sessions")
	}
	if opts.Chain == nil {
		missing = append(missing, "Chain")
	}
	if opts.Providers == nil {
		missing = append(missing, "Providers")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("signin: Options.%s required", strings.Join(missing, ", Options."))
	}
	if !strings.HasPrefix(opts.PublicURL, "http://") && !strings.HasPrefix(opts.PublicURL, "https://") {
		return nil, fmt.Errorf("signin: PublicURL %q must be an http(s) URL", opts.PublicURL)
	}
	if len(opts.BindingKey) < 32 {
		return nil, errors.New("signin: BindingKey must be at least 32 bytes")
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	if opts.AfterSignIn == "" {
		opts.AfterSignIn = "/"
	}
	if opts.StateTTL <= 0 {
		opts.StateTTL = DefaultStateTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	names := pages.Names{App: opts.AppName}.WithDefaults()
	opts.AppName = names.App
	pages, err := pages.Templates(names, assets, "assets/pages.html")
	if err != nil {
		return nil, fmt.Errorf("signin: parsing templates: %w", err)
	}
	css, err := assets.ReadFile("assets/arbor.css")
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(css)
	states, err := flowstate.New(opts.BindingKey)
	if err != nil {
		return nil, fmt.Errorf("signin: %w", err)
	}
	w := &SignIn{
		states:  states,
		opts:    opts,
		pages:   pages,
		css:     css,
		cssETag: fmt.Sprintf(`"%x"`, sum[:8]),
		flow:    "arbor_flow",
	}
	if opts.Secure {
		w.flow = "__Host-arbor_flow"
	}
	return w, nil
}

// FlowCookieName is the name of the sign-in flow's browser-binding cookie
// (__Host-arbor_flow behind https, else arbor_flow); authz.Gate removes it
// from what the upstream receives.
func (w *SignIn) FlowCookieName() string { return w.flow }

// Routes registers the sign-in, logout and key routes and the stylesheet
// of every page. Mount them with gateway.ClassAuth.
func (w *SignIn) Routes(r fiber.Router) {
	r.Get(PathSignIn, w.signIn)
	r.Get(PathStart+":provider", w.start)
	r.Get(PathLink+":provider", w.link)
	r.Get(PathCallback+":provider", w.callback)
	r.Get(PathLogout, w.logoutPage)
	r.Post(PathLogout, w.Logout)
	r.Get(PathAssets+"arbor.css", w.stylesheet)
	r.Get(PathJWKS, w.jwks)
}

// pageData is what every template gets.
type pageData struct {
	Title     string
	RequestID string
	Identity  *authn.Identity
	Notice    string
	// Refresh asks the browser to reload the page after 2 seconds.
	Refresh bool
}

// Who names the signed-in person in the page header.
func (p pageData) Who() string {
	if p.Identity == nil {
		return ""
	}
	return pages.Who(*p.Identity)
}

// render writes an HTML page with Arbor's page headers.
func (w *SignIn) render(c *fiber.Ctx, status int, name string, data any) error {
	return pages.Render(c, w.pages, status, name, data)
}

// flowError is a sign-in failure shown to the person as a page.
type flowError struct {
	status  int
	code    string
	title   string
	message string
	err     error // logged, never shown
	// retryAfter, if positive, is sent as Retry-After (a provider's rate
	// limit).
	retryAfter time.Duration
	// denied, if set, is the policy's refusal: the page explains it
	// (pages.Denied) instead of showing message.
	denied *membership.Verdict
}

func (e *flowError) Error() string {
	if e.err != nil {
		return e.code + ": " + e.err.Error()
	}
	return e.code
}

func (e *flowError) Unwrap() error { return e.err }

func fail(status int, code, title, message string, err error) *flowError {
	return &flowError{status: status, code: code, title: title, message: message, err: err}
}

// storeFailed is the page for "the store could not be read or written":
// httperr.StoreUnavailable's 503 store_unavailable with message, titled
// title.
func storeFailed(title, message string, err error) *flowError {
	e := httperr.StoreUnavailable(err, message)
	return fail(e.Status, e.Code, title, e.Message, e.Err)
}

// showError renders a flow error page and logs it (pages.StepError).
func (w *SignIn) showError(c *fiber.Ctx, fe *flowError) error {
	if fe.denied != nil {
		return pages.Denied(c, w.pages, *fe.denied, pages.ErrorPage{
			RequestID: gateway.RequestID(c),
			Back:      &pages.Link{Href: PathSignIn, Text: "Sign in with another account"},
		})
	}
	e := httperr.Wrap(fe.err, fe.status, fe.code, fe.message).WithRetryAfter(fe.retryAfter)
	return pages.StepError(c, w.pages, e, fe.title, PathSignIn)
}

func (w *SignIn) stylesheet(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	c.Set(fiber.HeaderETag, w.cssETag)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if string(c.Request().Header.Peek(fiber.HeaderIfNoneMatch)) == w.cssETag {
		return c.SendStatus(http.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, "text/css; charset=utf-8")
	return c.Send(w.css)
}

func (w *SignIn) jwks(c *fiber.Ctx) error {
	if w.opts.Assertions == nil {
		return fiber.ErrNotFound
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	c.Set(fiber.HeaderContentType, assertion.JWKSContentType)
	return c.Send(w.opts.Assertions.JWKS())
}

// audit appends an audit event; a failure is logged, never fatal to the
// request.
func (w *SignIn) audit(c *fiber.Ctx, e data.AuditEvent) {
	e.RequestID = gateway.RequestID(c)
	e.IP = gateway.ClientIP(c)
	if _, err := w.opts.Store.AppendAudit(context.WithoutCancel(c.UserContext()), e); err != nil {
		gateway.Logger(c).Error("writing an audit event failed", "action", e.Action, "err", err)
	}
}

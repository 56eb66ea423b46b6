// Package integrations serves the Integrations page (connect and
// disconnect Git providers) and the API the upstream app uses to get a
// user's provider tokens and repositories.
//
// # Who may ask for what
//
// Every route acts for exactly one user: the one whose session cookie (or,
// once the CLI has tokens, bearer token) came with the request. There is no
// parameter naming another user, so a user only ever reaches their own
// connections, the rule the upstream app's row-level security used to
// enforce. The one exception is the service route, for a configured backend
// (the job that keeps ArgoCD's repository credentials current): it names a
// user in its path, authenticates with its own credential, and every call
// is written to the audit trail.
package integrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/gateway/pages"
	"github.com/vintner/arbor/service/connections"
)

// Paths.
const (
	PathPage        = "/integrations"
	PathAPI         = "/api/providers"
	PathServiceBase = "/api/service/users/"
)

// Sessions is what the pages' forms need of session.Manager.
type Sessions interface {
	CSRFToken(sid string) string
	CheckCSRF(sid, token string) bool
}

// Starter begins the OAuth flow that connects a provider
// (webauth.WebAuth.BeginConnect).
type Starter interface {
	BeginConnect(c *fiber.Ctx, returnTo string) error
}

// Options configure the routes.
type Options struct {
	Broker   *connections.Broker
	Sessions Sessions
	Starter  Starter
	Audit    data.Audit
	// PublicURL is Arbor's external origin; a state-changing API call
	// with another Origin is refused.
	PublicURL string
	// Chain finds the caller of every route (package authn): the session
	// on the pages, a CLI token with scope providers or the session on the
	// API, a configured service token on the service route.
	Chain *authn.Chain
	// AppName is the app's name in the page and its notices (config
	// ui.app_name). Empty: config.DefaultAppName.
	AppName string
}

// Integrations serves the page and the API.
type Integrations struct {
	opts    Options
	pages   *template.Template
	notices map[string]noticeText // notices with the app's name
}

//go:embed assets
var assets embed.FS

// New checks opts.
func New(opts Options) (*Integrations, error) {
	if opts.Broker == nil || opts.Sessions == nil || opts.Chain == nil || opts.Starter == nil || opts.Audit == nil {
		return nil, errors.New("integrations: Options.Broker, Sessions, Chain, Starter and Audit are required")
	}
	names := pages.Names{App: opts.AppName}.WithDefaults()
	opts.AppName = names.App
	pages, err := pages.Templates(names, assets, "assets/page.html")
	if err != nil {
		return nil, fmt.Errorf("integrations: parsing templates: %w", err)
	}
	in := &Integrations{opts: opts, pages: pages}
	in.notices = make(map[string]noticeText, len(notices))
	for code, n := range notices {
		n.text = strings.ReplaceAll(n.text, appName, opts.AppName)
		in.notices[code] = n
	}
	return in, nil
}

// PageRoutes registers the Integrations page; mount with gateway.ClassAuth.
func (in *Integrations) PageRoutes(r fiber.Router) {
	r.Get(PathPage, in.page)
	r.Get(PathPage+"/:provider/connect", in.connect)
	r.Get(PathPage+"/:provider/disconnect", in.confirmDisconnect)
	r.Post(PathPage+"/:provider/disconnect", in.disconnectForm)
}

// APIRoutes registers the JSON API; mount with gateway.ClassAPI.
func (in *Integrations) APIRoutes(r fiber.Router) {
	r.Get(PathAPI, in.apiList)
	r.Get(PathAPI+"/:provider/token", in.apiToken)
	r.Get(PathAPI+"/:provider/repos", in.apiRepos)
	r.Delete(PathAPI+"/:provider", in.apiDisconnect)
	r.Get(PathServiceBase+":user/providers/:provider/token", in.serviceToken)
}

func (in *Integrations) render(c *fiber.Ctx, status int, name string, v any) error {
	return pages.Render(c, in.pages, status, name, v)
}

type card struct {
	connections.Status
	LastRefresh, Expires, ScopeList string
}

// Notices on the Integrations page. The query names one by a fixed code
// (?notice=connected) and the page shows Arbor's own text for it, never
// text from the query: a link to a genuine Arbor page must not be able to
// say what an attacker wants it to.
const (
	noticeConnected    = "connected"
	noticeDisconnected = "disconnected" // + "_" + connections.Outcome*, if any
)

type noticeText struct{ text, class string }

// appName stands in notices for the app's name (Options.AppName), which
// New puts in.
const appName = "\x00app"

// notices words each notice code. "warn": the grant may still be alive at
// the provider.
var notices = map[string]noticeText{
	noticeConnected:    {"Connected.", ""},
	noticeDisconnected: {"Disconnected.", ""},
	noticeDisconnected + "_" + connections.OutcomeRevoked: {
		"Disconnected, and the access was revoked at the provider.", ""},
	noticeDisconnected + "_" + connections.OutcomeAlreadyRevoked: {
		"Disconnected; the provider had already revoked the access.", ""},
	noticeDisconnected + "_" + connections.OutcomeRevokeUnsupported: {
		"Disconnected. This provider offers no way for apps to revoke access; remove " + appName + " under your account's authorised apps to be sure.", "warn"},
	noticeDisconnected + "_" + connections.OutcomeRevokePending: {
		"Disconnected in " + appName + ". The provider could not be reached to revoke the access; Arbor keeps trying in the background.", "warn"},
	noticeDisconnected + "_" + connections.OutcomeTokensUnreadable: {
		"The connection was removed from " + appName + ", but its tokens could not be read to revoke them at the provider; revoke the app in your provider account settings.", "warn"},
	noticeDisconnected + "_" + connections.OutcomePluginNotLoaded: {
		"The connection was removed from " + appName + ". Its provider's plugin is not loaded, so the grant could not be revoked there; revoke it in your provider account settings.", "warn"},
}

func (in *Integrations) page(c *fiber.Ctx) error {
	id, ok, err := in.opts.Chain.Page(c)
	if !ok {
		return err
	}
	list, err := in.opts.Broker.List(c.UserContext(), id.UserID)
	if err != nil {
		return Answer(err)
	}
	var cards []card
	for _, s := range list {
		cd := card{Status: s, ScopeList: strings.Join(s.Scopes, " ")}
		if !s.LastRefreshAt.IsZero() {
			cd.LastRefresh = s.LastRefreshAt.UTC().Format(time.DateTime + " UTC")
		}
		if !s.TokenExpiresAt.IsZero() {
			cd.Expires = s.TokenExpiresAt.UTC().Format(time.DateTime + " UTC")
		}
		cards = append(cards, cd)
	}
	n := in.notices[c.Query("notice")] // an unknown code shows nothing
	notice, class := n.text, n.class
	return in.render(c, http.StatusOK, "integrations", map[string]any{
		"Title": "Integrations", "Who": pages.Who(id), "RequestID": gateway.RequestID(c),
		"Cards": cards, "Notice": notice, "NoticeClass": class,
	})
}

func (in *Integrations) connect(c *fiber.Ctx) error {
	return in.opts.Starter.BeginConnect(c, PathPage+"?notice="+noticeConnected)
}

func (in *Integrations) displayName(ctx context.Context, userID, provider string) (string, bool) {
	list, err := in.opts.Broker.List(ctx, userID)
	if err != nil {
		return provider, false
	}
	for _, s := range list {
		if s.Provider == provider {
			return s.DisplayName, s.Connected
		}
	}
	return provider, false
}

func (in *Integrations) confirmDisconnect(c *fiber.Ctx) error {
	id, ok, err := in.opts.Chain.Page(c)
	if !ok {
		return err
	}
	p := c.Params("provider")
	name, connected := in.displayName(c.UserContext(), id.UserID, p)
	if !connected {
		return c.Redirect(PathPage, http.StatusFound)
	}
	return in.render(c, http.StatusOK, "disconnect", map[string]any{
		"Title": "Disconnect " + name, "Who": pages.Who(id), "RequestID": gateway.RequestID(c),
		"Provider": p, "DisplayName": name, "CSRF": in.opts.Sessions.CSRFToken(id.SessionID),
	})
}

func (in *Integrations) disconnectForm(c *fiber.Ctx) error {
	id, ok, err := in.opts.Chain.Page(c)
	if !ok {
		return err
	}
	if pages.CrossSite(c, in.opts.PublicURL) || !in.opts.Sessions.CheckCSRF(id.SessionID, reqbody.FormValue(c, "csrf")) {
		return httperr.New(http.StatusForbidden, "csrf_invalid", "This form was not sent from your Integrations page; reload it and try again")
	}
	p := c.Params("provider")
	res, err := in.opts.Broker.Disconnect(c.UserContext(), id.UserID, p)
	if err != nil && !errors.Is(err, connections.ErrNotConnected) {
		return Answer(err)
	}
	code := noticeDisconnected
	if res.Outcome != "" {
		code += "_" + res.Outcome
	}
	return c.Redirect(PathPage+"?notice="+url.QueryEscape(code), http.StatusSeeOther)
}

func (in *Integrations) apiList(c *fiber.Ctx) error {
	id, err := in.opts.Chain.API(c, scope.Providers)
	if err != nil {
		return err
	}
	list, err := in.opts.Broker.List(c.UserContext(), id.UserID)
	if err != nil {
		return Answer(err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"providers": list})
}

type tokenBody struct {
	Provider    string   `json:"provider"`
	AccessToken string   `json:"access_token"`
	TokenType   string   `json:"token_type,omitempty"`
	ExpiresAt   *string  `json:"expires_at"`
	Scopes      []string `json:"scopes,omitempty"`
}

func tokenJSON(c *fiber.Ctx, provider string, t connections.Token) error {
	body := tokenBody{Provider: provider, AccessToken: t.AccessToken, TokenType: t.TokenType, Scopes: t.Scopes}
	// expires_at is when to stop using the token and ask again, which is
	// before the provider's expiry: see connections.Token.UseUntil.
	if !t.UseUntil.IsZero() {
		s := t.UseUntil.UTC().Format(time.RFC3339)
		body.ExpiresAt = &s
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderPragma, "no-cache")
	return c.JSON(body)
}

func (in *Integrations) apiToken(c *fiber.Ctx) error {
	id, err := in.opts.Chain.API(c, scope.Providers)
	if err != nil {
		return err
	}
	p := c.Params("provider")
	t, err := in.opts.Broker.ValidProviderToken(c.UserContext(), id.UserID, p)
	if err != nil {
		return Answer(err)
	}
	return tokenJSON(c, p, t)
}

type repoJSON struct {
	ID            string `json:"id"`
	FullName      string `json:"full_name"`
	Description   string `json:"description,omitempty"`
	Private       bool   `json:"private"`
	DefaultBranch string `json:"default_branch,omitempty"`
	HTMLURL       string `json:"html_url,omitempty"`
	CloneURL      string `json:"clone_url,omitempty"`
	UpdatedAt     string `json:"updated_at,omitempty"`
}

func (in *Integrations) apiRepos(c *fiber.Ctx) error {
	id, err := in.opts.Chain.API(c, scope.Providers)
	if err != nil {
		return err
	}
	perPage := 30
	if s := c.Query("per_page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return httperr.BadRequest("bad_per_page", "per_page must be a number from 1 to 100")
		}
		perPage = n
	}
	cursor := c.Query("cursor")
	if len(cursor) > 2048 {
		return httperr.BadRequest("bad_cursor", "cursor is too long; pass the next_cursor of the previous page unchanged")
	}
	page, err := in.opts.Broker.Repos(c.UserContext(), id.UserID, c.Params("provider"), cursor, perPage)
	if err != nil {
		return Answer(err)
	}
	repos := make([]repoJSON, 0, len(page.Repos))
	for _, r := range page.Repos {
		j := repoJSON{ID: r.ID, FullName: r.FullName, Description: r.Description, Private: r.Private,
			DefaultBranch: r.DefaultBranch, HTMLURL: r.HTMLURL, CloneURL: r.CloneURL}
		if r.UpdatedAt > 0 {
			j.UpdatedAt = time.Unix(r.UpdatedAt, 0).UTC().Format(time.RFC3339)
		}
		repos = append(repos, j)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"repos": repos, "next_cursor": page.NextCursor})
}

func (in *Integrations) apiDisconnect(c *fiber.Ctx) error {
	id, err := in.opts.Chain.API(c, scope.Providers)
	if err != nil {
		return err
	}
	if pages.CrossSite(c, in.opts.PublicURL) {
		return httperr.New(http.StatusForbidden, "cross_origin", "A disconnect must come from this site")
	}
	res, err := in.opts.Broker.Disconnect(c.UserContext(), id.UserID, c.Params("provider"))
	if err != nil {
		return Answer(err)
	}
	return c.JSON(res)
}

// serviceToken lets a configured backend fetch a user's token.
func (in *Integrations) serviceToken(c *fiber.Ctx) error {
	if !in.opts.Chain.Accepts(authn.KindService) {
		return httperr.NotFound("No service may fetch tokens: none is configured")
	}
	svc, err := in.opts.Chain.Service(c)
	if err != nil {
		return err
	}
	user, p := c.Params("user"), c.Params("provider")
	t, err := in.opts.Broker.ValidProviderToken(c.UserContext(), user, p)
	err = Answer(err)
	outcome := "ok"
	if err != nil {
		outcome = httperr.From(err).Code
	}
	if _, aerr := in.opts.Audit.AppendAudit(context.WithoutCancel(c.UserContext()), data.AuditEvent{
		Action: "connection.token.service", Actor: "service:" + svc.Service, UserID: user, Target: p, Outcome: outcome,
		RequestID: gateway.RequestID(c), IP: gateway.ClientIP(c),
	}); aerr != nil {
		gateway.Logger(c).Error("writing an audit event failed; refusing the service token request", "err", aerr)
		return httperr.StoreUnavailable(aerr, "Arbor could not write the audit trail")
	}
	if err != nil {
		return err
	}
	return tokenJSON(c, p, t)
}

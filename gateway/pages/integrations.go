package pages

// The Integrations page (/integrations): where a person connects and
// disconnects Git providers. The connect flow is sign-in's (package
// gateway/signin, IntegrationsOptions.Starter); the JSON API over the same
// connections is api.Providers.

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/api"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/connections"
)

// PathIntegrations is the Integrations page.
const PathIntegrations = "/integrations"

// Starter begins the OAuth flow that connects a provider
// (signin.SignIn.BeginConnect).
type Starter interface {
	BeginConnect(c *fiber.Ctx, returnTo string) error
}

// IntegrationsOptions configure the Integrations page.
type IntegrationsOptions struct {
	Broker   *connections.Broker
	Sessions CSRF
	Starter  Starter
	// PublicURL is Arbor's external origin; a form posted from another
	// site is refused.
	PublicURL string
	// Chain finds the signed-in person (package authn).
	Chain *authn.Chain
	// AppName is the app's name in the page and its notices (config
	// ui.app_name). Empty: config.DefaultAppName.
	AppName string
}

// Integrations serves the Integrations page.
type Integrations struct {
	opts    IntegrationsOptions
	tmpl    *template.Template
	notices map[string]noticeText // notices with the app's name
}

// NewIntegrations checks opts.
func NewIntegrations(opts IntegrationsOptions) (*Integrations, error) {
	if opts.Broker == nil || opts.Sessions == nil || opts.Chain == nil || opts.Starter == nil {
		return nil, errors.New("pages: IntegrationsOptions.Broker, Sessions, Chain and Starter are required")
	}
	names := Names{App: opts.AppName}.WithDefaults()
	opts.AppName = names.App
	tmpl, err := Templates(names, assets, "assets/integrations.html")
	if err != nil {
		return nil, fmt.Errorf("pages: parsing the Integrations templates: %w", err)
	}
	in := &Integrations{opts: opts, tmpl: tmpl}
	in.notices = make(map[string]noticeText, len(notices))
	for code, n := range notices {
		n.text = strings.ReplaceAll(n.text, appName, opts.AppName)
		in.notices[code] = n
	}
	return in, nil
}

// Routes registers the Integrations page; mount with gateway.ClassAuth.
func (in *Integrations) Routes(r fiber.Router) {
	r.Get(PathIntegrations, in.page)
	r.Get(PathIntegrations+"/:provider/connect", in.connect)
	r.Get(PathIntegrations+"/:provider/disconnect", in.confirmDisconnect)
	r.Post(PathIntegrations+"/:provider/disconnect", in.disconnectForm)
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

// appName stands in notices for the app's name (IntegrationsOptions.AppName),
// which NewIntegrations puts in.
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
		return api.Answer(err)
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
	return Render(c, in.tmpl, http.StatusOK, "integrations", map[string]any{
		"Title": "Integrations", "Who": Who(id), "RequestID": gateway.RequestID(c),
		"Cards": cards, "Notice": notice, "NoticeClass": class,
	})
}

func (in *Integrations) connect(c *fiber.Ctx) error {
	return in.opts.Starter.BeginConnect(c, PathIntegrations+"?notice="+noticeConnected)
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
		return c.Redirect(PathIntegrations, http.StatusFound)
	}
	return Render(c, in.tmpl, http.StatusOK, "disconnect", map[string]any{
		"Title": "Disconnect " + name, "Who": Who(id), "RequestID": gateway.RequestID(c),
		"Provider": p, "DisplayName": name, "CSRF": in.opts.Sessions.CSRFToken(id.SessionID),
	})
}

func (in *Integrations) disconnectForm(c *fiber.Ctx) error {
	id, ok, err := in.opts.Chain.Page(c)
	if !ok {
		return err
	}
	if !FromOwnPage(c, in.opts.PublicURL, in.opts.Sessions, id.SessionID) {
		return httperr.New(http.StatusForbidden, "csrf_invalid", "This form was not sent from your Integrations page; reload it and try again")
	}
	res, err := in.opts.Broker.Disconnect(c.UserContext(), id.UserID, c.Params("provider"))
	if err != nil && !errors.Is(err, connections.ErrNotConnected) {
		return api.Answer(err)
	}
	code := noticeDisconnected
	if res.Outcome != "" {
		code += "_" + res.Outcome
	}
	return c.Redirect(PathIntegrations+"?notice="+url.QueryEscape(code), http.StatusSeeOther)
}

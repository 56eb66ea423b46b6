package api

// The Git provider connections API (/api/providers) and the service route
// (/api/service/users/{user}/providers/{provider}/token).
//
// # Who may ask for what
//
// Every route acts for exactly one user: the one whose session cookie or
// CLI access token (scope providers) came with the request. There is no
// parameter naming another user, so a user only ever reaches their own
// connections, the rule the upstream app's row-level security used to
// enforce. The one exception is the service route, for a configured backend
// (the job that keeps ArgoCD's repository credentials current): it names a
// user in its path, authenticates with its own credential, and every call
// is written to the audit trail.

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/connections"
)

// Paths of the provider routes.
const (
	PathProviders   = "/api/providers"
	PathServiceBase = "/api/service/users/"
)

// ProvidersOptions configure the provider routes.
type ProvidersOptions struct {
	Broker *connections.Broker
	// Audit records every call of the service route.
	Audit data.Audit
	// PublicURL is Arbor's external origin; a disconnect with another
	// Origin is refused.
	PublicURL string
	// Chain finds the caller (package authn): a CLI token with scope
	// providers or the session, a configured service token on the service
	// route.
	Chain *authn.Chain
}

// Providers serves the provider connections API and the service route.
type Providers struct {
	opts ProvidersOptions
}

// NewProviders checks opts.
func NewProviders(opts ProvidersOptions) (*Providers, error) {
	if opts.Broker == nil || opts.Chain == nil || opts.Audit == nil {
		return nil, errors.New("api: ProvidersOptions.Broker, Chain and Audit are required")
	}
	return &Providers{opts: opts}, nil
}

// Routes registers the routes; mount with gateway.ClassAPI.
func (p *Providers) Routes(r fiber.Router) {
	r.Get(PathProviders, p.list)
	r.Get(PathProviders+"/:provider/token", p.token)
	r.Get(PathProviders+"/:provider/repos", p.repos)
	r.Delete(PathProviders+"/:provider", p.disconnect)
	r.Get(PathServiceBase+":user/providers/:provider/token", p.serviceToken)
}

func (p *Providers) list(c *fiber.Ctx) error {
	id, err := p.opts.Chain.API(c, scope.Providers)
	if err != nil {
		return err
	}
	list, err := p.opts.Broker.List(c.UserContext(), id.UserID)
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

func (p *Providers) token(c *fiber.Ctx) error {
	id, err := p.opts.Chain.API(c, scope.Providers)
	if err != nil {
		return err
	}
	name := c.Params("provider")
	t, err := p.opts.Broker.ValidProviderToken(c.UserContext(), id.UserID, name)
	if err != nil {
		return Answer(err)
	}
	return tokenJSON(c, name, t)
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

func (p *Providers) repos(c *fiber.Ctx) error {
	id, err := p.opts.Chain.API(c, scope.Providers)
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
	page, err := p.opts.Broker.Repos(c.UserContext(), id.UserID, c.Params("provider"), cursor, perPage)
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

func (p *Providers) disconnect(c *fiber.Ctx) error {
	id, err := p.opts.Chain.API(c, scope.Providers)
	if err != nil {
		return err
	}
	if gateway.CrossSite(c, p.opts.PublicURL) {
		return httperr.New(http.StatusForbidden, "cross_origin", "A disconnect must come from this site")
	}
	res, err := p.opts.Broker.Disconnect(c.UserContext(), id.UserID, c.Params("provider"))
	if err != nil {
		return Answer(err)
	}
	return c.JSON(res)
}

// serviceToken lets a configured backend fetch a user's token.
func (p *Providers) serviceToken(c *fiber.Ctx) error {
	if !p.opts.Chain.Accepts(authn.KindService) {
		return httperr.NotFound("No service may fetch tokens: none is configured")
	}
	svc, err := p.opts.Chain.Service(c)
	if err != nil {
		return err
	}
	user, name := c.Params("user"), c.Params("provider")
	t, err := p.opts.Broker.ValidProviderToken(c.UserContext(), user, name)
	err = Answer(err)
	outcome := "ok"
	if err != nil {
		outcome = httperr.From(err).Code
	}
	if _, aerr := p.opts.Audit.AppendAudit(context.WithoutCancel(c.UserContext()), data.AuditEvent{
		Action: "connection.token.service", Actor: "service:" + svc.Service, UserID: user, Target: name, Outcome: outcome,
		RequestID: gateway.RequestID(c), IP: gateway.ClientIP(c),
	}); aerr != nil {
		gateway.Logger(c).Error("writing an audit event failed; refusing the service token request", "err", aerr)
		return httperr.StoreUnavailable(aerr, "Arbor could not write the audit trail")
	}
	if err != nil {
		return err
	}
	return tokenJSON(c, name, t)
}

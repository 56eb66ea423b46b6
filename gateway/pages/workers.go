package pages

// The Workers page (/workers): where a person registers workers, sees
// them, renames, rotates and revokes them. Package service/workers does the
// work; the JSON API over the same workers is api.Workers.
//
// # One-time tokens
//
// Registering or rotating shows the plaintext token exactly once, in a
// response rendered directly from the POST (never a redirect to a URL that
// could be reloaded, bookmarked or logged) with Cache-Control: no-store.
// After that only the hash exists.
//
// # Owner only
//
// Every form acts for the signed-in person and reaches only their
// workers: another user's worker id is a 404, the same answer as an
// unknown one, so ids cannot be probed.

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/api"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/sdk/client"
	"github.com/vintner/arbor/service/workers"
)

// Paths of the Workers page.
const (
	PathWorkers = "/workers"
	// PathWorkersScript is the page's one script: the token view's copy
	// button.
	PathWorkersScript = "/workers/assets/copy.js"
	// PathRepoCredentials is where the page's second form registers a
	// repository credential for the Git proxy (docs/git-proxy.md).
	PathRepoCredentials = "/workers/repo-credentials"
)

// WorkersOptions configure the Workers page.
type WorkersOptions struct {
	Workers  *workers.Service
	Sessions CSRF
	// PublicURL is Arbor's external origin; a form posted from another
	// site is refused.
	PublicURL string
	// Chain finds the signed-in person (package authn). Required.
	Chain *authn.Chain
	// IDEnv and TokenEnv are the environment variable names the token
	// view tells people to set. Default client.DefaultWorkerIDEnv and
	// client.DefaultWorkerTokenEnv.
	IDEnv, TokenEnv string
	// AppName and WorkerName are the product names the page speaks of
	// (config ui.app_name and ui.worker_name). Empty: config.DefaultAppName
	// and config.DefaultWorkerName.
	AppName, WorkerName string
}

// Workers serves the Workers page.
type Workers struct {
	opts   WorkersOptions
	tmpl   *template.Template
	copyJS []byte
}

// NewWorkers checks opts.
func NewWorkers(opts WorkersOptions) (*Workers, error) {
	if opts.Workers == nil || opts.Sessions == nil || opts.Chain == nil {
		return nil, errors.New("pages: WorkersOptions.Workers, Sessions and Chain are required")
	}
	if opts.IDEnv == "" {
		opts.IDEnv = client.DefaultWorkerIDEnv
	}
	if opts.TokenEnv == "" {
		opts.TokenEnv = client.DefaultWorkerTokenEnv
	}
	names := Names{App: opts.AppName, Worker: opts.WorkerName}.WithDefaults()
	opts.AppName, opts.WorkerName = names.App, names.Worker
	tmpl, err := Templates(names, assets, "assets/workers.html")
	if err != nil {
		return nil, fmt.Errorf("pages: parsing the Workers templates: %w", err)
	}
	copyJS, err := assets.ReadFile("assets/copy.js")
	if err != nil {
		return nil, fmt.Errorf("pages: reading the copy script: %w", err)
	}
	return &Workers{opts: opts, tmpl: tmpl, copyJS: copyJS}, nil
}

// Routes registers the Workers page; mount with gateway.ClassAuth.
func (p *Workers) Routes(r fiber.Router) {
	r.Get(PathWorkers, p.page)
	r.Post(PathWorkers, p.registerForm)
	r.Post(PathRepoCredentials, p.registerRepoForm)
	r.Get(PathWorkersScript, p.script)
	r.Post(PathWorkers+"/:id/rename", p.renameForm)
	r.Post(PathWorkers+"/:id/rotate", p.rotateForm)
	r.Get(PathWorkers+"/:id/revoke", p.confirmRevoke)
	r.Post(PathWorkers+"/:id/revoke", p.revokeForm)
}

type workerRow struct {
	api.Worker
	Created, LastUsed string
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateTime + " UTC")
}

func (p *Workers) page(c *fiber.Ctx) error {
	id, ok, err := p.opts.Chain.Page(c)
	if !ok {
		return err
	}
	notice := ""
	switch {
	case c.Query("renamed") != "":
		notice = "Renamed."
	case c.Query("revoked") != "":
		notice = "Revoked: the worker's token no longer works."
	}
	return p.list(c, id, http.StatusOK, notice, "")
}

func (p *Workers) list(c *fiber.Ctx, id authn.Identity, status int, notice, class string) error {
	list, err := p.opts.Workers.List(c.UserContext(), id.UserID)
	if err != nil {
		return err
	}
	rows := make([]workerRow, 0, len(list))
	for _, w := range list {
		rows = append(rows, workerRow{Worker: api.WorkerView(w), Created: when(w.CreatedAt), LastUsed: when(w.LastUsedAt)})
	}
	return Render(c, p.tmpl, status, "workers", map[string]any{
		"Title": "Workers", "Who": Who(id), "RequestID": gateway.RequestID(c),
		"Rows": rows, "Notice": notice, "NoticeClass": class, "MaxName": workers.MaxName,
		"CSRF": p.opts.Sessions.CSRFToken(id.SessionID),
	})
}

// form authenticates a form post and checks that it comes from the page.
func (p *Workers) form(c *fiber.Ctx) (authn.Identity, bool, error) {
	id, ok, err := p.opts.Chain.Page(c)
	if !ok {
		return id, false, err
	}
	if !FromOwnPage(c, p.opts.PublicURL, p.opts.Sessions, id.SessionID) {
		return id, false, httperr.New(http.StatusForbidden, "csrf_invalid", "This form was not sent from your Workers page; reload it and try again")
	}
	return id, true, nil
}

// formProblem shows a bad name, scope or repository pattern on the page
// itself, and anything else as an error page.
func (p *Workers) formProblem(c *fiber.Ctx, id authn.Identity, err error) error {
	if errors.Is(err, workers.ErrBadName) || errors.Is(err, workers.ErrBadScope) || errors.Is(err, workers.ErrBadRepoPattern) {
		return p.list(c, id, http.StatusBadRequest, api.Answer(err).(*httperr.Error).Message, "warn")
	}
	return api.Answer(err)
}

func (p *Workers) registerForm(c *fiber.Ctx) error {
	id, ok, err := p.form(c)
	if !ok {
		return err
	}
	w, tok, err := p.opts.Workers.Register(c.UserContext(), id.UserID, reqbody.FormValue(c, "name"))
	if err != nil {
		return p.formProblem(c, id, err)
	}
	return p.tokenView(c, id, w, tok, false)
}

// registerRepoForm registers a repository credential: a name, read or
// read-and-push, and the repositories it may reach (patterns separated by
// spaces, commas or new lines; none: every repository the owner can read).
func (p *Workers) registerRepoForm(c *fiber.Ctx) error {
	id, ok, err := p.form(c)
	if !ok {
		return err
	}
	var g workers.Grant
	switch access := reqbody.FormValue(c, "access"); access {
	case "read", "":
		g.Scopes = []string{workers.ScopeGitRead}
	case "write":
		g.Scopes = []string{workers.ScopeGitRead, workers.ScopeGitWrite}
	default:
		return p.formProblem(c, id, fmt.Errorf("%w: choose read, or read and push", workers.ErrBadScope))
	}
	g.Repos = strings.FieldsFunc(reqbody.FormValue(c, "repos"), func(r rune) bool {
		return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t'
	})
	w, tok, err := p.opts.Workers.RegisterWith(c.UserContext(), id.UserID, reqbody.FormValue(c, "name"), g)
	if err != nil {
		return p.formProblem(c, id, err)
	}
	return p.tokenView(c, id, w, tok, false)
}

func (p *Workers) rotateForm(c *fiber.Ctx) error {
	id, ok, err := p.form(c)
	if !ok {
		return err
	}
	w, tok, err := p.opts.Workers.Rotate(c.UserContext(), id.UserID, c.Params("id"))
	if err != nil {
		return p.formProblem(c, id, err)
	}
	return p.tokenView(c, id, w, tok, true)
}

// tokenView shows a token once. It is the only page with a script (the
// copy button), so it widens the policy by exactly that: script-src 'self'.
func (p *Workers) tokenView(c *fiber.Ctx, id authn.Identity, w data.Worker, tok string, rotated bool) error {
	title := "Worker registered"
	if len(w.Scopes) > 0 {
		title = "Repository credential registered"
	}
	if rotated {
		title = "New token for " + w.Name
	}
	err := Render(c, p.tmpl, http.StatusOK, "token", map[string]any{
		"Title": title, "Who": Who(id), "RequestID": gateway.RequestID(c),
		"Worker": api.WorkerView(w), "Token": tok, "Rotated": rotated, "Script": PathWorkersScript,
		"IDEnv": p.opts.IDEnv, "TokenEnv": p.opts.TokenEnv, "GitBase": strings.TrimRight(p.opts.PublicURL, "/") + "/git/",
	})
	c.Set(fiber.HeaderContentSecurityPolicy, CSP+"; script-src 'self'")
	return err
}

func (p *Workers) renameForm(c *fiber.Ctx) error {
	id, ok, err := p.form(c)
	if !ok {
		return err
	}
	if _, err := p.opts.Workers.Rename(c.UserContext(), id.UserID, c.Params("id"), reqbody.FormValue(c, "name")); err != nil {
		return p.formProblem(c, id, err)
	}
	return c.Redirect(PathWorkers+"?renamed=1", http.StatusSeeOther)
}

func (p *Workers) confirmRevoke(c *fiber.Ctx) error {
	id, ok, err := p.opts.Chain.Page(c)
	if !ok {
		return err
	}
	w, err := p.opts.Workers.Get(c.UserContext(), id.UserID, c.Params("id"))
	if errors.Is(err, workers.ErrNotFound) {
		return c.Redirect(PathWorkers, http.StatusFound)
	}
	if err != nil {
		return err
	}
	return Render(c, p.tmpl, http.StatusOK, "revoke", map[string]any{
		"Title": "Revoke " + w.Name, "Who": Who(id), "RequestID": gateway.RequestID(c),
		"Worker": api.WorkerView(w), "CSRF": p.opts.Sessions.CSRFToken(id.SessionID),
	})
}

func (p *Workers) revokeForm(c *fiber.Ctx) error {
	id, ok, err := p.form(c)
	if !ok {
		return err
	}
	if err := p.opts.Workers.Revoke(c.UserContext(), id.UserID, c.Params("id")); err != nil {
		return api.Answer(err)
	}
	return c.Redirect(PathWorkers+"?"+url.Values{"revoked": {"1"}}.Encode(), http.StatusSeeOther)
}

// script serves the copy button's script.
func (p *Workers) script(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	return c.Send(p.copyJS)
}

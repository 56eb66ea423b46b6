// Package workerpages serves the Workers page (/workers) and the workers
// API (/api/workers): where a person registers Tendril workers, sees them,
// renames, rotates and revokes them. Package workers does the work and
// authenticates the workers themselves; this package is only the two ways
// in, for people (a browser with a session) and for the Grape CLI (a
// bearer token).
//
// # One-time tokens
//
// Registering or rotating answers with the plaintext token exactly once:
// the API in its JSON, the page in a response rendered directly from the
// POST (never a redirect to a URL that could be reloaded, bookmarked or
// logged) with Cache-Control: no-store. After that only the hash exists.
//
// # Owner only
//
// Every route acts for the caller (package authn) and reaches only the
// caller's workers: another user's worker id is a 404, the same answer as
// an unknown one, so ids cannot be probed.
package workerpages

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/gateway/pages"
	"github.com/vintner/arbor/sdk/client"
	"github.com/vintner/arbor/service/workers"
)

// Paths.
const (
	PathPage = "/workers"
	PathAPI  = "/api/workers"
	// PathScript is the page's one script: the token view's copy button.
	PathScript = "/workers/assets/copy.js"
)

// Error codes.
const (
	CodeNotFound    = "worker_not_found"
	CodeInvalidName = "invalid_name"
	CodeInvalidBody = "invalid_body"
)

// Sessions is what the pages' forms need of session.Manager.
type Sessions interface {
	CSRFToken(sid string) string
	CheckCSRF(sid, token string) bool
}

// Options configure the routes.
type Options struct {
	Workers  *workers.Service
	Sessions Sessions
	// PublicURL is Arbor's external origin; a state-changing call from
	// another origin is refused.
	PublicURL string
	// Chain finds the caller (package authn): the session on the page, a
	// CLI token with scope workers or the session on the API. Required.
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

// Pages serves the page and the API.
type Pages struct {
	opts   Options
	tmpl   *template.Template
	copyJS []byte
}

//go:embed assets
var assets embed.FS

// New checks opts.
func New(opts Options) (*Pages, error) {
	if opts.Workers == nil || opts.Sessions == nil || opts.Chain == nil {
		return nil, errors.New("workerpages: Options.Workers, Sessions and Chain are required")
	}
	if opts.IDEnv == "" {
		opts.IDEnv = client.DefaultWorkerIDEnv
	}
	if opts.TokenEnv == "" {
		opts.TokenEnv = client.DefaultWorkerTokenEnv
	}
	names := pages.Names{App: opts.AppName, Worker: opts.WorkerName}.WithDefaults()
	opts.AppName, opts.WorkerName = names.App, names.Worker
	tmpl, err := pages.Templates(names, assets, "assets/pages.html")
	if err != nil {
		return nil, fmt.Errorf("workerpages: parsing templates: %w", err)
	}
	copyJS, err := assets.ReadFile("assets/copy.js")
	if err != nil {
		return nil, fmt.Errorf("workerpages: reading the copy script: %w", err)
	}
	return &Pages{
		opts:   opts,
		copyJS: copyJS,
		tmpl:   tmpl,
	}, nil
}

// PageRoutes registers the Workers page; mount with gateway.ClassAuth.
func (p *Pages) PageRoutes(r fiber.Router) {
	r.Get(PathPage, p.page)
	r.Post(PathPage, p.registerForm)
	r.Get(PathScript, p.script)
	r.Post(PathPage+"/:id/rename", p.renameForm)
	r.Post(PathPage+"/:id/rotate", p.rotateForm)
	r.Get(PathPage+"/:id/revoke", p.confirmRevoke)
	r.Post(PathPage+"/:id/revoke", p.revokeForm)
}

// APIRoutes registers the JSON API; mount with gateway.ClassAPI.
func (p *Pages) APIRoutes(r fiber.Router) {
	r.Get(PathAPI, p.apiList)
	r.Post(PathAPI, p.apiRegister)
	r.Get(PathAPI+"/:id", p.apiGet)
	r.Patch(PathAPI+"/:id", p.apiRename)
	r.Post(PathAPI+"/:id/rotate", p.apiRotate)
	r.Delete(PathAPI+"/:id", p.apiRevoke)
}

// problem turns the worker service's errors into answers.
func problem(err error) error {
	switch {
	case errors.Is(err, workers.ErrNotFound):
		return httperr.Wrap(err, http.StatusNotFound, CodeNotFound, "You have no worker with that id")
	case errors.Is(err, workers.ErrBadName):
		return httperr.Wrap(err, http.StatusBadRequest, CodeInvalidName, fmt.Sprintf("A worker name has 1 to %d characters and no control characters", workers.MaxName))
	}
	return err
}

// Worker is a worker as the API shows it: never its hash.
type Worker struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	CreatedAt   string `json:"created_at"`
	RotatedAt   string `json:"rotated_at,omitempty"`
	LastUsedAt  string `json:"last_used_at,omitempty"`
	LastAddress string `json:"last_address,omitempty"`
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func view(w data.Worker) Worker {
	return Worker{
		ID: w.ID, Name: w.Name, CreatedAt: stamp(w.CreatedAt), RotatedAt: stamp(w.RotatedAt),
		LastUsedAt: stamp(w.LastUsedAt), LastAddress: w.LastAddr,
	}
}

// ---- API ----

func (p *Pages) apiList(c *fiber.Ctx) error {
	id, err := p.opts.Chain.API(c, scope.Workers)
	if err != nil {
		return err
	}
	list, err := p.opts.Workers.List(c.UserContext(), id.UserID)
	if err != nil {
		return err
	}
	out := make([]Worker, 0, len(list))
	for _, w := range list {
		out = append(out, view(w))
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"workers": out})
}

// nameBody reads {"name": "..."}.
func nameBody(c *fiber.Ctx) (string, error) {
	var body struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(reqbody.Raw(c), &body); err != nil {
		return "", httperr.BadRequest(CodeInvalidBody, `The body must be JSON: {"name": "..."}`)
	}
	return body.Name, nil
}

// changing authenticates a state-changing API call and refuses one that a
// browser says comes from another site.
func (p *Pages) changing(c *fiber.Ctx) (authn.Identity, error) {
	id, err := p.opts.Chain.API(c, scope.Workers)
	if err != nil {
		return id, err
	}
	if pages.CrossSite(c, p.opts.PublicURL) {
		return id, httperr.New(http.StatusForbidden, "cross_origin", "Workers can only be changed from this site")
	}
	return id, nil
}

func (p *Pages) apiRegister(c *fiber.Ctx) error {
	id, err := p.changing(c)
	if err != nil {
		return err
	}
	name, err := nameBody(c)
	if err != nil {
		return err
	}
	w, tok, err := p.opts.Workers.Register(c.UserContext(), id.UserID, name)
	if err != nil {
		return problem(err)
	}
	return sendWorker(c, http.StatusCreated, w, tok)
}

// sendWorker answers with one worker, and with its token when the
// request just made one (registration, rotation). Never cached: the token
// is shown once.
func sendWorker(c *fiber.Ctx, status int, w data.Worker, token string) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	body := fiber.Map{"worker": view(w)}
	if token != "" {
		body["token"] = token
	}
	return c.Status(status).JSON(body)
}

func (p *Pages) apiGet(c *fiber.Ctx) error {
	id, err := p.opts.Chain.API(c, scope.Workers)
	if err != nil {
		return err
	}
	w, err := p.opts.Workers.Get(c.UserContext(), id.UserID, c.Params("id"))
	if err != nil {
		return problem(err)
	}
	return sendWorker(c, http.StatusOK, w, "")
}

func (p *Pages) apiRename(c *fiber.Ctx) error {
	id, err := p.changing(c)
	if err != nil {
		return err
	}
	name, err := nameBody(c)
	if err != nil {
		return err
	}
	w, err := p.opts.Workers.Rename(c.UserContext(), id.UserID, c.Params("id"), name)
	if err != nil {
		return problem(err)
	}
	return sendWorker(c, http.StatusOK, w, "")
}

func (p *Pages) apiRotate(c *fiber.Ctx) error {
	id, err := p.changing(c)
	if err != nil {
		return err
	}
	w, tok, err := p.opts.Workers.Rotate(c.UserContext(), id.UserID, c.Params("id"))
	if err != nil {
		return problem(err)
	}
	return sendWorker(c, http.StatusOK, w, tok)
}

func (p *Pages) apiRevoke(c *fiber.Ctx) error {
	id, err := p.changing(c)
	if err != nil {
		return err
	}
	if err := p.opts.Workers.Revoke(c.UserContext(), id.UserID, c.Params("id")); err != nil {
		return problem(err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.SendStatus(http.StatusNoContent)
}

// ---- page ----

type row struct {
	Worker
	Created, LastUsed string
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateTime + " UTC")
}

func (p *Pages) page(c *fiber.Ctx) error {
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

func (p *Pages) list(c *fiber.Ctx, id authn.Identity, status int, notice, class string) error {
	list, err := p.opts.Workers.List(c.UserContext(), id.UserID)
	if err != nil {
		return err
	}
	rows := make([]row, 0, len(list))
	for _, w := range list {
		rows = append(rows, row{Worker: view(w), Created: when(w.CreatedAt), LastUsed: when(w.LastUsedAt)})
	}
	return pages.Render(c, p.tmpl, status, "workers", map[string]any{
		"Title": "Workers", "Who": pages.Who(id), "RequestID": gateway.RequestID(c),
		"Rows": rows, "Notice": notice, "NoticeClass": class, "MaxName": workers.MaxName,
		"CSRF": p.opts.Sessions.CSRFToken(id.SessionID),
	})
}

// form authenticates a form post and checks its CSRF token.
func (p *Pages) form(c *fiber.Ctx) (authn.Identity, bool, error) {
	id, ok, err := p.opts.Chain.Page(c)
	if !ok {
		return id, false, err
	}
	if pages.CrossSite(c, p.opts.PublicURL) || !p.opts.Sessions.CheckCSRF(id.SessionID, reqbody.FormValue(c, "csrf")) {
		return id, false, httperr.New(http.StatusForbidden, "csrf_invalid", "This form was not sent from your Workers page; reload it and try again")
	}
	return id, true, nil
}

// formProblem shows a bad name on the page itself, and anything else as
// an error page.
func (p *Pages) formProblem(c *fiber.Ctx, id authn.Identity, err error) error {
	if errors.Is(err, workers.ErrBadName) {
		return p.list(c, id, http.StatusBadRequest, problem(err).(*httperr.Error).Message, "warn")
	}
	return problem(err)
}

func (p *Pages) registerForm(c *fiber.Ctx) error {
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

func (p *Pages) rotateForm(c *fiber.Ctx) error {
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
func (p *Pages) tokenView(c *fiber.Ctx, id authn.Identity, w data.Worker, tok string, rotated bool) error {
	title := "Worker registered"
	if rotated {
		title = "New token for " + w.Name
	}
	err := pages.Render(c, p.tmpl, http.StatusOK, "token", map[string]any{
		"Title": title, "Who": pages.Who(id), "RequestID": gateway.RequestID(c),
		"Worker": view(w), "Token": tok, "Rotated": rotated, "Script": PathScript,
		"IDEnv": p.opts.IDEnv, "TokenEnv": p.opts.TokenEnv,
	})
	c.Set(fiber.HeaderContentSecurityPolicy, pages.CSP+"; script-src 'self'")
	return err
}

func (p *Pages) renameForm(c *fiber.Ctx) error {
	id, ok, err := p.form(c)
	if !ok {
		return err
	}
	if _, err := p.opts.Workers.Rename(c.UserContext(), id.UserID, c.Params("id"), reqbody.FormValue(c, "name")); err != nil {
		return p.formProblem(c, id, err)
	}
	return c.Redirect(PathPage+"?renamed=1", http.StatusSeeOther)
}

func (p *Pages) confirmRevoke(c *fiber.Ctx) error {
	id, ok, err := p.opts.Chain.Page(c)
	if !ok {
		return err
	}
	w, err := p.opts.Workers.Get(c.UserContext(), id.UserID, c.Params("id"))
	if errors.Is(err, workers.ErrNotFound) {
		return c.Redirect(PathPage, http.StatusFound)
	}
	if err != nil {
		return err
	}
	return pages.Render(c, p.tmpl, http.StatusOK, "revoke", map[string]any{
		"Title": "Revoke " + w.Name, "Who": pages.Who(id), "RequestID": gateway.RequestID(c),
		"Worker": view(w), "CSRF": p.opts.Sessions.CSRFToken(id.SessionID),
	})
}

func (p *Pages) revokeForm(c *fiber.Ctx) error {
	id, ok, err := p.form(c)
	if !ok {
		return err
	}
	if err := p.opts.Workers.Revoke(c.UserContext(), id.UserID, c.Params("id")); err != nil {
		return problem(err)
	}
	return c.Redirect(PathPage+"?"+url.Values{"revoked": {"1"}}.Encode(), http.StatusSeeOther)
}

// script serves the copy button's script.
func (p *Pages) script(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	return c.Send(p.copyJS)
}

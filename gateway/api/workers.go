package api

// The workers API (/api/workers): where the Grape CLI (a bearer token with
// scope workers) or a page's script (the session) registers, lists,
// renames, rotates and revokes a person's workers and repository
// credentials (a registration with "scopes": ["git:read"], optionally
// "git:write" and "repos" patterns; docs/git-proxy.md). Package
// service/workers does the work and authenticates both.
//
// Registering or rotating answers with the plaintext token exactly once,
// in its JSON, with Cache-Control: no-store; after that only the hash
// exists. Every route reaches only the caller's workers: another user's
// worker id is a 404, the same answer as an unknown one, so ids cannot be
// probed.

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/sdk/client"
	"github.com/vintner/arbor/service/workers"
)

// PathWorkers is the workers API.
const PathWorkers = "/api/workers"

// Error codes of a refused repository credential.
const (
	CodeInvalidScope       = "invalid_scope"
	CodeInvalidRepoPattern = "invalid_repo_pattern"
)

// errorText is a service error's own text without its package prefix, for
// errors whose text is written for the client (what to write instead).
func errorText(err error) string {
	return strings.TrimPrefix(err.Error(), "workers: ")
}

// WorkersOptions configure the workers API.
type WorkersOptions struct {
	Workers *workers.Service
	// PublicURL is Arbor's external origin; a state-changing call from
	// another origin is refused.
	PublicURL string
	// Chain finds the caller (package authn): a CLI token with scope
	// workers or the session. Required.
	Chain *authn.Chain
}

// Workers serves the workers API.
type Workers struct {
	opts WorkersOptions
}

// NewWorkers checks opts.
func NewWorkers(opts WorkersOptions) (*Workers, error) {
	if opts.Workers == nil || opts.Chain == nil {
		return nil, errors.New("api: WorkersOptions.Workers and Chain are required")
	}
	return &Workers{opts: opts}, nil
}

// Routes registers the API; mount with gateway.ClassAPI.
func (a *Workers) Routes(r fiber.Router) {
	r.Get(PathWorkers, a.list)
	r.Post(PathWorkers, a.register)
	r.Get(PathWorkers+"/:id", a.get)
	r.Patch(PathWorkers+"/:id", a.rename)
	r.Post(PathWorkers+"/:id/rotate", a.rotate)
	r.Delete(PathWorkers+"/:id", a.revoke)
}

// Worker is a worker or repository credential as the API and the Workers
// page show it: never its hash. Scopes and Repos are a repository
// credential's (absent for a worker).
type Worker struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Scopes      []string `json:"scopes,omitempty"`
	Repos       []string `json:"repos,omitempty"`
	CreatedAt   string   `json:"created_at"`
	RotatedAt   string   `json:"rotated_at,omitempty"`
	LastUsedAt  string   `json:"last_used_at,omitempty"`
	LastAddress string   `json:"last_address,omitempty"`
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// WorkerView is w as the API shows it.
func WorkerView(w data.Worker) Worker {
	return Worker{
		ID: w.ID, Name: w.Name, Scopes: w.Scopes, Repos: w.Repos, CreatedAt: stamp(w.CreatedAt), RotatedAt: stamp(w.RotatedAt),
		LastUsedAt: stamp(w.LastUsedAt), LastAddress: w.LastAddr,
	}
}

func (a *Workers) list(c *fiber.Ctx) error {
	id, err := a.opts.Chain.API(c, scope.Workers)
	if err != nil {
		return err
	}
	list, err := a.opts.Workers.List(c.UserContext(), id.UserID)
	if err != nil {
		return err
	}
	out := make([]Worker, 0, len(list))
	for _, w := range list {
		out = append(out, WorkerView(w))
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
		return "", httperr.BadRequest(client.CodeInvalidBody, `The body must be JSON: {"name": "..."}`)
	}
	return body.Name, nil
}

// changing authenticates a state-changing call and refuses one that a
// browser says comes from another site.
func (a *Workers) changing(c *fiber.Ctx) (authn.Identity, error) {
	id, err := a.opts.Chain.API(c, scope.Workers)
	if err != nil {
		return id, err
	}
	if gateway.CrossSite(c, a.opts.PublicURL) {
		return id, httperr.New(http.StatusForbidden, "cross_origin", "Workers can only be changed from this site")
	}
	return id, nil
}

func (a *Workers) register(c *fiber.Ctx) error {
	id, err := a.changing(c)
	if err != nil {
		return err
	}
	var body struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
		Repos  []string `json:"repos"`
	}
	if err := json.Unmarshal(reqbody.Raw(c), &body); err != nil {
		return httperr.BadRequest(client.CodeInvalidBody, `The body must be JSON: {"name": "..."} for a worker, {"name": "...", "scopes": ["git:read"], "repos": ["owner/*"]} for a repository credential`)
	}
	w, tok, err := a.opts.Workers.RegisterWith(c.UserContext(), id.UserID, body.Name, workers.Grant{Scopes: body.Scopes, Repos: body.Repos})
	if err != nil {
		return Answer(err)
	}
	return sendWorker(c, http.StatusCreated, w, tok)
}

// sendWorker answers with one worker, and with its token when the
// request just made one (registration, rotation). Never cached: the token
// is shown once.
func sendWorker(c *fiber.Ctx, status int, w data.Worker, token string) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	body := fiber.Map{"worker": WorkerView(w)}
	if token != "" {
		body["token"] = token
	}
	return c.Status(status).JSON(body)
}

func (a *Workers) get(c *fiber.Ctx) error {
	id, err := a.opts.Chain.API(c, scope.Workers)
	if err != nil {
		return err
	}
	w, err := a.opts.Workers.Get(c.UserContext(), id.UserID, c.Params("id"))
	if err != nil {
		return Answer(err)
	}
	return sendWorker(c, http.StatusOK, w, "")
}

func (a *Workers) rename(c *fiber.Ctx) error {
	id, err := a.changing(c)
	if err != nil {
		return err
	}
	name, err := nameBody(c)
	if err != nil {
		return err
	}
	w, err := a.opts.Workers.Rename(c.UserContext(), id.UserID, c.Params("id"), name)
	if err != nil {
		return Answer(err)
	}
	return sendWorker(c, http.StatusOK, w, "")
}

func (a *Workers) rotate(c *fiber.Ctx) error {
	id, err := a.changing(c)
	if err != nil {
		return err
	}
	w, tok, err := a.opts.Workers.Rotate(c.UserContext(), id.UserID, c.Params("id"))
	if err != nil {
		return Answer(err)
	}
	return sendWorker(c, http.StatusOK, w, tok)
}

func (a *Workers) revoke(c *fiber.Ctx) error {
	id, err := a.changing(c)
	if err != nil {
		return err
	}
	if err := a.opts.Workers.Revoke(c.UserContext(), id.UserID, c.Params("id")); err != nil {
		return Answer(err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.SendStatus(http.StatusNoContent)
}

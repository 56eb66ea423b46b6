package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// PathWorkers is the workers API: the signed-in user's Tendril workers.
const PathWorkers = "/api/workers"

// Error codes of the workers API and of worker routes.
const (
	CodeWorkerNotFound     = "worker_not_found" // no such worker, or another user's
	CodeInvalidName        = "invalid_name"     // not 1 to 64 printable characters
	CodeInvalidBody        = "invalid_body"
	CodeCrossOrigin        = "cross_origin"
	CodeStoreUnavailable   = "store_unavailable"
	CodeWorkerUnauthorized = "worker_unauthorized"  // a worker route refused the credentials
	CodeInvalidScope       = "invalid_scope"        // a repository credential's scope Arbor does not know
	CodeInvalidRepoPattern = "invalid_repo_pattern" // a repository pattern Arbor cannot read
)

// Scopes of a repository credential (Arbor's Git proxy, docs/git-proxy.md).
const (
	ScopeGitRead  = "git:read"  // clone, fetch, ls-remote
	ScopeGitWrite = "git:write" // push too (implies git:read)
)

// RepoCredential is what RegisterRepoCredential asks for: the scopes
// (at least one) and, optionally, the repository patterns ("octocat/*",
// "github:vintner/platform/**") the credential may reach; none: every
// repository the owner's account can read.
type RepoCredential struct {
	Scopes []string
	Repos  []string
}

// Worker is a registered Tendril worker as the workers API shows it. Its
// token is not part of it: Arbor keeps only a hash and shows a token once,
// when Register or Rotate makes it.
type Worker struct {
	ID          string    `json:"id"` // a UUID, lowercase
	Name        string    `json:"name"`
	CreatedAt   time.Time `json:"created_at"`
	RotatedAt   time.Time `json:"rotated_at,omitzero"`    // zero if never rotated
	LastUsedAt  time.Time `json:"last_used_at,omitzero"`  // zero if never used
	LastAddress string    `json:"last_address,omitempty"` // client address of the last use
	// Scopes and Repos are a repository credential's (Arbor's Git proxy:
	// "git:read", "git:write", and repository patterns); empty for a
	// worker.
	Scopes []string `json:"scopes,omitempty"`
	Repos  []string `json:"repos,omitempty"`
}

// Workers manages the signed-in user's workers through the workers API
// (PathWorkers), authenticated like Transport with the stored login. Calls
// go to the server of that login. Without a login, or when Arbor no longer
// accepts it, errors wrap ErrNotLoggedIn; other error answers are
// *APIError, so callers can ask IsCode(err, CodeWorkerNotFound).
//
// Worker ids are checked before anything is sent (a UUID), and so are the
// answers: a worker whose id is not a UUID, or a token that fails
// ValidWorkerToken, is an error. No error or log line quotes a token.
//
// A Workers is safe for concurrent use.
type Workers struct {
	tr   *Transport
	hc   *http.Client
	hint string
}

// NewWorkers returns a Workers for cfg. Its requests go through
// cfg.HTTPClient's Transport (http.DefaultTransport when nil) with its
// Timeout (30 s when there is no HTTPClient), and never follow redirects.
// cfg.HTTPClient itself, without this package's Transport, still makes the
// refresh calls.
func NewWorkers(cfg Config) *Workers {
	var base http.RoundTripper
	timeout := defaultHTTPClient.Timeout
	if cfg.HTTPClient != nil {
		base, timeout = cfg.HTTPClient.Transport, cfg.HTTPClient.Timeout
	}
	tr := NewTransport(cfg, base)
	return &Workers{
		tr: tr,
		hc: &http.Client{
			Transport:     tr,
			Timeout:       timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		hint: cfg.loginHint(),
	}
}

// workerAnswer is the body of every 200 and 201 of the workers API.
type workerAnswer struct {
	Worker  *Worker  `json:"worker"`
	Workers []Worker `json:"workers"`
	Token   string   `json:"token"`
}

// Register creates a worker named name (1 to 64 printable characters) and
// returns it with its token. Arbor shows the token only this once: keep it,
// or Rotate later to get a new one.
func (w *Workers) Register(ctx context.Context, name string) (Worker, string, error) {
	var a workerAnswer
	if err := w.do(ctx, http.MethodPost, PathWorkers, map[string]string{"name": name}, &a, true); err != nil {
		return Worker{}, "", err
	}
	return a.withToken("POST "+PathWorkers, "")
}

// RegisterRepoCredential creates a repository credential named name for
// Arbor's Git proxy (a worker-style registration with scopes) and returns
// it with its token: git sends the id as the Basic user name and the token
// as the password. Like a worker's, the token is shown only this once.
// Arbor checks the scopes and patterns (CodeInvalidScope,
// CodeInvalidRepoPattern, with a message saying what to write); without a
// scope the call fails before anything is sent, since the answer would be
// a worker the Git proxy refuses.
func (w *Workers) RegisterRepoCredential(ctx context.Context, name string, c RepoCredential) (Worker, string, error) {
	if len(c.Scopes) == 0 {
		return Worker{}, "", fmt.Errorf("a repository credential needs a scope (%s or %s); for a Tendril worker use Register", ScopeGitRead, ScopeGitWrite)
	}
	body := struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
		Repos  []string `json:"repos,omitempty"`
	}{name, c.Scopes, c.Repos}
	var a workerAnswer
	if err := w.do(ctx, http.MethodPost, PathWorkers, body, &a, true); err != nil {
		return Worker{}, "", err
	}
	wk, tok, err := a.withToken("POST "+PathWorkers, "")
	if err == nil && len(wk.Scopes) == 0 {
		return Worker{}, "", fmt.Errorf("arbor answered POST %s with a worker without scopes: it does not know repository credentials (a version before the Git proxy?)", PathWorkers)
	}
	return wk, tok, err
}

// List returns the user's workers, oldest first.
func (w *Workers) List(ctx context.Context) ([]Worker, error) {
	var a workerAnswer
	if err := w.do(ctx, http.MethodGet, PathWorkers, nil, &a, false); err != nil {
		return nil, err
	}
	out := make([]Worker, 0, len(a.Workers))
	for _, wk := range a.Workers {
		id, ok := canonicalUUID(wk.ID)
		if !ok {
			return nil, fmt.Errorf("arbor answered GET %s with a worker whose id is not a UUID", PathWorkers)
		}
		wk.ID = id
		out = append(out, wk)
	}
	return out, nil
}

// Get returns the worker with this id. Another user's worker is
// CodeWorkerNotFound, like one that does not exist.
func (w *Workers) Get(ctx context.Context, id string) (Worker, error) {
	path, id, err := workerPath(id, "")
	if err != nil {
		return Worker{}, err
	}
	var a workerAnswer
	if err := w.do(ctx, http.MethodGet, path, nil, &a, false); err != nil {
		return Worker{}, err
	}
	return a.worker("GET "+path, id)
}

// Rename gives the worker a new name; its token does not change.
func (w *Workers) Rename(ctx context.Context, id, name string) (Worker, error) {
	path, id, err := workerPath(id, "")
	if err != nil {
		return Worker{}, err
	}
	var a workerAnswer
	if err := w.do(ctx, http.MethodPatch, path, map[string]string{"name": name}, &a, false); err != nil {
		return Worker{}, err
	}
	return a.worker("PATCH "+path, id)
}

// Rotate gives the worker a new token and returns it; the old one stops
// working at once. Like Register's, the token is shown only this once.
func (w *Workers) Rotate(ctx context.Context, id string) (Worker, string, error) {
	path, id, err := workerPath(id, "/rotate")
	if err != nil {
		return Worker{}, "", err
	}
	var a workerAnswer
	if err := w.do(ctx, http.MethodPost, path, nil, &a, true); err != nil {
		return Worker{}, "", err
	}
	return a.withToken("POST "+path, id)
}

// Revoke deletes the worker; its token stops working at once.
func (w *Workers) Revoke(ctx context.Context, id string) error {
	path, _, err := workerPath(id, "")
	if err != nil {
		return err
	}
	return w.do(ctx, http.MethodDelete, path, nil, nil, false)
}

// ParseWorkerID checks a worker id (a UUID, hex digits in either case)
// and returns it in lowercase. The error does not quote s: it may be a
// token pasted in the wrong place.
func ParseWorkerID(s string) (string, error) {
	id, ok := canonicalUUID(strings.TrimSpace(s))
	if !ok {
		if ValidWorkerToken(strings.TrimSpace(s)) {
			return "", errors.New("that is a worker token, not a worker id (a UUID, as the workers list shows it)")
		}
		return "", errors.New("not a worker id: want a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
	}
	return id, nil
}

// workerPath checks id and returns the API path of that worker (with
// suffix) and the id in lowercase.
func workerPath(id, suffix string) (path, canon string, err error) {
	if canon, err = ParseWorkerID(id); err != nil {
		return "", "", err
	}
	return PathWorkers + "/" + canon + suffix, canon, nil
}

// worker checks the answer's worker: there, with a UUID id, and want's
// when want is not "".
func (a *workerAnswer) worker(call, want string) (Worker, error) {
	if a.Worker == nil {
		return Worker{}, fmt.Errorf("arbor answered %s without a worker", call)
	}
	wk := *a.Worker
	id, ok := canonicalUUID(wk.ID)
	switch {
	case !ok:
		return Worker{}, fmt.Errorf("arbor answered %s with a worker whose id is not a UUID", call)
	case want != "" && id != want:
		return Worker{}, fmt.Errorf("arbor answered %s with another worker (%s)", call, id)
	}
	wk.ID = id
	return wk, nil
}

// withToken is worker plus the token, which must be well-formed.
func (a *workerAnswer) withToken(call, want string) (Worker, string, error) {
	wk, err := a.worker(call, want)
	if err != nil {
		return Worker{}, "", err
	}
	if a.Token == "" {
		return Worker{}, "", fmt.Errorf("arbor answered %s without a token", call)
	}
	if p := workerTokenProblem(a.Token); p != "" {
		return Worker{}, "", fmt.Errorf("arbor answered %s with a malformed worker token: it %s", call, p)
	}
	return wk, a.Token, nil
}

// do sends in (when not nil) as JSON to the login's server and decodes a
// 2xx answer into out (when not nil). secret says the answer carries a
// token, so a decoding error must not show any of it.
func (w *Workers) do(ctx context.Context, method, path string, in, out any, secret bool) error {
	tok, err := w.tr.Token(ctx)
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b) // sets GetBody: Transport may retry after a 401
	}
	call := method + " " + path
	req, err := http.NewRequestWithContext(ctx, method, tok.Server+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return err // a *url.Error: the URL holds no secret
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("reading the answer of %s: %w", call, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := apiError(resp.StatusCode, data)
		if ae.Status == http.StatusUnauthorized && ae.Code == CodeUnauthenticated {
			// Transport already refreshed and retried: the login is gone.
			return fmt.Errorf("%w: arbor no longer accepts this login; %s: %w", ErrNotLoggedIn, w.hint, ae)
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		if secret {
			// json's errors may quote the value they choke on.
			return fmt.Errorf("the answer of %s (HTTP %d) is not the expected JSON", call, resp.StatusCode)
		}
		return fmt.Errorf("the answer of %s (HTTP %d) is not the expected JSON: %w", call, resp.StatusCode, err)
	}
	return nil
}

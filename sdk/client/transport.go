package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// RefreshMargin: an access token that expires within this is refreshed
// before it is used.
const RefreshMargin = 30 * time.Second

// refreshTimeout bounds one refresh call. The call runs to completion even
// when the request that started it is cancelled: a refresh whose answer is
// lost leaves only the rotated-out refresh token, and reusing that revokes
// the whole login.
const refreshTimeout = 30 * time.Second

// Transport is an http.RoundTripper that authenticates requests to Arbor
// with the stored login: it adds "Authorization: Bearer <access token>",
// refreshes the pair before it expires (one refresh for any number of
// concurrent requests), saves the rotated pair before using it, and after a
// 401 refreshes and retries once (only requests whose body can be replayed:
// GetBody set, or no body). Requests for another origin than the login's
// server go through unchanged, without the token.
//
// A Transport is safe for concurrent use; use one per process and
// configuration, so that its requests share a refresh.
type Transport struct {
	base http.RoundTripper
	s    *session
}

// NewTransport returns a Transport sending through base
// (http.DefaultTransport when nil).
func NewTransport(cfg Config, base http.RoundTripper) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Transport{base: base, s: newSession(cfg)}
}

// Token returns a valid token, refreshing it if needed, like ValidToken
// but sharing this Transport's cache and refresh.
func (t *Transport) Token(ctx context.Context) (*Token, error) {
	tok, _, err := t.s.current(ctx)
	return tok, err
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if srv := t.s.knownServer(); srv != "" && !sameOrigin(srv, req.URL) {
		return t.base.RoundTrip(req)
	}
	ctx := req.Context()
	tok, refreshed, err := t.s.current(ctx)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	if !sameOrigin(tok.Server, req.URL) {
		return t.base.RoundTrip(req)
	}
	resp, err := t.base.RoundTrip(withBearer(req, tok, nil))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || refreshed {
		return resp, err
	}
	// A 401 for a token we did not just get: it may have been revoked or
	// the server's clock may be ahead. Refresh and retry once, if the body
	// can be sent again.
	var body io.ReadCloser
	switch {
	case req.Body == nil || req.Body == http.NoBody:
	case req.GetBody != nil:
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	default:
		return resp, nil
	}
	fresh, err := t.s.refresh(ctx, tok)
	if err != nil {
		if body != nil {
			body.Close()
		}
		drain(resp)
		return nil, err
	}
	drain(resp)
	return t.base.RoundTrip(withBearer(req, fresh, body))
}

func withBearer(req *http.Request, tok *Token, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	if body != nil {
		r.Body = body
	}
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// ValidToken returns the stored login with an access token valid for at
// least RefreshMargin, refreshing (and saving) it if needed. Without a
// login, or when Arbor no longer accepts it, the error wraps
// ErrNotLoggedIn.
func ValidToken(ctx context.Context, cfg Config) (*Token, error) {
	tok, _, err := newSession(cfg).current(ctx)
	return tok, err
}

// Logout revokes the login on the server (POST /api/auth/cli/logout with
// the refresh token) and deletes it from the store, even when the server
// cannot be reached; the errors of both steps are joined. Without a login
// the error wraps ErrNotLoggedIn.
func Logout(ctx context.Context, cfg Config) error {
	store := cfg.store()
	tok, err := store.Load()
	if errors.Is(err, ErrNotLoggedIn) {
		return err
	}
	if err != nil {
		// Unusable file (damaged, wrong mode): nothing to revoke with, but
		// logging out still means removing it.
		return errors.Join(err, store.Delete())
	}
	var revokeErr error
	t := *tok
	if t.Server == "" {
		t.Server = cfg.Server
	}
	if t.Server, revokeErr = normalizeServer(t.Server); revokeErr == nil {
		revokeErr = revoke(ctx, &cfg, &t)
	}
	if revokeErr != nil {
		until := "it expires"
		if !tok.RefreshExpiry.IsZero() {
			until = tok.RefreshExpiry.Local().Format(time.DateTime)
		}
		revokeErr = fmt.Errorf("could not revoke the login on %s, so its refresh token stays valid there until %s (the local copy is deleted): %w",
			t.Server, until, revokeErr)
	}
	return errors.Join(revokeErr, store.Delete())
}

// session is the token cache and single-flight refresh shared by a
// Transport's requests.
type session struct {
	cfg    Config
	store  TokenStore
	server string // normalized cfg.Server, or ""
	cfgErr error

	mu     sync.Mutex
	tok    *Token
	flight *flight
}

type flight struct {
	done chan struct{}
	tok  *Token
	err  error
}

func newSession(cfg Config) *session {
	s := &session{cfg: cfg, store: cfg.store()}
	if cfg.Server != "" {
		s.server, s.cfgErr = normalizeServer(cfg.Server)
	}
	return s
}

// knownServer is the server requests are authenticated for, if known
// without reading the store.
func (s *session) knownServer() string {
	if s.server != "" {
		return s.server
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil {
		return s.tok.Server
	}
	return ""
}

// current returns a token valid for at least RefreshMargin; refreshed says
// whether it comes from a refresh made for this call.
func (s *session) current(ctx context.Context) (tok *Token, refreshed bool, err error) {
	s.mu.Lock()
	tok = s.tok
	s.mu.Unlock()
	if tok == nil {
		if tok, err = s.load(); err != nil {
			return nil, false, err
		}
		s.mu.Lock()
		if s.tok == nil {
			s.tok = tok
		} else {
			tok = s.tok
		}
		s.mu.Unlock()
	}
	if !tok.expiresWithin(RefreshMargin) {
		return tok, false, nil
	}
	tok, err = s.refresh(ctx, tok)
	return tok, err == nil, err
}

// load reads the store and checks the login is for the configured server.
func (s *session) load() (*Token, error) {
	if s.cfgErr != nil {
		return nil, s.cfgErr
	}
	tok, err := s.store.Load()
	if err != nil {
		if errors.Is(err, ErrNotLoggedIn) {
			return nil, fmt.Errorf("%w: %s", err, s.cfg.loginHint())
		}
		return nil, err
	}
	return s.check(tok)
}

func (s *session) check(tok *Token) (*Token, error) {
	t := *tok
	if t.Server == "" {
		t.Server = s.server
	}
	norm, err := normalizeServer(t.Server)
	if err != nil {
		return nil, fmt.Errorf("stored login: %w", err)
	}
	t.Server = norm
	if s.server != "" && norm != s.server {
		return nil, fmt.Errorf("%w to %s (the stored login is for %s): %s --server %s",
			ErrNotLoggedIn, s.server, norm, s.cfg.loginHint(), s.server)
	}
	return &t, nil
}

// refresh replaces stale, the token that is expiring or was refused. If
// another request already replaced it, that result is used; otherwise one
// refresh runs for all the callers that ask while it is in flight.
func (s *session) refresh(ctx context.Context, stale *Token) (*Token, error) {
	s.mu.Lock()
	if cur := s.tok; cur != nil && cur.AccessToken != stale.AccessToken && !cur.expiresWithin(RefreshMargin) {
		s.mu.Unlock()
		return cur, nil
	}
	f := s.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		s.flight = f
		go s.run(f, stale)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *session) run(f *flight, stale *Token) {
	tok, err := s.refreshNow(stale)
	s.mu.Lock()
	s.flight = nil
	switch {
	case tok != nil:
		// Kept even when saving failed: the old refresh token is spent.
		s.tok = tok
	case errors.Is(err, ErrNotLoggedIn):
		s.tok = nil
	}
	s.mu.Unlock()
	if err != nil {
		tok = nil
	}
	f.tok, f.err = tok, err
	close(f.done)
}

func (s *session) refreshNow(stale *Token) (*Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	hint := s.cfg.loginHint()

	// Another process may have refreshed (or logged out) since we read the
	// store: its pair is the one to use, ours is spent.
	base := stale
	stored, err := s.store.Load()
	switch {
	case errors.Is(err, ErrNotLoggedIn):
		return nil, fmt.Errorf("%w: the login was removed; %s", ErrNotLoggedIn, hint)
	case err != nil:
		return nil, err
	case stored.RefreshToken != stale.RefreshToken:
		if stored, err = s.check(stored); err != nil {
			return nil, err
		}
		if !stored.expiresWithin(RefreshMargin) {
			return stored, nil
		}
		base = stored
	}

	var tr tokenResponse
	err = postJSON(ctx, &s.cfg, base.Server, PathRefresh, map[string]string{"refresh_token": base.RefreshToken}, &tr)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == CodeInvalidGrant {
			// Delete only the pair that was refused, not one another
			// process saved meanwhile.
			if now, lerr := s.store.Load(); lerr == nil && now.RefreshToken != base.RefreshToken {
				if now, cerr := s.check(now); cerr == nil {
					return now, nil
				}
			}
			if derr := s.store.Delete(); derr != nil {
				return nil, fmt.Errorf("%w: the server no longer accepts this login (and removing it failed: %v); %s: %w", ErrNotLoggedIn, derr, hint, ae)
			}
			return nil, fmt.Errorf("%w: the server no longer accepts this login (expired or revoked); %s: %w", ErrNotLoggedIn, hint, ae)
		}
		return nil, fmt.Errorf("refreshing the login at %s: %w", base.Server, err)
	}
	tok, err := tr.token(base.Server, base, time.Now())
	if err != nil {
		return nil, fmt.Errorf("refreshing the login: %w", err)
	}
	if err := s.store.Save(tok); err != nil {
		return tok, fmt.Errorf("refreshed the login but could not save it (%s again if this persists): %w", hint, err)
	}
	return tok, nil
}

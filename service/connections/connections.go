// Package connections keeps users' Git provider connections: tokens sealed
// in the store, refreshed on demand, revoked on disconnect, and handed to
// the upstream app as a token that is valid right now.
//
// # ValidProviderToken
//
// The heart of the package answers "give me a token for this user's GitHub
// that works now". Other token brokers taught what it must get right:
//
//   - One refresh per expiry, across replicas. Providers that rotate
//     refresh tokens (GitLab, Bitbucket) invalidate the old refresh token
//     on use, so two parallel refreshes would leave one caller holding a
//     dead token and might make the provider revoke the grant as a replay.
//     Concurrent callers in one process share a single refresh (a
//     single-flight per user and provider), and that refresh runs under
//     the store's lock refresh/<user>/<provider> (data.Locks), which one
//     replica holds at a time. It re-reads the connection once it holds the
//     lock, so a replica that waited finds the token another refreshed and
//     does not call the provider. A replica that dies holding the lock
//     releases it when the lock's lease expires (data.LockTTL); the wait is
//     bounded by CallTimeout.
//   - Store before handing out. The new token pair is written to the store
//     before any caller gets the access token. If that write fails, the
//     caller gets an error, and the new pair is kept in memory and written
//     by the next call instead of refreshing again: the provider has
//     already invalidated the old refresh token, so refreshing again with
//     it would fail and break the connection.
//   - Rejected is not the same as unavailable. invalid_grant (the user
//     revoked the app, the refresh token expired) marks the connection
//     "needs reconnect" with the provider's reason and returns
//     ErrReconnectRequired. A 5xx or a timeout is retried with
//     backoff and never marks the connection broken; if the current token
//     is still valid (the refresh was early, within the margin), the
//     caller gets it.
//   - Rate limited is neither. A provider that says "slow down"
//     (rate_limited, with the wait it asked for) never marks the
//     connection broken, is not asked again before that wait is over
//     (within this process), and is retried within one refresh only if
//     the wait fits the backoff. The caller gets the current token if it
//     is still valid, else ErrRateLimited with the wait.
//   - A token that never expires (a classic GitHub OAuth app) is returned
//     as is.
//
// # What is stored
//
// One data.Connection per (user, provider). The tokens are in Sealed: an
// AES-256-GCM envelope (package seal) bound to the row by
// data.ConnectionAAD, so no token is ever in the store, a log line, an
// error or a metric in the clear.
package connections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/internal/printable"
	"github.com/vintner/arbor/internal/sealedgrant"
	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/service/providers"
)

// Stable error codes: the "error" field of the answer the web layer
// (gateway/api.Answer) gives for each of the Err* kinds.
const (
	CodeNotConnected        = "provider_not_connected"
	CodeReconnectRequired   = "provider_reconnect_required"
	CodeProviderUnavailable = "provider_unavailable"
	CodeUnknownProvider     = "unknown_provider"
	// CodeProviderRateLimited: the provider asked Arbor to slow down; the
	// answer carries Retry-After. 503 when Arbor's own refresh was
	// limited, 429 when the limit is the user's own quota at the provider
	// (listing repositories with the user's token).
	CodeProviderRateLimited = "provider_rate_limited"
	// CodeProviderRefused: the provider refused the request in a way that
	// retrying will not change (410 Gone, another 4xx); the details are in
	// Arbor's log.
	CodeProviderRefused = "provider_refused"
)

// Defaults for Options.
const (
	DefaultRefreshMargin = 5 * time.Minute
	DefaultRetries       = 3
	DefaultRetryBackoff  = 200 * time.Millisecond
	DefaultCallTimeout   = 30 * time.Second
)

// Store is what the broker needs from the store.
type Store interface {
	data.Connections
	data.Audit
	data.Locks
}

// Sealer seals and opens token envelopes (*seal.Keyring).
type Sealer = sealedgrant.Sealer

// Providers finds Git providers (*providers.Set).
type Providers interface {
	Git() []providers.Info
	Get(name string) (providers.Provider, providers.Info, bool)
}

// Event is what the broker reports besides the audit trail (a webhook).
type Event struct {
	Type     string // connection.connected, .refreshed, .refresh_failed, .needs_reconnect, .disconnected
	UserID   string
	Provider string
	Data     map[string]string
}

// Options configure a Broker.
type Options struct {
	// RefreshMargin: a token expiring within it is refreshed first.
	// Default 5 minutes.
	RefreshMargin time.Duration
	// Retries is how many times a transient refresh failure is tried
	// again, with exponential backoff from RetryBackoff. Defaults 3, 200ms.
	Retries      int
	RetryBackoff time.Duration
	// CallTimeout bounds one refresh or revoke, retries included, however
	// long the caller that started it is willing to wait. Default 30s.
	CallTimeout time.Duration
	// Notify, if set, receives events (for a webhook). It must not block.
	Notify func(Event)
	// Now is the clock. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// AppName is the app's name in DisconnectResult.Message (config
	// ui.app_name). Empty: config.DefaultAppName.
	AppName string
}

// Token is a valid access token.
type Token struct {
	AccessToken string
	TokenType   string
	// ExpiresAt is zero for a token that does not expire.
	ExpiresAt time.Time
	// UseUntil is when a caller should stop using the token and ask again
	// (zero: never): ExpiresAt less the refresh margin, but not before
	// now. From then on any call may refresh the grant, and GitHub and
	// GitLab kill the old access token the moment a refresh succeeds
	// ("the old user access token will no longer work"), hours before
	// ExpiresAt. ValidProviderToken sets it; it is what the API reports as
	// expires_at.
	UseUntil time.Time
	Scopes   []string
}

// secrets is the sealed part of a connection.
type secrets = sealedgrant.Grant

// Broker keeps connections. It is safe for concurrent use.
type Broker struct {
	store     Store
	sealer    Sealer
	providers Providers
	opts      Options
	log       *slog.Logger

	mu      sync.Mutex
	flights map[string]*flight
	// pending holds refreshed token pairs whose store write failed, by
	// user and provider, until a later call writes them.
	pending map[string]pendingPair
	// limited holds, by user and provider, when a provider that rate
	// limited a refresh may be asked again.
	limited map[string]time.Time

	revoker *revoker
}

type pendingPair struct {
	s       secrets
	scopes  []string
	refresh time.Time
}

// flight is one refresh in progress; followers wait on done.
type flight struct {
	done chan struct{}
	tok  Token
	err  error
}

// New returns a Broker. Close it to stop background revocations.
func New(store Store, sealer Sealer, provs Providers, opts Options) *Broker {
	if opts.RefreshMargin <= 0 {
		opts.RefreshMargin = DefaultRefreshMargin
	}
	if opts.Retries < 0 {
		opts.Retries = 0
	} else if opts.Retries == 0 {
		opts.Retries = DefaultRetries
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = DefaultRetryBackoff
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.AppName == "" {
		opts.AppName = config.DefaultAppName
	}
	b := &Broker{
		store: store, sealer: sealer, providers: provs, opts: opts, log: opts.Logger,
		flights: map[string]*flight{}, pending: map[string]pendingPair{}, limited: map[string]time.Time{},
	}
	b.revoker = newRevoker(b)
	return b
}

// Close stops the background revocations still being retried (they are
// logged as abandoned) and waits for the retry loop to end.
func (b *Broker) Close() { b.revoker.close() }

func key(userID, provider string) string { return userID + "\x00" + provider }

func (b *Broker) notify(e Event) {
	if b.opts.Notify != nil {
		b.opts.Notify(e)
	}
}

func (b *Broker) audit(ctx context.Context, action, userID, provider, outcome string, details map[string]string) {
	_, err := b.store.AppendAudit(context.WithoutCancel(ctx), data.AuditEvent{
		Action: action, Actor: userID, UserID: userID, Target: provider, Outcome: outcome, Details: details,
	})
	if err != nil {
		b.log.Error("writing an audit event failed", "action", action, "err", err)
	}
}

func (b *Broker) seal(userID, provider string, s secrets) ([]byte, error) {
	return sealedgrant.Seal(b.sealer, s, data.ConnectionAAD(userID, provider))
}

func (b *Broker) open(c data.Connection) (secrets, error) {
	s, err := sealedgrant.Open(b.sealer, c.Sealed, data.ConnectionAAD(c.UserID, c.Provider))
	if err != nil {
		return secrets{}, fmt.Errorf("connections: the sealed tokens of %s/%s: %w", c.UserID, c.Provider, err)
	}
	return s, nil
}

// Connect stores the tokens of a connection made through the OAuth flow,
// replacing an earlier connection to the same provider.
func (b *Broker) Connect(ctx context.Context, userID, provider string, tok *abi.Token, u *abi.User) error {
	now := b.opts.Now().UTC()
	s := sealedgrant.From(tok, now, secrets{})
	sealed, err := b.seal(userID, provider, s)
	if err != nil {
		return err
	}
	c := data.Connection{
		UserID: userID, Provider: provider, AccountID: u.ID, AccountLogin: u.Login,
		Scopes: tok.Scopes, Sealed: sealed, TokenExpiresAt: s.Expiry(),
		Status: data.ConnectionActive, LastRefreshAt: now, CreatedAt: now, UpdatedAt: now,
	}
	err = b.store.CreateConnection(ctx, c)
	if errors.Is(err, data.ErrAlreadyExists) {
		_, err = b.store.UpdateConnection(ctx, userID, provider, func(old data.Connection) (data.Connection, error) {
			c.CreatedAt, c.Version = old.CreatedAt, old.Version
			return c, nil
		})
	}
	if err != nil {
		return fmt.Errorf("connections: storing the %s connection: %w", provider, err)
	}
	b.mu.Lock()
	delete(b.pending, key(userID, provider))
	delete(b.limited, key(userID, provider))
	b.mu.Unlock()
	b.audit(ctx, "connection.connect", userID, provider, "ok", map[string]string{"account": u.Login})
	b.notify(Event{Type: "connection.connected", UserID: userID, Provider: provider, Data: map[string]string{"account": u.Login}})
	return nil
}

// ValidProviderToken returns an access token for userID's connection to
// provider that is valid for at least the refresh margin (or does not
// expire), refreshing it first if needed. Errors are *Error (ErrNotConnected,
// ErrReconnectRequired, ErrRateLimited, ErrProviderUnavailable,
// ErrUnknownProvider, ErrStoreUnavailable, ErrRefreshTimeout,
// ErrLockTimeout), or an internal failure (a token that cannot be opened).
func (b *Broker) ValidProviderToken(ctx context.Context, userID, provider string) (Token, error) {
	t, err := b.validProviderToken(ctx, userID, provider)
	if err != nil || t.ExpiresAt.IsZero() {
		return t, err
	}
	t.UseUntil = t.ExpiresAt.Add(-b.opts.RefreshMargin)
	if now := b.opts.Now(); t.UseUntil.Before(now) {
		t.UseUntil = now
	}
	return t, nil
}

func (b *Broker) validProviderToken(ctx context.Context, userID, provider string) (Token, error) {
	c, err := b.usableConnection(ctx, userID, provider)
	if err != nil {
		return Token{}, err
	}
	now := b.opts.Now()
	b.mu.Lock()
	_, hasPending := b.pending[key(userID, provider)]
	b.mu.Unlock()
	if !hasPending && (c.TokenExpiresAt.IsZero() || now.Add(b.opts.RefreshMargin).Before(c.TokenExpiresAt)) {
		s, err := b.open(c)
		if err != nil {
			return Token{}, err
		}
		return Token{AccessToken: s.AccessToken, TokenType: s.TokenType, ExpiresAt: s.Expiry(), Scopes: c.Scopes}, nil
	}
	return b.refresh(ctx, userID, provider)
}

// connection reads userID's connection to provider: ErrNotConnected when
// there is none, ErrStoreUnavailable when the store fails.
func (b *Broker) connection(ctx context.Context, userID, provider string) (data.Connection, error) {
	c, err := b.store.GetConnection(ctx, userID, provider)
	if errors.Is(err, data.ErrNotFound) {
		return c, notConnected(provider)
	}
	if err != nil {
		return c, storeError(provider, err)
	}
	return c, nil
}

// usableConnection is connection, and ErrReconnectRequired for one that
// must be connected again before its tokens can be used.
func (b *Broker) usableConnection(ctx context.Context, userID, provider string) (data.Connection, error) {
	c, err := b.connection(ctx, userID, provider)
	if err == nil && c.Status == data.ConnectionNeedsReconnect {
		return c, reconnectRequired(provider, c.StatusReason)
	}
	return c, err
}

// refresh runs one refresh per connection at a time; concurrent callers
// wait for it and share its result (or give up when their ctx ends).
func (b *Broker) refresh(ctx context.Context, userID, provider string) (Token, error) {
	k := key(userID, provider)
	b.mu.Lock()
	f, running := b.flights[k]
	if !running {
		f = &flight{done: make(chan struct{})}
		b.flights[k] = f
	}
	b.mu.Unlock()
	if !running {
		// The refresh is not bound to the first caller's context: the
		// others depend on it too.
		go func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.CallTimeout)
			defer cancel()
			f.tok, f.err = b.lockedRefresh(rctx, userID, provider)
			b.mu.Lock()
			delete(b.flights, k)
			b.mu.Unlock()
			close(f.done)
		}()
	}
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return Token{}, &Error{Kind: ErrRefreshTimeout, Provider: provider, Op: OpRefresh, Err: ctx.Err()}
	}
}

// lockedRefresh runs doRefresh under the store's lock for the connection,
// so that one replica refreshes at a time.
func (b *Broker) lockedRefresh(ctx context.Context, userID, provider string) (Token, error) {
	unlock, err := b.store.Lock(ctx, refreshLock(userID, provider))
	if err != nil {
		if ctx.Err() != nil {
			return Token{}, &Error{Kind: ErrLockTimeout, Provider: provider, Op: OpRefresh, Err: err}
		}
		return Token{}, storeError(provider, err)
	}
	defer unlock()
	return b.doRefresh(ctx, userID, provider)
}

// refreshLock names the store lock of one connection's refresh. The parts
// are escaped, so that no two connections share a name.
func refreshLock(userID, provider string) string {
	return "refresh/" + url.PathEscape(userID) + "/" + url.PathEscape(provider)
}

func (b *Broker) doRefresh(ctx context.Context, userID, provider string) (Token, error) {
	k := key(userID, provider)
	// Re-read: another caller (or replica) may have refreshed meanwhile.
	c, err := b.usableConnection(ctx, userID, provider)
	if err != nil {
		return Token{}, err
	}
	now := b.opts.Now()

	// A pair refreshed earlier whose write failed is written now, instead
	// of spending the (already rotated) refresh token again.
	b.mu.Lock()
	pp, hasPending := b.pending[k]
	b.mu.Unlock()
	if hasPending {
		tok, err := b.save(ctx, c, pp.s, pp.scopes, pp.refresh)
		if err != nil {
			return Token{}, err
		}
		b.mu.Lock()
		delete(b.pending, k)
		b.mu.Unlock()
		b.log.Info("stored a refreshed token pair whose first write had failed", "user_id", userID, "provider", provider)
		if tok.ExpiresAt.IsZero() || now.Add(b.opts.RefreshMargin).Before(tok.ExpiresAt) {
			return tok, nil
		}
		if c, err = b.store.GetConnection(ctx, userID, provider); err != nil {
			return Token{}, storeError(provider, err)
		}
	}

	cur, err := b.open(c)
	if err != nil {
		return Token{}, err
	}
	current := Token{AccessToken: cur.AccessToken, TokenType: cur.TokenType, ExpiresAt: cur.Expiry(), Scopes: c.Scopes}
	if current.ExpiresAt.IsZero() || now.Add(b.opts.RefreshMargin).Before(current.ExpiresAt) {
		return current, nil // refreshed by someone else meanwhile
	}
	stillValid := now.Before(current.ExpiresAt)
	if cur.RefreshToken == "" {
		if stillValid {
			return current, nil
		}
		return Token{}, b.markBroken(ctx, c, "the access token expired and the provider issued no refresh token")
	}
	p, _, ok := b.providers.Get(provider)
	if !ok {
		if stillValid {
			return current, nil
		}
		return Token{}, &Error{Kind: ErrUnknownProvider, Provider: provider, Op: OpRefresh}
	}

	// The provider rate limited an earlier refresh and its wait is not
	// over: asking again now would only prolong the limit.
	b.mu.Lock()
	until, limited := b.limited[k]
	b.mu.Unlock()
	if limited && now.Before(until) {
		if stillValid {
			return current, nil
		}
		return Token{}, rateLimited(provider, OpRefresh, errors.New("the provider's earlier rate limit is still in force"), until.Sub(now))
	}

	var tok *abi.Token
	backoff := b.opts.RetryBackoff
	for attempt := 0; ; attempt++ {
		tok, err = p.Refresh(ctx, plugins.RefreshInput{RefreshToken: cur.RefreshToken})
		if err == nil {
			break
		}
		var pe *plugins.Error
		isPE := errors.As(err, &pe)
		transient := !isPE || pe.Retryable || pe.Code == abi.CodeUnavailable || pe.Code == abi.CodeTimeout || pe.Code == abi.CodeRateLimited
		wait := backoff/2 + rand.N(backoff)
		var limitedFor time.Duration
		if isPE && pe.Code == abi.CodeRateLimited {
			limitedFor = pe.RetryAfter
			if limitedFor <= 0 {
				limitedFor = abi.DefaultRetryAfter * time.Second
			}
			b.mu.Lock()
			b.limited[k] = b.opts.Now().Add(limitedFor)
			b.mu.Unlock()
		}
		switch {
		case isPE && pe.Code == abi.CodeInvalidGrant:
			return Token{}, b.markBroken(ctx, c, pe.Text())
		case !transient || attempt >= b.opts.Retries || ctx.Err() != nil || limitedFor > backoff*3/2:
			// A rate limit longer than the backoff ends the refresh: it
			// is not waited out here, however long the caller would wait.
			b.log.Warn("token refresh failed; the connection is kept", "user_id", userID, "provider", provider, "attempts", attempt+1,
				"retry_after", limitedFor, "err", err)
			b.audit(ctx, "connection.refresh", userID, provider, "failed", map[string]string{"error": string(plugins.CodeOf(err))})
			b.notify(Event{Type: "connection.refresh_failed", UserID: userID, Provider: provider, Data: map[string]string{"error": string(plugins.CodeOf(err))}})
			if stillValid {
				return current, nil
			}
			if limitedFor > 0 {
				return Token{}, rateLimited(provider, OpRefresh, err, limitedFor)
			}
			return Token{}, &Error{Kind: ErrProviderUnavailable, Provider: provider, Op: OpRefresh, Err: err}
		}
		wait = max(wait, limitedFor)
		backoff *= 2
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	b.mu.Lock()
	delete(b.limited, k)
	b.mu.Unlock()

	now = b.opts.Now().UTC()
	next := sealedgrant.From(tok, now, cur)
	scopes := tok.Scopes
	if len(scopes) == 0 {
		scopes = c.Scopes
	}
	t, err := b.save(ctx, c, next, scopes, now)
	if err != nil {
		b.mu.Lock()
		b.pending[k] = pendingPair{s: next, scopes: scopes, refresh: now}
		b.mu.Unlock()
		b.log.Error("storing a refreshed token pair failed; it is kept in memory and written by the next call", "user_id", userID, "provider", provider, "err", err)
		return Token{}, err
	}
	b.audit(ctx, "connection.refresh", userID, provider, "ok", nil)
	b.notify(Event{Type: "connection.refreshed", UserID: userID, Provider: provider})
	return t, nil
}

// save writes a refreshed pair.
func (b *Broker) save(ctx context.Context, c data.Connection, s secrets, scopes []string, at time.Time) (Token, error) {
	sealed, err := b.seal(c.UserID, c.Provider, s)
	if err != nil {
		return Token{}, fmt.Errorf("connections: sealing the tokens of %s/%s: %w", c.UserID, c.Provider, err)
	}
	_, err = b.store.UpdateConnection(ctx, c.UserID, c.Provider, func(old data.Connection) (data.Connection, error) {
		old.Sealed, old.TokenExpiresAt, old.Scopes = sealed, s.Expiry(), scopes
		old.Status, old.StatusReason, old.LastRefreshAt, old.UpdatedAt = data.ConnectionActive, "", at, at
		return old, nil
	})
	if errors.Is(err, data.ErrNotFound) {
		return Token{}, notConnected(c.Provider)
	}
	if err != nil {
		return Token{}, storeError(c.Provider, err)
	}
	return Token{AccessToken: s.AccessToken, TokenType: s.TokenType, ExpiresAt: s.Expiry(), Scopes: scopes}, nil
}

// markBroken records that the provider refused the refresh.
func (b *Broker) markBroken(ctx context.Context, c data.Connection, reason string) error {
	reason = printable.Clean(reason, 300)
	if reason == "" {
		reason = "the provider refused the refresh token"
	}
	now := b.opts.Now().UTC()
	_, err := b.store.UpdateConnection(ctx, c.UserID, c.Provider, func(old data.Connection) (data.Connection, error) {
		old.Status, old.StatusReason, old.UpdatedAt = data.ConnectionNeedsReconnect, reason, now
		return old, nil
	})
	if err != nil && !errors.Is(err, data.ErrNotFound) {
		b.log.Error("marking a connection as needing reconnect failed", "user_id", c.UserID, "provider", c.Provider, "err", err)
	}
	b.log.Info("connection needs reconnect", "user_id", c.UserID, "provider", c.Provider, "reason", reason)
	b.audit(ctx, "connection.refresh", c.UserID, c.Provider, "needs_reconnect", map[string]string{"reason": reason})
	b.notify(Event{Type: "connection.needs_reconnect", UserID: c.UserID, Provider: c.Provider, Data: map[string]string{"reason": reason}})
	return reconnectRequired(c.Provider, reason)
}

// Status is one provider's card on the Integrations page.
type Status struct {
	Provider       string    `json:"provider"`
	DisplayName    string    `json:"display_name"`
	Connected      bool      `json:"connected"`
	State          string    `json:"state"` // not_connected, active, needs_reconnect
	Reason         string    `json:"reason,omitempty"`
	AccountLogin   string    `json:"account_login,omitempty"`
	Scopes         []string  `json:"scopes,omitempty"`
	LastRefreshAt  time.Time `json:"last_refresh_at,omitzero"`
	TokenExpiresAt time.Time `json:"token_expires_at,omitzero"`
	ConnectedAt    time.Time `json:"connected_at,omitzero"`
}

// List returns a card per Git provider, and one per connection to a
// provider no longer offered, ordered by provider.
func (b *Broker) List(ctx context.Context, userID string) ([]Status, error) {
	conns, err := b.store.ListConnections(ctx, userID)
	if err != nil {
		return nil, storeError("", err)
	}
	byName := map[string]data.Connection{}
	for _, c := range conns {
		byName[c.Provider] = c
	}
	var out []Status
	seen := map[string]bool{}
	add := func(name, display string) {
		seen[name] = true
		st := Status{Provider: name, DisplayName: display, State: "not_connected"}
		if c, ok := byName[name]; ok {
			st.Connected, st.State, st.Reason = true, c.Status, c.StatusReason
			st.AccountLogin, st.Scopes = c.AccountLogin, c.Scopes
			st.LastRefreshAt, st.TokenExpiresAt, st.ConnectedAt = c.LastRefreshAt, c.TokenExpiresAt, c.CreatedAt
		}
		out = append(out, st)
	}
	for _, in := range b.providers.Git() {
		add(in.Name, in.DisplayName)
	}
	for _, c := range conns {
		if !seen[c.Provider] {
			add(c.Provider, c.Provider)
		}
	}
	return out, nil
}

// Repos lists one page of the user's repositories through the plugin.
func (b *Broker) Repos(ctx context.Context, userID, provider, cursor string, perPage int) (*abi.RepoPage, error) {
	tok, err := b.ValidProviderToken(ctx, userID, provider)
	if err != nil {
		return nil, err
	}
	p, _, ok := b.providers.Get(provider)
	if !ok {
		return nil, &Error{Kind: ErrUnknownProvider, Provider: provider, Op: OpRepos}
	}
	page, err := p.Repos(ctx, plugins.ReposInput{AccessToken: tok.AccessToken, Cursor: cursor, PerPage: perPage})
	if err != nil {
		var pe *plugins.Error
		isPE := errors.As(err, &pe)
		switch {
		case isPE && pe.Code == abi.CodeInvalidToken:
			return nil, &Error{Kind: ErrTokenRefused, Provider: provider, Op: OpRepos, Err: err}
		case isPE && pe.Code == abi.CodeInvalidRequest:
			return nil, &Error{Kind: ErrInvalidRequest, Provider: provider, Op: OpRepos, Err: err}
		case isPE && pe.Code == abi.CodeRateLimited:
			// The listing runs on the user's own token, so the quota
			// spent is the user's (OpRepos): the caller's own doing.
			return nil, rateLimited(provider, OpRepos, err, pe.RetryAfter)
		case isPE && ((pe.Code == abi.CodeProviderError && !pe.Retryable) || pe.Code == abi.CodeInvalidClient):
			// Permanent (410 Gone for a removed API, another 4xx, a
			// refused client): "try again" would be a lie. The provider's
			// text stays in the log (the cause), never in the answer.
			b.log.Warn("the provider refused to list repositories", "user_id", userID, "provider", provider, "status", pe.Status, "err", err)
			return nil, &Error{Kind: ErrProviderRefused, Provider: provider, Op: OpRepos, Status: pe.Status, Err: err}
		}
		return nil, &Error{Kind: ErrProviderUnavailable, Provider: provider, Op: OpRepos, Err: err}
	}
	return page, nil
}

// liveForRevoke returns the tokens to revoke c's grant with: s itself,
// unless its access token has expired and a refresh token can renew it,
// in which case the grant is refreshed first and the new pair returned.
// Providers judge a revocation by the token they are shown: Doorkeeper
// before 5.8.1 (self-managed GitLab) answers 200 to the revocation of an
// expired token's grant and revokes nothing, leaving the refresh token
// usable (doorkeeper-gem/doorkeeper#1671), and GitHub identifies the grant
// by its access token. A failed refresh leaves s as it was: the revocation
// is still tried.
func (b *Broker) liveForRevoke(ctx context.Context, c data.Connection, s secrets) secrets {
	if s.RefreshToken == "" || c.Status != data.ConnectionActive || c.TokenExpiresAt.IsZero() || b.opts.Now().Before(c.TokenExpiresAt) {
		return s
	}
	if _, err := b.refresh(ctx, c.UserID, c.Provider); err != nil {
		b.log.Info("could not renew an expired grant before revoking it; revoking with the expired token", "user_id", c.UserID, "provider", c.Provider, "err", err)
		return s
	}
	nc, err := b.store.GetConnection(ctx, c.UserID, c.Provider)
	if err != nil {
		return s
	}
	ns, err := b.open(nc)
	if err != nil {
		return s
	}
	return ns
}

// DisconnectResult says what happened at the provider.
type DisconnectResult struct {
	// Revoked: the provider confirmed the revocation.
	Revoked bool `json:"revoked"`
	// RevokePending: the provider could not be reached; Arbor keeps
	// trying in the background.
	RevokePending bool `json:"revoke_pending"`
	// Message explains the outcome for the page.
	Message string `json:"message"`
	// Outcome names the outcome (one of the Outcome constants), for a page
	// that words it itself.
	Outcome string `json:"outcome"`
}

// Outcomes of Disconnect (DisconnectResult.Outcome).
const (
	OutcomeRevoked           = "revoked"            // the provider confirmed the revocation
	OutcomeAlreadyRevoked    = "already_revoked"    // the provider had revoked it already
	OutcomeRevokeUnsupported = "revoke_unsupported" // the provider offers no revocation
	OutcomeRevokePending     = "revoke_pending"     // unreachable; retried in the background
	OutcomeTokensUnreadable  = "tokens_unreadable"  // the sealed tokens could not be opened
	OutcomePluginNotLoaded   = "plugin_not_loaded"  // no plugin to revoke with
)

// Disconnect revokes the grant at the provider and deletes the connection.
// The local record is deleted even when the provider cannot be reached;
// the revocation is then retried in the background.
func (b *Broker) Disconnect(ctx context.Context, userID, provider string) (DisconnectResult, error) {
	c, err := b.connection(ctx, userID, provider)
	if err != nil {
		return DisconnectResult{}, err
	}
	var res DisconnectResult
	s, openErr := b.open(c)
	p, _, ok := b.providers.Get(provider)
	if openErr == nil && ok {
		s = b.liveForRevoke(ctx, c, s)
	}
	switch {
	case openErr != nil:
		b.log.Error("cannot open the tokens to revoke them; deleting the connection anyway", "user_id", userID, "provider", provider, "err", openErr)
		res.Outcome = OutcomeTokensUnreadable
		res.Message = "The connection was removed from " + b.opts.AppName + ", but its tokens could not be read to revoke them at the provider; revoke the app in your provider account settings."
	case !ok:
		res.Outcome = OutcomePluginNotLoaded
		res.Message = "The connection was removed from " + b.opts.AppName + ". The " + provider + " plugin is not loaded, so the grant could not be revoked there; revoke it in your provider account settings."
	default:
		in := plugins.RevokeInput{AccessToken: s.AccessToken, RefreshToken: s.RefreshToken}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.CallTimeout)
		err := p.Revoke(rctx, in)
		cancel()
		var pe *plugins.Error
		switch {
		case err == nil:
			res.Revoked = true
			res.Outcome = OutcomeRevoked
			res.Message = "Disconnected, and the access was revoked at the provider."
		case errors.As(err, &pe) && pe.Code == abi.CodeUnsupported:
			res.Outcome = OutcomeRevokeUnsupported
			res.Message = "Disconnected. This provider offers no way for apps to revoke access; remove " + b.opts.AppName + " under your account's authorised apps to be sure."
		case errors.As(err, &pe) && (pe.Code == abi.CodeInvalidToken || pe.Code == abi.CodeInvalidGrant):
			res.Revoked = true
			res.Outcome = OutcomeAlreadyRevoked
			res.Message = "Disconnected; the provider had already revoked the access."
		default:
			res.RevokePending = true
			res.Outcome = OutcomeRevokePending
			res.Message = "Disconnected in " + b.opts.AppName + ". The provider could not be reached to revoke the access; Arbor keeps trying in the background."
			b.revoker.add(userID, provider, p, in)
		}
	}
	if err := b.store.DeleteConnection(ctx, userID, provider); err != nil && !errors.Is(err, data.ErrNotFound) {
		return DisconnectResult{}, storeError(provider, err)
	}
	b.mu.Lock()
	delete(b.pending, key(userID, provider))
	delete(b.limited, key(userID, provider))
	b.mu.Unlock()
	outcome := "revoked"
	if !res.Revoked {
		outcome = "not_revoked"
		if res.RevokePending {
			outcome = "revoke_pending"
		}
	}
	b.audit(ctx, "connection.disconnect", userID, provider, outcome, nil)
	b.notify(Event{Type: "connection.disconnected", UserID: userID, Provider: provider, Data: map[string]string{"revocation": outcome}})
	return res, nil
}

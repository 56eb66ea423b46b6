// Package session keeps browser sessions: a server-side record per signed-in
// browser and a cookie holding a short-lived signed token that names it.
//
// # Why both a record and a token
//
// The token (package sessiontoken, HS256) lets the hot path reject forged
// or stale cookies without touching the store, and a verified token is
// cached, so checking it costs well under a microsecond. The record is what
// makes a session end when the user says so: logout, "end this session" on
// the account page and a deleted user remove it, and a cookie copied before
// that stops working on the very next request, whatever its token's expiry.
//
// The record is looked up on every request, from an in-process cache. The
// cache is kept correct by the store: Manager subscribes to
// data.Sessions.WatchSessions and drops an entry as soon as its session is
// updated or deleted, by this process or (with a replicated store) by any
// replica. A lookup that races with such a change cannot leave a stale entry
// behind (see lookup). Entries also expire with their session, and after
// profileTTL so that a changed e-mail or login reaches the upstream soon.
//
// # Lifetimes
//
// A session ends IdleTimeout after it was last seen or AbsoluteLifetime
// after sign-in, whichever comes first; the record's ExpiresAt is the
// earlier of the two and the store forgets it then. "Last seen" is written
// when the cookie's token is re-issued, past half the token's lifetime, so
// an active browser costs one store write per TokenTTL/2, not one per
// request. A browser that returns after its token expired but before its
// session did gets a new token (sessiontoken.VerifyLapsed).
//
// # Cookie
//
// Over https the cookie is "__Host-arbor_session": Secure, Path=/, no
// Domain, so no other site or subdomain can set or read it. A browser does
// not keep Secure cookies from plain http, so on an http public URL (only
// allowed on loopback, for development) the cookie is "arbor_session"
// without Secure. Both are HttpOnly and SameSite=Lax.
package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authn/sessiontoken"
	"github.com/vintner/arbor/internal/expcache"
)

// Cookie names.
const (
	SecureCookieName   = "__Host-arbor_session"
	InsecureCookieName = "arbor_session"
)

// Defaults for Options.
const (
	DefaultIdleTimeout      = 7 * 24 * time.Hour
	DefaultAbsoluteLifetime = 30 * 24 * time.Hour
	DefaultCacheSize        = 65536
	// profileTTL bounds how long a cached user profile (e-mail, login) is
	// used before it is read again.
	profileTTL = 5 * time.Minute
	// maxUserAgent caps the stored User-Agent.
	maxUserAgent = 256
)

// Errors of Authenticate and the other methods; test with errors.Is.
var (
	// ErrNoSession: the request carries no session cookie.
	ErrNoSession = errors.New("session: no session cookie")
	// ErrInvalid: the cookie is not a valid session token (forged,
	// malformed, wrong type or audience, or lapsed too long ago). The
	// caller clears the cookie.
	ErrInvalid = errors.New("session: invalid session cookie")
	// ErrEnded: the token is genuine but its session no longer exists
	// (signed out, ended from another browser, expired).
	ErrEnded = errors.New("session: session ended")
	// ErrNotFound: EndSession was asked to end a session the user does
	// not have.
	ErrNotFound = errors.New("session: no such session")
)

// Store is what the manager needs from the store.
type Store interface {
	data.Sessions
	GetUser(ctx context.Context, id string) (data.User, error)
}

// Options configure a Manager.
type Options struct {
	// Signer mints and verifies the cookie's token. Required.
	Signer *sessiontoken.Signer
	// CSRFKey keys the per-session CSRF tokens (at least 32 bytes).
	// Required; derive it from the session key.
	CSRFKey []byte
	// IdleTimeout and AbsoluteLifetime bound a session; defaults 7 days
	// and 30 days.
	IdleTimeout      time.Duration
	AbsoluteLifetime time.Duration
	// Secure selects the __Host- cookie with the Secure attribute; set it
	// whenever browsers reach Arbor over https.
	Secure bool
	// CacheSize bounds the session cache. Default 65536.
	CacheSize int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// entry is what the cache keeps per live session.
type entry struct {
	userID, email, login string
	createdAt            time.Time
	// until is when the entry must be read again: the session's expiry or
	// the profile's, whichever is earlier.
	until time.Time
	// expiresAt is the session's own expiry.
	expiresAt time.Time
}

// Manager creates, checks and ends sessions. It is safe for concurrent use.
type Manager struct {
	store     Store
	signer    *sessiontoken.Signer
	opts      Options
	name      string
	cache     *expcache.Cache[string, entry]
	stopWatch func()
	// renewing holds the ids of sessions whose cookie is being re-issued,
	// so that a burst of parallel requests writes the record once.
	renewing sync.Map
}

// New returns a Manager. Close it to stop watching the store.
func New(store Store, opts Options) (*Manager, error) {
	if opts.Signer == nil {
		return nil, errors.New("session: Options.Signer is required")
	}
	if len(opts.CSRFKey) < 32 {
		return nil, errors.New("session: Options.CSRFKey must be at least 32 bytes")
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.AbsoluteLifetime == 0 {
		opts.AbsoluteLifetime = DefaultAbsoluteLifetime
	}
	if opts.IdleTimeout < 0 || opts.AbsoluteLifetime < 0 {
		return nil, fmt.Errorf("session: negative lifetime (idle %v, absolute %v)", opts.IdleTimeout, opts.AbsoluteLifetime)
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Manager{
		store:  store,
		signer: opts.Signer,
		opts:   opts,
		name:   InsecureCookieName,
		cache:  expcache.New[string](opts.CacheSize, func(e entry) time.Time { return e.until }),
	}
	if opts.Secure {
		m.name = SecureCookieName
	}
	m.stopWatch = store.WatchSessions(m.invalidate)
	return m, nil
}

// Close stops watching the store. The manager must not be used afterwards.
func (m *Manager) Close() { m.stopWatch() }

// CookieName is the session cookie's name.
func (m *Manager) CookieName() string { return m.name }

// invalidate drops a session from the cache. It is the store's watch
// callback and is also called directly after this process's own deletes.
func (m *Manager) invalidate(sid string) { m.cache.Invalidate(sid) }

// lookup returns the live session sid, from the cache or the store.
//
// A lookup that misses reads the store and then caches what it read, unless
// the session was invalidated meanwhile (expcache.PutFresh): a spurious miss
// at worst, never a stale hit.
func (m *Manager) lookup(ctx context.Context, sid string, now time.Time) (entry, error) {
	if e, ok := m.cache.Get(sid, now); ok && now.Before(e.expiresAt) {
		return e, nil
	}
	g := m.cache.Generation()
	s, err := m.store.GetSession(ctx, sid)
	if err != nil {
		return entry{}, err
	}
	u, err := m.store.GetUser(ctx, s.UserID)
	if err != nil {
		return entry{}, err
	}
	e := entry{
		userID: s.UserID, email: u.Email, login: u.Login,
		createdAt: s.CreatedAt, expiresAt: s.ExpiresAt,
		until: minTime(s.ExpiresAt, now.Add(profileTTL)),
	}
	m.cache.PutFresh(sid, e, now, g)
	return e, nil
}

// Authenticate checks the request's session cookie and returns who is
// signed in. It re-issues the cookie when its token is past half its
// lifetime (or lapsed while the session lived on). Errors: ErrNoSession,
// ErrInvalid (clear the cookie), ErrEnded (clear the cookie), or a store
// error (answer 503; the session may be fine).
func (m *Manager) Authenticate(c *fiber.Ctx) (authn.Identity, error) {
	tok := cookie(&c.Request().Header, m.name)
	if tok == "" {
		return authn.Identity{}, ErrNoSession
	}
	claims, err := m.signer.Verify(tok)
	lapsed := false
	if errors.Is(err, sessiontoken.ErrExpired) {
		claims, err = m.signer.VerifyLapsed(tok, m.opts.IdleTimeout)
		lapsed = true
	}
	if err != nil {
		return authn.Identity{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	now := m.opts.Now()
	e, err := m.lookup(c.UserContext(), claims.SessionID, now)
	if errors.Is(err, data.ErrNotFound) {
		return authn.Identity{}, ErrEnded
	}
	if err != nil {
		return authn.Identity{}, fmt.Errorf("session: looking up the session: %w", err)
	}
	if e.userID != claims.Subject {
		// Only possible with a forged token: the signature would have
		// had to be made with the session key.
		return authn.Identity{}, fmt.Errorf("%w: token subject does not own the session", ErrInvalid)
	}
	id := authn.Identity{Kind: authn.KindSession, SessionID: claims.SessionID, UserID: e.userID, Email: e.email, Login: e.login}
	if lapsed || m.signer.NeedsRefresh(claims) {
		if err := m.renew(c, id, now); err != nil {
			if errors.Is(err, data.ErrNotFound) {
				return authn.Identity{}, ErrEnded
			}
			if lapsed {
				return authn.Identity{}, fmt.Errorf("session: renewing the session: %w", err)
			}
			// The token is still valid: serve, and renew on a later request.
		}
	}
	return id, nil
}

// renew records that the session was seen and re-issues its cookie.
func (m *Manager) renew(c *fiber.Ctx, id authn.Identity, now time.Time) error {
	if _, busy := m.renewing.LoadOrStore(id.SessionID, struct{}{}); busy {
		return nil // a parallel request of the same browser is renewing
	}
	defer m.renewing.Delete(id.SessionID)
	s, err := m.store.UpdateSession(c.UserContext(), id.SessionID, func(s data.Session) (data.Session, error) {
		s.LastSeenAt = now
		s.ExpiresAt = minTime(s.CreatedAt.Add(m.opts.AbsoluteLifetime), now.Add(m.opts.IdleTimeout))
		return s, nil
	})
	if err != nil {
		return err
	}
	return m.setCookie(c, id.SessionID, id.UserID, id.Email, s.ExpiresAt)
}

// Start signs user in on this browser: it ends the session the request's
// cookie names (if any: a new sign-in never keeps an old session id, so a
// cookie planted before sign-in is worthless after it), creates a new
// session with a fresh random id and sets the cookie.
func (m *Manager) Start(c *fiber.Ctx, user data.User) (data.Session, error) {
	ctx := c.UserContext()
	if err := m.EndCurrent(c); err != nil {
		return data.Session{}, err
	}
	id, err := newID()
	if err != nil {
		return data.Session{}, err
	}
	now := m.opts.Now().UTC()
	s := data.Session{
		ID:         id,
		UserID:     user.ID,
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  now.Add(min(m.opts.IdleTimeout, m.opts.AbsoluteLifetime)),
		UserAgent:  strings.Clone(truncate(c.Get(fiber.HeaderUserAgent), maxUserAgent)),
		IP:         gateway.ClientIP(c),
	}
	if err := m.store.CreateSession(ctx, s); err != nil {
		return data.Session{}, fmt.Errorf("session: creating the session: %w", err)
	}
	if err := m.setCookie(c, s.ID, user.ID, user.Email, s.ExpiresAt); err != nil {
		return data.Session{}, err
	}
	return s, nil
}

// EndCurrent ends the session named by the request's cookie, if the cookie
// is genuine (an expired token still names its session), and clears the
// cookie. A request without a valid cookie is not an error.
func (m *Manager) EndCurrent(c *fiber.Ctx) error {
	tok := cookie(&c.Request().Header, m.name)
	if tok == "" {
		return nil
	}
	m.ClearCookie(c)
	claims, err := m.signer.VerifyLapsed(tok, m.opts.AbsoluteLifetime)
	if err != nil {
		return nil
	}
	s, err := m.store.GetSession(c.UserContext(), claims.SessionID)
	if errors.Is(err, data.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("session: reading the current session: %w", err)
	}
	if s.UserID != claims.Subject {
		return nil
	}
	return m.delete(c.UserContext(), s.ID)
}

// EndSession ends one of userID's sessions (the account page's "sign out
// there"). ErrNotFound if the user has no such session.
func (m *Manager) EndSession(ctx context.Context, userID, sid string) error {
	s, err := m.store.GetSession(ctx, sid)
	if errors.Is(err, data.ErrNotFound) || (err == nil && s.UserID != userID) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("session: reading the session: %w", err)
	}
	return m.delete(ctx, sid)
}

func (m *Manager) delete(ctx context.Context, sid string) error {
	err := m.store.DeleteSession(ctx, sid)
	m.invalidate(sid)
	if err != nil && !errors.Is(err, data.ErrNotFound) {
		return fmt.Errorf("session: deleting the session: %w", err)
	}
	return nil
}

// List returns userID's live sessions, oldest first.
func (m *Manager) List(ctx context.Context, userID string) ([]data.Session, error) {
	return m.store.ListSessions(ctx, userID)
}

func (m *Manager) setCookie(c *fiber.Ctx, sid, uid, email string, expires time.Time) error {
	tok, _, err := m.signer.Mint(sid, uid, email)
	if err != nil {
		return err
	}
	c.Cookie(&fiber.Cookie{
		Name:     m.name,
		Value:    tok,
		Path:     "/",
		Expires:  expires,
		Secure:   m.opts.Secure,
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode,
	})
	c.Set(fiber.HeaderCacheControl, `no-cache="Set-Cookie"`)
	return nil
}

// ClearCookie tells the browser to forget the session cookie.
func (m *Manager) ClearCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{
		Name:     m.name,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		Expires:  time.Unix(0, 0),
		Secure:   m.opts.Secure,
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// CSRFToken returns the anti-forgery token for forms posted by the holder of
// session sid. It is an HMAC of the session id, so it needs no storage, is
// different for every session and dies with it.
func (m *Manager) CSRFToken(sid string) string {
	mac := hmac.New(sha256.New, m.opts.CSRFKey)
	mac.Write([]byte("arbor-csrf\x00"))
	mac.Write([]byte(sid))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// CheckCSRF reports, in constant time, whether token is sid's CSRF token.
func (m *Manager) CheckCSRF(sid, token string) bool {
	want := m.CSRFToken(sid)
	return subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}

// newID returns 256 random bits, base64url: a session id no one guesses.
func newID() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session: reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Package clitoken mints and verifies the JWTs that CLIs (Grape, RFC 8628
// clients) hold: access tokens (1 hour) and refresh tokens (90 days),
// HS256, signed with CLI_JWT_SECRET.
//
// Claims: sub (user id), email, login, type ("access" or "refresh"), iss
// (config cli.issuer, default the public URL), aud (cli.audience, default
// "arbor-cli"), iat, exp, jti, scope (what the token may do, space-separated
// names of package gateway/authz/scope), and fid, the login ("refresh family") the token
// belongs to, whose store record decides whether the login is still alive
// (logout, reuse detection). iss and aud are configurable so that a backend
// that already verifies these tokens with CLI_JWT_SECRET and its own
// expected values keeps working.
//
// A token is accepted only as the type it was minted as, with the
// configured audience and issuer, and only HS256: a refresh token is never
// an access token, and a session cookie's token (another key, audience and
// type claim) is neither. A token without a scope claim was minted before
// scopes existed and counts as scopeset.All.
//
// Verified access tokens are cached like session tokens (keyed by the whole
// token, never past exp, only successes), so a bearer check on every API
// request costs well under a microsecond before the family lookup.
//
// It lives under service/clilogin, not gateway/authn, because the CLI
// login service is what mints and checks these tokens, and a service may
// not import the HTTP layer (service/layering_test.go); the bearer
// authenticator (authn.CLI) asks the service.
package clitoken

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vintner/arbor/internal/expcache"
	"github.com/vintner/arbor/internal/hs256"
	"github.com/vintner/arbor/internal/scopeset"
)

// Token types.
const (
	TypeAccess  = "access"
	TypeRefresh = "refresh"
	// Audience is the default aud of CLI tokens (Options.Audience).
	Audience = "arbor-cli"
)

// Defaults.
const (
	DefaultAccessTTL  = time.Hour
	DefaultRefreshTTL = 90 * 24 * time.Hour
	DefaultLeeway     = 5 * time.Second
	MinKeyLen         = 32
)

// Errors of Verify.
var (
	ErrInvalid       = errors.New("clitoken: invalid token")
	ErrExpired       = errors.New("clitoken: token expired")
	ErrWrongType     = errors.New("clitoken: wrong token type")
	ErrWrongAudience = errors.New("clitoken: wrong audience")
	ErrWrongIssuer   = errors.New("clitoken: wrong issuer")
)

// parseErrors are the errors above for what the JWT parser finds wrong.
var parseErrors = hs256.Errors{Invalid: ErrInvalid, Expired: ErrExpired, WrongAudience: ErrWrongAudience, WrongIssuer: ErrWrongIssuer}

// Options configure a Signer.
type Options struct {
	Issuer string
	// Audience is the aud minted and required. Default Audience.
	Audience   string
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	Leeway     time.Duration
	CacheSize  int // default 16384; negative disables the cache
	Now        func() time.Time
}

// Claims of a verified token.
type Claims struct {
	Subject   string
	Email     string
	Login     string
	Type      string
	ID        string // jti
	FamilyID  string // fid
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Scopes is what the token may do; scopeset.All for a token minted
	// without a scope claim (before scopes existed).
	Scopes scopeset.Set
}

type wireClaims struct {
	Email    string  `json:"email,omitempty"`
	Login    string  `json:"login,omitempty"`
	Type     string  `json:"type"`
	FamilyID string  `json:"fid"`
	Scope    *string `json:"scope,omitempty"`
	jwt.RegisteredClaims
}

// Signer mints and verifies CLI tokens. Safe for concurrent use.
type Signer struct {
	key     []byte
	opts    Options
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc
	cache   *expcache.Cache[string, Claims]
}

// NewSigner returns a Signer for key (CLI_JWT_SECRET).
func NewSigner(key []byte, opts Options) (*Signer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("clitoken: key is %d bytes, want at least %d", len(key), MinKeyLen)
	}
	if opts.Issuer == "" {
		return nil, errors.New("clitoken: Issuer is required")
	}
	if opts.Audience == "" {
		opts.Audience = Audience
	}
	if opts.AccessTTL <= 0 {
		opts.AccessTTL = DefaultAccessTTL
	}
	if opts.RefreshTTL <= 0 {
		opts.RefreshTTL = DefaultRefreshTTL
	}
	switch {
	case opts.Leeway == 0:
		opts.Leeway = DefaultLeeway
	case opts.Leeway < 0: // none
		opts.Leeway = 0
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 16384
	}
	key = append([]byte(nil), key...) // ours: the caller may reuse its slice
	s := &Signer{
		key:     key,
		opts:    opts,
		parser:  hs256.Parser(opts.Issuer, opts.Audience, opts.Leeway, opts.Now),
		keyFunc: hs256.KeyFunc(key),
	}
	if opts.CacheSize > 0 {
		s.cache = expcache.New[string](opts.CacheSize, func(c Claims) time.Time { return c.ExpiresAt })
	}
	return s, nil
}

// AccessTTL and RefreshTTL are the lifetimes of minted tokens.
func (s *Signer) AccessTTL() time.Duration  { return s.opts.AccessTTL }
func (s *Signer) RefreshTTL() time.Duration { return s.opts.RefreshTTL }

// NewID returns 128 random bits, base64url: a jti or family id.
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("clitoken: reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Subject is the user a token is for, and what the token may do.
type Subject struct {
	UserID, Email, Login string
	// Scopes becomes the scope claim; Mint refuses an empty set.
	Scopes scopeset.Set
}

// Mint signs a token of type typ for user sub in family fid with id jti.
func (s *Signer) Mint(typ string, sub Subject, fid, jti string) (string, time.Time, error) {
	if sub.UserID == "" || fid == "" || jti == "" {
		return "", time.Time{}, errors.New("clitoken: sub, fid and jti are required")
	}
	if sub.Scopes == 0 {
		return "", time.Time{}, errors.New("clitoken: a token needs at least one scope")
	}
	sc := sub.Scopes.String()
	ttl := s.opts.AccessTTL
	switch typ {
	case TypeAccess:
	case TypeRefresh:
		ttl = s.opts.RefreshTTL
	default:
		return "", time.Time{}, fmt.Errorf("clitoken: unknown token type %q", typ)
	}
	now := s.opts.Now().Truncate(time.Second)
	exp := now.Add(ttl)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, wireClaims{
		Email: sub.Email, Login: sub.Login, Type: typ, FamilyID: fid, Scope: &sc,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.opts.Issuer, Subject: sub.UserID, Audience: jwt.ClaimStrings{s.opts.Audience},
			ExpiresAt: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(now), ID: jti,
		},
	}).SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("clitoken: sign: %w", err)
	}
	return tok, exp, nil
}

// Verify checks token and that it is of type typ. Access tokens verified
// before are answered from the cache until their exp.
func (s *Signer) Verify(token, typ string) (Claims, error) {
	now := s.opts.Now()
	if s.cache != nil && typ == TypeAccess {
		if c, ok := s.cache.Get(token, now); ok {
			return c, nil
		}
	}
	var wc wireClaims
	_, err := s.parser.ParseWithClaims(token, &wc, s.keyFunc)
	if err != nil {
		return Claims{}, parseErrors.Wrap(err)
	}
	if wc.Type != typ {
		return Claims{}, fmt.Errorf("%w: %q, want %q", ErrWrongType, wc.Type, typ)
	}
	if wc.Subject == "" || wc.ID == "" || wc.FamilyID == "" || wc.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: missing sub, jti, fid or iat", ErrInvalid)
	}
	c := Claims{
		Subject: wc.Subject, Email: wc.Email, Login: wc.Login, Type: wc.Type, ID: wc.ID, FamilyID: wc.FamilyID,
		IssuedAt: wc.IssuedAt.Time, ExpiresAt: wc.ExpiresAt.Time, Scopes: scopeset.All,
	}
	if wc.Scope != nil {
		c.Scopes = scopeset.ParseKnown(*wc.Scope)
	}
	if s.cache != nil && typ == TypeAccess && now.Before(c.ExpiresAt) {
		s.cache.Put(strings.Clone(token), c, now)
	}
	return c, nil
}

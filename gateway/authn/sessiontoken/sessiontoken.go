// Package sessiontoken mints and verifies the short-lived HS256 JWT that the
// web session cookie carries.
//
//	s, err := sessiontoken.NewSigner(key, sessiontoken.Options{Issuer: "https://arbor.example", Audience: "arbor-session"})
//	tok, exp, err := s.Mint(sessionID, userID, email)
//	…
//	claims, err := s.Verify(tok)
//	if err == nil && s.NeedsRefresh(claims) { /* re-issue the cookie */ }
//
// The token proves only that Arbor issued it recently for that session; the
// caller still checks that the session record exists (logout and "end other
// sessions" take effect there, at once).
//
// # Verification cache
//
// A full parse and HMAC check costs several microseconds and dozens of
// allocations, which is too much for every request. Verify therefore keeps a
// bounded cache of tokens it has already verified, keyed by the token
// string itself. Caching is safe because:
//
//   - HMAC verification is deterministic: the same bytes under the same key
//     give the same answer every time, and the key is fixed for a Signer.
//     A new key means a new Signer with an empty cache.
//   - The key is the whole token, so a token that differs in any byte
//     (header, claims or signature) misses.
//   - The only claim whose verdict changes with time is exp: an entry is
//     never used at or after the token's exp, whatever the leeway.
//   - Only successful verifications are cached, so an attacker cannot fill
//     the cache without tokens signed with the key.
//   - Revocation is not the token's job: the session record is checked
//     separately on every request.
package sessiontoken

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vintner/arbor/internal/hs256"
)

// TypeSession is the typ claim of a session token. Tokens of any other type
// (for example the CLI's access tokens) are refused by Verify.
const TypeSession = "session"

// Defaults for Options.
const (
	DefaultTTL       = 15 * time.Minute
	DefaultLeeway    = 5 * time.Second
	DefaultCacheSize = 16384
	// MinKeyLen is the shortest HMAC key NewSigner accepts, in bytes.
	MinKeyLen = 32
)

// Errors returned by Verify, to be compared with errors.Is. The returned
// error may wrap the underlying cause for logging.
var (
	// ErrInvalid is returned for a token that is malformed, is not HS256,
	// has a bad signature, or lacks a required claim (exp, iat, iss, aud,
	// sid, sub).
	ErrInvalid = errors.New("sessiontoken: invalid token")
	// ErrExpired is returned for a well-signed token past its exp.
	ErrExpired = errors.New("sessiontoken: token expired")
	// ErrWrongType is returned for a well-signed token whose typ is not
	// TypeSession.
	ErrWrongType = errors.New("sessiontoken: wrong token type")
	// ErrWrongAudience is returned when aud does not hold Options.Audience.
	ErrWrongAudience = errors.New("sessiontoken: wrong audience")
	// ErrWrongIssuer is returned when iss is not Options.Issuer.
	ErrWrongIssuer = errors.New("sessiontoken: wrong issuer")
)

// parseErrors are the errors above for what the JWT parser finds wrong.
var parseErrors = hs256.Errors{Invalid: ErrInvalid, Expired: ErrExpired, WrongAudience: ErrWrongAudience, WrongIssuer: ErrWrongIssuer}

// Options configure a Signer.
type Options struct {
	// Issuer is the iss claim written and required. Required.
	Issuer string
	// Audience is the aud claim written and required. Required; use a
	// value distinct from the CLI tokens' audience.
	Audience string
	// TTL is the lifetime of a minted token. Default DefaultTTL.
	TTL time.Duration
	// Leeway is the clock skew tolerated on exp and iat. Default
	// DefaultLeeway; a negative value means none.
	Leeway time.Duration
	// CacheSize bounds the number of verified tokens kept. Default
	// DefaultCacheSize; a negative value disables the cache.
	CacheSize int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Claims are the verified contents of a session token.
type Claims struct {
	SessionID string    // sid
	Subject   string    // sub: the Arbor user id
	Email     string    // email
	Issuer    string    // iss
	Audience  string    // aud (the one this Signer requires)
	IssuedAt  time.Time // iat
	ExpiresAt time.Time // exp
}

// Signer mints and verifies session tokens. It is safe for concurrent use.
type Signer struct {
	key     []byte
	opts    Options
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc
	// lapsed parses without time checks, for VerifyLapsed.
	lapsed *jwt.Parser
	cache  *cache // nil when disabled
}

// wireClaims is the JSON form of the token's claims.
type wireClaims struct {
	SessionID string `json:"sid"`
	Email     string `json:"email,omitempty"`
	Type      string `json:"typ"`
	jwt.RegisteredClaims
}

// NewSigner returns a Signer for key, which must be at least MinKeyLen bytes.
func NewSigner(key []byte, opts Options) (*Signer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("sessiontoken: key is %d bytes, want at least %d", len(key), MinKeyLen)
	}
	if opts.Issuer == "" || opts.Audience == "" {
		return nil, errors.New("sessiontoken: Issuer and Audience are required")
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.TTL < 0 {
		return nil, fmt.Errorf("sessiontoken: negative TTL %v", opts.TTL)
	}
	switch {
	case opts.Leeway == 0:
		opts.Leeway = DefaultLeeway
	case opts.Leeway < 0:
		opts.Leeway = 0
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	key = append([]byte(nil), key...) // ours: the caller may reuse its slice
	s := &Signer{
		key:     key,
		opts:    opts,
		parser:  hs256.Parser(opts.Issuer, opts.Audience, opts.Leeway, opts.Now),
		keyFunc: hs256.KeyFunc(key),
	}
	s.lapsed = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithoutClaimsValidation(),
		jwt.WithStrictDecoding(),
	)
	if opts.CacheSize > 0 {
		s.cache = newCache(opts.CacheSize)
	}
	return s, nil
}

// Mint returns a signed session token for the session sid of user sub, and
// its expiry.
func (s *Signer) Mint(sid, sub, email string) (string, time.Time, error) {
	if sid == "" || sub == "" {
		return "", time.Time{}, errors.New("sessiontoken: sid and sub are required")
	}
	now := s.opts.Now().Truncate(time.Second)
	exp := now.Add(s.opts.TTL)
	c := wireClaims{
		SessionID: sid,
		Email:     email,
		Type:      TypeSession,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.opts.Issuer,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{s.opts.Audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
		},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sessiontoken: sign: %w", err)
	}
	return tok, exp, nil
}

// Verify checks token and returns its claims. Tokens verified before are
// answered from the cache until their exp.
//
// # Errors
//
// ErrInvalid, ErrExpired, ErrWrongType, ErrWrongAudience or ErrWrongIssuer.
func (s *Signer) Verify(token string) (Claims, error) {
	if s.cache == nil {
		return s.verify(token)
	}
	now := s.opts.Now()
	if c, ok := s.cache.Get(token, now); ok {
		return c, nil
	}
	c, err := s.verify(token)
	if err != nil {
		return Claims{}, err
	}
	if now.Before(c.ExpiresAt) { // accepted within the leeway: not worth caching
		s.cache.Put(strings.Clone(token), c, now) // token may alias a request buffer
	}
	return c, nil
}

// verify is the full, uncached check.
func (s *Signer) verify(token string) (Claims, error) {
	var wc wireClaims
	_, err := s.parser.ParseWithClaims(token, &wc, s.keyFunc)
	if err != nil {
		return Claims{}, parseErrors.Wrap(err)
	}
	// The parser checked the signature, exp, iat, iss and aud; the rest is
	// ours.
	if wc.Type != TypeSession {
		return Claims{}, fmt.Errorf("%w: typ %q", ErrWrongType, wc.Type)
	}
	if wc.SessionID == "" || wc.Subject == "" || wc.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: missing sid, sub or iat", ErrInvalid)
	}
	return s.claims(&wc), nil
}

// claims are the Claims of a checked token: exp, iat, sid and sub present,
// aud the Signer's.
func (s *Signer) claims(wc *wireClaims) Claims {
	return Claims{
		SessionID: wc.SessionID,
		Subject:   wc.Subject,
		Email:     wc.Email,
		Issuer:    wc.Issuer,
		Audience:  s.opts.Audience,
		IssuedAt:  wc.IssuedAt.Time,
		ExpiresAt: wc.ExpiresAt.Time,
	}
}

// NeedsRefresh reports whether c is past half its lifetime, when the cookie
// should be re-issued with a fresh token.
func (s *Signer) NeedsRefresh(c Claims) bool {
	half := c.IssuedAt.Add(c.ExpiresAt.Sub(c.IssuedAt) / 2)
	return !s.opts.Now().Before(half)
}

// VerifyLapsed checks a token that Verify refused with ErrExpired: the
// algorithm, signature, issuer, audience and type are checked exactly as by
// Verify, but the token may have expired up to maxAge ago. It exists for
// one purpose: a browser that comes back after the token's short lifetime,
// while its session record is still alive, gets a fresh cookie instead of
// being signed out. The caller must confirm the session record (which
// carries the real idle and absolute limits) before re-issuing.
func (s *Signer) VerifyLapsed(token string, maxAge time.Duration) (Claims, error) {
	var wc wireClaims
	if _, err := s.lapsed.ParseWithClaims(token, &wc, s.keyFunc); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if wc.ExpiresAt == nil || wc.IssuedAt == nil || wc.SessionID == "" || wc.Subject == "" {
		return Claims{}, fmt.Errorf("%w: missing exp, iat, sid or sub", ErrInvalid)
	}
	if wc.Issuer != s.opts.Issuer {
		return Claims{}, fmt.Errorf("%w: %q", ErrWrongIssuer, wc.Issuer)
	}
	if len(wc.Audience) != 1 || wc.Audience[0] != s.opts.Audience {
		return Claims{}, fmt.Errorf("%w: %v", ErrWrongAudience, wc.Audience)
	}
	if wc.Type != TypeSession {
		return Claims{}, fmt.Errorf("%w: typ %q", ErrWrongType, wc.Type)
	}
	now := s.opts.Now()
	if wc.IssuedAt.Time.After(now.Add(s.opts.Leeway)) {
		return Claims{}, fmt.Errorf("%w: issued in the future", ErrInvalid)
	}
	if now.Sub(wc.ExpiresAt.Time) > maxAge {
		return Claims{}, fmt.Errorf("%w: lapsed more than %v ago", ErrExpired, maxAge)
	}
	return s.claims(&wc), nil
}

// Package assertion signs the identity assertion Arbor attaches to every
// proxied request, so the upstream can verify who the user is without
// trusting the plain X-Arbor-User-* headers, and publishes the verification
// keys as a JSON Web Key Set.
//
//	key, _ := assertion.GenerateKey()           // once; keep MarshalKey(key) sealed
//	s, err := assertion.NewSigner([]ed25519.PrivateKey{key}, assertion.Options{
//		Issuer: "https://arbor.example", Audience: "my-upstream",
//	})
//	tok, err := s.Sign(assertion.Identity{UserID: "u_1", Email: "a@example.com", Login: "alice"})
//	// set tok on the proxied request; serve s.JWKS() at /.well-known/jwks.json
//
// Tokens are compact JWS with alg EdDSA over Ed25519 (RFC 8037) and a kid
// header equal to the RFC 7638 JWK thumbprint of the signing key (KeyID).
//
// # Shapes
//
// ShapeArbor writes iss, sub, aud (Options.Audience), iat, exp, and email,
// login, worker_id and groups (a list) when set. ShapeSupabase writes sub, role
// "authenticated", aud "authenticated", email, iss, iat, exp and groups
// when set, which is what PostgREST/Supabase expect, so auth.uid() in row-level security
// policies keeps working behind Arbor.
//
// # Key rotation
//
// NewSigner takes keys newest first: the first signs, all are published in
// the JWKS. To rotate, generate a key, put it first, keep the old one in the
// list for at least the TTL (plus the upstream's JWKS cache time), then drop
// it.
//
// # What upstreams must check
//
// A verifier must pin the algorithm to EdDSA and take the key from the JWKS
// by kid; it must never let the token's alg header choose the algorithm.
// Otherwise a forged token with alg "none", or with alg "HS256" keyed with
// the (public) Ed25519 key bytes, could be accepted. It must also require
// exp, and check iss and aud. The tests of this package do exactly this
// with golang-jwt (jwt.WithValidMethods([]string{"EdDSA"})).
//
// # Signing cache
//
// An Ed25519 signature costs tens of microseconds, too much for every
// request. Sign therefore keeps a bounded cache of the latest token per
// (shape, identity) and returns it again while more than half its TTL is
// left; after that it signs a fresh one. This is safe because:
//
//   - The key is every field the claims are built from (shape, user id,
//     e-mail, login, worker id, groups), so a cached token asserts exactly what a
//     fresh one would; only iat/exp differ, and a reused token always has
//     at least half the TTL left.
//   - Assertions are short-lived (default 5 minutes) and are only produced
//     for requests that Arbor has already authenticated: session
//     revocation, logout and expiry are enforced by Arbor before Sign is
//     reached, so a cached token is never handed to a request that would
//     not have got a freshly signed one.
//   - The cache belongs to one Signer, so a new key set (a new Signer)
//     starts empty; tokens are never shared between signers.
//   - Size is bounded (Options.CacheSize, sharded): a full shard evicts an
//     expired entry if it finds one, otherwise a random one. Eviction only
//     costs a re-sign.
//
// What the cache does not do: a token already given to an upstream stays
// valid until its exp. Upstreams that need instant revocation must rely on
// Arbor refusing the request, not on the assertion.
package assertion

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Shape selects the claim set of an assertion.
type Shape uint8

const (
	// ShapeArbor: iss, sub, aud, iat, exp, email, login, worker_id.
	ShapeArbor Shape = iota
	// ShapeSupabase: sub, role "authenticated", aud "authenticated",
	// email, iss, iat, exp.
	ShapeSupabase
)

// String returns the shape's name.
func (s Shape) String() string {
	switch s {
	case ShapeArbor:
		return "arbor"
	case ShapeSupabase:
		return "supabase"
	}
	return fmt.Sprintf("Shape(%d)", uint8(s))
}

// SupabaseRole is the role and audience of a Supabase-shaped assertion.
const SupabaseRole = "authenticated"

// Defaults for Options.
const (
	DefaultTTL       = 5 * time.Minute
	DefaultCacheSize = 16384
)

// Options configure a Signer.
type Options struct {
	// Issuer is the iss claim. Required.
	Issuer string
	// Audience is the aud claim of ShapeArbor. Required for ShapeArbor;
	// ignored by ShapeSupabase, whose aud is always "authenticated".
	Audience string
	// TTL is the lifetime of an assertion. Default DefaultTTL; at least
	// 2 seconds (exp is whole seconds).
	TTL time.Duration
	// Shape selects the claims. Default ShapeArbor.
	Shape Shape
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// CacheSize bounds the number of cached assertions. Default
	// DefaultCacheSize; a negative value disables the cache.
	CacheSize int
}

// Identity is who an assertion speaks for.
type Identity struct {
	UserID   string // sub; required
	Email    string
	Login    string // ShapeArbor only
	WorkerID string // ShapeArbor only
	// Groups are the user's groups the upstream may see, joined with ","
	// (membership.Member.VisibleHeader; no group has a comma), written as
	// the "groups" claim, a list. Being part of the cache key, different
	// groups never share a cached token.
	Groups string
}

// Signer signs assertions. It is safe for concurrent use.
type Signer struct {
	key   ed25519.PrivateKey
	kid   string
	opts  Options
	jwks  []byte
	cache *cache // nil when disabled
}

// arborClaims is the JSON form of a ShapeArbor assertion.
type arborClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience string   `json:"aud"`
	IssuedAt int64    `json:"iat"`
	Expires  int64    `json:"exp"`
	Email    string   `json:"email,omitempty"`
	Login    string   `json:"login,omitempty"`
	WorkerID string   `json:"worker_id,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}

// supabaseClaims is the JSON form of a ShapeSupabase assertion.
type supabaseClaims struct {
	Subject  string `json:"sub"`
	Role     string `json:"role"`
	Audience string `json:"aud"`
	Email    string `json:"email"`
	Issuer   string `json:"iss"`
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
	// Groups: PostgREST exposes custom claims to row-level security
	// (request.jwt.claims), so the groups serve there too.
	Groups []string `json:"groups,omitempty"`
}

// jwk is one entry of the published key set.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// NewSigner returns a Signer. keys are newest first: keys[0] signs, and all
// are published by JWKS.
func NewSigner(keys []ed25519.PrivateKey, opts Options) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("assertion: no keys")
	}
	if opts.Issuer == "" {
		return nil, errors.New("assertion: Issuer is required")
	}
	switch opts.Shape {
	case ShapeArbor:
		if opts.Audience == "" {
			return nil, errors.New("assertion: Audience is required for ShapeArbor")
		}
	case ShapeSupabase:
	default:
		return nil, fmt.Errorf("assertion: unknown shape %v", opts.Shape)
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.TTL < 2*time.Second {
		return nil, fmt.Errorf("assertion: TTL %v is shorter than 2s", opts.TTL)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	seen := make(map[string]bool, len(keys))
	for i, k := range keys {
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("assertion: key %d is %d bytes, want %d", i, len(k), ed25519.PrivateKeySize)
		}
		pub := k.Public().(ed25519.PublicKey)
		kid := KeyID(pub)
		if seen[kid] {
			return nil, fmt.Errorf("assertion: key %d is a duplicate (kid %s)", i, kid)
		}
		seen[kid] = true
		set.Keys = append(set.Keys, jwk{
			Kty: "OKP", Crv: "Ed25519",
			X:   base64.RawURLEncoding.EncodeToString(pub),
			Kid: kid, Use: "sig", Alg: jwt.SigningMethodEdDSA.Alg(),
		})
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("assertion: marshal JWKS: %w", err)
	}
	s := &Signer{
		key:  append(ed25519.PrivateKey(nil), keys[0]...),
		kid:  set.Keys[0].Kid,
		opts: opts,
		jwks: jwks,
	}
	if opts.CacheSize > 0 {
		s.cache = newCache(opts.CacheSize)
	}
	return s, nil
}

// KeyID returns the kid of the signing key.
func (s *Signer) KeyID() string { return s.kid }

// JWKSContentType is the media type to serve JWKS with.
const JWKSContentType = "application/jwk-set+json"

// JWKS returns the JSON Web Key Set of all public keys, for the caller to
// serve at /.well-known/jwks.json. It is computed once; the result is a copy.
func (s *Signer) JWKS() []byte {
	return append([]byte(nil), s.jwks...)
}

// Sign returns a signed assertion for id, reusing a cached one while it has
// more than half its TTL left.
func (s *Signer) Sign(id Identity) (string, error) {
	if id.UserID == "" {
		return "", errors.New("assertion: UserID is required")
	}
	if s.opts.Shape == ShapeSupabase {
		// Fields the shape does not write must not split the cache.
		id.Login, id.WorkerID = "", ""
	}
	now := s.opts.Now()
	if s.cache == nil {
		tok, _, err := s.sign(id, now)
		return tok, err
	}
	k := cacheKey{shape: s.opts.Shape, id: id}
	if e, ok := s.cache.Get(k, now); ok && now.Before(e.freshTo) {
		return e.token, nil
	}
	tok, iat, err := s.sign(id, now)
	if err != nil {
		return "", err
	}
	s.cache.Put(k, entry{
		token:   tok,
		freshTo: iat.Add(s.opts.TTL / 2),
		exp:     iat.Add(s.opts.TTL),
	}, now)
	return tok, nil
}

// sign signs a fresh assertion; iat is now truncated to the second, and exp
// is iat plus the TTL (rounded down to the second).
func (s *Signer) sign(id Identity, now time.Time) (string, time.Time, error) {
	iat := now.Truncate(time.Second)
	exp := iat.Add(s.opts.TTL).Unix()
	var claims any
	switch s.opts.Shape {
	case ShapeSupabase:
		claims = supabaseClaims{
			Subject: id.UserID, Role: SupabaseRole, Audience: SupabaseRole,
			Email: id.Email, Issuer: s.opts.Issuer,
			IssuedAt: iat.Unix(), Expires: exp, Groups: splitGroups(id.Groups),
		}
	default:
		claims = arborClaims{
			Issuer: s.opts.Issuer, Subject: id.UserID, Audience: s.opts.Audience,
			IssuedAt: iat.Unix(), Expires: exp,
			Email: id.Email, Login: id.Login, WorkerID: id.WorkerID, Groups: splitGroups(id.Groups),
		}
	}
	tok, err := s.encode(claims)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, iat, nil
}

// splitGroups is the groups claim of Identity.Groups; nil for none.
func splitGroups(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// headerPrefix is the start of the JOSE header; the kid and typ follow.
const headerPrefix = `{"alg":"EdDSA","kid":"`

// encode builds the compact JWS for claims.
func (s *Signer) encode(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("assertion: marshal claims: %w", err)
	}
	header := headerPrefix + s.kid + `","typ":"JWT"}`
	enc := base64.RawURLEncoding
	hl, pl := enc.EncodedLen(len(header)), enc.EncodedLen(len(payload))
	buf := make([]byte, hl+1+pl, hl+1+pl+1+enc.EncodedLen(ed25519.SignatureSize))
	enc.Encode(buf, []byte(header))
	buf[hl] = '.'
	enc.Encode(buf[hl+1:], payload)
	sig := ed25519.Sign(s.key, buf)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

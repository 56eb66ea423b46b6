package assertion

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://arbor.test"
	testAudience = "upstream.test"
)

// clock is an injectable, adjustable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func mustKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSigner(t testing.TB, keys []ed25519.PrivateKey, opts Options) *Signer {
	t.Helper()
	if opts.Issuer == "" {
		opts.Issuer = testIssuer
	}
	if opts.Audience == "" && opts.Shape == ShapeArbor {
		opts.Audience = testAudience
	}
	s, err := NewSigner(keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// upstream is what a service behind Arbor does: it knows only the JWKS JSON
// and pins EdDSA, the issuer and the audience.
type upstream struct {
	keys     map[string]ed25519.PublicKey
	audience string
	now      func() time.Time
}

func newUpstream(t *testing.T, jwks []byte, audience string, now func() time.Time) *upstream {
	t.Helper()
	var set struct {
		Keys []struct {
			Kty, Crv, X, Kid, Use, Alg string
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("JWKS does not parse: %v", err)
	}
	u := &upstream{keys: map[string]ed25519.PublicKey{}, audience: audience, now: now}
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Use != "sig" || k.Alg != "EdDSA" || k.Kid == "" {
			t.Fatalf("unexpected JWK %+v", k)
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			t.Fatalf("JWK x %q: len %d, %v", k.X, len(x), err)
		}
		u.keys[k.Kid] = ed25519.PublicKey(x)
	}
	return u
}

// keyfunc picks the JWKS key named by the token's kid.
func (u *upstream) keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	k, ok := u.keys[kid]
	if !ok {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	return k, nil
}

func (u *upstream) verify(tok string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, u.keyfunc,
		jwt.WithValidMethods([]string{"EdDSA"}),
		jwt.WithIssuer(testIssuer),
		jwt.WithAudience(u.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(u.now),
	)
	return claims, err
}

func TestUpstreamVerifiesShapes(t *testing.T) {
	c := newClock()
	key := mustKey(t)
	id := Identity{UserID: "u_123", Email: "alice@example.com", Login: "alice", WorkerID: "w_9"}
	tests := []struct {
		name     string
		shape    Shape
		id       Identity
		audience string
		want     map[string]any
		absent   []string
	}{
		{
			name: "arbor full", shape: ShapeArbor, id: id, audience: testAudience,
			want: map[string]any{"iss": testIssuer, "sub": "u_123", "aud": testAudience,
				"email": "alice@example.com", "login": "alice", "worker_id": "w_9"},
			absent: []string{"role"},
		},
		{
			name: "arbor minimal", shape: ShapeArbor, id: Identity{UserID: "u_1"}, audience: testAudience,
			want:   map[string]any{"iss": testIssuer, "sub": "u_1", "aud": testAudience},
			absent: []string{"email", "login", "worker_id", "role"},
		},
		{
			name: "supabase", shape: ShapeSupabase, id: id, audience: "authenticated",
			want: map[string]any{"iss": testIssuer, "sub": "u_123", "aud": "authenticated",
				"role": "authenticated", "email": "alice@example.com"},
			absent: []string{"login", "worker_id"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSigner(t, []ed25519.PrivateKey{key}, Options{Shape: tt.shape, Now: c.now})
			tok, err := s.Sign(tt.id)
			if err != nil {
				t.Fatal(err)
			}
			u := newUpstream(t, s.JWKS(), tt.audience, c.now)
			claims, err := u.verify(tok)
			if err != nil {
				t.Fatalf("upstream refused a good token: %v", err)
			}
			for k, v := range tt.want {
				if claims[k] != v {
					t.Errorf("claim %s = %v, want %v", k, claims[k], v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := claims[k]; ok {
					t.Errorf("claim %s present, want absent", k)
				}
			}
			iat, _ := claims["iat"].(float64)
			exp, _ := claims["exp"].(float64)
			if int64(iat) != c.now().Unix() || int64(exp) != c.now().Add(DefaultTTL).Unix() {
				t.Errorf("iat/exp = %v/%v, want %v/%v", iat, exp, c.now().Unix(), c.now().Add(DefaultTTL).Unix())
			}
			hdr := decodeSegment(t, tok, 0)
			if hdr["alg"] != "EdDSA" || hdr["kid"] != KeyID(key.Public().(ed25519.PublicKey)) {
				t.Errorf("header = %v", hdr)
			}
		})
	}
}

func decodeSegment(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestKeyRotation(t *testing.T) {
	c := newClock()
	oldKey, newKey := mustKey(t), mustKey(t)
	oldSigner := mustSigner(t, []ed25519.PrivateKey{oldKey}, Options{Now: c.now})
	rotated := mustSigner(t, []ed25519.PrivateKey{newKey, oldKey}, Options{Now: c.now})
	newOnly := mustSigner(t, []ed25519.PrivateKey{newKey}, Options{Now: c.now})

	id := Identity{UserID: "u_1", Email: "a@example.com"}
	oldTok, err := oldSigner.Sign(id)
	if err != nil {
		t.Fatal(err)
	}
	newTok, err := rotated.Sign(id)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := decodeSegment(t, newTok, 0)["kid"], KeyID(newKey.Public().(ed25519.PublicKey)); got != want {
		t.Fatalf("rotated signer used kid %v, want newest %v", got, want)
	}
	if rotated.KeyID() != KeyID(newKey.Public().(ed25519.PublicKey)) {
		t.Fatalf("KeyID() is not the newest key's")
	}
	tests := []struct {
		name    string
		jwks    []byte
		tok     string
		wantErr bool
	}{
		{"new token, rotated JWKS", rotated.JWKS(), newTok, false},
		{"old token, rotated JWKS", rotated.JWKS(), oldTok, false},
		{"old token, after old key dropped", newOnly.JWKS(), oldTok, true},
		{"new token, old JWKS", oldSigner.JWKS(), newTok, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newUpstream(t, tt.jwks, testAudience, c.now).verify(tt.tok)
			if (err != nil) != tt.wantErr {
				t.Fatalf("verify err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
	if n := strings.Count(string(rotated.JWKS()), `"kid"`); n != 2 {
		t.Fatalf("rotated JWKS has %d keys, want 2", n)
	}
}

func TestUpstreamRefusesForgeries(t *testing.T) {
	c := newClock()
	key := mustKey(t)
	pub := key.Public().(ed25519.PublicKey)
	s := mustSigner(t, []ed25519.PrivateKey{key}, Options{Now: c.now})
	good, err := s.Sign(Identity{UserID: "u_1"})
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{
		"iss": testIssuer, "sub": "attacker", "aud": testAudience,
		"iat": c.now().Unix(), "exp": c.now().Add(time.Minute).Unix(),
	}
	forge := func(m jwt.SigningMethod, key any) string {
		tok := jwt.NewWithClaims(m, claims)
		tok.Header["kid"] = KeyID(pub)
		str, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return str
	}
	parts := strings.Split(good, ".")
	otherKey := mustKey(t)
	tests := []struct {
		name string
		tok  string
	}{
		{"alg none", forge(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType)},
		{"alg none, empty signature on real payload", base64.RawURLEncoding.EncodeToString(
			[]byte(`{"alg":"none","kid":"`+KeyID(pub)+`"}`)) + "." + parts[1] + "."},
		{"HS256 keyed with public key bytes", forge(jwt.SigningMethodHS256, []byte(pub))},
		{"HS256 keyed with JWK x string", forge(jwt.SigningMethodHS256, []byte(base64.RawURLEncoding.EncodeToString(pub)))},
		{"EdDSA with another key, our kid", forge(jwt.SigningMethodEdDSA, otherKey)},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString(
			[]byte(`{"iss":"`+testIssuer+`","sub":"admin","aud":"`+testAudience+`","iat":1,"exp":9999999999}`)) + "." + parts[2]},
	}
	u := newUpstream(t, s.JWKS(), testAudience, c.now)
	if _, err := u.verify(good); err != nil {
		t.Fatalf("control: good token refused: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := u.verify(tt.tok); err == nil {
				t.Fatal("forged token accepted")
			}
		})
	}
}

func TestUpstreamRefusesExpiredAndWrongClaims(t *testing.T) {
	key := mustKey(t)
	tests := []struct {
		name     string
		advance  time.Duration
		audience string
		wantErr  error
	}{
		{"fresh", 0, testAudience, nil},
		{"just before exp", DefaultTTL - time.Second, testAudience, nil},
		{"at exp", DefaultTTL, testAudience, jwt.ErrTokenExpired},
		{"long expired", time.Hour, testAudience, jwt.ErrTokenExpired},
		{"wrong audience", 0, "someone-else", jwt.ErrTokenInvalidAudience},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			s := mustSigner(t, []ed25519.PrivateKey{key}, Options{Now: c.now})
			tok, err := s.Sign(Identity{UserID: "u_1"})
			if err != nil {
				t.Fatal(err)
			}
			c.add(tt.advance)
			_, err = newUpstream(t, s.JWKS(), tt.audience, c.now).verify(tok)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("verify err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestCacheHalfLife(t *testing.T) {
	const ttl = 5 * time.Minute
	tests := []struct {
		name    string
		advance time.Duration
		same    bool
	}{
		{"immediately", 0, true},
		{"well within half-life", ttl/2 - 30*time.Second, true},
		{"just before half-life", ttl/2 - time.Millisecond, true},
		{"at half-life", ttl / 2, false},
		{"after half-life", ttl/2 + time.Second, false},
		{"after expiry", 2 * ttl, false},
	}
	key := mustKey(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			s := mustSigner(t, []ed25519.PrivateKey{key}, Options{TTL: ttl, Now: c.now})
			id := Identity{UserID: "u_1", Email: "a@example.com"}
			first, err := s.Sign(id)
			if err != nil {
				t.Fatal(err)
			}
			c.add(tt.advance)
			second, err := s.Sign(id)
			if err != nil {
				t.Fatal(err)
			}
			if (first == second) != tt.same {
				t.Fatalf("same token = %v, want %v", first == second, tt.same)
			}
			// Whatever came back must verify now, with more than half
			// its lifetime left.
			claims, err := newUpstream(t, s.JWKS(), testAudience, c.now).verify(second)
			if err != nil {
				t.Fatalf("returned token does not verify: %v", err)
			}
			exp, _ := claims["exp"].(float64)
			if left := time.Unix(int64(exp), 0).Sub(c.now()); left <= ttl/2 {
				t.Fatalf("returned token has %v left, want > %v", left, ttl/2)
			}
		})
	}
}

func TestCacheKeyedByIdentity(t *testing.T) {
	c := newClock()
	key := mustKey(t)
	base := Identity{UserID: "u_1", Email: "a@example.com", Login: "a", WorkerID: "w"}
	tests := []struct {
		name  string
		shape Shape
		other Identity
		same  bool
	}{
		{"same identity", ShapeArbor, base, true},
		{"other user", ShapeArbor, Identity{UserID: "u_2", Email: base.Email, Login: base.Login, WorkerID: base.WorkerID}, false},
		{"other email", ShapeArbor, Identity{UserID: base.UserID, Email: "b@example.com", Login: base.Login, WorkerID: base.WorkerID}, false},
		{"other login", ShapeArbor, Identity{UserID: base.UserID, Email: base.Email, Login: "b", WorkerID: base.WorkerID}, false},
		{"other worker", ShapeArbor, Identity{UserID: base.UserID, Email: base.Email, Login: base.Login}, false},
		{"supabase ignores login", ShapeSupabase, Identity{UserID: base.UserID, Email: base.Email}, true},
		{"supabase other email", ShapeSupabase, Identity{UserID: base.UserID, Email: "b@example.com"}, false},
		{"other groups", ShapeArbor, Identity{UserID: base.UserID, Email: base.Email, Login: base.Login, WorkerID: base.WorkerID, Groups: "github:vintner"}, false},
		{"supabase other groups", ShapeSupabase, Identity{UserID: base.UserID, Email: base.Email, Groups: "github:vintner"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSigner(t, []ed25519.PrivateKey{key}, Options{Shape: tt.shape, Now: c.now})
			a, err := s.Sign(base)
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.Sign(tt.other)
			if err != nil {
				t.Fatal(err)
			}
			if (a == b) != tt.same {
				t.Fatalf("same token = %v, want %v", a == b, tt.same)
			}
		})
	}
}

// TestCacheBounded fills the cache with 100k identities directly (signing
// that many would take seconds under -race) and checks the bound, then
// checks the bound through Sign with fewer.
func TestCacheBounded(t *testing.T) {
	const size = 1024
	now := newClock().now()
	c := newCache(size)
	for i := range 100_000 {
		k := cacheKey{id: Identity{UserID: fmt.Sprint("u_", i)}}
		c.Put(k, entry{token: "t", freshTo: now.Add(time.Minute), exp: now.Add(2 * time.Minute)}, now)
		if i%10_000 == 0 && c.Len() > size {
			t.Fatalf("after %d inserts cache holds %d > %d", i+1, c.Len(), size)
		}
	}
	if n := c.Len(); n > size || n < size/2 {
		t.Fatalf("cache holds %d entries, want at most %d and close to it", n, size)
	}
	// The most recent insert is always present.
	last := cacheKey{id: Identity{UserID: "u_99999"}}
	if _, ok := c.Get(last, now); !ok {
		t.Fatal("last insert evicted")
	}

	clk := newClock()
	s := mustSigner(t, []ed25519.PrivateKey{mustKey(t)}, Options{Now: clk.now, CacheSize: 64})
	for i := range 2000 {
		if _, err := s.Sign(Identity{UserID: fmt.Sprint("u_", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.cache.Len(); n > 64 {
		t.Fatalf("signer cache holds %d > 64", n)
	}
}

func TestConcurrentSign(t *testing.T) {
	clk := newClock()
	s := mustSigner(t, []ed25519.PrivateKey{mustKey(t)}, Options{Now: clk.now, CacheSize: 32})
	u := newUpstream(t, s.JWKS(), testAudience, clk.now)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := Identity{UserID: fmt.Sprint("u_", (g*7+i)%50)}
				t0 := clk.now()
				tok, err := s.Sign(id)
				if err != nil {
					errs <- err
					return
				}
				if i%50 == 0 {
					// Other goroutines move the clock, so check exp
					// against the time read before Sign: a returned
					// token is fresh at Sign's own (later) reading.
					cl := jwt.MapClaims{}
					_, err := jwt.ParseWithClaims(tok, cl, u.keyfunc,
						jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithoutClaimsValidation())
					exp, _ := cl["exp"].(float64)
					if err != nil || cl["sub"] != id.UserID || int64(exp) <= t0.Add(DefaultTTL/2).Unix()-1 {
						errs <- fmt.Errorf("token for %s: sub %v exp %v (t0 %v), %v", id.UserID, cl["sub"], exp, t0.Unix(), err)
						return
					}
				}
				if i%40 == 0 {
					clk.add(time.Minute)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestKeyIDThumbprint(t *testing.T) {
	// RFC 8037 appendix A.1/A.3 public key and its published thumbprint.
	rfcX := "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	rfcPub, err := base64.RawURLEncoding.DecodeString(rfcX)
	if err != nil {
		t.Fatal(err)
	}
	random := mustKey(t).Public().(ed25519.PublicKey)
	tests := []struct {
		name string
		pub  ed25519.PublicKey
		want string
	}{
		{"RFC 8037 A.3", rfcPub, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
		{"random key, independent computation", random, independentThumbprint(t, random)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KeyID(tt.pub); got != tt.want {
				t.Fatalf("KeyID = %s, want %s", got, tt.want)
			}
		})
	}
}

// independentThumbprint follows RFC 7638 §3 with encoding/json: the
// required members of an OKP key in lexicographic order, no whitespace.
func independentThumbprint(t *testing.T, pub ed25519.PublicKey) string {
	t.Helper()
	// encoding/json sorts map keys, which gives the lexicographic order.
	b, err := json.Marshal(map[string]string{
		"kty": "OKP", "x": base64.RawURLEncoding.EncodeToString(pub), "crv": "Ed25519",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `{"crv":"Ed25519","kty":"OKP","x":"`) {
		t.Fatalf("canonical JSON %s", b)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestMarshalParseRoundTrip(t *testing.T) {
	key := mustKey(t)
	pemBytes, err := MarshalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(pemBytes), "-----BEGIN PRIVATE KEY-----") {
		t.Fatalf("not a PKCS#8 PEM: %s", pemBytes)
	}
	got, err := ParseKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(key) {
		t.Fatal("round trip changed the key")
	}
	// A token signed with the parsed key verifies with the original's JWKS.
	c := newClock()
	s1 := mustSigner(t, []ed25519.PrivateKey{key}, Options{Now: c.now})
	s2 := mustSigner(t, []ed25519.PrivateKey{got}, Options{Now: c.now})
	tok, err := s2.Sign(Identity{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newUpstream(t, s1.JWKS(), testAudience, c.now).verify(tok); err != nil {
		t.Fatal(err)
	}
	if _, err := MarshalKey(ed25519.PrivateKey([]byte("short"))); err == nil {
		t.Fatal("MarshalKey accepted a short key")
	}
}

func TestParseKeyErrors(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	good, err := MarshalKey(mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(good)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not a key at all")},
		{"PEM of garbage", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage")})},
		{"ECDSA PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})},
		{"wrong PEM type", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: block.Bytes})},
		{"truncated DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: block.Bytes[:len(block.Bytes)-4]})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, err := ParseKey(tt.data); err == nil {
				t.Fatalf("ParseKey accepted it: %x", k)
			}
		})
	}
}

func TestNewSignerErrors(t *testing.T) {
	k := mustKey(t)
	tests := []struct {
		name string
		keys []ed25519.PrivateKey
		opts Options
	}{
		{"no keys", nil, Options{Issuer: "i", Audience: "a"}},
		{"short key", []ed25519.PrivateKey{k[:10]}, Options{Issuer: "i", Audience: "a"}},
		{"duplicate key", []ed25519.PrivateKey{k, k}, Options{Issuer: "i", Audience: "a"}},
		{"no issuer", []ed25519.PrivateKey{k}, Options{Audience: "a"}},
		{"arbor without audience", []ed25519.PrivateKey{k}, Options{Issuer: "i"}},
		{"unknown shape", []ed25519.PrivateKey{k}, Options{Issuer: "i", Audience: "a", Shape: 9}},
		{"tiny TTL", []ed25519.PrivateKey{k}, Options{Issuer: "i", Audience: "a", TTL: time.Second}},
		{"negative TTL", []ed25519.PrivateKey{k}, Options{Issuer: "i", Audience: "a", TTL: -time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSigner(tt.keys, tt.opts); err == nil {
				t.Fatal("NewSigner accepted it")
			}
		})
	}
	s := mustSigner(t, []ed25519.PrivateKey{k}, Options{})
	if _, err := s.Sign(Identity{Email: "x@example.com"}); err == nil {
		t.Fatal("Sign accepted an identity without UserID")
	}
}

func TestCacheDisabled(t *testing.T) {
	c := newClock()
	s := mustSigner(t, []ed25519.PrivateKey{mustKey(t)}, Options{Now: c.now, CacheSize: -1})
	id := Identity{UserID: "u"}
	a, err := s.Sign(id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Sign(id)
	if err != nil {
		t.Fatal(err)
	}
	// Ed25519 is deterministic: same claims, same key, same token.
	if a != b || s.cache != nil {
		t.Fatalf("disabled cache: tokens differ or cache exists")
	}
}

func TestJWKSIsCopy(t *testing.T) {
	s := mustSigner(t, []ed25519.PrivateKey{mustKey(t)}, Options{})
	j := s.JWKS()
	j[0] = 'X'
	if s.JWKS()[0] != '{' {
		t.Fatal("JWKS shares its buffer")
	}
}

func BenchmarkSignCold(b *testing.B) {
	s := mustSigner(b, []ed25519.PrivateKey{mustKey(b)}, Options{CacheSize: -1})
	id := Identity{UserID: "u_1234567890", Email: "alice@example.com", Login: "alice"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(id); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignCached(b *testing.B) {
	s := mustSigner(b, []ed25519.PrivateKey{mustKey(b)}, Options{})
	id := Identity{UserID: "u_1234567890", Email: "alice@example.com", Login: "alice"}
	if _, err := s.Sign(id); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(id); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignCachedParallel(b *testing.B) {
	s := mustSigner(b, []ed25519.PrivateKey{mustKey(b)}, Options{})
	ids := make([]Identity, 256)
	for i := range ids {
		ids[i] = Identity{UserID: fmt.Sprint("u_", i), Email: "alice@example.com", Login: "alice"}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Sign(ids[i&255]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// The groups claim is the list of Identity.Groups, in both shapes, and
// absent without groups.
func TestGroupsClaim(t *testing.T) {
	c := newClock()
	key := mustKey(t)
	for _, shape := range []Shape{ShapeArbor, ShapeSupabase} {
		s := mustSigner(t, []ed25519.PrivateKey{key}, Options{Shape: shape, Now: c.now})
		u := newUpstream(t, s.JWKS(), s.opts.Audience, c.now)
		if shape == ShapeSupabase {
			u = newUpstream(t, s.JWKS(), SupabaseRole, c.now)
		}
		for _, tc := range []struct {
			groups string
			want   []any
		}{
			{"github:vintner,github:vintner/platform", []any{"github:vintner", "github:vintner/platform"}},
			{"", nil},
		} {
			tok, err := s.Sign(Identity{UserID: "u_1", Email: "a@example.com", Groups: tc.groups})
			if err != nil {
				t.Fatal(err)
			}
			claims, err := u.verify(tok)
			if err != nil {
				t.Fatalf("%v: %v", shape, err)
			}
			got, _ := claims["groups"].([]any)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || (tc.want == nil && claims["groups"] != nil) {
				t.Errorf("%v: groups claim %v, want %v", shape, claims["groups"], tc.want)
			}
		}
	}
}

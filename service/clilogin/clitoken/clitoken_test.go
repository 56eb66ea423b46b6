package clitoken

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vintner/arbor/internal/scopeset"
)

var (
	key = []byte("0123456789abcdef0123456789abcdef-cli-jwt-secret")
	t0  = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
)

const iss = "https://arbor.test"

func signer(t testing.TB, now time.Time) *Signer {
	t.Helper()
	s, err := NewSigner(key, Options{Issuer: iss, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(kv ...any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "u1", "email": "a@b.test", "type": TypeAccess, "fid": "f1", "jti": "j1",
		"iss": iss, "aud": []string{Audience}, "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func forge(t testing.TB, m jwt.SigningMethod, k any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hmacAs(alg string, c jwt.MapClaims) string {
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	p, _ := json.Marshal(c)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestMintVerify(t *testing.T) {
	s := signer(t, t0)
	for _, typ := range []string{TypeAccess, TypeRefresh} {
		tok, exp, err := s.Mint(typ, Subject{UserID: "u1", Email: "a@b.test", Scopes: scopeset.All}, "f1", "j1")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]time.Duration{TypeAccess: time.Hour, TypeRefresh: 90 * 24 * time.Hour}[typ]
		if !exp.Equal(t0.Add(want)) {
			t.Fatalf("%s exp %v", typ, exp)
		}
		for range 2 { // the second is a cache hit for access tokens
			c, err := s.Verify(tok, typ)
			if err != nil || c.Subject != "u1" || c.FamilyID != "f1" || c.ID != "j1" || c.Type != typ || c.Email != "a@b.test" {
				t.Fatalf("%s: %+v %v", typ, c, err)
			}
		}
		other := map[string]string{TypeAccess: TypeRefresh, TypeRefresh: TypeAccess}[typ]
		if _, err := s.Verify(tok, other); !errors.Is(err, ErrWrongType) {
			t.Fatalf("%s token accepted as %s: %v", typ, other, err)
		}
	}
}

func TestVerifyRefuses(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sessionLike := jwt.MapClaims{"sid": "s1", "sub": "u1", "typ": "session", "iss": iss, "aud": []string{"arbor-session"},
		"iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims()), ErrInvalid},
		{"HS384", forge(t, jwt.SigningMethodHS384, key, claims()), ErrInvalid},
		{"RS256 header, HMAC signature", hmacAs("RS256", claims()), ErrInvalid},
		{"RS256 properly signed", forge(t, jwt.SigningMethodRS256, rsaKey, claims()), ErrInvalid},
		{"another key", forge(t, jwt.SigningMethodHS256, []byte("another-key-another-key-another-key!!"), claims()), ErrInvalid},
		{"no exp", forge(t, jwt.SigningMethodHS256, key, claims("exp", nil)), ErrInvalid},
		{"no iat", forge(t, jwt.SigningMethodHS256, key, claims("iat", nil)), ErrInvalid},
		{"no fid", forge(t, jwt.SigningMethodHS256, key, claims("fid", nil)), ErrInvalid},
		{"no jti", forge(t, jwt.SigningMethodHS256, key, claims("jti", nil)), ErrInvalid},
		{"expired", forge(t, jwt.SigningMethodHS256, key, claims("iat", t0.Add(-2*time.Hour).Unix(), "exp", t0.Add(-time.Hour).Unix())), ErrExpired},
		{"wrong aud", forge(t, jwt.SigningMethodHS256, key, claims("aud", "arbor-session")), ErrWrongAudience},
		{"wrong iss", forge(t, jwt.SigningMethodHS256, key, claims("iss", "https://evil.test")), ErrWrongIssuer},
		{"refresh as access", forge(t, jwt.SigningMethodHS256, key, claims("type", TypeRefresh)), ErrWrongType},
		{"no type", forge(t, jwt.SigningMethodHS256, key, claims("type", nil)), ErrWrongType},
		{"session token shape, same key", forge(t, jwt.SigningMethodHS256, key, sessionLike), ErrWrongAudience},
		{"garbage", "a.b.c", ErrInvalid},
		{"empty", "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := signer(t, t0)
			for range 2 {
				c, err := s.Verify(tt.token, TypeAccess)
				if !errors.Is(err, tt.want) || c != (Claims{}) {
					t.Fatalf("Verify = %+v, %v; want %v", c, err, tt.want)
				}
			}
		})
	}
}

func TestCachedTokenStopsAtExp(t *testing.T) {
	now := t0
	s, _ := NewSigner(key, Options{Issuer: iss, Now: func() time.Time { return now }, Leeway: -1})
	tok, exp, _ := s.Mint(TypeAccess, Subject{UserID: "u1", Scopes: scopeset.All}, "f1", "j1")
	if _, err := s.Verify(tok, TypeAccess); err != nil {
		t.Fatal(err)
	}
	now = exp
	if _, err := s.Verify(tok, TypeAccess); !errors.Is(err, ErrExpired) {
		t.Fatalf("at exp: %v", err)
	}
}

func BenchmarkVerifyAccessCached(b *testing.B) {
	s := signer(b, t0)
	tok, _, _ := s.Mint(TypeAccess, Subject{UserID: "u1", Email: "a@b.test", Scopes: scopeset.All}, "f1", "j1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(tok, TypeAccess); err != nil {
			b.Fatal(err)
		}
	}
}

// The scope claim round-trips; a token without one (minted before scopes
// existed) counts as every scope; Mint refuses an empty set.
func TestScopeClaim(t *testing.T) {
	s := signer(t, t0)
	tok, _, err := s.Mint(TypeAccess, Subject{UserID: "u1", Scopes: scopeset.Proxy}, "f1", "j1")
	if err != nil {
		t.Fatal(err)
	}
	var wc map[string]any
	p, _ := base64.RawURLEncoding.DecodeString(splitPayload(tok))
	json.Unmarshal(p, &wc)
	if wc["scope"] != "proxy" {
		t.Fatalf("scope claim %v, want \"proxy\"", wc["scope"])
	}
	c, err := s.Verify(tok, TypeAccess)
	if err != nil || c.Scopes != scopeset.Proxy {
		t.Fatalf("Verify: %v, scopes %v", err, c.Scopes)
	}
	legacy := hmacAs("HS256", claims())
	if c, err := s.Verify(legacy, TypeAccess); err != nil || c.Scopes != scopeset.All {
		t.Fatalf("a token without a scope claim: %v, scopes %q; want every scope", err, c.Scopes)
	}
	odd := hmacAs("HS256", claims("jti", "j2", "scope", "proxy admin:everything"))
	if c, err := s.Verify(odd, TypeAccess); err != nil || c.Scopes != scopeset.Proxy {
		t.Fatalf("a scope claim with an unknown name: %v, scopes %q; want proxy only", err, c.Scopes)
	}
	if _, _, err := s.Mint(TypeAccess, Subject{UserID: "u1"}, "f1", "j1"); err == nil {
		t.Fatal("Mint accepted a token without scopes")
	}
}

// iss and aud come from Options; a token for another audience or issuer is
// refused.
func TestConfiguredIssuerAudience(t *testing.T) {
	s, err := NewSigner(key, Options{Issuer: "https://trellis.example", Audience: "trellis-cli", Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := s.Mint(TypeAccess, Subject{UserID: "u1", Scopes: scopeset.All}, "f1", "j1")
	if err != nil {
		t.Fatal(err)
	}
	var wc map[string]any
	p, _ := base64.RawURLEncoding.DecodeString(splitPayload(tok))
	json.Unmarshal(p, &wc)
	if wc["iss"] != "https://trellis.example" || wc["aud"] == nil || wc["aud"].([]any)[0] != "trellis-cli" {
		t.Fatalf("iss %v aud %v", wc["iss"], wc["aud"])
	}
	if _, err := s.Verify(tok, TypeAccess); err != nil {
		t.Fatal(err)
	}
	other := hmacAs("HS256", claims("iss", "https://trellis.example", "aud", []string{Audience}))
	if _, err := s.Verify(other, TypeAccess); !errors.Is(err, ErrWrongAudience) {
		t.Fatalf("a token for aud arbor-cli: %v, want ErrWrongAudience", err)
	}
	otherIss := hmacAs("HS256", claims("aud", []string{"trellis-cli"}))
	if _, err := s.Verify(otherIss, TypeAccess); !errors.Is(err, ErrWrongIssuer) {
		t.Fatalf("a token of another issuer: %v, want ErrWrongIssuer", err)
	}
	// The default signer refuses the configured one's tokens.
	if _, err := signer(t, t0).Verify(tok, TypeAccess); err == nil {
		t.Fatal("a signer with the default audience accepted a trellis-cli token")
	}
}

func splitPayload(tok string) string { return strings.Split(tok, ".")[1] }

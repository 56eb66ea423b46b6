package hs256

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestParser: what both of Arbor's HS256 token kinds refuse.
func TestParser(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	p := Parser("https://arbor.example", "arbor-cli", 5*time.Second, clock)
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "https://arbor.example", "aud": "arbor-cli", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	}
	sign := func(m jwt.SigningMethod, k any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	without := func(name string) jwt.MapClaims { c := good(); delete(c, name); return c }
	with := func(name string, v any) jwt.MapClaims { c := good(); c[name] = v; return c }
	for _, tc := range []struct {
		name  string
		token string
		want  error // nil: accepted
	}{
		{"good", sign(jwt.SigningMethodHS256, key, good()), nil},
		{"HS512", sign(jwt.SigningMethodHS512, key, good()), jwt.ErrTokenSignatureInvalid},
		{"none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good()), jwt.ErrTokenSignatureInvalid},
		{"other key", sign(jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), good()), jwt.ErrTokenSignatureInvalid},
		{"no exp", sign(jwt.SigningMethodHS256, key, without("exp")), jwt.ErrTokenRequiredClaimMissing},
		{"expired", sign(jwt.SigningMethodHS256, key, with("exp", now.Add(-time.Minute).Unix())), jwt.ErrTokenExpired},
		{"issued in the future", sign(jwt.SigningMethodHS256, key, with("iat", now.Add(time.Minute).Unix())), jwt.ErrTokenUsedBeforeIssued},
		{"wrong iss", sign(jwt.SigningMethodHS256, key, with("iss", "https://evil.example")), jwt.ErrTokenInvalidIssuer},
		{"wrong aud", sign(jwt.SigningMethodHS256, key, with("aud", "arbor-session")), jwt.ErrTokenInvalidAudience},
	} {
		_, err := p.Parse(tc.token, KeyFunc(key))
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestKeyFunc: the key goes only to an HS256 token, whatever the parser
// allowed.
func TestKeyFunc(t *testing.T) {
	key := []byte("secret")
	kf := KeyFunc(key)
	if k, err := kf(&jwt.Token{Method: jwt.SigningMethodHS256}); err != nil || string(k.([]byte)) != "secret" {
		t.Errorf("HS256: %v, %v; want the key", k, err)
	}
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS384, jwt.SigningMethodRS256, jwt.SigningMethodNone} {
		if k, err := kf(&jwt.Token{Method: m, Header: map[string]any{"alg": m.Alg()}}); err == nil || k != nil {
			t.Errorf("%s: %v, %v; want no key and an error", m.Alg(), k, err)
		}
	}
}

// TestErrorsWrap: each parse failure is wrapped in the sentinel that
// names it; a forged token is Invalid even when it is also expired.
func TestErrorsWrap(t *testing.T) {
	var (
		errInvalid  = errors.New("invalid")
		errExpired  = errors.New("expired")
		errAudience = errors.New("audience")
		errIssuer   = errors.New("issuer")
	)
	e := Errors{Invalid: errInvalid, Expired: errExpired, WrongAudience: errAudience, WrongIssuer: errIssuer}
	key := []byte(strings.Repeat("k", 32))
	now := time.Unix(1_800_000_000, 0)
	p := Parser("iss", "aud", 0, func() time.Time { return now })
	claims := func(mod map[string]any) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "iss", "aud": "aud", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		for k, v := range mod {
			c[k] = v
		}
		return c
	}
	sign := func(k []byte, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	past := now.Add(-time.Minute).Unix()
	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"expired", sign(key, claims(map[string]any{"exp": past})), errExpired},
		{"wrong audience", sign(key, claims(map[string]any{"aud": "other"})), errAudience},
		{"wrong issuer", sign(key, claims(map[string]any{"iss": "other"})), errIssuer},
		{"expired and wrong audience", sign(key, claims(map[string]any{"exp": past, "aud": "other"})), errExpired},
		{"wrong audience and issuer", sign(key, claims(map[string]any{"aud": "other", "iss": "other"})), errAudience},
		{"forged and expired", sign([]byte(strings.Repeat("x", 32)), claims(map[string]any{"exp": past})), errInvalid},
		{"no exp", sign(key, claims(map[string]any{"exp": nil})), errInvalid},
		{"malformed", "not.a.token", errInvalid},
	} {
		_, err := p.Parse(tc.token, KeyFunc(key))
		if err == nil {
			t.Fatalf("%s: accepted", tc.name)
		}
		got := e.Wrap(err)
		if !errors.Is(got, tc.want) || !strings.Contains(got.Error(), err.Error()) {
			t.Errorf("%s: Wrap(%v) = %v, want %v with the parse error's text", tc.name, err, got, tc.want)
		}
	}
}

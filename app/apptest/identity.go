package apptest

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/api"
)

// Bolt is the harness's store, a bbolt file (Path gives it).
func (h *Harness) Bolt() *boltdb.Store {
	h.T.Helper()
	s, ok := h.App.Store().(*boltdb.Store)
	if !ok {
		h.T.Fatalf("the store is a %T, not bbolt", h.App.Store())
	}
	return s
}

// MustUserID returns the id of the user b is signed in as, read from its
// session cookie.
func (h *Harness) MustUserID(b *Browser) string {
	h.T.Helper()
	c, err := h.App.SessionTokens().Verify(b.Cookie(h.Cookie))
	if err != nil {
		h.T.Fatal(err)
	}
	return c.Subject
}

// VerifyAssertion checks an assertion JWT against Arbor's JWKS endpoint,
// as an upstream would, and returns its claims.
func VerifyAssertion(t *testing.T, b *Browser, tok string) jwt.MapClaims {
	t.Helper()
	res := b.Get("/.well-known/jwks.json")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("JWKS: %d %s", res.StatusCode, res.Body)
	}
	var set struct {
		Keys []struct{ Kty, Crv, X, Kid, Alg string }
	}
	if err := json.Unmarshal([]byte(res.Body), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS body %q: %v", res.Body, err)
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k.Kid == tk.Header["kid"] && k.Kty == "OKP" && k.Crv == "Ed25519" {
				x, err := base64.RawURLEncoding.DecodeString(k.X)
				return ed25519.PublicKey(x), err
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("assertion does not verify with the JWKS: %v", err)
	}
	return claims
}

// Whoami returns the id, login and e-mail of the user b is signed in as,
// from the whoami endpoint (api.PathWhoami).
func Whoami(t *testing.T, b *Browser) (id, login, email string) {
	t.Helper()
	res := b.Get(api.PathWhoami)
	var who map[string]string
	if res.StatusCode != http.StatusOK || json.Unmarshal([]byte(res.Body), &who) != nil || who["user_id"] == "" {
		t.Fatalf("whoami: %d %s", res.StatusCode, res.Body)
	}
	return who["user_id"], who["login"], who["email"]
}

// AccountCSRF returns the CSRF token of the account page (/auth/account)
// of the signed-in browser b.
func AccountCSRF(t *testing.T, b *Browser) string {
	t.Helper()
	res := b.Get("/auth/account")
	m := CSRFRE.FindStringSubmatch(res.Body)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("account page: %d\n%s", res.StatusCode, res.Body)
	}
	return m[1]
}

// GetJSON GETs path and, on 200, decodes the body into into (failing the
// test if it is not JSON).
func GetJSON(t *testing.T, b *Browser, path string, into any) *Response {
	t.Helper()
	res := b.Get(path)
	if into != nil && res.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(res.Body), into); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, res.Body)
		}
	}
	return res
}

// SetsSession reports whether res sets a non-empty session cookie.
func (h *Harness) SetsSession(res *Response) bool {
	for _, c := range res.Cookies() {
		if c.Name == h.Cookie && c.Value != "" {
			return true
		}
	}
	return false
}

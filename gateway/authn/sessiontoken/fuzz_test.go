package sessiontoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify checks that Verify never panics, that anything it accepts
// carries a valid HS256 signature made with the key, and that the cached and
// uncached paths agree. The clock is fixed at t0, when the seed tokens in
// testdata/fuzz/FuzzVerify are valid.
func FuzzVerify(f *testing.F) {
	clk := newClock(t0.Add(time.Minute))
	cached := newTestSigner(f, clk, Options{CacheSize: 256})
	uncached := newTestSigner(f, clk, Options{CacheSize: -1})
	good, _, err := newTestSigner(f, newClock(t0), Options{}).Mint("s1", "u1", "a@b.test")
	if err != nil {
		f.Fatal(err)
	}
	if _, err := uncached.Verify(good); err != nil {
		f.Fatalf("the valid seed is refused: %v", err)
	}
	f.Add(good)
	f.Add(forge(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims()))
	f.Add(forge(f, jwt.SigningMethodHS384, testKey, validClaims()))
	f.Add(hmacWithAlg(f, "RS256", validClaims()))
	f.Add(forge(f, jwt.SigningMethodHS256, testKey, with("typ", "cli_access")))
	f.Add("")
	f.Add("a.b.c")

	f.Fuzz(func(t *testing.T, token string) {
		c1, err1 := cached.Verify(token)
		c2, err2 := uncached.Verify(token)
		if (err1 == nil) != (err2 == nil) || c1 != c2 {
			t.Fatalf("cached (%+v, %v) and uncached (%+v, %v) disagree", c1, err1, c2, err2)
		}
		// VerifyLapsed accepts everything Verify does (with the same
		// claims), and only tokens signed with the key.
		cl, errL := uncached.VerifyLapsed(token, 24*time.Hour)
		if err1 == nil && (errL != nil || cl != c1) {
			t.Fatalf("Verify accepted (%+v) but VerifyLapsed says (%+v, %v)", c1, cl, errL)
		}
		if errL == nil {
			checkSigned(t, token)
			if cl.SessionID == "" || cl.Subject == "" || cl.Audience != testAud || cl.Issuer != testIss {
				t.Fatalf("VerifyLapsed accepted a token with claims %+v", cl)
			}
		}
		if err1 != nil {
			if c1 != (Claims{}) {
				t.Fatalf("claims %+v returned with error %v", c1, err1)
			}
			return
		}
		if c1.SessionID == "" || c1.Subject == "" || c1.Audience != testAud || c1.Issuer != testIss {
			t.Fatalf("accepted token with claims %+v", c1)
		}
		if !clk.Now().Before(c1.ExpiresAt.Add(DefaultLeeway)) {
			t.Fatalf("accepted expired token (exp %v)", c1.ExpiresAt)
		}
	})
}

// checkSigned fails unless token is an HS256 JWT signed with testKey,
// checked independently of golang-jwt.
func checkSigned(t *testing.T, token string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("accepted token with %d segments", len(parts))
	}
	hdr, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		t.Fatalf("accepted token with undecodable header: %v", err)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil || h.Alg != "HS256" {
		t.Fatalf("accepted token with header %s", hdr)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil {
		t.Fatalf("accepted token with non-canonical signature encoding: %v", err)
	}
	m := hmac.New(sha256.New, testKey)
	m.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, m.Sum(nil)) {
		t.Fatalf("accepted token not signed with the key: %q", token)
	}
}

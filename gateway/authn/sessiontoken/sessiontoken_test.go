package sessiontoken

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	testKey = []byte("0123456789abcdef0123456789abcdef-session-key")
	// t0 is the fixed time tokens in tests (and the fuzz seed corpus) are
	// minted at.
	t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
)

const (
	testIss = "https://arbor.test"
	testAud = "arbor-session"
)

// clock is an injectable, advanceable time source.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestSigner(t testing.TB, clk *clock, opts Options) *Signer {
	t.Helper()
	opts.Issuer, opts.Audience = testIss, testAud
	if opts.TTL == 0 {
		opts.TTL = 10 * time.Minute
	}
	opts.Now = clk.Now
	s, err := NewSigner(testKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forge signs arbitrary claims with method and key, bypassing Mint.
func forge(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// validClaims are the claims Mint would write at t0.
func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"sid": "s1", "sub": "u1", "email": "a@b.test", "typ": TypeSession,
		"iss": testIss, "aud": []string{testAud},
		"iat": t0.Unix(), "exp": t0.Add(10 * time.Minute).Unix(),
	}
}

func with(kv ...any) jwt.MapClaims {
	c := validClaims()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// hmacWithAlg builds a token whose header claims alg but whose signature is
// HMAC-SHA256 with the session key: the algorithm-confusion attack.
func hmacWithAlg(t testing.TB, alg string, claims jwt.MapClaims) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	p, _ := json.Marshal(claims)
	in := b64(h) + "." + b64(p)
	m := hmac.New(sha256.New, testKey)
	m.Write([]byte(in))
	return in + "." + b64(m.Sum(nil))
}

func TestMintVerifyRoundTrip(t *testing.T) {
	clk := newClock(t0)
	s := newTestSigner(t, clk, Options{})
	tok, exp, err := s.Mint("s1", "u1", "a@b.test")
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(10 * time.Minute); !exp.Equal(want) {
		t.Fatalf("exp = %v, want %v", exp, want)
	}
	c, err := s.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{SessionID: "s1", Subject: "u1", Email: "a@b.test", Issuer: testIss, Audience: testAud, IssuedAt: t0, ExpiresAt: exp}
	if c.SessionID != want.SessionID || c.Subject != want.Subject || c.Email != want.Email ||
		c.Issuer != want.Issuer || c.Audience != want.Audience || !c.IssuedAt.Equal(want.IssuedAt) || !c.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("claims = %+v, want %+v", c, want)
	}
	hdr, _, _ := strings.Cut(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(hdr)
	if !strings.Contains(string(raw), `"alg":"HS256"`) {
		t.Fatalf("header %s is not HS256", raw)
	}
}

func TestVerifyRefuses(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherKey := []byte("another-key-another-key-another-key!")
	good := forge(t, jwt.SigningMethodHS256, testKey, validClaims())
	parts := strings.Split(good, ".")

	tamperedPayload := func() string {
		p, _ := json.Marshal(with("sub", "admin"))
		return parts[0] + "." + b64(p) + "." + parts[2]
	}()
	tamperedSig := func() string {
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[0] ^= 1
		return parts[0] + "." + parts[1] + "." + b64(sig)
	}()

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims()), ErrInvalid},
		{"alg none with empty signature", b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".", ErrInvalid},
		{"HS384 with the session key", forge(t, jwt.SigningMethodHS384, testKey, validClaims()), ErrInvalid},
		{"HS512 with the session key", forge(t, jwt.SigningMethodHS512, testKey, validClaims()), ErrInvalid},
		{"RS256 header, HMAC key as RSA public key", hmacWithAlg(t, "RS256", validClaims()), ErrInvalid},
		{"ES256 header, HMAC signature", hmacWithAlg(t, "ES256", validClaims()), ErrInvalid},
		{"lower-case hs256 header", hmacWithAlg(t, "hs256", validClaims()), ErrInvalid},
		{"RS256 properly signed", forge(t, jwt.SigningMethodRS256, rsaKey, validClaims()), ErrInvalid},
		{"HS256 with another key", forge(t, jwt.SigningMethodHS256, otherKey, validClaims()), ErrInvalid},
		{"missing exp", forge(t, jwt.SigningMethodHS256, testKey, with("exp", nil)), ErrInvalid},
		{"missing iat", forge(t, jwt.SigningMethodHS256, testKey, with("iat", nil)), ErrInvalid},
		{"missing sid", forge(t, jwt.SigningMethodHS256, testKey, with("sid", nil)), ErrInvalid},
		{"missing sub", forge(t, jwt.SigningMethodHS256, testKey, with("sub", nil)), ErrInvalid},
		{"iat in the future", forge(t, jwt.SigningMethodHS256, testKey, with("iat", t0.Add(time.Hour).Unix(), "exp", t0.Add(2*time.Hour).Unix())), ErrInvalid},
		{"string exp", forge(t, jwt.SigningMethodHS256, testKey, with("exp", "never")), ErrInvalid},
		{"expired", forge(t, jwt.SigningMethodHS256, testKey, with("iat", t0.Add(-time.Hour).Unix(), "exp", t0.Add(-time.Minute).Unix())), ErrExpired},
		{"wrong aud", forge(t, jwt.SigningMethodHS256, testKey, with("aud", "arbor-cli")), ErrWrongAudience},
		{"no aud", forge(t, jwt.SigningMethodHS256, testKey, with("aud", nil)), ErrInvalid},
		{"wrong iss", forge(t, jwt.SigningMethodHS256, testKey, with("iss", "https://evil.test")), ErrWrongIssuer},
		{"no iss", forge(t, jwt.SigningMethodHS256, testKey, with("iss", nil)), ErrInvalid},
		{"CLI access token, same key", forge(t, jwt.SigningMethodHS256, testKey, with("typ", "cli_access")), ErrWrongType},
		{"CLI access token, CLI audience", forge(t, jwt.SigningMethodHS256, testKey, with("typ", "cli_access", "aud", "arbor-cli")), ErrWrongAudience},
		{"no typ", forge(t, jwt.SigningMethodHS256, testKey, with("typ", nil)), ErrWrongType},
		{"tampered payload", tamperedPayload, ErrInvalid},
		{"tampered signature", tamperedSig, ErrInvalid},
		{"signature stripped", parts[0] + "." + parts[1] + ".", ErrInvalid},
		{"padded segments", parts[0] + "=." + parts[1] + "." + parts[2], ErrInvalid},
		{"empty", "", ErrInvalid},
		{"garbage", "not a token", ErrInvalid},
		{"two segments", parts[0] + "." + parts[1], ErrInvalid},
		{"four segments", good + ".x", ErrInvalid},
		{"non-JSON header", b64([]byte("{")) + "." + parts[1] + "." + parts[2], ErrInvalid},
	}
	for _, cacheSize := range []int{-1, 64} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("cache=%d/%s", cacheSize, tt.name), func(t *testing.T) {
				s := newTestSigner(t, newClock(t0), Options{CacheSize: cacheSize})
				for range 2 { // the second time would be a cache hit if the first had been cached
					c, err := s.Verify(tt.token)
					if !errors.Is(err, tt.want) {
						t.Fatalf("Verify error = %v, want %v (claims %+v)", err, tt.want, c)
					}
					if c != (Claims{}) {
						t.Fatalf("Verify returned claims %+v with error", c)
					}
				}
			})
		}
	}
	// The untouched token is accepted, so the refusals above are about what
	// each case changed.
	if _, err := newTestSigner(t, newClock(t0), Options{}).Verify(good); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
}

func TestNewSignerRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		key  []byte
		opts Options
	}{
		{"short key", []byte("short"), Options{Issuer: "i", Audience: "a"}},
		{"no issuer", testKey, Options{Audience: "a"}},
		{"no audience", testKey, Options{Issuer: "i"}},
		{"negative TTL", testKey, Options{Issuer: "i", Audience: "a", TTL: -time.Second}},
	}
	for _, tt := range tests {
		if _, err := NewSigner(tt.key, tt.opts); err == nil {
			t.Errorf("%s: NewSigner succeeded", tt.name)
		}
	}
}

func TestExpiryWithLeeway(t *testing.T) {
	clk := newClock(t0)
	s := newTestSigner(t, clk, Options{CacheSize: -1, Leeway: 5 * time.Second})
	tok, _, err := s.Mint("s1", "u1", "")
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(10*time.Minute + 4*time.Second)
	if _, err := s.Verify(tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	clk.Advance(2 * time.Second)
	if _, err := s.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("past leeway: err = %v, want ErrExpired", err)
	}
}

func TestCacheHitReturnsSameClaims(t *testing.T) {
	clk := newClock(t0)
	s := newTestSigner(t, clk, Options{})
	tok, _, err := s.Mint("s1", "u1", "a@b.test")
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.cache.Len(); n != 1 {
		t.Fatalf("cache holds %d entries after one verify, want 1", n)
	}
	// Break the full path: a hit must not need it.
	s.key = []byte("a-different-key-a-different-key-!!")
	second, err := s.Verify(tok)
	if err != nil {
		t.Fatalf("cached verify: %v", err)
	}
	if first != second {
		t.Fatalf("cached claims %+v differ from %+v", second, first)
	}
	// A token differing in one byte misses the cache.
	if _, err := s.Verify(tok[:len(tok)-1] + "A"); err == nil {
		t.Fatal("tampered token accepted")
	}
}

func TestCachedTokenRefusedOnceExpired(t *testing.T) {
	clk := newClock(t0)
	s := newTestSigner(t, clk, Options{Leeway: -1})
	tok, exp, err := s.Mint("s1", "u1", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(tok); err != nil {
		t.Fatal(err)
	}
	clk.Advance(exp.Sub(clk.Now()) - time.Nanosecond)
	if _, err := s.Verify(tok); err != nil {
		t.Fatalf("just before exp: %v", err)
	}
	clk.Advance(time.Nanosecond)
	if _, err := s.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("at exp: err = %v, want ErrExpired", err)
	}
	if n := s.cache.Len(); n != 0 {
		t.Fatalf("expired entry still cached (%d entries)", n)
	}
}

func TestCachedEntryNeverOutlivesExpWithLeeway(t *testing.T) {
	clk := newClock(t0)
	s := newTestSigner(t, clk, Options{Leeway: time.Minute})
	tok, exp, err := s.Mint("s1", "u1", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(tok); err != nil {
		t.Fatal(err)
	}
	clk.Advance(exp.Sub(clk.Now()) + time.Second) // past exp, inside leeway
	if _, err := s.Verify(tok); err != nil {
		t.Fatalf("inside leeway: %v", err)
	}
	if n := s.cache.Len(); n != 0 {
		t.Fatalf("token past its exp was cached (%d entries)", n)
	}
	clk.Advance(time.Minute)
	if _, err := s.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("past leeway: err = %v, want ErrExpired", err)
	}
}

func TestCacheBounded(t *testing.T) {
	const size, distinct = 1024, 100_000
	clk := newClock(t0)
	s := newTestSigner(t, clk, Options{CacheSize: size})
	// Verify 100k distinct real tokens end to end…
	for i := range distinct {
		tok, _, err := s.Mint(fmt.Sprint("s", i), "u1", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.cache.Len(); n > size || n < size/2 {
		t.Fatalf("after %d tokens the cache holds %d entries, want (%d, %d]", distinct, n, size/2, size)
	}
	// …then push 100k more distinct entries in concurrently.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < distinct; i += 4 {
				cl := Claims{SessionID: fmt.Sprint(i), ExpiresAt: t0.Add(time.Hour)}
				s.cache.Put(fmt.Sprint("token-", i), cl, clk.Now())
				s.cache.Get(fmt.Sprint("token-", i/2), clk.Now())
			}
		})
	}
	wg.Wait()
	if n := s.cache.Len(); n > size {
		t.Fatalf("after %d distinct tokens the cache holds %d entries, want <= %d", distinct, n, size)
	}
}

func TestNeedsRefresh(t *testing.T) {
	clk := newClock(t0)
	s := newTestSigner(t, clk, Options{TTL: 10 * time.Minute})
	tok, _, err := s.Mint("s1", "u1", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance time.Duration
		want    bool
	}{
		{0, false},
		{5*time.Minute - time.Second, false},
		{time.Second, true},
		{4 * time.Minute, true},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		if got := s.NeedsRefresh(c); got != st.want {
			t.Fatalf("at %v NeedsRefresh = %v, want %v", clk.Now().Sub(t0), got, st.want)
		}
	}
}

func TestConcurrentVerify(t *testing.T) {
	clk := newClock(t0)
	s := newTestSigner(t, clk, Options{CacheSize: 64})
	toks := make([]string, 200)
	for i := range toks {
		var err error
		if toks[i], _, err = s.Mint(fmt.Sprint("s", i), fmt.Sprint("u", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				j := (i*7 + w) % len(toks)
				c, err := s.Verify(toks[j])
				if err != nil || c.SessionID != fmt.Sprint("s", j) || c.Subject != fmt.Sprint("u", j) {
					t.Errorf("Verify(token %d) = %+v, %v", j, c, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkVerifyCold(b *testing.B) {
	s := newTestSigner(b, newClock(t0), Options{CacheSize: -1})
	tok, _, err := s.Mint("0123456789abcdef0123456789abcdef", "user-0123456789", "someone@example.com")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	s := newTestSigner(b, newClock(t0), Options{})
	tok, _, err := s.Mint("0123456789abcdef0123456789abcdef", "user-0123456789", "someone@example.com")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	s := newTestSigner(b, newClock(t0), Options{})
	tok, _, err := s.Mint("0123456789abcdef0123456789abcdef", "user-0123456789", "someone@example.com")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Verify(tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestKeyFuncOnlyHS256 checks the second line of defence on its own: the
// key is handed out for HS256 only, even if the parser's method list were
// lost.
func TestKeyFuncOnlyHS256(t *testing.T) {
	s := newTestSigner(t, newClock(t0), Options{})
	methods := []jwt.SigningMethod{jwt.SigningMethodNone, jwt.SigningMethodHS384, jwt.SigningMethodHS512,
		jwt.SigningMethodRS256, jwt.SigningMethodPS256, jwt.SigningMethodES256, jwt.SigningMethodEdDSA}
	for _, m := range methods {
		if k, err := s.keyFunc(&jwt.Token{Method: m, Header: map[string]any{"alg": m.Alg()}}); err == nil || k != nil {
			t.Errorf("keyFunc(%s) = %v, %v; want an error", m.Alg(), k, err)
		}
	}
	if k, err := s.keyFunc(&jwt.Token{Method: jwt.SigningMethodHS256}); err != nil || k == nil {
		t.Fatalf("keyFunc(HS256) = %v, %v", k, err)
	}
}

func TestVerifyLapsed(t *testing.T) {
	expiredAt := t0.Add(-time.Minute)
	lapsed := with("iat", t0.Add(-time.Hour).Unix(), "exp", expiredAt.Unix())
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		token  string
		maxAge time.Duration
		want   error
	}{
		{"expired a minute ago, max 1h", forge(t, jwt.SigningMethodHS256, testKey, lapsed), time.Hour, nil},
		{"still valid", forge(t, jwt.SigningMethodHS256, testKey, validClaims()), time.Hour, nil},
		{"expired a minute ago, max 30s", forge(t, jwt.SigningMethodHS256, testKey, lapsed), 30 * time.Second, ErrExpired},
		{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, lapsed), time.Hour, ErrInvalid},
		{"HS384", forge(t, jwt.SigningMethodHS384, testKey, lapsed), time.Hour, ErrInvalid},
		{"RS256 header, HMAC signature", hmacWithAlg(t, "RS256", lapsed), time.Hour, ErrInvalid},
		{"RS256 properly signed", forge(t, jwt.SigningMethodRS256, rsaKey, lapsed), time.Hour, ErrInvalid},
		{"another key", forge(t, jwt.SigningMethodHS256, []byte("another-key-another-key-another-key!!"), lapsed), time.Hour, ErrInvalid},
		{"no exp", forge(t, jwt.SigningMethodHS256, testKey, with("exp", nil)), time.Hour, ErrInvalid},
		{"no iat", forge(t, jwt.SigningMethodHS256, testKey, with("iat", nil)), time.Hour, ErrInvalid},
		{"iat in the future", forge(t, jwt.SigningMethodHS256, testKey, with("iat", t0.Add(time.Hour).Unix(), "exp", t0.Add(2*time.Hour).Unix())), time.Hour, ErrInvalid},
		{"wrong aud", forge(t, jwt.SigningMethodHS256, testKey, with("aud", "arbor-cli", "exp", expiredAt.Unix())), time.Hour, ErrWrongAudience},
		{"two audiences", forge(t, jwt.SigningMethodHS256, testKey, with("aud", []string{testAud, "x"})), time.Hour, ErrWrongAudience},
		{"wrong iss", forge(t, jwt.SigningMethodHS256, testKey, with("iss", "https://evil.test")), time.Hour, ErrWrongIssuer},
		{"CLI token type", forge(t, jwt.SigningMethodHS256, testKey, with("typ", "cli_access", "exp", expiredAt.Unix())), time.Hour, ErrWrongType},
		{"garbage", "not.a.token", time.Hour, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSigner(t, newClock(t0), Options{})
			c, err := s.VerifyLapsed(tt.token, tt.maxAge)
			if tt.want == nil {
				if err != nil || c.SessionID != "s1" || c.Subject != "u1" {
					t.Fatalf("VerifyLapsed = %+v, %v; want the claims", c, err)
				}
				return
			}
			if !errors.Is(err, tt.want) || c != (Claims{}) {
				t.Fatalf("VerifyLapsed = %+v, %v; want %v", c, err, tt.want)
			}
		})
	}
}

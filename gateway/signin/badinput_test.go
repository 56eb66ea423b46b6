package signin_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vintner/arbor/gateway/api"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/authz/access"
	"github.com/vintner/arbor/gateway/signin"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

// flowCookie is the browser-binding cookie's name on a plain-http public
// URL (signin does not export it).
const flowCookie = "arbor_flow"

// assertServes checks that Arbor still answers after a bad input.
func assertServes(t *testing.T, e *env) {
	t.Helper()
	if res := e.browser().Get("/healthz"); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz after the bad input = %d %s", res.StatusCode, res.Body)
	}
}

// wantError checks the status and the stable error code of a response.
func wantError(t *testing.T, what string, res *response, status int, code string) {
	t.Helper()
	if res.StatusCode != status || errorCode(res.Body) != code {
		t.Fatalf("%s = %d %q, want %d %q\n%s", what, res.StatusCode, errorCode(res.Body), status, code, res.Body)
	}
}

// setsSession reports whether res sets a non-empty session cookie.
func setsSession(e *env, res *response) bool {
	for _, c := range res.Cookies() {
		if c.Name == e.cookie && c.Value != "" {
			return true
		}
	}
	return false
}

// clearsCookie reports whether res tells the browser to forget the cookie
// name (Max-Age<=0 or an Expires in the past).
func clearsCookie(res *response, name string) bool {
	for _, c := range res.Cookies() {
		if c.Name != name {
			continue
		}
		if c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(time.Now())) {
			return true
		}
	}
	return false
}

// assertNoSession checks that b holds no session and is still sent to
// sign-in.
func assertNoSession(t *testing.T, e *env, b *browser) {
	t.Helper()
	if c := b.Cookie(e.cookie); c != "" {
		t.Fatalf("the browser holds a session cookie after a failed sign-in: %q", c)
	}
	res := b.Get("/")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Location(), "http://"+e.addr+signin.PathSignIn) {
		t.Fatalf("GET / after a failed sign-in = %d → %q, want a redirect to sign-in", res.StatusCode, res.Location())
	}
}

// stateOf returns the state parameter of an authorization or callback URL.
func stateOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Query().Get("state") == "" {
		t.Fatalf("no state in %q (%v)", rawURL, err)
	}
	return u.Query().Get("state")
}

// normHeader folds a header name as the upstream frameworks do: case
// ignored, '_' read as '-'.
func normHeader(k string) string {
	return strings.ReplaceAll(strings.ToLower(k), "_", "-")
}

// headerValues returns every value of h under any spelling of name.
func headerValues(h http.Header, name string) []string {
	var out []string
	for k, v := range h {
		if normHeader(k) == normHeader(name) {
			out = append(out, v...)
		}
	}
	return out
}

// arborHeaders returns the X-Arbor-* headers of h (any spelling).
func arborHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(normHeader(k), "x-arbor-") {
			out[k] = v
		}
	}
	return out
}

// 1. The state parameter.
func TestBadState(t *testing.T) {
	e := newEnv(t, envOptions{})

	t.Run("missing", func(t *testing.T) {
		b := e.browser()
		b.Start("github", "") // a flow cookie and a live state exist; neither helps
		for _, u := range []string{
			"/auth/callback/github",
			"/auth/callback/github?code=abc",
			"/auth/callback/github?state=&code=abc",
		} {
			res := b.Get(u)
			wantError(t, "GET "+u, res, http.StatusBadRequest, "state_missing")
			if setsSession(e, res) {
				t.Fatalf("GET %s set a session cookie", u)
			}
		}
		assertNoSession(t, e, b)
		assertServes(t, e)
	})

	t.Run("unknown", func(t *testing.T) {
		b := e.browser()
		b.Start("github", "")
		for _, st := range []string{
			randomSecret(t), "x", strings.Repeat("A", 4000), "../../etc/passwd", "\x00", "a\x00b", "%zz",
		} {
			u := "/auth/callback/github?code=abc&state=" + url.QueryEscape(st)
			wantError(t, fmt.Sprintf("callback with state %.40q", st), b.Get(u), http.StatusBadRequest, "state_invalid")
		}
		assertNoSession(t, e, b)
		assertServes(t, e)
	})

	t.Run("replayed", func(t *testing.T) {
		b := e.browser()
		cb := b.Approve(b.Start("github", ""), "")
		if res := b.Get(cb); res.StatusCode != http.StatusFound || b.Cookie(e.cookie) == "" {
			t.Fatalf("first callback: %d %s", res.StatusCode, res.Body)
		}
		signedIn := b.Cookie(e.cookie)
		res := b.Get(cb)
		wantError(t, "replayed callback", res, http.StatusBadRequest, "state_invalid")
		if setsSession(e, res) || b.Cookie(e.cookie) != signedIn {
			t.Fatal("the replayed callback changed the session cookie")
		}
		// Replayed from another browser: the binding refuses it first.
		other := e.browser()
		wantError(t, "replayed callback in another browser", other.Get(cb), http.StatusBadRequest, "state_mismatch")
		assertNoSession(t, e, other)
		assertServes(t, e)
	})

	t.Run("other browser", func(t *testing.T) {
		a := e.browser()
		// B has no flow cookie at all.
		cb := a.Approve(a.Start("github", ""), "")
		b := e.browser()
		wantError(t, "callback in a browser without the flow cookie", b.Get(cb), http.StatusBadRequest, "state_mismatch")
		assertNoSession(t, e, b)
		// B's refused attempt wrote nothing and spent nothing: A, whose
		// code the provider has not yet redeemed, still finishes.
		if res := a.Get(cb); res.StatusCode != http.StatusFound || !setsSession(e, res) {
			t.Fatalf("A finishing after B's refused attempt: %d %s", res.StatusCode, res.Body)
		}
		wantError(t, "A finishing twice", a.Get(cb), http.StatusBadRequest, "state_invalid")

		// C has a flow cookie of the right shape but another value.
		cb = a.Approve(a.Start("github", ""), "")
		c := e.browser()
		forged := randomSecret(t)
		if forged == a.Cookie(flowCookie) || a.Cookie(flowCookie) == "" {
			t.Fatalf("A's flow cookie %q", a.Cookie(flowCookie))
		}
		c.SetCookie(flowCookie, forged)
		wantError(t, "callback with another flow cookie", c.Get(cb), http.StatusBadRequest, "state_mismatch")
		assertNoSession(t, e, c)
		if res := a.Get(cb); res.StatusCode != http.StatusFound || !setsSession(e, res) {
			t.Fatalf("A finishing after C's refused attempt: %d %s", res.StatusCode, res.Body)
		}
		wantError(t, "C after A finished", c.Get(cb), http.StatusBadRequest, "state_mismatch")

		// Malformed flow cookies fare no better.
		for _, v := range []string{"", "x", strings.Repeat("A", 4096), a.Cookie(flowCookie) + "A"} {
			cb = a.Approve(a.Start("github", ""), "")
			d := e.browser()
			if v != "" {
				d.SetCookie(flowCookie, v)
			}
			wantError(t, fmt.Sprintf("callback with flow cookie %.20q", v), d.Get(cb), http.StatusBadRequest, "state_mismatch")
			assertNoSession(t, e, d)
		}
		assertServes(t, e)
	})

	// Last: it moves the environment's clock.
	t.Run("expired", func(t *testing.T) {
		b := e.browser()
		cb := b.Approve(b.Start("github", ""), "")
		e.clock.Advance(11 * time.Minute)
		wantError(t, "callback after 11 minutes", b.Get(cb), http.StatusBadRequest, "state_invalid")
		assertNoSession(t, e, b)
		assertServes(t, e)
	})
}

// 2. What the provider sends back to the callback.
func TestBadCallback(t *testing.T) {
	e := newEnv(t, envOptions{})

	t.Run("github answer at the gitlab callback", func(t *testing.T) {
		b := e.browser()
		cb := b.Approve(b.Start("github", ""), "")
		u, _ := url.Parse(cb)
		gitlabTokens := len(e.fakes.Fakes["gitlab"].CallsTo(fakeprovider.EndpointToken))
		wantError(t, "github's code and state at /auth/callback/gitlab", b.Get("/auth/callback/gitlab?"+u.RawQuery),
			http.StatusBadRequest, "state_mismatch")
		if n := len(e.fakes.Fakes["gitlab"].CallsTo(fakeprovider.EndpointToken)); n != gitlabTokens {
			t.Fatal("the foreign code was sent to GitLab")
		}
		// The refused attempt spent nothing: the genuine callback still
		// finishes, once.
		if res := b.Get(cb); res.StatusCode != http.StatusFound || !setsSession(e, res) {
			t.Fatalf("the genuine callback afterwards: %d %s", res.StatusCode, res.Body)
		}
		wantError(t, "the genuine callback replayed", b.Get(cb), http.StatusBadRequest, "state_invalid")
		assertServes(t, e)
	})

	// A state made for provider X with a code issued by provider Y, at X's
	// callback: X's token endpoint refuses the code and the plugin must
	// report that as invalid_grant (code_invalid), not as an outage.
	for _, tc := range []struct{ state, code string }{{"gitlab", "github"}, {"github", "gitlab"}} {
		t.Run(tc.code+" code with a "+tc.state+" state", func(t *testing.T) {
			b := e.browser()
			st := stateOf(t, b.Start(tc.state, ""))
			foreign, _ := url.Parse(b.Approve(b.Start(tc.code, ""), ""))
			code := foreign.Query().Get("code")
			if code == "" {
				t.Fatalf("no code in %s", foreign)
			}
			fake := e.fakes.Fakes[tc.state]
			before := len(fake.CallsTo(fakeprovider.EndpointToken))
			issuerBefore := len(e.fakes.Fakes[tc.code].CallsTo(fakeprovider.EndpointToken))
			u := "/auth/callback/" + tc.state + "?" + url.Values{"code": {code}, "state": {st}}.Encode()
			wantError(t, "foreign code", b.Get(u), http.StatusBadRequest, "code_invalid")
			calls := fake.CallsTo(fakeprovider.EndpointToken)
			if len(calls) != before+1 {
				t.Fatalf("%s token endpoint called %d times, want 1", tc.state, len(calls)-before)
			}
			// GitHub says bad_verification_code (with a 200), GitLab
			// invalid_grant: the plugin maps its provider's word.
			want := fake.Config().Errors.BadCode.Code
			if last := calls[len(calls)-1]; last.Error != want || last.Injected {
				t.Fatalf("%s token endpoint answered %d %q, want %q", tc.state, last.Status, last.Error, want)
			}
			if n := len(e.fakes.Fakes[tc.code].CallsTo(fakeprovider.EndpointToken)) - issuerBefore; n != 0 {
				t.Fatalf("%s's code was redeemed at %s (%d calls)", tc.code, tc.code, n)
			}
			assertNoSession(t, e, b)
			assertServes(t, e)
		})
	}

	for _, tc := range []struct {
		name   string
		query  func(state string) url.Values
		status int
		code   string
	}{
		{"access_denied", func(s string) url.Values {
			return url.Values{"error": {"access_denied"}, "state": {s}}
		}, http.StatusForbidden, "access_denied"},
		{"access_denied with a code", func(s string) url.Values {
			return url.Values{"error": {"access_denied"}, "state": {s}, "code": {"abc"}}
		}, http.StatusForbidden, "access_denied"},
		{"server_error", func(s string) url.Values {
			return url.Values{"error": {"server_error"}, "state": {s}}
		}, http.StatusBadGateway, "provider_error"},
		{"hostile error value", func(s string) url.Values {
			return url.Values{"error": {"<script>alert(1)</script>\r\nX: y" + strings.Repeat("x", 5000)}, "state": {s}}
		}, http.StatusBadGateway, "provider_error"},
		{"missing code", func(s string) url.Values { return url.Values{"state": {s}} }, http.StatusBadRequest, "code_missing"},
		{"empty code", func(s string) url.Values { return url.Values{"state": {s}, "code": {""}} }, http.StatusBadRequest, "code_missing"},
		{"unknown code", func(s string) url.Values {
			return url.Values{"state": {s}, "code": {"not-a-code"}}
		}, http.StatusBadRequest, "code_invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			st := stateOf(t, b.Start("github", ""))
			res := b.Get("/auth/callback/github?" + tc.query(st).Encode())
			wantError(t, tc.name, res, tc.status, tc.code)
			if strings.Contains(res.Body, "<script>") {
				t.Fatal("the provider's error value was echoed unescaped")
			}
			assertNoSession(t, e, b)
			assertServes(t, e)
		})
	}

	t.Run("token endpoint fails", func(t *testing.T) {
		b := e.browser()
		cb := b.Approve(b.Start("github", ""), "")
		e.fakes.Fakes["github"].FailNext(fakeprovider.EndpointToken, 1, 500)
		wantError(t, "callback while the token endpoint fails", b.Get(cb), http.StatusBadGateway, "provider_exchange_failed")
		assertNoSession(t, e, b)
		assertServes(t, e)
	})
}

// 3. Forged, confused and stale session cookies.
func TestForgedSessionCookie(t *testing.T) {
	e := newEnv(t, envOptions{rules: []access.Rule{{Prefix: "/pub/", Class: access.Public}}})
	victim := e.browser()
	victim.MustSignIn("github")
	genuine, err := e.signer.Verify(victim.Cookie(e.cookie))
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherKey := []byte("another key, 32 bytes or more, not the session key")

	// claims are a genuine session's claims; each case spoils one thing.
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		now := e.clock.Now()
		c := jwt.MapClaims{
			"sid": genuine.SessionID, "sub": genuine.Subject, "email": genuine.Email, "typ": "session",
			"iss": e.publicURL, "aud": []string{testAudience},
			"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	b64 := func(v any) string {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	// hmacWithHeader signs header.claims with HMAC-SHA256 under the session
	// key whatever alg the header names (the RS256/HS256 key confusion).
	hmacWithHeader := func(header map[string]any, c jwt.MapClaims) string {
		in := b64(header) + "." + b64(c)
		m := hmac.New(sha256.New, e.SessionTokenKey)
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}

	// The baseline: the same construction with nothing spoiled works, so
	// each refusal below is for the spoiled part.
	control := sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(nil))
	cb := e.browser()
	cb.SetCookie(e.cookie, control)
	if res := cb.Get("/x"); res.StatusCode != http.StatusOK {
		t.Fatalf("control token refused: %d %s", res.StatusCode, res.Body)
	}

	idle := session.DefaultIdleTimeout // the env sets none
	genuineNoSession, _, err := e.signer.Mint("no-such-session-"+randomSecret(t), genuine.Subject, genuine.Email)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, token string }{
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))},
		{"alg none with the HS256 signature", func() string {
			parts := strings.Split(control, ".")
			return b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "." + parts[2]
		}()},
		{"alg NONE", b64(map[string]any{"alg": "NONE", "typ": "JWT"}) + "." + b64(claims(nil)) + "."},
		{"HS256 without signature", control[:strings.LastIndexByte(control, '.')+1]},
		{"HS256 truncated signature", control[:len(control)-4]},
		{"HS384 with the session key", sign(jwt.SigningMethodHS384, e.SessionTokenKey, claims(nil))},
		{"HS512 with the session key", sign(jwt.SigningMethodHS512, e.SessionTokenKey, claims(nil))},
		{"RS256 header, HMAC-SHA256 with the session key", hmacWithHeader(map[string]any{"alg": "RS256", "typ": "JWT"}, claims(nil))},
		{"RS256 properly signed", sign(jwt.SigningMethodRS256, rsaKey, claims(nil))},
		{"HS256 with another key", sign(jwt.SigningMethodHS256, otherKey, claims(nil))},
		{"no exp", sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"no iat", sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(func(c jwt.MapClaims) { delete(c, "iat") }))},
		{"no sid", sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(func(c jwt.MapClaims) { delete(c, "sid") }))},
		{"expired beyond the idle timeout", sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(func(c jwt.MapClaims) {
			exp := e.clock.Now().Add(-idle - time.Hour)
			c["exp"], c["iat"] = exp.Unix(), exp.Add(-15*time.Minute).Unix()
		}))},
		{"issued in the future", sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = e.clock.Now().Add(time.Hour).Unix(), e.clock.Now().Add(2*time.Hour).Unix()
		}))},
		{"wrong aud", sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(func(c jwt.MapClaims) { c["aud"] = []string{"someone-else"} }))},
		{"aud string of another", sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(func(c jwt.MapClaims) { c["aud"] = "arbor-cli" }))},
		{"wrong iss", sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))},
		{"wrong typ", sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(func(c jwt.MapClaims) { c["typ"] = "refresh" }))},
		{"no typ", sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(func(c jwt.MapClaims) { delete(c, "typ") }))},
		{"CLI access token, session key", sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(func(c jwt.MapClaims) {
			c["typ"], c["aud"] = "cli_access", []string{"arbor-cli"}
		}))},
		{"CLI access token, another key", sign(jwt.SigningMethodHS256, otherKey, claims(func(c jwt.MapClaims) {
			c["typ"], c["aud"] = "cli_access", []string{"arbor-cli"}
		}))},
		{"subject does not own the session", sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(func(c jwt.MapClaims) {
			c["sub"] = "usr_someoneelse"
		}))},
		{"garbage", "garbage"},
		{"three dots of garbage", "a.b.c"},
		{"base64 junk", b64(map[string]any{"alg": "HS256"}) + ".!!!." + "$$$"},
		{"over-long (8 KB)", strings.Repeat("A", 8<<10)},
		{"over-long JWT (8 KB)", sign(jwt.SigningMethodHS256, otherKey, claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", 8<<10) }))},
		{"valid token for a session that does not exist", genuineNoSession},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.token == control {
				t.Fatal("the case is the control token")
			}
			_, _, n0 := e.upstream.Last()
			b := e.browser()

			b.SetCookie(e.cookie, tc.token)
			res := b.Get("/x")
			if res.StatusCode != http.StatusFound || res.Location() != "http://"+e.addr+"/auth/sign-in?return_to=%2Fx" {
				t.Fatalf("GET /x = %d → %q, want 302 to sign-in\n%s", res.StatusCode, res.Location(), res.Body)
			}
			if !clearsCookie(res, e.cookie) {
				t.Errorf("GET /x does not clear the cookie: %q", res.Header.Values("Set-Cookie"))
			}

			b.SetCookie(e.cookie, tc.token)
			res = b.Get(api.PathWhoami)
			wantError(t, "whoami", res, http.StatusUnauthorized, "unauthenticated")
			if !clearsCookie(res, e.cookie) {
				t.Errorf("whoami does not clear the cookie: %q", res.Header.Values("Set-Cookie"))
			}
			if _, _, n := e.upstream.Last(); n != n0 {
				t.Fatalf("the upstream was reached %d times", n-n0)
			}

			// A public route is served, without identity.
			b.SetCookie(e.cookie, tc.token)
			res = b.Get("/pub/x")
			h, path, n := e.upstream.Last()
			if res.StatusCode != http.StatusOK || n != n0+1 || path != "/pub/x" {
				t.Fatalf("GET /pub/x = %d, upstream saw %q (%d requests)", res.StatusCode, path, n-n0)
			}
			if a := arborHeaders(h); len(a) != 0 {
				t.Fatalf("upstream saw identity headers %v", a)
			}
			if !clearsCookie(res, e.cookie) {
				t.Errorf("GET /pub/x does not clear the cookie: %q", res.Header.Values("Set-Cookie"))
			}
			assertServes(t, e)
		})
	}
	// None of that ended the genuine session.
	if res := victim.Get("/x"); res.StatusCode != http.StatusOK {
		t.Fatalf("the genuine session stopped working: %d", res.StatusCode)
	}
}

// 4. A cookie set before sign-in (session fixation).
func TestSessionFixation(t *testing.T) {
	e := newEnv(t, envOptions{})

	t.Run("garbage cookie", func(t *testing.T) {
		b := e.browser()
		b.SetCookie(e.cookie, "garbage-planted-by-an-attacker")
		b.MustSignIn("github")
		got := b.Cookie(e.cookie)
		if got == "garbage-planted-by-an-attacker" {
			t.Fatal("the planted cookie survived sign-in")
		}
		if _, err := e.signer.Verify(got); err != nil {
			t.Fatalf("new cookie: %v", err)
		}
		if res := b.Get("/x"); res.StatusCode != http.StatusOK {
			t.Fatalf("GET /x with the new cookie: %d", res.StatusCode)
		}
		assertServes(t, e)
	})

	t.Run("attacker's valid cookie", func(t *testing.T) {
		attacker := e.browser()
		attacker.MustSignIn("github")
		planted := attacker.Cookie(e.cookie)
		ac, err := e.signer.Verify(planted)
		if err != nil {
			t.Fatal(err)
		}
		attackerID, attackerLogin, _ := whoamiUser(t, attacker)

		victim := e.browser()
		victim.SetCookie(e.cookie, planted)
		if res := victim.SignIn("gitlab", "", ""); res.StatusCode != http.StatusFound {
			t.Fatalf("victim's sign-in: %d %s", res.StatusCode, res.Body)
		}
		got := victim.Cookie(e.cookie)
		vc, err := e.signer.Verify(got)
		if err != nil || got == planted {
			t.Fatalf("victim's cookie after sign-in: %v (unchanged: %v)", err, got == planted)
		}
		if vc.SessionID == ac.SessionID {
			t.Fatal("the victim's sign-in kept the attacker's session id")
		}
		victimID, victimLogin, _ := whoamiUser(t, victim)
		if victimID == attackerID || vc.Subject != victimID || victimLogin == attackerLogin {
			t.Fatalf("victim is %s (%s), attacker %s (%s)", victimID, victimLogin, attackerID, attackerLogin)
		}
		victim.Get("/x")
		if h, _, _ := e.upstream.Last(); h.Get("X-Arbor-User-Id") != victimID {
			t.Fatalf("upstream saw user %q for the victim, want %q", h.Get("X-Arbor-User-Id"), victimID)
		}
		// The planted session was ended (session.Manager.Start → EndCurrent).
		res := attacker.Get("/x")
		if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Location(), "http://"+e.addr+signin.PathSignIn) {
			t.Fatalf("attacker's original browser: %d → %q, want a redirect to sign-in", res.StatusCode, res.Location())
		}
		if _, err := e.store.GetSession(t.Context(), ac.SessionID); err == nil {
			t.Fatal("the attacker's session record still exists")
		}
		assertServes(t, e)
	})
}

// redirectPayloads are return_to values trying to leave Arbor's origin.
var redirectPayloads = []string{
	"//evil.example",
	"/\\evil.example",
	"\\\\evil.example",
	"\\/evil.example",
	"/\\/evil.example",
	"/%2f%2fevil.example",
	"/%2F%2Fevil.example",
	"/%252f%252fevil.example",
	"/%25252f%25252fevil.example",
	"/%5cevil.example",
	"/%5C%5Cevil.example",
	"%5c%5cevil.example",
	"https://evil.example",
	"HTTPS://evil.example",
	"https:/evil.example",
	"https:\\\\evil.example",
	"http:evil.example",
	"http:/\\evil.example",
	"javascript:alert(1)",
	"JaVaScRiPt:alert(1)",
	"java\tscript:alert(1)",
	"vbscript:msgbox(1)",
	"data:text/html,<script>alert(1)</script>",
	"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
	"///evil",
	"////evil.example",
	"///\\evil",
	"/\t/evil",
	"/%09/evil",
	"//%09/evil",
	"/ /evil",
	" //evil.example",
	"\t//evil.example",
	"%2f%2fevil",
	"%2F%2Fevil.example",
	"/..//evil",
	"/.//evil",
	"/%2e%2e//evil",
	"/.%2e/evil",
	"/%2e/evil",
	"//evil%2f..",
	"//evil.example/%2e%2e",
	"//evil.example:443",
	"//user@evil.example",
	"//arbor@evil.example",
	"https://arbor@evil.example",
	"https://127.0.0.1@evil.example",
	"http://127.0.0.1.evil.example",
	"/\r\n/evil.example",
	"/\r\nLocation: https://evil.example",
	"/%0d%0aLocation:%20https://evil.example",
	"/%0aSet-Cookie:%20arbor_session=x",
	"%0d%0a//evil.example",
	"\x00//evil",
	"/\x00/evil",
	"/%00/evil",
	"／／evil.example",
	"/／evil.example",
	"/\u2215\u2215evil.example",
	"/\u2044evil.example",
	"//evil。example",
	"/%E2%80%8B/evil",
	"\u200b//evil.example",
	"/%E2%80%8B%2F%2Fevil",
	"evil.example",
	"./evil",
	"../evil",
	".//evil",
	"?//evil.example",
	"#//evil.example",
	"/" + strings.Repeat("a", 3000),
	"/auth/logout",
	"/auth/../evil",
}

// checkLocation asserts that a redirect target is on Arbor's own origin.
func checkLocation(t *testing.T, e *env, payload, loc string) {
	t.Helper()
	bad := func(why string) { t.Errorf("return_to %q → Location %q: %s", payload, loc, why) }
	if loc == "" {
		bad("no Location")
		return
	}
	if loc != "/" && (loc[0] != '/' || len(loc) < 2 || loc[1] == '/' || loc[1] == '\\') {
		bad(`not "/" or "/" followed by something other than "/" or "\"`)
	}
	if before, _, _ := strings.Cut(loc, "?"); strings.Contains(before, "://") {
		bad(`"://" in the path`)
	}
	if strings.ContainsRune(loc, '\\') {
		bad("backslash (browsers read it as a slash)")
	}
	for i := 0; i < len(loc); i++ {
		if loc[i] < 0x20 || loc[i] == 0x7f {
			bad("control character")
			break
		}
	}
	base, _ := url.Parse(e.publicURL)
	ref, err := url.Parse(loc)
	if err != nil {
		bad(err.Error())
		return
	}
	if r := base.ResolveReference(ref); r.Scheme != base.Scheme || r.Host != e.addr || r.User != nil {
		bad("resolves to " + r.String())
	}
}

// 5. Open redirects through return_to.
func TestOpenRedirect(t *testing.T) {
	if len(redirectPayloads) < 50 {
		t.Fatalf("only %d payloads", len(redirectPayloads))
	}
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.MustSignIn("github")

	// Controls: genuine return paths come back unchanged, so a fallback to
	// "/" below is the validation at work.
	for _, rt := range []string{"/reports/2026?tab=open", "/a/b%2Fc", "/@evil.example", "/x?next=//evil.example"} {
		res := b.Get(signin.PathSignIn + "?return_to=" + url.QueryEscape(rt))
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != rt {
			t.Fatalf("control %q: %d → %q", rt, res.StatusCode, res.Header.Get("Location"))
		}
	}

	// A signed-in browser is sent straight to the return path.
	for _, p := range redirectPayloads {
		targets := []string{signin.PathSignIn + "?return_to=" + url.QueryEscape(p)}
		// Also unescaped in the query, where the server's one decoding
		// applies to it, when the request line can carry it as it is.
		if !strings.ContainsAny(p, "#& +") && !strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			targets = append(targets, signin.PathSignIn+"?return_to="+p)
		}
		for _, target := range targets {
			res := b.Get(target)
			if res.StatusCode != http.StatusFound {
				t.Errorf("GET %q = %d, want 302\n%s", target, res.StatusCode, res.Body)
				continue
			}
			checkLocation(t, e, p, res.Header.Get("Location"))
		}
	}
	if b.Cookie(e.cookie) == "" {
		t.Fatal("the browser lost its session")
	}
	assertServes(t, e)

	// The whole flow, the return path riding in the state record.
	for i, p := range []string{
		"//evil.example", "/\\evil.example", "https://evil.example", "/%2f%2fevil.example",
		"javascript:alert(1)", "/\r\nLocation: https://evil.example", "／／evil.example", "//evil%2f..",
	} {
		fb := e.browser()
		res := fb.SignIn(providerNames[i%len(providerNames)], p, "")
		if res.StatusCode != http.StatusFound || fb.Cookie(e.cookie) == "" {
			t.Errorf("sign-in with return_to %q: %d\n%s", p, res.StatusCode, res.Body)
			continue
		}
		checkLocation(t, e, p, res.Header.Get("Location"))
	}
	assertServes(t, e)
}

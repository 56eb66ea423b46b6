package api_test

// End-to-end and security tests of CLI login (Grape: service/clilogin
// behind gateway/api and gateway/pages) through the full stack: real
// Fiber on loopback, bbolt, the built-in plugins and the fake providers. The CLI is a cookie-less client speaking
// JSON; the user is a signed-in browser. See docs/cli-login.md.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway/api"
	"github.com/vintner/arbor/gateway/authz/access"
	"github.com/vintner/arbor/service/clilogin"
)

// familyOf returns the refresh family of a token (its fid claim, read
// without verification).
func familyOf(t *testing.T, tok string) string {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		t.Fatal(err)
	}
	fid, _ := claims["fid"].(string)
	if fid == "" {
		t.Fatalf("token without fid: %v", claims)
	}
	return fid
}

func auditActions(t *testing.T, e *cliEnv, userID string) []string {
	t.Helper()
	evs, err := e.store.ListAudit(context.Background(), data.AuditQuery{UserID: userID})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// wantDead checks that the access tokens are refused as Bearer and the
// refresh tokens refused by refresh.
func wantDead(t *testing.T, cli *browser, what string, access, refresh []string) {
	t.Helper()
	for i, a := range access {
		wantError(t, fmt.Sprintf("%s: Bearer with access token %d on /api/auth/me", what, i), bearerGet(cli, api.PathMe, a), 401, "unauthenticated")
		wantError(t, fmt.Sprintf("%s: Bearer with access token %d on /api/providers", what, i), bearerGet(cli, "/api/providers", a), 401, "unauthenticated")
	}
	for i, r := range refresh {
		wantError(t, fmt.Sprintf("%s: refresh token %d", what, i), postJSON(cli, api.PathCLIRefresh, map[string]string{"refresh_token": r}), 401, "invalid_grant")
	}
}

// 1. The seed flow end to end, and what the tokens open.
func TestCLILoginHappyPath(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{rules: []access.Rule{{Prefix: "/api/data", Class: access.API}}})
	user := e.browser()
	user.MustSignIn("github")
	uid, login, email := whoamiUser(t, user)
	cli := cliClient(e)

	verifier, challenge := newVerifier(t)
	dc := startCLI(cli, challenge)

	page := openLogin(user, dc)
	if page.StatusCode != http.StatusOK {
		t.Fatalf("login page: %d\n%s", page.StatusCode, page.Body)
	}
	for _, want := range []string{"grape", "build-box-7", "linux/amd64", "grape 1.4.2", `id="approve"`, `name="device_code" value="` + dc + `"`} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("login page lacks %q:\n%s", want, page.Body)
		}
	}
	if strings.Contains(page.Body, `id="verification-code"`) {
		t.Fatalf("the login page shows a code before approval:\n%s", page.Body)
	}
	for _, h := range []string{"Cache-Control", "X-Frame-Options", "Content-Security-Policy"} {
		if page.Header.Get(h) == "" {
			t.Errorf("login page lacks %s", h)
		}
	}

	code := approve(user, dc)
	if clilogin.CodeLength != 6 || len(code) != 6 {
		t.Fatalf("verification code %q: length %d, want 6", code, len(code))
	}
	for _, r := range code {
		if !strings.ContainsRune(clilogin.CodeAlphabet, r) {
			t.Fatalf("verification code %q has %q, not in %q", code, r, clilogin.CodeAlphabet)
		}
	}
	// Typed in lower case, with spaces.
	typed := strings.ToLower(code[:3]) + " " + strings.ToLower(code[3:]) + " "
	res := exchange(cli, dc, typed, verifier)
	tk := decodeTokens(t, "exchange", res)
	if tk.TokenType != "Bearer" || tk.ExpiresIn != 3600 || tk.RefreshExpiresIn != 90*24*3600 {
		t.Errorf("token response %+v: want Bearer, expires_in 3600, refresh_expires_in 7776000", tk)
	}
	if tk.User.ID != uid || tk.User.Login != login || tk.User.Email != email {
		t.Errorf("token response user %+v, want id %q login %q email %q", tk.User, uid, login, email)
	}
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("token response Cache-Control %q, want no-store", cc)
	}

	// The access token works on Arbor's API…
	me := bearerGet(cli, api.PathMe, tk.AccessToken)
	var who map[string]string
	if me.StatusCode != 200 || json.Unmarshal([]byte(me.Body), &who) != nil || who["user_id"] != uid || who["login"] != login {
		t.Fatalf("GET /api/auth/me with Bearer: %d %s, want user %q", me.StatusCode, me.Body, uid)
	}
	if res := bearerGet(cli, "/api/providers", tk.AccessToken); res.StatusCode != 200 {
		t.Fatalf("GET /api/providers with Bearer: %d %s", res.StatusCode, res.Body)
	}
	// …and on proxied api routes, where the upstream sees the user.
	if res := bearerGet(cli, "/api/data/items?x=1", tk.AccessToken); res.StatusCode != 200 {
		t.Fatalf("GET /api/data/items with Bearer: %d %s", res.StatusCode, res.Body)
	}
	h, path, _ := e.upstream.Last()
	if path != "/api/data/items?x=1" || h.Get("X-Arbor-User-Id") != uid {
		t.Fatalf("upstream saw %q with user %q, want %q", path, h.Get("X-Arbor-User-Id"), uid)
	}
	if strings.Contains(h.Get("Authorization"), tk.AccessToken) {
		// Not in the contract either way; reported, not asserted.
		t.Logf("note: the upstream receives the CLI access token in Authorization")
	}
	// Without credentials the proxied api route is refused.
	anon, err := sendJSON(cli, http.MethodGet, "/api/data/items", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, "anonymous GET /api/data/items", anon, 401, "unauthenticated")

	// Other tokens are refused as Bearer.
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
		"sub": uid, "type": "access", "fid": familyOf(t, tk.AccessToken), "iss": e.publicURL, "aud": "arbor-cli",
		"iat": e.clock.Now().Unix(), "exp": e.clock.Now().Add(time.Hour).Unix(), "jti": "forged",
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"the refresh token":       tk.RefreshToken,
		"a session cookie value":  user.Cookie(e.cookie),
		"a forged alg=none token": noneTok,
	} {
		for _, p := range []string{api.PathMe, "/api/providers", "/api/data/items"} {
			wantError(t, "Bearer with "+name+" on "+p, bearerGet(cli, p, tok), 401, "unauthenticated")
		}
	}
	if _, _, n := e.upstream.Last(); n != 1 {
		t.Fatalf("the upstream received %d requests, want 1 (refused tokens must not reach it)", n)
	}
	if acts := auditActions(t, e, uid); !contains(acts, "cli.approve") || !contains(acts, "cli.login") {
		t.Errorf("audit %v lacks cli.approve or cli.login", acts)
	}
}

// 2. A user who is not signed in signs in first and comes back.
func TestCLILoginNotSignedIn(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	cli := cliClient(e)
	verifier, challenge := newVerifier(t)
	dc := startCLI(cli, challenge)

	user := e.browser()
	loginPath := "/cli/login?device_code=" + dc
	res := openLogin(user, dc)
	want := "http://" + e.addr + "/auth/sign-in?return_to=" + url.QueryEscape(loginPath)
	if res.StatusCode != http.StatusFound || res.Location() != want {
		t.Fatalf("login page without a session: %d → %q, want 302 → %q", res.StatusCode, res.Location(), want)
	}
	// The sign-in page carries the return path to the provider buttons.
	page := user.Get(res.Location())
	if page.StatusCode != 200 || !strings.Contains(page.Body, "return_to="+url.QueryEscape(loginPath)) {
		t.Fatalf("sign-in page does not carry return_to %q:\n%s", loginPath, page.Body)
	}
	res = user.SignIn("gitlab", loginPath, "")
	if res.StatusCode != http.StatusFound || res.Location() != "http://"+e.addr+loginPath {
		t.Fatalf("sign-in callback: %d → %q, want the login page %q", res.StatusCode, res.Location(), loginPath)
	}
	if page := user.Get(res.Location()); page.StatusCode != 200 || !strings.Contains(page.Body, `id="approve"`) {
		t.Fatalf("login page after sign-in: %d\n%s", page.StatusCode, page.Body)
	}
	uid, _, _ := whoamiUser(t, user)
	tk := decodeTokens(t, "exchange", exchange(cli, dc, approve(user, dc), verifier))
	if tk.User.ID != uid {
		t.Fatalf("tokens for %q, want %q", tk.User.ID, uid)
	}
}

// 3. Guessing: 10,000 wrong codes from many addresses burn the device code
// after 5, and the right code is refused afterwards.
func TestCLIExchangeBruteForceBurns(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	user := e.browser()
	user.MustSignIn("github")
	uid, _, _ := whoamiUser(t, user)
	cli := cliClient(e)
	verifier, challenge := newVerifier(t)
	dc := startCLI(cli, challenge)
	right := approve(user, dc)

	const guesses, workers = 10000, 50
	jobs := make(chan int)
	var mu sync.Mutex
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, clilogin.CodeLength)
			for i := range jobs {
				for {
					if _, err := rand.Read(buf); err != nil {
						t.Error(err)
						return
					}
					for j := range buf {
						buf[j] = clilogin.CodeAlphabet[int(buf[j])%len(clilogin.CodeAlphabet)]
					}
					if string(buf) != right {
						break
					}
				}
				hdr := http.Header{"X-Forwarded-For": {fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}}
				res, err := sendJSON(cli, http.MethodPost, api.PathCLIExchange, exchangeBody(dc, string(buf), verifier), hdr)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				outcomes[fmt.Sprintf("%d %s", res.StatusCode, errorCode(res.Body))]++
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < guesses; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("outcomes of %d wrong codes: %v", guesses, outcomes)
	invalid, burned := outcomes["400 invalid_code"], outcomes["400 device_code_burned"]
	if invalid+burned != guesses {
		t.Fatalf("outcomes %v: want only 400 invalid_code and 400 device_code_burned", outcomes)
	}
	// Exactly 5 wrong codes are evaluated: each is checked and counted in
	// one atomic store update, so none in flight slips past the burn.
	if invalid != clilogin.DefaultMaxAttempts {
		t.Fatalf("%d invalid_code answers, want exactly %d", invalid, clilogin.DefaultMaxAttempts)
	}
	d, err := e.store.GetDeviceCode(context.Background(), dc)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != data.DeviceBurned || d.FailedAttempts < clilogin.DefaultMaxAttempts || d.VerificationHash != "" {
		t.Fatalf("stored device code: state %q, %d failed attempts, hash %q; want burned, >= 5, no hash", d.State, d.FailedAttempts, d.VerificationHash)
	}
	// Every invalid_code answer counted one attempt.
	if d.FailedAttempts != invalid {
		t.Errorf("stored %d failed attempts, %d invalid_code answers", d.FailedAttempts, invalid)
	}
	// The right code is refused now, in any spelling.
	wantError(t, "the right code after the burn", exchange(cli, dc, right, verifier), 400, "device_code_burned")
	wantError(t, "the right code (lower case) after the burn", exchange(cli, dc, strings.ToLower(right), verifier), 400, "device_code_burned")
	// Approving again does not revive it, nor does the page offer to.
	if res := openLogin(user, dc); res.StatusCode != http.StatusGone {
		t.Errorf("login page of a burned device code: %d, want 410", res.StatusCode)
	}
	csrf := csrfOf(t, user)
	if res := user.Do(http.MethodPost, api.PathCLIApprove, url.Values{"csrf": {csrf}, "device_code": {dc}}); res.StatusCode != http.StatusGone || verificationCodeRE.MatchString(res.Body) {
		t.Errorf("approving a burned device code: %d, want 410 without a code\n%s", res.StatusCode, res.Body)
	}
	wantError(t, "the right code after re-approval", exchange(cli, dc, right, verifier), 400, "device_code_burned")
	n := 0
	for _, a := range auditActions(t, e, uid) {
		if a == "cli.device_code_burned" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d cli.device_code_burned audit events, want 1", n)
	}
}

// 4. Exactly one of 100 concurrent exchanges of the right pair wins.
func TestCLIExchangeOnce(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	user := e.browser()
	user.MustSignIn("github")
	cli := cliClient(e)
	verifier, challenge := newVerifier(t)
	dc := startCLI(cli, challenge)
	code := approve(user, dc)

	const n = 100
	results := concurrently(t, n, func() (*response, error) {
		return sendJSON(cli, http.MethodPost, api.PathCLIExchange, exchangeBody(dc, code, verifier), nil)
	})
	ok := 0
	losers := map[string]int{}
	var winner cliTokens
	for _, res := range results {
		if res.StatusCode == 200 {
			ok++
			winner = decodeTokens(t, "winning exchange", res)
			continue
		}
		losers[fmt.Sprintf("%d %s", res.StatusCode, errorCode(res.Body))]++
	}
	if ok != 1 || len(losers) != 1 || losers["400 device_code_used"] != n-1 {
		t.Fatalf("%d successes and losers %v; want exactly 1 success and %d × 400 device_code_used", ok, losers, n-1)
	}
	if res := bearerGet(cli, api.PathMe, winner.AccessToken); res.StatusCode != 200 {
		t.Fatalf("the winner's access token: %d %s", res.StatusCode, res.Body)
	}
	fams, err := e.store.ListRefreshFamilies(context.Background(), winner.User.ID)
	if err != nil || len(fams) != 1 {
		t.Fatalf("refresh families after 100 exchanges: %d (%v), want 1", len(fams), err)
	}
	wantError(t, "exchange after the win", exchange(cli, dc, code, verifier), 400, "device_code_used")
}

// 5. The exchange's errors.
func TestCLIExchangeErrors(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	user := e.browser()
	user.MustSignIn("github")
	cli := cliClient(e)
	ctx := context.Background()

	// Expired: 10 minutes and 1 second after the start.
	verifier, challenge := newVerifier(t)
	dc := startCLI(cli, challenge)
	code := approve(user, dc)
	e.clock.Advance(10*time.Minute + time.Second)
	wantError(t, "exchange after 10 min 1 s", exchange(cli, dc, code, verifier), 400, "expired_device_code")
	if res := openLogin(user, dc); res.StatusCode != http.StatusGone {
		t.Errorf("login page of an expired request: %d, want 410", res.StatusCode)
	}

	// Just before the end it still works.
	verifier, challenge = newVerifier(t)
	dc = startCLI(cli, challenge)
	code = approve(user, dc)
	e.clock.Advance(10*time.Minute - time.Second)
	decodeTokens(t, "exchange at 9 min 59 s", exchange(cli, dc, code, verifier))

	// Unknown device code.
	wantError(t, "unknown device code", exchange(cli, newDeviceCode(t), "ABCDEF", verifier), 400, "unknown_device_code")

	// Wrong verifier: refused, and it counts as a failed attempt.
	verifier, challenge = newVerifier(t)
	dc = startCLI(cli, challenge)
	code = approve(user, dc)
	other, _ := newVerifier(t)
	wantError(t, "wrong verifier", exchange(cli, dc, code, other), 400, "invalid_verifier")
	if d, err := e.store.GetDeviceCode(ctx, dc); err != nil || d.FailedAttempts != 1 || d.State != data.DeviceApproved {
		t.Fatalf("after a wrong verifier: %+v %v; want 1 failed attempt, still approved", d, err)
	}
	// Missing verifier although the start gave a challenge.
	wantError(t, "missing verifier", exchange(cli, dc, code, ""), 400, "invalid_verifier")
	if d, err := e.store.GetDeviceCode(ctx, dc); err != nil || d.FailedAttempts != 2 {
		t.Fatalf("after a missing verifier: %+v %v; want 2 failed attempts", d, err)
	}
	// Wrong code and wrong verifier: the code is what is reported.
	wantError(t, "wrong code and verifier", exchange(cli, dc, "AAAAAA", other), 400, "invalid_code")
	// The right pair still works (3 failures < 5).
	if code != "AAAAAA" {
		decodeTokens(t, "exchange after 3 failures", exchange(cli, dc, code, verifier))
	}

	// Before approval: invalid_code (no hint that it is only pending).
	verifier, challenge = newVerifier(t)
	dc = startCLI(cli, challenge)
	wantError(t, "exchange before opening the page", exchange(cli, dc, "ABCDEF", verifier), 400, "invalid_code")
	if res := openLogin(user, dc); res.StatusCode != 200 {
		t.Fatalf("login page: %d", res.StatusCode)
	}
	wantError(t, "exchange before approval", exchange(cli, dc, "ABCDEF", verifier), 400, "invalid_code")
	if d, err := e.store.GetDeviceCode(ctx, dc); err != nil || d.FailedAttempts != 2 {
		t.Fatalf("after 2 exchanges before approval: %+v %v; want 2 failed attempts", d, err)
	}

	// Malformed bodies.
	wantError(t, "exchange with a form body", cli.Do(http.MethodPost, api.PathCLIExchange, url.Values{"device_code": {dc}}), 400, "invalid_request")
	wantError(t, "exchange without device_code", postJSON(cli, api.PathCLIExchange, map[string]string{"verification_code": "ABCDEF"}), 400, "invalid_request")
	wantError(t, "start with a short device code", postJSON(cli, api.PathCLIStart, map[string]string{"device_code": "short"}), 400, "invalid_request")
	wantError(t, "start with a bad challenge", postJSON(cli, api.PathCLIStart, map[string]string{"device_code": newDeviceCode(t), "code_challenge": "plain-verifier"}), 400, "invalid_request")
	wantError(t, "start with a taken device code", postJSON(cli, api.PathCLIStart, map[string]string{"device_code": dc}), 409, "device_code_exists")
}

// 6. Approval is CSRF-protected, bound to the first user, and can be
// refused.
func TestCLIApprovalProtection(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	alice := e.browser()
	alice.MustSignIn("github")
	bob := e.browser()
	bob.MustSignIn("gitlab")
	aliceID, _, _ := whoamiUser(t, alice)
	bobID, _, _ := whoamiUser(t, bob)
	if aliceID == bobID {
		t.Fatal("alice and bob are the same user")
	}
	cli := cliClient(e)
	verifier, challenge := newVerifier(t)
	dc := startCLI(cli, challenge)
	page := openLogin(alice, dc)
	m := csrfRE.FindStringSubmatch(page.Body)
	if page.StatusCode != 200 || m == nil {
		t.Fatalf("login page: %d\n%s", page.StatusCode, page.Body)
	}
	csrf := m[1]

	// No CSRF token, a wrong one, or bob's.
	wantError(t, "approve without csrf", alice.Do(http.MethodPost, api.PathCLIApprove, url.Values{"device_code": {dc}}), 403, "csrf_invalid")
	wantError(t, "approve with a wrong csrf", alice.Do(http.MethodPost, api.PathCLIApprove, url.Values{"csrf": {randomSecret(t)}, "device_code": {dc}}), 403, "csrf_invalid")
	wantError(t, "approve with bob's csrf", alice.Do(http.MethodPost, api.PathCLIApprove, url.Values{"csrf": {csrfOf(t, bob)}, "device_code": {dc}}), 403, "csrf_invalid")
	// Cross-site requests, even with the right token.
	for _, h := range []http.Header{
		{"Origin": {"https://evil.example"}},
		{"Origin": {"http://" + e.addr + ".evil.example"}},
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Sec-Fetch-Site": {"same-site"}},
	} {
		alice.Header = h
		wantError(t, fmt.Sprintf("approve with %v", h), alice.Do(http.MethodPost, api.PathCLIApprove, url.Values{"csrf": {csrf}, "device_code": {dc}}), 403, "csrf_invalid")
		wantError(t, fmt.Sprintf("deny with %v", h), alice.Do(http.MethodPost, api.PathCLIDeny, url.Values{"csrf": {csrf}, "device_code": {dc}}), 403, "csrf_invalid")
	}
	alice.Header = http.Header{}
	// Not signed in.
	anon := e.browser()
	wantError(t, "approve without a session", anon.Do(http.MethodPost, api.PathCLIApprove, url.Values{"csrf": {csrf}, "device_code": {dc}}), 401, "unauthenticated")
	if d, err := e.store.GetDeviceCode(context.Background(), dc); err != nil || d.State != data.DevicePending || d.VerificationHash != "" || d.UserID != aliceID {
		t.Fatalf("after refused approvals: %+v %v; want pending, no code, bound to alice", d, err)
	}

	// Bob opens the link alice opened first.
	res := openLogin(bob, dc)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(res.Body, "Not your login request") || csrfRE.MatchString(res.Body) {
		t.Fatalf("bob opening alice's request: %d, want 403 \"Not your login request\" without a form\n%s", res.StatusCode, res.Body)
	}
	bobCSRF := csrfOf(t, bob)
	res = bob.Do(http.MethodPost, api.PathCLIApprove, url.Values{"csrf": {bobCSRF}, "device_code": {dc}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(res.Body, "Not your login request") || verificationCodeRE.MatchString(res.Body) {
		t.Fatalf("bob approving alice's request: %d, want 403 \"Not your login request\"\n%s", res.StatusCode, res.Body)
	}
	res = bob.Do(http.MethodPost, api.PathCLIDeny, url.Values{"csrf": {bobCSRF}, "device_code": {dc}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(res.Body, "Not your login request") {
		t.Fatalf("bob denying alice's request: %d, want 403\n%s", res.StatusCode, res.Body)
	}
	if d, err := e.store.GetDeviceCode(context.Background(), dc); err != nil || d.State != data.DevicePending || d.UserID != aliceID {
		t.Fatalf("after bob: %+v %v; want pending, bound to alice", d, err)
	}
	// Alice still can, and the tokens are hers.
	tk := decodeTokens(t, "alice's exchange", exchange(cli, dc, approve(alice, dc), verifier))
	if tk.User.ID != aliceID {
		t.Fatalf("tokens for %q, want alice %q", tk.User.ID, aliceID)
	}

	// A request bob never opened cannot be approved by bob blindly.
	verifier, challenge = newVerifier(t)
	dc = startCLI(cli, challenge)
	res = bob.Do(http.MethodPost, api.PathCLIApprove, url.Values{"csrf": {bobCSRF}, "device_code": {dc}})
	if res.StatusCode != http.StatusForbidden || verificationCodeRE.MatchString(res.Body) {
		t.Fatalf("approving a request without opening it: %d, want 403\n%s", res.StatusCode, res.Body)
	}
	// Unknown device code.
	res = bob.Do(http.MethodPost, api.PathCLIApprove, url.Values{"csrf": {bobCSRF}, "device_code": {newDeviceCode(t)}})
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("approving an unknown request: %d, want 404\n%s", res.StatusCode, res.Body)
	}

	// Deny: the exchange answers access_denied, even with a code minted
	// before the refusal.
	code := approve(bob, dc)
	page = openLogin(bob, dc) // a reload shows the page again (and approving again would replace the code)
	if page.StatusCode != 200 {
		t.Fatalf("reloading the login page: %d", page.StatusCode)
	}
	res = bob.Do(http.MethodPost, api.PathCLIDeny, url.Values{"csrf": {bobCSRF}, "device_code": {dc}})
	if res.StatusCode != 200 || !strings.Contains(res.Body, "Login refused") {
		t.Fatalf("deny: %d\n%s", res.StatusCode, res.Body)
	}
	wantError(t, "exchange after deny", exchange(cli, dc, code, verifier), 400, "access_denied")
	res = bob.Do(http.MethodPost, api.PathCLIApprove, url.Values{"csrf": {bobCSRF}, "device_code": {dc}})
	if res.StatusCode != http.StatusGone || verificationCodeRE.MatchString(res.Body) {
		t.Fatalf("approving after deny: %d, want 410\n%s", res.StatusCode, res.Body)
	}
	wantError(t, "exchange after deny and approve", exchange(cli, dc, code, verifier), 400, "access_denied")
}

// The approval page escapes what the CLI announces.
func TestCLILoginPageEscapesClientInfo(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	user := e.browser()
	user.MustSignIn("github")
	cli := cliClient(e)
	dc := newDeviceCode(t)
	res := postJSON(cli, api.PathCLIStart, map[string]any{
		"device_code": dc, "client_name": `<script>alert(1)</script>`,
		"client_info": map[string]string{"host<b>": `"><img src=x onerror=alert(1)>`},
	})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("start: %d %s", res.StatusCode, res.Body)
	}
	page := openLogin(user, dc)
	if page.StatusCode != 200 || strings.Contains(page.Body, "<script>alert") || strings.Contains(page.Body, "<img src=x") || strings.Contains(page.Body, "host<b>") {
		t.Fatalf("login page does not escape the client's description: %d\n%s", page.StatusCode, page.Body)
	}
}

// 7. Refresh rotates; reusing a rotated token revokes the whole login.
func TestCLIRefreshRotationAndReuse(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	user := e.browser()
	user.MustSignIn("github")
	uid, _, _ := whoamiUser(t, user)
	cli := cliClient(e)
	first := cliLogin(t, user, cli)

	second := decodeTokens(t, "refresh", postJSON(cli, api.PathCLIRefresh, map[string]string{"refresh_token": first.RefreshToken}))
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("refresh returned the same tokens")
	}
	if second.User.ID != uid || second.ExpiresIn != 3600 || familyOf(t, second.RefreshToken) != familyOf(t, first.RefreshToken) {
		t.Fatalf("refreshed tokens %+v: want user %q, expires_in 3600, the same family", second, uid)
	}
	for _, a := range []string{first.AccessToken, second.AccessToken} {
		if res := bearerGet(cli, api.PathMe, a); res.StatusCode != 200 {
			t.Fatalf("access token before reuse: %d %s", res.StatusCode, res.Body)
		}
	}
	// A second, independent login is not affected by what follows.
	other := cliLogin(t, user, cli)

	// The rotated token again (grace 0): reuse.
	wantError(t, "reusing the rotated refresh token", postJSON(cli, api.PathCLIRefresh, map[string]string{"refresh_token": first.RefreshToken}), 401, "invalid_grant")
	wantDead(t, cli, "after reuse", []string{first.AccessToken, second.AccessToken}, []string{second.RefreshToken, first.RefreshToken})
	f, err := e.store.GetRefreshFamily(context.Background(), familyOf(t, first.RefreshToken))
	if err != nil || f.RevokedAt.IsZero() {
		t.Fatalf("family after reuse: %+v %v; want revoked", f, err)
	}
	if acts := auditActions(t, e, uid); !contains(acts, "cli.refresh_reuse") {
		t.Fatalf("audit %v lacks cli.refresh_reuse", acts)
	}
	if res := bearerGet(cli, api.PathMe, other.AccessToken); res.StatusCode != 200 {
		t.Fatalf("the other login after reuse in the first: %d %s", res.StatusCode, res.Body)
	}
	decodeTokens(t, "refreshing the other login", postJSON(cli, api.PathCLIRefresh, map[string]string{"refresh_token": other.RefreshToken}))

	// Malformed refresh requests.
	wantError(t, "refresh without a token", postJSON(cli, api.PathCLIRefresh, map[string]string{}), 400, "invalid_request")
	wantError(t, "refresh with an access token", postJSON(cli, api.PathCLIRefresh, map[string]string{"refresh_token": other.AccessToken}), 401, "invalid_grant")
	wantError(t, "refresh with a session token", postJSON(cli, api.PathCLIRefresh, map[string]string{"refresh_token": user.Cookie(e.cookie)}), 401, "invalid_grant")
}

// concurrentRefresh sends n refreshes of tok at once.
func concurrentRefresh(t *testing.T, cli *browser, tok string, n int) []*response {
	t.Helper()
	return concurrently(t, n, func() (*response, error) {
		return sendJSON(cli, http.MethodPost, api.PathCLIRefresh, map[string]string{"refresh_token": tok}, nil)
	})
}

// concurrently runs send n times at once (released together) and returns
// the responses in no particular order; any error fails the test.
func concurrently(t *testing.T, n int, send func() (*response, error)) []*response {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	out := make([]*response, n)
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := send()
			if err != nil {
				t.Error(err)
				return
			}
			out[i] = res
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// 8a. Concurrent refreshes without a grace window: one wins, the others
// are reuse, and the login is revoked.
func TestCLIConcurrentRefreshNoGrace(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	user := e.browser()
	user.MustSignIn("github")
	cli := cliClient(e)
	tk := cliLogin(t, user, cli)

	const n = 50
	var ok []cliTokens
	other := map[string]int{}
	for _, res := range concurrentRefresh(t, cli, tk.RefreshToken, n) {
		if res.StatusCode == 200 {
			ok = append(ok, decodeTokens(t, "refresh", res))
		} else {
			other[fmt.Sprintf("%d %s", res.StatusCode, errorCode(res.Body))]++
		}
	}
	if len(ok) != 1 || other["401 invalid_grant"] != n-1 {
		t.Fatalf("%d successes, others %v; want 1 and %d × 401 invalid_grant", len(ok), other, n-1)
	}
	f, err := e.store.GetRefreshFamily(context.Background(), familyOf(t, tk.RefreshToken))
	if err != nil || f.RevokedAt.IsZero() || f.Generation != 2 {
		t.Fatalf("family: %+v %v; want revoked after exactly one rotation", f, err)
	}
	wantDead(t, cli, "after concurrent reuse", []string{tk.AccessToken, ok[0].AccessToken}, []string{ok[0].RefreshToken, tk.RefreshToken})
}

// 8b. With a grace window, the concurrent refreshes all succeed with the
// same new refresh token; reuse after the window still revokes.
func TestCLIConcurrentRefreshGrace(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{refreshGrace: 5 * time.Second})
	user := e.browser()
	user.MustSignIn("github")
	uid, _, _ := whoamiUser(t, user)
	cli := cliClient(e)
	tk := cliLogin(t, user, cli)

	const n = 50
	refreshTokens := map[string]int{}
	var accessTokens []string
	for _, res := range concurrentRefresh(t, cli, tk.RefreshToken, n) {
		got := decodeTokens(t, "refresh within the grace window", res)
		refreshTokens[got.RefreshToken]++
		accessTokens = append(accessTokens, got.AccessToken)
	}
	if len(refreshTokens) != 1 {
		t.Fatalf("%d distinct refresh tokens from %d concurrent refreshes, want 1 (the current one)", len(refreshTokens), n)
	}
	var current string
	for r := range refreshTokens {
		current = r
	}
	if current == tk.RefreshToken {
		t.Fatal("the refresh did not rotate")
	}
	ctx := context.Background()
	fid := familyOf(t, tk.RefreshToken)
	f, err := e.store.GetRefreshFamily(ctx, fid)
	if err != nil || !f.RevokedAt.IsZero() || f.Generation != 2 {
		t.Fatalf("family: %+v %v; want alive after exactly one rotation", f, err)
	}
	for i, a := range append(accessTokens, tk.AccessToken) {
		if res := bearerGet(cli, api.PathMe, a); res.StatusCode != 200 {
			t.Fatalf("access token %d within the grace window: %d %s", i, res.StatusCode, res.Body)
		}
	}
	if acts := auditActions(t, e, uid); contains(acts, "cli.refresh_reuse") {
		t.Fatalf("audit %v has cli.refresh_reuse within the grace window", acts)
	}

	// After the window, the old token is reuse.
	e.clock.Advance(6 * time.Second)
	wantError(t, "the old refresh token after the grace window", postJSON(cli, api.PathCLIRefresh, map[string]string{"refresh_token": tk.RefreshToken}), 401, "invalid_grant")
	if f, err := e.store.GetRefreshFamily(ctx, fid); err != nil || f.RevokedAt.IsZero() {
		t.Fatalf("family after reuse past the grace window: %+v %v; want revoked", f, err)
	}
	wantDead(t, cli, "after reuse past the grace window", append(accessTokens, tk.AccessToken), []string{current})
	if acts := auditActions(t, e, uid); !contains(acts, "cli.refresh_reuse") {
		t.Fatalf("audit %v lacks cli.refresh_reuse", acts)
	}
}

// 9. Logout ends the login at once.
func TestCLILogout(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	user := e.browser()
	user.MustSignIn("github")
	cli := cliClient(e)

	tk := cliLogin(t, user, cli)
	res := postJSON(cli, api.PathCLILogout, map[string]string{"refresh_token": tk.RefreshToken})
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d %s", res.StatusCode, res.Body)
	}
	wantDead(t, cli, "after logout", []string{tk.AccessToken}, []string{tk.RefreshToken})

	// Logout with only the access token as Bearer.
	tk = cliLogin(t, user, cli)
	res, err := sendJSON(cli, http.MethodPost, api.PathCLILogout, nil, http.Header{"Authorization": {"Bearer " + tk.AccessToken}})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout with Bearer: %d %s", res.StatusCode, res.Body)
	}
	wantDead(t, cli, "after logout with Bearer", []string{tk.AccessToken}, []string{tk.RefreshToken})

	// Logout without a token.
	wantError(t, "logout without a token", postJSON(cli, api.PathCLILogout, map[string]string{}), 401, "invalid_grant")
}

// 10. Tokens that are not Arbor's CLI access tokens are refused as Bearer.
func TestCLIBearerJWTConfusion(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	user := e.browser()
	user.MustSignIn("github")
	bob := e.browser()
	bob.MustSignIn("gitlab")
	bobID, _, _ := whoamiUser(t, bob)
	cli := cliClient(e)
	tk := cliLogin(t, user, cli)
	uid, fid := tk.User.ID, familyOf(t, tk.AccessToken)

	now := e.clock.Now()
	n := 0
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		n++
		c := jwt.MapClaims{
			"sub": uid, "login": tk.User.Login, "type": "access", "fid": fid, "iss": e.publicURL, "aud": []string{"arbor-cli"},
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": fmt.Sprintf("forged-%d", n),
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		t.Helper()
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The control: the same forging with the right algorithm, key and
	// claims is accepted, so each refusal below is for its one difference.
	control := sign(jwt.SigningMethodHS256, e.CLITokenKey, claims(nil))
	if res := bearerGet(cli, api.PathMe, control); res.StatusCode != 200 {
		t.Fatalf("control token: %d %s", res.StatusCode, res.Body)
	}

	rs256 := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
	rs256.Header["alg"] = "RS256"
	rsInput, err := rs256.SigningString()
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, e.CLITokenKey)
	mac.Write([]byte(rsInput))
	rsToken := rsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	cases := map[string]string{
		"alg none":                   sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)),
		"HS384 with the CLI key":     sign(jwt.SigningMethodHS384, e.CLITokenKey, claims(nil)),
		"HS512 with the CLI key":     sign(jwt.SigningMethodHS512, e.CLITokenKey, claims(nil)),
		"RS256 with an HMAC":         rsToken,
		"HS256 with the session key": sign(jwt.SigningMethodHS256, e.SessionTokenKey, claims(nil)),
		"expired": sign(jwt.SigningMethodHS256, e.CLITokenKey, claims(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Minute).Unix()
		})),
		"no exp":                   sign(jwt.SigningMethodHS256, e.CLITokenKey, claims(func(c jwt.MapClaims) { delete(c, "exp") })),
		"aud arbor-session":        sign(jwt.SigningMethodHS256, e.CLITokenKey, claims(func(c jwt.MapClaims) { c["aud"] = testAudience })),
		"no aud":                   sign(jwt.SigningMethodHS256, e.CLITokenKey, claims(func(c jwt.MapClaims) { delete(c, "aud") })),
		"wrong iss":                sign(jwt.SigningMethodHS256, e.CLITokenKey, claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })),
		"type refresh":             sign(jwt.SigningMethodHS256, e.CLITokenKey, claims(func(c jwt.MapClaims) { c["type"] = "refresh" })),
		"no type":                  sign(jwt.SigningMethodHS256, e.CLITokenKey, claims(func(c jwt.MapClaims) { delete(c, "type") })),
		"no fid":                   sign(jwt.SigningMethodHS256, e.CLITokenKey, claims(func(c jwt.MapClaims) { delete(c, "fid") })),
		"unknown fid":              sign(jwt.SigningMethodHS256, e.CLITokenKey, claims(func(c jwt.MapClaims) { c["fid"] = "AAAAAAAAAAAAAAAAAAAAAA" })),
		"another user's sub":       sign(jwt.SigningMethodHS256, e.CLITokenKey, claims(func(c jwt.MapClaims) { c["sub"] = bobID })),
		"no sub":                   sign(jwt.SigningMethodHS256, e.CLITokenKey, claims(func(c jwt.MapClaims) { delete(c, "sub") })),
		"the real token, tampered": tamper(tk.AccessToken),
		"the refresh token":        tk.RefreshToken,
		"the session cookie":       user.Cookie(e.cookie),
		"garbage":                  "not-a-jwt",
	}
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, p := range []string{api.PathMe, "/api/providers"} {
			res := bearerGet(cli, p, cases[name])
			if res.StatusCode != 401 || errorCode(res.Body) != "unauthenticated" {
				t.Errorf("Bearer %s on %s = %d %q, want 401 unauthenticated\n%s", name, p, res.StatusCode, errorCode(res.Body), res.Body)
			}
		}
	}
}

// tamper changes the payload of a JWT (the user id), keeping the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	_ = json.Unmarshal(raw, &c)
	c["sub"] = "usr_someone_else"
	raw, _ = json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// The upstream gets the identity of a CLI request, never its access token.
func TestUpstreamNeverSeesCLIAccessToken(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{defaultClass: access.API})
	b := e.browser()
	b.MustSignIn("github")
	dc := startCLI(b, "")
	code := approve(b, dc)
	res := exchange(b, dc, code, "")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(res.Body), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("exchange: %d %s", res.StatusCode, res.Body)
	}
	cli := e.browser()
	cli.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if r := cli.Get("/api/data"); r.StatusCode != 200 {
		t.Fatalf("proxied API call: %d", r.StatusCode)
	}
	h, _, _ := e.upstream.Last()
	if h.Get("Authorization") != "" || h.Get("X-Arbor-User-Id") == "" {
		t.Fatalf("upstream headers: Authorization %q, user %q", h.Get("Authorization"), h.Get("X-Arbor-User-Id"))
	}
	// An app's own bearer token (not a CLI token) still reaches it
	// alongside a session.
	b.Header.Set("Authorization", "Bearer app-specific-token")
	b.Get("/api/data")
	if h, _, _ := e.upstream.Last(); h.Get("Authorization") != "Bearer app-specific-token" {
		t.Fatalf("the app's own Authorization was dropped: %q", h.Get("Authorization"))
	}
}

func TestAccountPageRevokesCLILogin(t *testing.T) {
	e := newCLIEnv(t, cliEnvOptions{})
	b := e.browser()
	b.MustSignIn("github")
	dc := startCLI(b, "")
	res := exchange(b, dc, approve(b, dc), "")
	var tok cliTokens
	if err := json.Unmarshal([]byte(res.Body), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("exchange: %d %s", res.StatusCode, res.Body)
	}
	page := b.Get("/auth/account").Body
	m := regexp.MustCompile(`<tr class="cli-login" data-id="([^"]+)"><td>grape</td><td>build-box-7 \(linux/amd64\)</td>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("account page does not list the CLI login:\n%s", page)
	}
	csrf := csrfRE.FindStringSubmatch(page)[1]
	if r := b.Do(http.MethodPost, "/auth/cli-logins/revoke", url.Values{"csrf": {csrf}, "id": {m[1]}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.StatusCode)
	}
	cli := e.browser()
	cli.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if r := cli.Get("/api/auth/me"); r.StatusCode != 401 {
		t.Fatalf("access token after revoking on the account page: %d", r.StatusCode)
	}
	if strings.Contains(b.Get("/auth/account").Body, `class="cli-login"`) {
		t.Fatal("the revoked login is still listed")
	}
}

package signin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

func TestSignInWithEachProvider(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, p := range providerNames {
		t.Run(p, func(t *testing.T) {
			b := e.browser()
			// A protected page sends the browser to sign-in, remembering it.
			res := b.Get("/reports/2026?tab=open")
			if res.StatusCode != http.StatusFound || res.Location() != "http://"+e.addr+"/auth/sign-in?return_to=%2Freports%2F2026%3Ftab%3Dopen" {
				t.Fatalf("protected page: %d → %q", res.StatusCode, res.Location())
			}
			page := b.Get(res.Location())
			want := `href="/auth/start/` + p + `?return_to=%2Freports%2F2026%3Ftab%3Dopen"`
			if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, want) {
				t.Fatalf("sign-in page lacks %s:\n%s", want, page.Body)
			}
			authURL := b.Start(p, "/reports/2026?tab=open")
			au, _ := url.Parse(authURL)
			q := au.Query()
			if q.Get("state") == "" || q.Get("redirect_uri") != e.publicURL+"/auth/callback/"+p {
				t.Fatalf("authorization URL %s: state or exact redirect_uri missing", authURL)
			}
			if p != "bitbucket" && q.Get("code_challenge_method") != "S256" {
				t.Fatalf("authorization URL %s: no PKCE S256", authURL)
			}
			res = b.Get(b.Approve(authURL, ""))
			if res.StatusCode != http.StatusFound || res.Location() != "http://"+e.addr+"/reports/2026?tab=open" {
				t.Fatalf("callback: %d → %q\n%s", res.StatusCode, res.Location(), res.Body)
			}
			res = b.Get(res.Location())
			if res.StatusCode != http.StatusOK {
				t.Fatalf("return page: %d %s", res.StatusCode, res.Body)
			}
			h, path, _ := e.upstream.Last()
			if path != "/reports/2026?tab=open" {
				t.Fatalf("upstream saw %q", path)
			}
			uid := h.Get("X-Arbor-User-Id")
			if !strings.HasPrefix(uid, "usr_") || h.Get("X-Arbor-User-Login") == "" {
				t.Fatalf("upstream identity headers: %v", h)
			}
			claims := verifyAssertion(t, b, h.Get("X-Arbor-Assertion"))
			if claims["sub"] != uid || claims["login"] != h.Get("X-Arbor-User-Login") {
				t.Fatalf("assertion claims %v do not match the headers %v", claims, h)
			}
			// The same account signs in to the same user next time.
			b2 := e.browser()
			b2.MustSignIn(p)
			b2.Get("/")
			if h2, _, _ := e.upstream.Last(); h2.Get("X-Arbor-User-Id") != uid {
				t.Fatalf("second sign-in: user %q, want %q", h2.Get("X-Arbor-User-Id"), uid)
			}
		})
	}
}

func TestCookieAttributes(t *testing.T) {
	for _, secure := range []bool{true, false} {
		e := newEnv(t, envOptions{secure: secure})
		b := e.browser()
		res := b.SignIn("github", "", "")
		var set string
		for _, v := range res.Header.Values("Set-Cookie") {
			if strings.HasPrefix(v, e.cookie+"=") {
				set = v
			}
		}
		wantName := map[bool]string{true: "__Host-arbor_session", false: "arbor_session"}[secure]
		if e.cookie != wantName || set == "" {
			t.Fatalf("secure=%v: cookie %q, Set-Cookie %q", secure, e.cookie, res.Header.Values("Set-Cookie"))
		}
		lower := strings.ToLower(set)
		for _, attr := range []string{"; path=/", "; httponly", "; samesite=lax", "; expires="} {
			if !strings.Contains(lower, attr) {
				t.Errorf("secure=%v: Set-Cookie %q lacks %q", secure, set, attr)
			}
		}
		if strings.Contains(lower, "domain=") {
			t.Errorf("Set-Cookie %q has a Domain", set)
		}
		if got := strings.Contains(lower, "; secure"); got != secure {
			t.Errorf("secure=%v: Set-Cookie %q", secure, set)
		}
	}
}

func TestLogoutEndsACopiedCookieAtOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.MustSignIn("github")
	stolen := b.Cookie(e.cookie)
	thief := e.browser()
	thief.SetCookie(e.cookie, stolen)
	if res := thief.Get("/x"); res.StatusCode != http.StatusOK {
		t.Fatalf("copied cookie before logout: %d", res.StatusCode)
	}
	csrf := csrfOf(t, b)

	// Without the CSRF token, from another site, or with another
	// session's token: refused, and the session lives on.
	other := e.browser()
	other.MustSignIn("gitlab")
	for name, tc := range map[string]struct {
		form   url.Values
		origin string
	}{
		"no token":          {url.Values{}, ""},
		"wrong token":       {url.Values{"csrf": {"AAAA"}}, ""},
		"other session's":   {url.Values{"csrf": {csrfOf(t, other)}}, ""},
		"cross-site origin": {url.Values{"csrf": {csrf}}, "https://evil.example"},
		"null origin":       {url.Values{"csrf": {csrf}}, "null"},
	} {
		b.Header.Set("Origin", tc.origin)
		res := b.Do(http.MethodPost, "/auth/logout", tc.form)
		if res.StatusCode != http.StatusForbidden || errorCode(res.Body) != "csrf_invalid" {
			t.Fatalf("%s: logout = %d %q", name, res.StatusCode, errorCode(res.Body))
		}
	}
	b.Header.Del("Origin")
	if res := thief.Get("/x"); res.StatusCode != http.StatusOK {
		t.Fatalf("refused logouts ended the session: %d", res.StatusCode)
	}

	res := b.Do(http.MethodPost, "/auth/logout", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasSuffix(res.Location(), "/auth/sign-in?signed_out=1") {
		t.Fatalf("logout = %d → %q", res.StatusCode, res.Location())
	}
	if b.Cookie(e.cookie) != "" {
		t.Fatal("logout did not clear the cookie")
	}
	res = thief.Get("/x")
	if res.StatusCode != http.StatusFound || !strings.Contains(res.Location(), "/auth/sign-in") {
		t.Fatalf("copied cookie after logout: %d → %q", res.StatusCode, res.Location())
	}
	if res := other.Get("/x"); res.StatusCode != http.StatusOK {
		t.Fatalf("another user's session ended too: %d", res.StatusCode)
	}
}

func TestCookieIsReissuedPastHalfItsLife(t *testing.T) {
	const ttl = 10 * time.Minute
	e := newEnv(t, envOptions{tokenTTL: ttl, idle: time.Hour})
	b := e.browser()
	b.MustSignIn("google")
	first := b.Cookie(e.cookie)

	e.clock.Advance(ttl/2 - time.Minute)
	res := b.Get("/a")
	if res.StatusCode != 200 || res.Header.Get("Set-Cookie") != "" {
		t.Fatalf("before half-life: %d, Set-Cookie %q", res.StatusCode, res.Header.Get("Set-Cookie"))
	}
	e.clock.Advance(2 * time.Minute)
	res = b.Get("/a")
	second := b.Cookie(e.cookie)
	if res.StatusCode != 200 || second == first || second == "" {
		t.Fatalf("past half-life: %d, cookie changed %v, Set-Cookie %q", res.StatusCode, second != first, res.Header.Values("Set-Cookie"))
	}
	claims, err := e.signer.Verify(second)
	if err != nil || !claims.IssuedAt.Equal(e.clock.Now().Truncate(time.Second)) {
		t.Fatalf("re-issued token: %+v %v", claims, err)
	}
	s, err := e.store.GetSession(t.Context(), claims.SessionID)
	if err != nil || !s.LastSeenAt.Equal(e.clock.Now()) || !s.ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("session after renewal: %+v %v (now %v)", s, err, e.clock.Now())
	}

	// Away longer than the token lives but less than the idle timeout:
	// still signed in, with a new token.
	e.clock.Advance(ttl + 5*time.Minute)
	res = b.Get("/a")
	if res.StatusCode != 200 || b.Cookie(e.cookie) == second {
		t.Fatalf("after the token lapsed: %d (cookie renewed: %v)", res.StatusCode, b.Cookie(e.cookie) != second)
	}
	// Away longer than the idle timeout: signed out.
	e.clock.Advance(time.Hour + time.Minute)
	res = b.Get("/a")
	if res.StatusCode != http.StatusFound || b.Cookie(e.cookie) != "" {
		t.Fatalf("after the idle timeout: %d, cookie %q", res.StatusCode, b.Cookie(e.cookie))
	}
}

func TestLinkSecondProvider(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.MustSignIn("github")
	uid := mustUserID(t, e, b)
	res := b.Get("/auth/link/gitlab")
	if res.StatusCode != http.StatusFound {
		t.Fatalf("link start: %d", res.StatusCode)
	}
	res = b.Get(b.Approve(res.Location(), ""))
	if res.StatusCode != http.StatusFound || !strings.HasSuffix(res.Location(), "/auth/account?linked=gitlab") {
		t.Fatalf("link callback: %d → %q\n%s", res.StatusCode, res.Location(), res.Body)
	}
	ids, err := e.store.ListIdentities(t.Context(), uid)
	if err != nil || len(ids) != 2 {
		t.Fatalf("identities after link: %+v %v", ids, err)
	}
	// Signing in with GitLab now reaches the same user.
	b2 := e.browser()
	b2.MustSignIn("gitlab")
	if got := mustUserID(t, e, b2); got != uid {
		t.Fatalf("gitlab sign-in after link: user %s, want %s", got, uid)
	}
	// A GitLab account already used by another user cannot be linked.
	c := e.browser()
	c.MustSignIn("google")
	res = c.Get("/auth/link/gitlab")
	res = c.Get(c.Approve(res.Location(), ""))
	if res.StatusCode != http.StatusConflict || errorCode(res.Body) != "identity_in_use" {
		t.Fatalf("linking a taken identity: %d %q", res.StatusCode, errorCode(res.Body))
	}
	// Linking needs a session.
	if res := e.browser().Get("/auth/link/gitlab"); res.StatusCode != http.StatusFound || !strings.Contains(res.Location(), "/auth/sign-in") {
		t.Fatalf("anonymous link: %d → %q", res.StatusCode, res.Location())
	}
}

func TestNoSilentLinkByEmailUnlessEnabled(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		e := newEnv(t, envOptions{linkByEmail: enabled, editFake: sameEmail})
		a := e.browser()
		a.MustSignIn("github")
		b := e.browser()
		b.MustSignIn("gitlab")
		same := mustUserID(t, e, a) == mustUserID(t, e, b)
		if same != enabled {
			t.Fatalf("link_by_verified_email=%v: same user = %v", enabled, same)
		}
	}
}

// sameEmail gives the fake GitLab's first user the verified address of the
// fake GitHub's octocat.
func sameEmail(name string, c *fakeprovider.Config) {
	if name == "gitlab" {
		c.Users[0].Emails = []fakeprovider.Email{{Address: "octocat@example.com", Primary: true, Verified: true}}
	}
}

var _ = session.ErrEnded

func TestSignInPageWhilePluginsLoad(t *testing.T) {
	e := newEnv(t, envOptions{loading: true})
	res := e.browser().Get("/auth/sign-in")
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
		!strings.Contains(res.Body, `id="providers-loading"`) || !strings.Contains(res.Body, `http-equiv="refresh"`) {
		t.Fatalf("sign-in while loading: %d\n%s", res.StatusCode, res.Body)
	}
	if res := e.browser().Get("/auth/start/github"); res.StatusCode != http.StatusNotFound || errorCode(res.Body) != "unknown_provider" {
		t.Fatalf("start while loading: %d %q", res.StatusCode, errorCode(res.Body))
	}
}

func TestSignInFromTheAccountPageReturnsThere(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	res := b.Get("/auth/account")
	if res.StatusCode != http.StatusFound || !strings.HasSuffix(res.Location(), "/auth/sign-in?return_to=%2Fauth%2Faccount") {
		t.Fatalf("account page without a session: %d %q", res.StatusCode, res.Location())
	}
	res = b.SignIn("github", "/auth/account", "")
	if res.StatusCode != http.StatusFound || !strings.HasSuffix(res.Location(), "/auth/account") {
		t.Fatalf("after sign-in: %d %q", res.StatusCode, res.Location())
	}
	for _, flow := range []string{"/auth/sign-in", "/auth/logout", "/auth/callback/github?code=x", "/auth/start/github", "/auth/link/gitlab"} {
		r := b.Get("/auth/sign-in?return_to=" + url.QueryEscape(flow))
		if r.StatusCode != http.StatusFound || !strings.HasSuffix(r.Location(), e.addr+"/") {
			t.Fatalf("return_to %s: %d %q", flow, r.StatusCode, r.Location())
		}
	}
}

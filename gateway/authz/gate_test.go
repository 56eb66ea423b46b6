package authz_test

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/vintner/arbor/gateway/authz"
	"github.com/vintner/arbor/gateway/authz/access"
)

func TestRouteClasses(t *testing.T) {
	e := newEnv(t, envOptions{
		defaultClass: access.Session,
		rules: []access.Rule{
			{Prefix: "/static/", Class: access.Public},
			{Prefix: "/api", Class: access.API},
			{Prefix: "/api/public", Class: access.Public},
		},
	})
	anon := e.browser()
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/static/app.css", 200, ""},
		{"GET", "/api/public/status", 200, ""},
		{"GET", "/api/me", 401, "unauthenticated"},
		{"POST", "/api/me", 401, "unauthenticated"},
		{"GET", "/api", 401, "unauthenticated"},
		{"GET", "/dashboard", 302, ""},
		{"HEAD", "/dashboard", 302, ""},
		{"POST", "/dashboard", 401, "unauthenticated"},
		// No bypass through the query, an encoded slash, doubled slashes
		// or case.
		{"GET", "/dashboard?/static/x", 302, ""},
		{"GET", "/static%2f..%2fdashboard", 400, "bad_path"},
		{"GET", "/static/..%2fapi/me", 400, "bad_path"},
		{"GET", "/static/%2e%2e/api/me", 400, "bad_path"},
		{"GET", "//api/me", 401, "unauthenticated"},
		{"GET", "/API/me", 302, ""}, // a stricter class under case folding; the path itself is a session route
		{"GET", "/static%2fx", 302, ""},
	}
	for _, tt := range tests {
		res := anon.Do(tt.method, tt.path, nil)
		if res.StatusCode != tt.status || (tt.code != "" && errorCode(res.Body) != tt.code) {
			t.Errorf("anonymous %s %s = %d %q, want %d %q", tt.method, tt.path, res.StatusCode, errorCode(res.Body), tt.status, tt.code)
		}
	}
	if h, _, _ := e.upstream.Last(); h.Get("X-Arbor-User-Id") != "" {
		t.Fatalf("anonymous public request reached the upstream with identity %v", h)
	}
	user := e.browser()
	user.MustSignIn("gitlab")
	for _, p := range []string{"/api/me", "/dashboard", "/static/app.css"} {
		res := user.Get(p)
		h, _, _ := e.upstream.Last()
		if res.StatusCode != 200 || h.Get("X-Arbor-User-Id") == "" {
			t.Errorf("signed-in GET %s = %d, identity %q", p, res.StatusCode, h.Get("X-Arbor-User-Id"))
		}
	}
}

func TestUpstreamNeverSeesArborCookies(t *testing.T) {
	e := newEnv(t, envOptions{defaultClass: access.Public})
	b := e.browser()
	b.MustSignIn("github")
	b.SetCookie("app_pref", "dark")
	b.SetCookie("arbor_flow", strings.Repeat("A", 43))
	if res := b.Get("/page"); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /page: %d", res.StatusCode)
	}
	h, _, _ := e.upstream.Last()
	if got := h.Get("Cookie"); got != "app_pref=dark" || h.Get("X-Arbor-User-Id") == "" {
		t.Fatalf("upstream Cookie %q (identity %q), want only the app's cookie", got, h.Get("X-Arbor-User-Id"))
	}
	// Only Arbor's cookies: no Cookie header at all.
	anon := e.browser()
	anon.SetCookie(e.cookie, "forged")
	anon.Get("/page")
	if h, _, _ := e.upstream.Last(); len(h.Values("Cookie")) != 0 {
		t.Fatalf("upstream got Cookie %q", h.Values("Cookie"))
	}
}

// spoofHeaders are identity and forwarding headers a client might forge,
// in several spellings and duplicated.
func spoofHeaders(extra ...string) http.Header {
	h := http.Header{
		"X-Arbor-User-Id":    {"usr_forged", "usr_forged_twice"},
		"X-Arbor-User-Email": {"evil@evil.example"},
		"X-Arbor-User-Login": {"evil"},
		"X-Arbor-Assertion":  {"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c3JfZm9yZ2VkIn0."},
		"x-arbor-user-id":    {"usr_lower"},
		"X-ARBOR-USER-LOGIN": {"EVIL"},
		"x_arbor_user_id":    {"usr_underscore"},
		"X_Arbor_User_Email": {"underscore@evil.example"},
		"X-Arbor-Anything":   {"x"},
		"X-Forwarded-For":    {"203.0.113.9", "198.51.100.1"},
		"x_forwarded_for":    {"203.0.113.10"},
		"X-Forwarded-Host":   {"evil.example"},
		"X-Forwarded-Proto":  {"https"},
		"X-Forwarded-Port":   {"443"},
		"Forwarded":          {"for=203.0.113.9;host=evil.example;proto=https"},
		"X-Real-Ip":          {"203.0.113.9"},
		"x_real_ip":          {"203.0.113.11"},
	}
	for _, name := range extra {
		h[name] = append(h[name], "usr_forged_"+name)
	}
	return h
}

// checkForwarding asserts the upstream saw only Arbor's forwarding headers.
func checkForwarding(t *testing.T, e *env, h http.Header) {
	t.Helper()
	if v := headerValues(h, "X-Forwarded-For"); !slices.Equal(v, []string{"127.0.0.1"}) {
		t.Errorf("upstream X-Forwarded-For %q, want [127.0.0.1]", v)
	}
	if v := headerValues(h, "X-Forwarded-Host"); !slices.Equal(v, []string{e.addr}) {
		t.Errorf("upstream X-Forwarded-Host %q, want [%s]", v, e.addr)
	}
	if v := headerValues(h, "X-Forwarded-Proto"); !slices.Equal(v, []string{"http"}) {
		t.Errorf("upstream X-Forwarded-Proto %q, want [http]", v)
	}
	for _, name := range []string{"Forwarded", "X-Real-Ip", "X-Forwarded-Port"} {
		if v := headerValues(h, name); len(v) != 0 {
			t.Errorf("upstream saw %s: %q", name, v)
		}
	}
}

// 6. Identity and forwarding headers sent by the client.
func TestHeaderSmuggling(t *testing.T) {
	t.Run("default names", func(t *testing.T) {
		e := newEnv(t, envOptions{defaultClass: access.Public})
		anon := e.browser()
		anon.Header = spoofHeaders()
		if res := anon.Get("/page"); res.StatusCode != http.StatusOK {
			t.Fatalf("anonymous public GET: %d %s", res.StatusCode, res.Body)
		}
		h, path, _ := e.upstream.Last()
		if path != "/page" {
			t.Fatalf("upstream saw %q", path)
		}
		if a := arborHeaders(h); len(a) != 0 {
			t.Errorf("anonymous request: upstream saw %v", a)
		}
		checkForwarding(t, e, h)

		user := e.browser()
		user.MustSignIn("github")
		uid, login, email := whoamiUser(t, user)
		user.Header = spoofHeaders()
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			if res := user.Do(method, "/page", url.Values{}); res.StatusCode != http.StatusOK {
				t.Fatalf("signed-in %s: %d %s", method, res.StatusCode, res.Body)
			}
			h, _, _ := e.upstream.Last()
			a := arborHeaders(h)
			want := map[string]string{
				"X-Arbor-User-Id": uid, "X-Arbor-User-Login": login, "X-Arbor-User-Email": email,
			}
			for name, v := range want {
				if got := a[name]; !slices.Equal(got, []string{v}) {
					t.Errorf("%s: upstream %s = %q, want exactly [%q]", method, name, got, v)
				}
			}
			if got := a["X-Arbor-Assertion"]; len(got) != 1 || verifyAssertion(t, user, got[0])["sub"] != uid {
				t.Errorf("%s: upstream assertion %q", method, got)
			}
			if len(a) != 4 {
				t.Errorf("%s: upstream identity headers %v, want exactly the four of Arbor", method, a)
			}
			checkForwarding(t, e, h)
		}
		assertServes(t, e)
	})

	t.Run("custom user id header", func(t *testing.T) {
		e := newEnv(t, envOptions{defaultClass: access.Public, headers: authz.Headers{UserID: "X-User"}})
		spoof := spoofHeaders("X-User", "x-user", "x_user", "X_USER")
		spoof["X-User"] = append(spoof["X-User"], "usr_forged_again")

		anon := e.browser()
		anon.Header = spoof
		if res := anon.Get("/page"); res.StatusCode != http.StatusOK {
			t.Fatalf("anonymous public GET: %d %s", res.StatusCode, res.Body)
		}
		h, _, _ := e.upstream.Last()
		if v := headerValues(h, "X-User"); len(v) != 0 {
			t.Errorf("anonymous request: upstream saw X-User %q", v)
		}
		if a := arborHeaders(h); len(a) != 0 {
			t.Errorf("anonymous request: upstream saw %v", a)
		}
		checkForwarding(t, e, h)

		user := e.browser()
		user.MustSignIn("gitlab")
		uid, _, _ := whoamiUser(t, user)
		user.Header = spoof
		if res := user.Get("/page"); res.StatusCode != http.StatusOK {
			t.Fatalf("signed-in GET: %d %s", res.StatusCode, res.Body)
		}
		h, _, _ = e.upstream.Last()
		if v := headerValues(h, "X-User"); !slices.Equal(v, []string{uid}) {
			t.Errorf("upstream X-User %q, want exactly [%q]", v, uid)
		}
		if v := h.Values("X-User"); !slices.Equal(v, []string{uid}) {
			t.Errorf("upstream X-User (canonical spelling) %q", v)
		}
		if v := headerValues(h, "X-Arbor-User-Id"); len(v) != 0 {
			t.Errorf("upstream saw X-Arbor-User-Id %q with UserID renamed", v)
		}
		for name, v := range arborHeaders(h) {
			if len(v) != 1 || strings.Contains(strings.Join(v, ","), "evil") || strings.Contains(strings.Join(v, ","), "forged") {
				t.Errorf("upstream %s = %q", name, v)
			}
		}
		checkForwarding(t, e, h)
		assertServes(t, e)
	})
}

// 7. Malformed paths are refused before the policy or the upstream.
func TestBadPathsThroughGuard(t *testing.T) {
	for _, class := range []access.Class{access.Session, access.Public} {
		e := newEnv(t, envOptions{defaultClass: class})
		user := e.browser()
		user.MustSignIn("github")
		for _, p := range []string{
			"/%2e%2e/x", "/%2E%2E/x", "/a/..%2fb", "/a/%2e%2e%2fb", "/a%00b", "/a\\b", "/a%5cb", "/%zz", "/a/%zz/b",
			"/a/../b", "/./a", "/a%2f%2e%2e%2fb",
		} {
			_, _, n0 := e.upstream.Last()
			status, body := rawGet(t, e, p)
			if status != http.StatusBadRequest || errorCode(body) != "bad_path" {
				t.Errorf("class %v: anonymous GET %q = %d %q, want 400 bad_path\n%s", class, p, status, errorCode(body), body)
			}
			// Signed in, too.
			u := "http://" + e.addr + "/"
			req, err := http.NewRequest(http.MethodGet, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque = p // sent as written
			req.AddCookie(&http.Cookie{Name: e.cookie, Value: user.Cookie(e.cookie)})
			res, err := user.Client().Do(req)
			if err != nil {
				t.Fatalf("signed-in GET %q: %v", p, err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusBadRequest || errorCode(string(raw)) != "bad_path" {
				t.Errorf("class %v: signed-in GET %q = %d %q, want 400 bad_path", class, p, res.StatusCode, errorCode(string(raw)))
			}
			if _, _, n := e.upstream.Last(); n != n0 {
				t.Errorf("class %v: GET %q reached the upstream", class, p)
			}
		}
		// A request target that is not a path at all ("%zz" as written,
		// "*") is refused by the request parser before the guard: 400
		// bad_request.
		for _, target := range []string{"%zz", "a%zz", "*"} {
			if status, body := rawGet(t, e, target); status != http.StatusBadRequest || errorCode(body) != "bad_request" {
				t.Errorf("class %v: GET %q = %d %q, want 400 bad_request\n%s", class, target, status, errorCode(body), body)
			}
		}
		assertServes(t, e)
	}
}

package authz_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/authz/access"
	"github.com/vintner/arbor/service/membership"
)

// policyEnv is an Arbor whose policy lets in members of github:vintner and
// keeps /admin/ for github:vintner/platform, with a fixed membership
// service the test sets (apptest.Members).
type policyEnv struct {
	*apptest.Harness
	members *apptest.Members
}

func newPolicyEnv(t *testing.T, def access.Class, edit func(c *config.Config)) *policyEnv {
	t.Helper()
	members := &apptest.Members{}
	h := apptest.New(t,
		apptest.Routes(def),
		apptest.PolicyMembers(members),
		apptest.Config(func(c *config.Config) {
			c.Limits.Enabled = false
			c.Workers.Paths = []string{"/api/tendril/"}
			c.Policy.Allow.Groups = []string{"github:vintner"}
			c.Policy.Routes = []config.PolicyRoute{{Prefix: "/admin/", Groups: []string{"github:vintner/platform"}}}
			if edit != nil {
				edit(c)
			}
		}),
	)
	return &policyEnv{Harness: h, members: members}
}

var (
	inTeam = membership.Member{Emails: []string{"octocat@example.test"}, Groups: []string{"github:hubbers", "github:vintner", "github:vintner/platform"}}
	inOrg  = membership.Member{Groups: []string{"github:vintner"}}
)

// signIn signs a browser in as the GitHub user login and gives that user
// standing m.
func (e *policyEnv) signIn(t *testing.T, login string, m membership.Member) (*apptest.Browser, string) {
	t.Helper()
	b := e.Browser()
	if res := b.SignIn("github", "", login); res.StatusCode != http.StatusFound || b.Cookie(e.Cookie) == "" {
		t.Fatalf("sign-in as %s: %d %s", login, res.StatusCode, res.Body)
	}
	uid := e.MustUserID(b)
	e.members.Set(uid, m)
	return b, uid
}

type denial struct {
	Error, Message, Rule, Fix string
}

func jsonDenial(t *testing.T, res *apptest.Response) denial {
	t.Helper()
	var d denial
	if err := json.Unmarshal([]byte(res.Body), &d); err != nil {
		t.Fatalf("not JSON: %d %s", res.StatusCode, res.Body)
	}
	return d
}

// A route rule: the team reaches /admin/, the organisation alone gets 403
// route_not_allowed with the rule in words (a page for a browser, JSON for
// an API client), and keeps the rest; an anonymous request is sent to sign
// in even where the route class is public.
func TestPolicyRouteRule(t *testing.T) {
	e := newPolicyEnv(t, access.Public, func(c *config.Config) {
		c.Policy.Routes = append(c.Policy.Routes, config.PolicyRoute{Prefix: "/api/tendril/admin/", Groups: []string{"github:vintner/platform"}})
	})
	team, teamID := e.signIn(t, "octocat", inTeam)
	if res := team.Get("/admin/panel"); res.StatusCode != http.StatusOK {
		t.Fatalf("team GET /admin/panel = %d %s", res.StatusCode, res.Body)
	}

	org, orgID := e.signIn(t, "hubot", inOrg)
	if orgID == teamID {
		t.Fatal("octocat and hubot are one user")
	}

	// A worker acts for its owner: the owner must pass the route.
	for _, tc := range []struct {
		owner  string
		status int
	}{{teamID, http.StatusOK}, {orgID, http.StatusForbidden}} {
		w, tok, err := e.App.Workers().Register(t.Context(), tc.owner, "runner")
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.CLIClient().SendJSON(http.MethodGet, "/api/tendril/admin/jobs", nil, http.Header{"X-Worker-Id": {w.ID}, "X-Worker-Token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != tc.status || (tc.status == 403 && errorCode(res.Body) != "route_not_allowed") {
			t.Errorf("worker of %s on a route rule = %d %s, want %d", tc.owner, res.StatusCode, res.Body, tc.status)
		}
	}
	res := org.Get("/admin/panel")
	if res.StatusCode != http.StatusForbidden || errorCode(res.Body) != membership.CodeRouteNotAllowed {
		t.Fatalf("org GET /admin/panel = %d %s", res.StatusCode, res.Body)
	}
	const rule = "The pages under /admin/ are limited to members of the GitHub group vintner/platform."
	if !strings.Contains(res.Body, rule) || !strings.Contains(res.Header.Get("Content-Type"), "text/html") {
		t.Errorf("the page does not say the rule %q:\n%s", rule, res.Body)
	}
	// The same spelled otherwise: the path is read as auth.*_paths are.
	for _, p := range []string{"/%61dmin/panel", "//admin/panel", "/admin;x=1/panel", "/ADMIN/panel"} {
		if res := org.Get(p); res.StatusCode != http.StatusForbidden {
			t.Errorf("org GET %s = %d", p, res.StatusCode)
		}
	}
	if res := org.Get("/admin/%2e%2e/x"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("dot segment = %d, want 400", res.StatusCode)
	}
	org.Header.Set("Accept", "application/json")
	res = org.Get("/admin/panel")
	if d := jsonDenial(t, res); res.StatusCode != 403 || d.Error != "route_not_allowed" || d.Rule != rule || d.Fix == "" || !strings.Contains(d.Message, rule) {
		t.Errorf("JSON denial = %d %+v", res.StatusCode, d)
	}
	if res := org.Get("/elsewhere"); res.StatusCode != http.StatusOK {
		t.Errorf("org GET /elsewhere = %d %s", res.StatusCode, res.Body)
	}

	anon := e.Browser()
	if res := anon.Get("/admin/panel"); res.StatusCode != http.StatusFound || !strings.Contains(res.Location(), "/auth/sign-in?return_to=%2Fadmin%2Fpanel") {
		t.Errorf("anonymous GET /admin/panel = %d %q, want the sign-in redirect", res.StatusCode, res.Location())
	}
	if res := anon.Get("/elsewhere"); res.StatusCode != http.StatusOK {
		t.Errorf("anonymous GET /elsewhere (public) = %d", res.StatusCode)
	}

	// Restricted: the organisation hides the membership; Fix says the
	// organisation must approve the app.
	hidden, _ := e.signIn(t, "octocat", membership.Member{Groups: []string{"github:vintner"}, Restricted: []string{"github:vintner"}})
	hidden.Header.Set("Accept", "application/json")
	if d := jsonDenial(t, hidden.Get("/admin/x")); d.Error != "route_not_allowed" || !strings.Contains(d.Fix, "must approve "+e.Config.UI.AppName) {
		t.Errorf("restricted denial = %+v", d)
	}
}

// policy.allow: a user in none of its rules is refused with not_allowed on
// the proxy and on Arbor's own APIs, by session, CLI token and worker
// (which acts for its owner); disabled and unavailable users get their
// codes.
func TestPolicyAllowRefuses(t *testing.T) {
	e := newPolicyEnv(t, access.Session, nil)
	user, uid := e.signIn(t, "octocat", inTeam)
	cli := apptest.CLILogin(t, user, e.CLIClient())
	w, wtok, err := e.App.Workers().Register(t.Context(), uid, "runner")
	if err != nil {
		t.Fatal(err)
	}
	workerGet := func() *apptest.Response {
		res, err := e.CLIClient().SendJSON(http.MethodGet, "/api/tendril/jobs", nil, http.Header{"X-Worker-Id": {w.ID}, "X-Worker-Token": {wtok}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	bearer := e.CLIClient()
	requests := map[string]func() *apptest.Response{
		"session":                 func() *apptest.Response { return user.Get("/dashboard") },
		"session on Arbor's API":  func() *apptest.Response { return user.Get("/api/providers/github/token") },
		"cli":                     func() *apptest.Response { return bearer.BearerGet("/dashboard", cli.AccessToken) },
		"cli on Arbor's API":      func() *apptest.Response { return bearer.BearerGet("/api/providers/github/token", cli.AccessToken) },
		"cli on /api/auth/me":     func() *apptest.Response { return bearer.BearerGet("/api/auth/me", cli.AccessToken) },
		"worker on a worker path": workerGet,
	}
	for name, do := range requests {
		if res := do(); res.StatusCode == http.StatusForbidden || res.StatusCode >= 500 {
			t.Errorf("admitted %s = %d %s", name, res.StatusCode, res.Body)
		}
	}
	for _, tc := range []struct {
		name string
		m    membership.Member
		code string
	}{
		{"not allowed", membership.Member{Groups: []string{"github:hubbers"}}, membership.CodeNotAllowed},
		{"disabled", membership.Member{Disabled: true, Groups: inTeam.Groups}, membership.CodeAccountDisabled},
		{"unavailable", membership.Member{Unavailable: true, Groups: inTeam.Groups}, membership.CodeMembershipsUnavailable},
	} {
		e.members.Set(uid, tc.m)
		for name, do := range requests {
			res := do()
			if res.StatusCode != http.StatusForbidden || errorCode(res.Body) != tc.code {
				t.Errorf("%s: %s = %d %s, want 403 %s", tc.name, name, res.StatusCode, res.Body, tc.code)
			}
		}
	}
	e.members.Set(uid, membership.Member{})
	user.Header.Set("Accept", "application/json")
	d := jsonDenial(t, user.Get("/dashboard"))
	if want := "Access to " + e.Config.UI.AppName + " is limited to members of the GitHub group vintner."; d.Rule != want || d.Fix == "" {
		t.Errorf("denial = %+v, want rule %q", d, want)
	}
	// Sign-out still works for a refused user.
	if res := user.Get("/auth/logout"); res.StatusCode != http.StatusOK {
		t.Errorf("GET /auth/logout for a refused user = %d", res.StatusCode)
	}
}

// The groups header and claim: the groups the policy mentions (all of
// them with identity.groups_header_all), never a client-sent value, and a
// cached assertion never outlives a change of groups.
func TestPolicyGroupsHeaderAndClaim(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string
		all    bool
		want   string
	}{
		{"mentioned", "", false, "github:vintner,github:vintner/platform"},
		{"all, own header name", "X-Groups", true, "github:hubbers,github:vintner,github:vintner/platform"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newPolicyEnv(t, access.Session, func(c *config.Config) {
				if tc.header != "" {
					c.Identity.GroupsHeader = tc.header
				}
				c.Identity.GroupsHeaderAll = tc.all
			})
			name := e.Config.Identity.GroupsHeader
			b, uid := e.signIn(t, "octocat", inTeam)
			// A client's own groups header, in any spelling, never
			// reaches the upstream.
			b.Header.Set(name, "github:admins")
			b.Header.Set(strings.ReplaceAll(name, "-", "_"), "github:admins")
			if res := b.Get("/app"); res.StatusCode != http.StatusOK {
				t.Fatalf("GET /app = %d %s", res.StatusCode, res.Body)
			}
			h, _, _ := e.Upstream.Last()
			if got := headerValues(h, name); !reflect.DeepEqual(got, []string{tc.want}) {
				t.Errorf("upstream %s = %q, want [%q]", name, got, tc.want)
			}
			claims := verifyAssertion(t, b, h.Get(e.Config.Identity.AssertionHeader))
			if got := claimList(claims["groups"]); strings.Join(got, ",") != tc.want {
				t.Errorf("groups claim = %q, want %q", got, tc.want)
			}

			// Fewer groups: the next request's header and assertion say so.
			e.members.Set(uid, inOrg)
			b.Get("/app")
			h, _, _ = e.Upstream.Last()
			if got := headerValues(h, name); !reflect.DeepEqual(got, []string{"github:vintner"}) {
				t.Errorf("after the change, upstream %s = %q", name, got)
			}
			claims = verifyAssertion(t, b, h.Get(e.Config.Identity.AssertionHeader))
			if got := claimList(claims["groups"]); !reflect.DeepEqual(got, []string{"github:vintner"}) {
				t.Errorf("after the change, groups claim = %q: a cached assertion outlived the change", got)
			}
		})
	}

	// Without a policy nothing is consulted and no groups are sent, even
	// one a client made up.
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.MustSignIn("github")
	b.Header.Set("X-Arbor-User-Groups", "github:admins")
	b.Get("/app")
	h, _, _ := e.upstream.Last()
	if got := headerValues(h, "X-Arbor-User-Groups"); len(got) != 0 {
		t.Errorf("without a policy the upstream got groups %q", got)
	}
	if claims := verifyAssertion(t, b, h.Get("X-Arbor-Assertion")); claims["groups"] != nil {
		t.Errorf("without a policy the claim groups = %v", claims["groups"])
	}
}

func claimList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, s.(string))
	}
	return out
}

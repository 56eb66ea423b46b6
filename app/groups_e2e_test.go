package app_test

// End-to-end proof of issue 19's groups policy for every built-in
// provider: a whole Arbor (apptest: bbolt, the embedded plugins, the
// membership service, the gateway on loopback) against the fake
// providers. The GitHub cases that gateway/signin's tests already prove
// with the real service (read:org asked for, hubot refused, a removal
// signing a browser out) are not repeated here.

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/service/membership"
)

// groupsScope is the scope each provider's sign-in adds when the policy
// names its groups ("" for a provider whose login scopes already reach
// them: Bitbucket's account scope lists the workspaces, Google's hd comes
// with userinfo).
var groupsScope = map[string]string{"github": "read:org", "gitlab": "read_api", "bitbucket": "", "google": ""}

func scopeOf(t *testing.T, authURL string) string {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("scope")
}

func policyApp(t *testing.T, p config.Policy, opts ...apptest.Option) *apptest.Harness {
	t.Helper()
	return apptest.New(t, append([]apptest.Option{apptest.Config(func(c *config.Config) {
		c.Limits.Enabled = false
		c.Workers.Paths = []string{"/api/tendril/"}
		c.Policy = p
	})}, opts...)...)
}

// Each provider's groups, full stack: with policy.allow.groups naming one
// group of that provider, its sign-in (and only its) asks for the groups
// scope; a member is admitted and the upstream receives the groups header
// and the assertion's groups claim with only the group the policy names;
// a non-member is refused at sign-in with the explaining page (403
// not_allowed, the rule in words naming the provider and the group), no
// session cookie, and no user written.
func TestGroupsPolicyEachProvider(t *testing.T) {
	for _, tc := range []struct {
		provider, display string
		group             string // without the provider prefix
		member, outsider  string // fake logins; outsider "" where another test proves it
		memberGroups      int    // groups the provider reports for member (more than the policy names)
	}{
		// octocat is also in vintner; hubot's refusal is TestSignInByGroups'.
		{"github", "GitHub", "vintner/platform", "octocat", "", 2},
		// A subgroup's full path; jsmith is also in vintner.
		{"gitlab", "GitLab", "vintner/platform", "jsmith", "mwagner", 2},
		// atlas: workspaces orbit, vacant and their personal one; buddy
		// only their personal one.
		{"bitbucket", "Bitbucket", "orbit", "atlas", "buddy", 3},
		// jane: a Workspace account of example.com; sam: a consumer account.
		{"google", "Google", "example.com", "jane", "sam", 1},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			want := tc.provider + ":" + tc.group
			h := policyApp(t, config.Policy{Allow: config.PolicyAllow{Groups: []string{want}}})
			ctx := context.Background()

			// Only this provider's sign-in asks for its groups scope.
			b := h.Browser()
			auth := b.Start(tc.provider, "")
			for other, scope := range groupsScope {
				if scope == "" {
					continue
				}
				got := scopeOf(t, h.Browser().Start(other, ""))
				if asks := slices.Contains(strings.Fields(got), scope); asks != (other == tc.provider) {
					t.Errorf("policy on %s: the %s sign-in asks for %q (asks for %s: %v)", want, other, got, scope, asks)
				}
			}
			if s := groupsScope[tc.provider]; s != "" && !slices.Contains(strings.Fields(scopeOf(t, auth)), s) {
				t.Fatalf("%s sign-in scope %q lacks %s", tc.provider, scopeOf(t, auth), s)
			}

			res := b.Get(b.Approve(auth, tc.member))
			if res.StatusCode != http.StatusFound || !h.SetsSession(res) {
				t.Fatalf("%s: %d %q\n%s", tc.member, res.StatusCode, apptest.ErrorCode(res.Body), res.Body)
			}
			uid := h.MustUserID(b)
			u, err := h.Bolt().GetUser(ctx, uid)
			if err != nil {
				t.Fatal(err)
			}
			if len(u.Memberships.Groups) != tc.memberGroups || !slices.Contains(u.Memberships.Groups, want) {
				t.Fatalf("%s's memberships %q: want %d groups with %s", tc.member, u.Memberships.Groups, tc.memberGroups, want)
			}
			if res := b.Get("/app/page"); res.StatusCode != http.StatusOK {
				t.Fatalf("proxied GET as %s: %d %s", tc.member, res.StatusCode, res.Body)
			}
			hdr, _, _ := h.Upstream.Last()
			if got := hdr.Values("X-Arbor-User-Groups"); !reflect.DeepEqual(got, []string{want}) {
				t.Errorf("upstream X-Arbor-User-Groups = %q, want only the group the policy names, %q", got, want)
			}
			claims := apptest.VerifyAssertion(t, b, hdr.Get(h.Config.Identity.AssertionHeader))
			if got, _ := claims["groups"].([]any); len(got) != 1 || got[0] != want {
				t.Errorf("assertion groups claim = %v, want [%s]", claims["groups"], want)
			}

			if tc.outsider == "" {
				return
			}
			before, err := h.Bolt().ListUsers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out := h.Browser()
			res = out.SignIn(tc.provider, "", tc.outsider)
			rule := "Access to " + h.Config.UI.AppName + " is limited to members of the " + tc.display + " group " + tc.group + "."
			if res.StatusCode != http.StatusForbidden || apptest.ErrorCode(res.Body) != membership.CodeNotAllowed {
				t.Fatalf("%s: %d %q\n%s", tc.outsider, res.StatusCode, apptest.ErrorCode(res.Body), res.Body)
			}
			if !strings.Contains(res.Body, rule) || !strings.Contains(res.Header.Get("Content-Type"), "text/html") {
				t.Errorf("%s's page does not say %q:\n%s", tc.outsider, rule, res.Body)
			}
			if h.SetsSession(res) || out.Cookie(h.Cookie) != "" {
				t.Errorf("a refused sign-in set the session cookie: %q", res.Header.Values("Set-Cookie"))
			}
			after, err := h.Bolt().ListUsers(ctx)
			if err != nil || len(after) != len(before) {
				t.Errorf("users after %s's refused sign-in: %d, before %d (%v)", tc.outsider, len(after), len(before), err)
			}
		})
	}
}

// Without a policy on a provider's groups, no sign-in asks for a groups
// scope: a policy of addresses only reads no groups.
func TestNoGroupsScopeWithoutGroupsPolicy(t *testing.T) {
	h := policyApp(t, config.Policy{Allow: config.PolicyAllow{EmailDomains: []string{"example.com"}},
		Routes: []config.PolicyRoute{{Prefix: "/admin/", Emails: []string{"ops@example.com"}}}})
	for p, scope := range groupsScope {
		if scope == "" {
			continue
		}
		if got := scopeOf(t, h.Browser().Start(p, "")); slices.Contains(strings.Fields(got), scope) {
			t.Errorf("a policy without groups: the %s sign-in asks for %q", p, got)
		}
	}
}

// A GitHub organisation that restricts OAuth apps hides octocat's team:
// the sign-in is refused with the page saying that the organisation must
// approve the app, and no session starts.
func TestGroupsRestrictedOrganisationSignIn(t *testing.T) {
	h := policyApp(t, config.Policy{Allow: config.PolicyAllow{Groups: []string{"github:vintner/platform"}}},
		apptest.EditFake(func(name string, c *fakeprovider.Config) {
			if name == "github" {
				c.RestrictedOrgs = []string{"vintner"}
			}
		}))
	b := h.Browser()
	res := b.SignIn("github", "", "octocat")
	if res.StatusCode != http.StatusForbidden || apptest.ErrorCode(res.Body) != membership.CodeNotAllowed || h.SetsSession(res) {
		t.Fatalf("octocat behind a restricted organisation: %d %q, sets session %v\n%s", res.StatusCode, apptest.ErrorCode(res.Body), h.SetsSession(res), res.Body)
	}
	if !strings.Contains(res.Body, "must approve "+h.Config.UI.AppName) {
		t.Errorf("the page does not say the organisation must approve the app:\n%s", res.Body)
	}
	b.Header.Set("Accept", "application/json")
	res = b.SignIn("github", "", "octocat")
	if res.StatusCode != http.StatusForbidden || !strings.Contains(res.Body, `"fix":"`) || !strings.Contains(res.Body, "must approve "+h.Config.UI.AppName) {
		t.Errorf("as JSON: %d %s", res.StatusCode, res.Body)
	}
}

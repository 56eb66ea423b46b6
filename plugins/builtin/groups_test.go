package builtin_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// The tests below drive the embedded modules' groups operation against the
// fakes over HTTP on 127.0.0.1, beyond the kit's cases: paging, GitHub's
// restricted organisations, a token without the groups scope, and rate
// limits in the middle of the work.

// many returns n names "<prefix>-000" … in order.
func many(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

// TestGitHubGroupsPaging: 150 organisations and 120 teams take two pages
// each of /user/orgs and /user/teams (100 a page), and nothing else.
func TestGitHubGroupsPaging(t *testing.T) {
	cfg := fakeprovider.GitHubOAuthApp()
	var groups []string
	for _, o := range many("org", 150) {
		groups = append(groups, o)
	}
	for _, tm := range many("team", 120) {
		groups = append(groups, "org-000/"+tm)
	}
	cfg.Memberships["octocat"] = groups
	e := githubEnv(t, cfg)
	ctx := t.Context()
	tok, err := e.LoginWithGroups(ctx, "octocat")
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.Plugin.Groups(ctx, plugins.GroupsInput{AccessToken: tok.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	want := e.Fake.VisibleGroups("octocat")
	if len(want) != 270 || !slices.Equal(g.Groups, want) || len(g.Restricted) != 0 {
		t.Fatalf("%d groups (%.3q…), want %d; restricted %q", len(g.Groups), g.Groups, len(want), g.Restricted)
	}
	if o, tm := len(e.Fake.CallsTo(fakeprovider.EndpointOrgs)), len(e.Fake.CallsTo(fakeprovider.EndpointTeams)); o != 2 || tm != 2 {
		t.Errorf("%d calls to /user/orgs and %d to /user/teams, want 2 and 2", o, tm)
	}
	if n := len(e.Fake.CallsTo(fakeprovider.EndpointOrgMembership)); n != 0 {
		t.Errorf("%d membership lookups when nothing was wanted", n)
	}
}

// TestGitHubGroupsRestricted: an organisation with OAuth app access
// restrictions is missing from the lists; asked about because the policy
// wants it, GitHub's 403 makes it (and the wanted teams in it) Restricted.
// A wanted organisation the user is not in is asked about and is neither.
// Names compare case-insensitively.
func TestGitHubGroupsRestricted(t *testing.T) {
	for name, fake := range map[string]func() fakeprovider.Config{"app": fakeprovider.GitHubApp, "oauth-app": fakeprovider.GitHubOAuthApp} {
		t.Run(name, func(t *testing.T) {
			cfg := fake()
			cfg.RestrictedOrgs = []string{"acme"}
			cfg.Memberships["octocat"] = []string{"vintner", "vintner/platform", "acme", "acme/ops"}
			e := githubEnv(t, cfg)
			ctx := t.Context()
			tok, err := e.LoginWithGroups(ctx, "octocat")
			if err != nil {
				t.Fatal(err)
			}
			g, err := e.Plugin.Groups(ctx, plugins.GroupsInput{AccessToken: tok.AccessToken,
				Wanted: []string{"Vintner/Platform", "acme", "ACME/ops", "acme/dev", "elsewhere", "vintner"}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(g.Groups, []string{"vintner", "vintner/platform"}) ||
				!slices.Equal(g.Restricted, []string{"acme", "acme/dev", "acme/ops"}) {
				t.Fatalf("groups %q, restricted %q", g.Groups, g.Restricted)
			}
			var asked []string
			for _, c := range e.Fake.CallsTo(fakeprovider.EndpointOrgMembership) {
				asked = append(asked, c.Path)
			}
			if !slices.Equal(asked, []string{"/user/memberships/orgs/acme", "/user/memberships/orgs/elsewhere"}) {
				t.Errorf("membership lookups %q, want acme and elsewhere once each", asked)
			}

			// hubot is in none of them: acme still refuses the app, so it
			// is restricted for hubot too (GitHub says no more).
			tok, err = e.LoginWithGroups(ctx, "hubot")
			if err != nil {
				t.Fatal(err)
			}
			g, err = e.Plugin.Groups(ctx, plugins.GroupsInput{AccessToken: tok.AccessToken, Wanted: []string{"vintner", "acme"}})
			if err != nil || len(g.Groups) != 0 || !slices.Equal(g.Restricted, []string{"acme"}) {
				t.Fatalf("hubot: %+v, %v", g, err)
			}
		})
	}
}

// TestGitHubGroupsMissingScope: an OAuth app's token granted without
// read:org (a sign-in that did not ask for the groups scopes) is refused
// /user/orgs; the error says which scope and what to do, and is not
// mistaken for a rate limit. WithGroups asks for read:org, or for the
// operator's groups_scopes instead.
func TestGitHubGroupsMissingScope(t *testing.T) {
	e := githubEnv(t, fakeprovider.GitHubOAuthApp())
	ctx := t.Context()
	tok, err := e.Login(ctx, "octocat", abi.PurposeLogin)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Plugin.Groups(ctx, plugins.GroupsInput{AccessToken: tok.AccessToken})
	var pe *plugins.Error
	if !errors.As(err, &pe) || pe.Code != abi.CodeProviderError || pe.Status != 403 || pe.Retryable ||
		!strings.Contains(pe.Message, "read:org") || !strings.Contains(pe.Message, "sign in again") {
		t.Fatalf("Groups without read:org: %v", err)
	}
	if strings.Contains(err.Error(), tok.AccessToken) {
		t.Fatal("the error carries the access token")
	}

	scope := func(p *plugins.Plugin, withGroups bool) string {
		v, err := p.AuthorizeParams(ctx, plugins.AuthorizeInput{Purpose: abi.PurposeLogin, WithGroups: withGroups})
		if err != nil {
			t.Fatal(err)
		}
		return v.Get("scope")
	}
	if got := scope(e.Plugin, false); got != "read:user user:email" {
		t.Errorf("without groups: scope %q", got)
	}
	if got := scope(e.Plugin, true); got != "read:user user:email read:org" {
		t.Errorf("with groups: scope %q", got)
	}
	cfg := e.Config
	cfg.GroupsScopes = []string{"user", "read:user"}
	p, err := e.Load(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := scope(p, true); got != "read:user user:email user" {
		t.Errorf("with groups_scopes [user read:user]: scope %q", got)
	}

	tok, err = e.LoginWithGroups(ctx, "octocat")
	if err != nil {
		t.Fatal(err)
	}
	if g, err := e.Plugin.Groups(ctx, plugins.GroupsInput{AccessToken: tok.AccessToken}); err != nil ||
		!slices.Equal(g.Groups, []string{"vintner", "vintner/platform"}) {
		t.Fatalf("with read:org: %+v, %v", g, err)
	}
}

// TestGitHubGroupsRateLimited: a rate limit on any of the three endpoints,
// a secondary limit's 403 on the membership lookup included, is
// rate_limited with the wait GitHub asked for, never a restriction or a
// missing scope; the next call succeeds.
func TestGitHubGroupsRateLimited(t *testing.T) {
	cfg := fakeprovider.GitHubOAuthApp()
	cfg.RestrictedOrgs = []string{"acme"}
	e := githubEnv(t, cfg)
	ctx := t.Context()
	tok, err := e.LoginWithGroups(ctx, "octocat")
	if err != nil {
		t.Fatal(err)
	}
	in := plugins.GroupsInput{AccessToken: tok.AccessToken, Wanted: []string{"acme"}}
	for _, tc := range []struct {
		ep    fakeprovider.Endpoint
		kind  fakeprovider.RateLimitKind
		after time.Duration
	}{
		{fakeprovider.EndpointOrgs, fakeprovider.RateLimitPrimary, 0},
		{fakeprovider.EndpointTeams, fakeprovider.RateLimitPrimary429, 0},
		{fakeprovider.EndpointOrgMembership, fakeprovider.RateLimitSecondary, time.Minute},
		{fakeprovider.EndpointOrgMembership, fakeprovider.RateLimitPrimary, 0},
	} {
		e.Fake.RateLimitNext(tc.ep, 1, tc.kind)
		g, err := e.Plugin.Groups(ctx, in)
		var pe *plugins.Error
		if !errors.As(err, &pe) || pe.Code != abi.CodeRateLimited || !pe.Retryable || pe.RetryAfter <= 0 ||
			(tc.after > 0 && pe.RetryAfter != tc.after) {
			t.Errorf("%s kind %d: %+v, %v; want rate_limited", tc.ep, tc.kind, g, err)
		}
	}
	g, err := e.Plugin.Groups(ctx, in)
	if err != nil || !slices.Equal(g.Groups, []string{"vintner", "vintner/platform"}) || !slices.Equal(g.Restricted, []string{"acme"}) {
		t.Fatalf("after the limits: %+v, %v", g, err)
	}
}

// TestGitLabGroupsPaging: 150 groups take two pages of /groups, asked
// with min_access_level so that an administrator's token does not list
// the instance's every group; a token with read_user only is refused with
// a message naming read_api.
func TestGitLabGroupsPaging(t *testing.T) {
	cfg := fakeprovider.GitLab()
	cfg.Memberships["jsmith"] = many("grp/sub", 150)
	e := plugintest.StartForTest(t, plugintest.Suite{Plugin: plugin(t, "gitlab"), Fake: cfg, ExpectClientAuth: fakeprovider.ClientAuthBody})
	ctx := t.Context()
	tok, err := e.LoginWithGroups(ctx, "jsmith")
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.Plugin.Groups(ctx, plugins.GroupsInput{AccessToken: tok.AccessToken})
	if err != nil || !slices.Equal(g.Groups, many("grp/sub", 150)) {
		t.Fatalf("%+v, %v", g, err)
	}
	calls := e.Fake.CallsTo(fakeprovider.EndpointGroups)
	if len(calls) != 2 || !strings.Contains(calls[0].Query, "min_access_level=10") || !strings.Contains(calls[1].Query, "page=2") {
		t.Errorf("calls %+v", calls)
	}
	tok, err = e.Login(ctx, "jsmith", abi.PurposeLogin)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Plugin.Groups(ctx, plugins.GroupsInput{AccessToken: tok.AccessToken})
	var pe *plugins.Error
	if !errors.As(err, &pe) || pe.Status != 403 || !strings.Contains(pe.Message, "read_api") {
		t.Fatalf("without read_api: %v", err)
	}
}

// TestBitbucketGroupsPaging: 120 shared workspaces and the personal one
// take two pages of /2.0/user/workspaces (100 a page); the removed
// /2.0/workspaces is never called.
func TestBitbucketGroupsPaging(t *testing.T) {
	e := bitbucketEnv(t, func(c *fakeprovider.Config) {
		c.Memberships = map[string][]string{"atlas": many("ws", 120)}
	})
	ctx := t.Context()
	tok, err := e.LoginWithGroups(ctx, "atlas")
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.Plugin.Groups(ctx, plugins.GroupsInput{AccessToken: tok.AccessToken})
	if err != nil || !slices.Equal(g.Groups, append([]string{"atlas"}, many("ws", 120)...)) {
		t.Fatalf("%d groups %.3q…, %v", len(g.Groups), g.Groups, err)
	}
	if n := len(e.Fake.CallsTo(fakeprovider.EndpointWorkspaces)); n != 2 {
		t.Errorf("%d calls to /2.0/user/workspaces, want 2", n)
	}
	if gone := e.Fake.CallsTo(fakeprovider.EndpointGone); len(gone) != 0 {
		t.Errorf("called removed endpoints: %+v", gone)
	}
}

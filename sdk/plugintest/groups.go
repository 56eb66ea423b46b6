package plugintest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

// The groups operation's cases (added with the operation, within ABI v1).
var groupCases = []testCase{
	{"groups_scopes", "an authorization URL for a sign-in whose policy uses groups asks for the login scopes and the manifest's scopes.groups; one without asks for no more than the login scopes",
		needs(abi.OpGroups), caseGroupsScopes},
	{"groups", "each fake user's groups, in the provider's own names, as the fake shows them (fakeprovider.VisibleGroups), with the login and groups scopes",
		needs(abi.OpGroups), caseGroups},
	{"groups_changed", "a change of memberships at the provider is seen on the next call with the same token: nothing is cached",
		needs(abi.OpGroups), caseGroupsChanged},
	{"groups_expired_token", "an expired access token is invalid_token, not retryable",
		needs(abi.OpGroups), caseGroupsExpired},
	{"groups_rate_limited", "the provider's rate limit on the groups endpoints is rate_limited, retryable",
		needs(abi.OpGroups), caseGroupsRateLimited},
}

func init() { allCases = append(allCases, groupCases...) }

// LoginWithGroups is Login for a sign-in whose policy uses the provider's
// groups: the authorization URL asks for the groups scopes too
// (plugins.AuthorizeInput.WithGroups).
func (e *Env) LoginWithGroups(ctx context.Context, login string) (*abi.Token, error) {
	code, verifier, err := e.authorizeWith(ctx, e.Plugin, login, e.loginPurpose(), true)
	if err != nil {
		return nil, err
	}
	return e.Plugin.Exchange(ctx, plugins.ExchangeInput{Code: code, RedirectURI: e.RedirectURI, CodeVerifier: verifier})
}

func caseGroupsScopes(ctx context.Context, e *Env, c *checks) error {
	scopes := func(withGroups bool) ([]string, bool, error) {
		v, err := e.Plugin.AuthorizeParams(ctx, plugins.AuthorizeInput{Purpose: e.loginPurpose(), RedirectURI: e.RedirectURI,
			State: "s", WithGroups: withGroups})
		if err != nil {
			return nil, false, err
		}
		return strings.Fields(v.Get("scope")), v.Has("scope"), nil
	}
	plain, has, err := scopes(false)
	if err != nil {
		return err
	}
	with, _, err := scopes(true)
	if err != nil {
		return err
	}
	if !has {
		// The provider takes no scope in the URL (Bitbucket: the
		// consumer's configuration decides).
		if len(with) != 0 {
			c.errorf("the URL without groups has no scope, but with groups it asks for %q", with)
		}
		return nil
	}
	for _, s := range append(slices.Clone(e.Manifest.Scopes.Login), e.Manifest.Scopes.Groups...) {
		if !slices.Contains(with, s) {
			c.errorf("with groups the URL asks for %q, without %q (login and groups scopes)", with, s)
		}
	}
	for _, s := range e.Manifest.Scopes.Groups {
		if slices.Contains(plain, s) && !slices.Contains(e.Manifest.Scopes.Login, s) {
			c.errorf("without groups the URL asks for the groups scope %q", s)
		}
	}
	return nil
}

// checkGroups compares the plugin's groups for a token of login with the
// fake's, case-insensitively.
func checkGroups(ctx context.Context, e *Env, c *checks, login, token, when string) bool {
	g, err := e.Plugin.Groups(ctx, plugins.GroupsInput{AccessToken: token})
	if err != nil {
		c.errorf("%s%s: %v", login, when, err)
		return false
	}
	got := make([]string, len(g.Groups))
	for i, n := range g.Groups {
		got[i] = strings.ToLower(n)
	}
	want := e.Fake.VisibleGroups(login)
	if !sameSet(got, want) {
		c.errorf("%s%s: groups %q, want %q", login, when, g.Groups, want)
	}
	if len(g.Restricted) != 0 {
		c.errorf("%s%s: restricted %q, asked about nothing", login, when, g.Restricted)
	}
	for _, n := range g.Groups {
		if strings.HasPrefix(n, e.Manifest.Name+":") {
			c.errorf("%s%s: group %q carries the provider's name: groups are the provider's own names", login, when, n)
		}
	}
	return len(want) > 0
}

func caseGroups(ctx context.Context, e *Env, c *checks) error {
	some := false
	for _, fu := range fakeUsers(e) {
		tok, err := e.LoginWithGroups(ctx, fu.Login)
		if err != nil {
			return fmt.Errorf("login as %s: %w", fu.Login, err)
		}
		if checkGroups(ctx, e, c, fu.Login, tok.AccessToken, "") {
			some = true
		}
	}
	if !some {
		c.errorf("no fake user belongs to a group (fakeprovider.Config.Memberships): the groups were not exercised")
	}
	return nil
}

func caseGroupsChanged(ctx context.Context, e *Env, c *checks) error {
	fu := fakeUsers(e)[0]
	tok, err := e.LoginWithGroups(ctx, fu.Login)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if !checkGroups(ctx, e, c, fu.Login, tok.AccessToken, "") {
		c.errorf("%s belongs to no group at first: the change was not exercised", fu.Login)
	}
	if err := e.Fake.SetMemberships(fu.Login, []string{}); err != nil {
		return err
	}
	checkGroups(ctx, e, c, fu.Login, tok.AccessToken, " after leaving every group")
	return nil
}

func caseGroupsExpired(ctx context.Context, e *Env, c *checks) error {
	return expiredAccess(ctx, e, c, e.loginPurpose(), func(token string) error {
		_, err := e.Plugin.Groups(ctx, plugins.GroupsInput{AccessToken: token})
		return err
	})
}

// groupEndpoints are every fake endpoint a groups operation may call.
var groupEndpoints = []fakeprovider.Endpoint{
	fakeprovider.EndpointOrgs, fakeprovider.EndpointTeams, fakeprovider.EndpointOrgMembership,
	fakeprovider.EndpointGroups, fakeprovider.EndpointWorkspaces, fakeprovider.EndpointUser,
}

func caseGroupsRateLimited(ctx context.Context, e *Env, c *checks) error {
	tok, err := e.LoginWithGroups(ctx, "")
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	for _, ep := range groupEndpoints {
		e.Fake.RateLimitNext(ep, 1, fakeprovider.RateLimitPrimary)
	}
	_, err = e.Plugin.Groups(ctx, plugins.GroupsInput{AccessToken: tok.AccessToken})
	c.wantCode(err, abi.CodeRateLimited, true, "rate-limited groups")
	return nil
}

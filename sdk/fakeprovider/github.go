package fakeprovider

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// GitHub's two kinds of OAuth client issue different tokens, and the fake
// keeps them apart as GitHub does: an OAuth app's gho_ tokens never expire
// and carry OAuth scopes; a GitHub App's ghu_ user access tokens expire
// after 8 hours, come with a rotating ghr_ refresh token, carry no scopes
// (the app's fine-grained permissions apply instead) and reach only the
// repositories where the app is installed.
//
//   - https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/differences-between-github-apps-and-oauth-apps
//   - https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app
//   - https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens
//   - https://github.blog/engineering/platform-security/behind-githubs-new-authentication-token-formats/

// GitHub returns the fake GitHub that plugins/github targets by default:
// GitHubApp. Arbor promises Git connections whose tokens it refreshes by
// itself; only a GitHub App's user access tokens expire and come with a
// refresh token (an OAuth app's gho_ tokens live until revoked), so the
// App is the model whose refresh, rotation and invalidation Arbor must get
// right. GitHubOAuthApp is the other model; the plugin supports both.
func GitHub() Config { return GitHubApp() }

// GitHubApp returns the configuration of a fake GitHub (github.com and
// api.github.com on one host) whose client is a GitHub App with expiring
// user access tokens: ghu_ access tokens for 8 hours, ghr_ refresh tokens
// for 15811200 s (6 months; GitHub: refresh_token_expires_in "always 15811200"), rotated on every refresh, and a refresh kills
// the old access token (InvalidateAccessOnRefresh). The token response's
// scope is empty and the API does not gate on OAuth scopes. The user's
// token sees only the repositories of the app's installation on the
// user's account (AppInstallations, User.Installation), on /user/repos as
// well as on /user/installations/{installation_id}/repositories.
// SetAccessTokenLifetime(0) models an app that opted out of expiring
// tokens: ghu_ tokens that never expire and no refresh token.
//
// Users: octocat (250 repositories, the app installed for all of them),
// monalisa (60 repositories, the app installed for the first 45, i.e.
// "selected") and hubot (2 repositories, the app not installed).
//
// The quirks shared with GitHubOAuthApp: client credentials only in the
// body; grant_type optional; the token response is form-encoded unless
// Accept names application/json; errors come with HTTP 200 and GitHub's
// codes (bad_verification_code, bad_refresh_token,
// incorrect_client_credentials, redirect_uri_mismatch); redirect_uri is
// optional at the token endpoint and a mismatch on the authorization
// request is redirected to the registered callback; revocation is DELETE
// /applications/{client_id}/grant, answering 404 for an unknown or dead
// token and for wrong client credentials; API calls take "Bearer" or
// "token", paginate with Link headers and carry x-ratelimit-* headers.
func GitHubApp() Config {
	c := githubCommon()
	c.Name = "GitHub"
	c.Paths.Installations = "/user/installations"
	c.Paths.InstallationRepos = "/user/installations/{installation_id}/repositories"
	c.AppInstallations = true
	c.Users[0].Installation = Installation{ID: 41000001}
	c.Users[1].Installation = Installation{ID: 41000002, Selected: 45}
	// GitHub Apps ignore the scope parameter; the token response says
	// "scope": "" (generating-a-user-access-token-for-a-github-app).
	c.Scopes = []string{}
	c.AccessTokenLifetime = 8 * time.Hour
	c.RefreshTokenLifetime = 15811200 * time.Second
	c.IssueRefreshTokens = true
	c.RefreshOnlyWhenExpiring = true
	c.RotateRefreshTokens = true
	c.InvalidateAccessOnRefresh = true
	c.AccessTokenPrefix = "ghu_"
	c.RefreshTokenPrefix = "ghr_"
	c.Token.RefreshTokenExpiresIn = true
	return c
}

// GitHubOAuthApp returns the configuration of a fake GitHub whose client
// is an OAuth app: gho_ access tokens that never expire, no refresh token,
// the granted OAuth scopes comma-separated in the token response and in
// X-OAuth-Scopes, /user/emails only with user:email or user (404
// otherwise, as GitHub hides what a token may not see), /user/orgs only
// with user or read:org and /user/teams only with user, repo or read:org
// (403 otherwise, as documented), and /user/repos
// listing all of the user's repositories. Same users and shared quirks as
// GitHubApp.
func GitHubOAuthApp() Config {
	c := githubCommon()
	c.Name = "GitHub"
	// /user/orgs "requires at least user or read:org scope … Requests
	// with insufficient scope will receive a 403 Forbidden response";
	// /user/teams needs "the user, repo, or read:org scope"
	// (https://docs.github.com/en/rest/orgs/orgs#list-organizations-for-the-authenticated-user,
	// https://docs.github.com/en/rest/teams/teams#list-teams-for-the-authenticated-user).
	c.RequiredScopes = map[Endpoint][]string{
		EndpointEmails: {"user:email", "user"},
		EndpointOrgs:   {"user", "read:org"},
		EndpointTeams:  {"user", "repo", "read:org"},
	}
	c.ScopesHeader = true
	c.NonExpiringAccessTokenPrefix = "gho_"
	c.AccessTokenPrefix = "gho_"
	return c
}

// githubCommon is what both kinds of GitHub client see.
func githubCommon() Config {
	const docs = "https://docs.github.com/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
	return Config{
		Flavor: FlavorGitHub,
		Paths: Paths{
			Authorize: "/login/oauth/authorize",
			Token:     "/login/oauth/access_token",
			Revoke:    "/applications/{client_id}/grant",
			User:      "/user",
			Emails:    "/user/emails",
			Repos:     "/user/repos",
			// The user's organisations and teams (memberships.go).
			Orgs:          "/user/orgs",
			Teams:         "/user/teams",
			OrgMembership: "/user/memberships/orgs/{org}",
		},
		// octocat is in organisation vintner and its team platform,
		// monalisa in vintner only, hubot in none.
		Memberships: map[string][]string{
			"octocat":  {"vintner", "vintner/platform"},
			"monalisa": {"vintner"},
		},
		RedirectMismatchRedirects:  true,
		RedirectURIOptionalAtToken: true,
		Users: []User{
			{ID: 583231, Login: "octocat", Name: "The Octocat", Repos: 250, Emails: []Email{
				{Address: "octocat@example.com", Primary: true, Verified: true},
				{Address: "octocat@example.org", Verified: false},
			}},
			{ID: 2918581, Login: "monalisa", Name: "Mona Lisa Octocat", Repos: 60, Emails: []Email{
				{Address: "monalisa@example.com", Primary: true, Verified: true},
			}},
			{ID: 480938, Login: "hubot", PrivateEmail: true, Repos: 2, Emails: []Email{
				{Address: "hubot@example.com", Primary: true, Verified: true},
			}},
		},
		ClientAuth:        ClientAuthBody,
		GrantTypeOptional: true,
		TokenLength:       36,
		Token: TokenResponse{
			Format:              TokenFormUnlessAcceptJSON,
			TokenType:           "bearer",
			ScopeSeparator:      ",",
			ErrorsWithStatus200: true,
		},
		Errors: ErrorCodes{
			InvalidClient:    OAuthError{"incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect."},
			BadCode:          OAuthError{"bad_verification_code", "The code passed is incorrect or expired."},
			BadRefreshToken:  OAuthError{"bad_refresh_token", "The refresh token passed is incorrect or expired."},
			RedirectMismatch: OAuthError{"redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application."},
			BadVerifier:      OAuthError{"bad_verification_code", "The code passed is incorrect or expired."},
			AccessDenied:     OAuthError{"access_denied", "The user has denied your application access."},
			URI:              docs,
		},
		Revoke:           RevokeGitHubGrant,
		RevokeAllForUser: true,
		APIAuthSchemes:   []string{"Bearer", "token"},
		Pagination:       PaginationLink,
		PageSize:         30,
		MaxPageSize:      100,
	}
}

// githubAppID is the fake GitHub App's id in installation objects.
const githubAppID = 424242

// installationJSON is an installation object as GET /user/installations
// lists it (https://docs.github.com/en/rest/apps/installations#list-app-installations-accessible-to-the-user-access-token).
func (p *Provider) installationJSON(r *http.Request, u *User) fields {
	base := p.base(r)
	in := u.Installation
	sel := "all"
	if in.Selected > 0 {
		sel = "selected"
	}
	id := strconv.FormatInt(in.ID, 10)
	return fields{
		{"id", in.ID},
		{"account", fields{{"login", u.Login}, {"id", u.ID}, {"node_id", fmt.Sprintf("MDQ6VXNlcj%d", u.ID)},
			{"avatar_url", base + "/avatars/" + url.PathEscape(u.Login) + ".png"}, {"type", "User"}, {"site_admin", false}}},
		{"repository_selection", sel},
		{"access_tokens_url", base + "/app/installations/" + id + "/access_tokens"},
		{"repositories_url", base + "/installation/repositories"},
		{"html_url", base + "/settings/installations/" + id},
		{"app_id", githubAppID}, {"app_slug", "arbor"},
		{"target_id", u.ID}, {"target_type", "User"},
		{"permissions", map[string]string{"contents": "read", "emails": "read", "metadata": "read"}},
		{"events", []string{}},
		{"created_at", created.Format(time.RFC3339)}, {"updated_at", created.Format(time.RFC3339)},
		{"single_file_name", nil}, {"suspended_by", nil}, {"suspended_at", nil},
	}
}

// writeInstallations answers GET /user/installations: the installations
// of the app the user's token can see, {"total_count", "installations"},
// Link-paginated. The fake models at most one, on the user's account.
func (p *Provider) writeInstallations(w http.ResponseWriter, r *http.Request, u *User) {
	var items []any
	if u.Installation.ID != 0 {
		items = append(items, p.installationJSON(r, u))
	}
	p.writeWrappedList(w, r, items, func(total int, page []any) any {
		if page == nil {
			page = []any{}
		}
		return fields{{"total_count", total}, {"installations", page}}
	})
}

// writeInstallationRepos answers GET
// /user/installations/{installation_id}/repositories: the repositories of
// an installation the user can access, {"total_count",
// "repository_selection", "repositories"}, Link-paginated; 404 for an
// installation the token cannot see
// (https://docs.github.com/en/rest/apps/installations#list-repositories-accessible-to-the-user-access-token).
func (p *Provider) writeInstallationRepos(w http.ResponseWriter, r *http.Request, c *Call, u *User, id string) {
	in := u.Installation
	if in.ID == 0 || id != strconv.FormatInt(in.ID, 10) {
		p.apiError(w, r, c, http.StatusNotFound, apiNotFound)
		return
	}
	sel := "all"
	if in.Selected > 0 {
		sel = "selected"
	}
	items := p.reposJSON(r, u, p.visibleCount(u))
	p.writeWrappedList(w, r, items, func(total int, page []any) any {
		return fields{{"total_count", total}, {"repository_selection", sel}, {"repositories", page}}
	})
}

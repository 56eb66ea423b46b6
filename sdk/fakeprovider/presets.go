package fakeprovider

import "time"

// GitLab returns the configuration of a fake GitLab (gitlab.com): JSON
// token responses with created_at, Bearer tokens for 2 hours, refresh
// tokens that rotate on every use, client credentials in the body or Basic,
// POST /oauth/revoke (RFC 7009), /api/v4 with X-Page/X-Total headers and
// GitLab's error bodies ({"message":"401 Unauthorized"} for a missing or
// unknown token, {"error":"invalid_token",…} for an expired or revoked one).
func GitLab() Config {
	return Config{
		Name:   "GitLab",
		Flavor: FlavorGitLab,
		Paths: Paths{
			Authorize: "/oauth/authorize",
			Token:     "/oauth/token",
			Revoke:    "/oauth/revoke",
			User:      "/api/v4/user",
			Repos:     "/api/v4/projects",
			Groups:    "/api/v4/groups",
		},
		// jsmith is in group vintner and its subgroup vintner/platform,
		// mwagner in none.
		Memberships: map[string][]string{"jsmith": {"vintner", "vintner/platform"}},
		Users: []User{
			{ID: 1001, Login: "jsmith", Name: "John Smith", Repos: 230, Emails: []Email{
				{Address: "john@example.com", Primary: true, Verified: true},
			}},
			{ID: 1002, Login: "mwagner", Name: "Mia Wagner", Repos: 0, Emails: []Email{
				{Address: "mia@example.com", Primary: true, Verified: true},
			}},
		},
		DefaultScopes: []string{"read_user"},
		RequiredScopes: map[Endpoint][]string{
			EndpointUser:  {"read_user", "api", "read_api"},
			EndpointRepos: {"api", "read_api"},
			// read_user grants the /user endpoint only; read_api "read
			// access to the API, including all groups and projects"
			// (the scopes table of https://docs.gitlab.com/integration/oauth_provider/):
			// /groups needs read_api or api.
			EndpointGroups: {"api", "read_api"},
		},
		ClientAuth:          ClientAuthEither,
		AccessTokenLifetime: 2 * time.Hour,
		IssueRefreshTokens:  true,
		RotateRefreshTokens: true,
		// "Invalidates the existing access_token and refresh_token"
		// (https://docs.gitlab.com/api/oauth2/, refresh section).
		InvalidateAccessOnRefresh: true,
		TokenLength:               64,
		Token:                     TokenResponse{Format: TokenJSON, TokenType: "Bearer", CreatedAt: true},
		Errors: ErrorCodes{
			InvalidClient:    OAuthError{"invalid_client", "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."},
			BadCode:          OAuthError{"invalid_grant", gitlabInvalidGrant},
			BadRefreshToken:  OAuthError{"invalid_grant", gitlabInvalidGrant},
			RedirectMismatch: OAuthError{"invalid_grant", gitlabInvalidGrant},
			BadVerifier:      OAuthError{"invalid_grant", gitlabInvalidGrant},
		},
		Revoke:         RevokeRFC7009,
		APIAuthSchemes: []string{"Bearer"},
		Pagination:     PaginationGitLab,
		PageSize:       20,
		MaxPageSize:    100,
	}
}

// gitlabInvalidGrant is Doorkeeper's invalid_grant description, which
// GitLab answers for every bad code, verifier, redirect URI or refresh
// token.
const gitlabInvalidGrant = "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."

// Bitbucket returns the configuration of a fake Bitbucket Cloud
// (bitbucket.org and api.bitbucket.org on one host) as it behaves since
// 4 May 2026: the token endpoint requires HTTP Basic client authentication
// (body-only credentials → 401 invalid_client); JSON answers with "scope"
// (space-separated, the consumer's configured scopes whatever was
// requested), token_type "bearer" and "state" echoing the grant type;
// access tokens last 2 hours and are accepted only in the Authorization
// header (?access_token= is ignored: 401); refresh tokens rotate and one
// that is not used within 90 days ("3 months") expires. There is no
// revocation endpoint: Bitbucket Cloud documents none for OAuth consumers.
//
// Repositories are listed per workspace: GET /2.0/user/workspaces, then
// GET /2.0/repositories/{workspace}?role=member. The removed
// cross-workspace listings (GET /2.0/repositories, /2.0/workspaces,
// /2.0/user/permissions/…) answer 410 Gone (CHANGE-2770). Users: atlas
// (210 repositories of their own; member of the shared workspaces
// "vacant", which has none, and "orbit", 35), buddy (one repository, no
// shared workspace) and carol (none of their own; member of vacant and
// orbit). API answers paginate in the body ({"values","next","page",
// "pagelen","size"}) and errors look like {"type":"error","error":{"message":…}}.
//
// Sources: https://community.developer.atlassian.com/t/oauth-2-0-and-api-authentication-changes-for-bitbucket-cloud/99003
// (OAuth changes enforced from 4 May 2026),
// https://developer.atlassian.com/cloud/bitbucket/changelog/#CHANGE-2770,
// https://developer.atlassian.com/cloud/bitbucket/changelog/#CHANGE-3022,
// https://developer.atlassian.com/cloud/bitbucket/rest/api-group-workspaces/.
func Bitbucket() Config {
	return Config{
		Name:   "Bitbucket",
		Flavor: FlavorBitbucket,
		Paths: Paths{
			Authorize:  "/site/oauth2/authorize",
			Token:      "/site/oauth2/access_token",
			User:       "/2.0/user",
			Emails:     "/2.0/user/emails",
			Repos:      "/2.0/repositories/{workspace}",
			Workspaces: "/2.0/user/workspaces",
		},
		GonePaths: []string{"/2.0/repositories", "/2.0/workspaces",
			"/2.0/user/permissions/workspaces", "/2.0/user/permissions/repositories"},
		Users: []User{
			{ID: 7001, Login: "atlas", Name: "Atlas Tester", Repos: 210, Emails: []Email{
				{Address: "atlas@example.com", Primary: true, Verified: true},
				{Address: "atlas@example.net", Verified: false},
			}},
			{ID: 7002, Login: "buddy", Name: "Buddy Builder", Repos: 1, Emails: []Email{
				{Address: "buddy@example.com", Primary: true, Verified: false},
			}},
			{ID: 7003, Login: "carol", Name: "Carol Coder", Repos: 0, Emails: []Email{
				{Address: "carol@example.com", Primary: true, Verified: true},
			}},
		},
		Workspaces: []Workspace{
			{Slug: "vacant", Name: "Vacant Workspace", Members: []string{"carol", "atlas"}},
			{Slug: "orbit", Name: "Orbit Team", Members: []string{"atlas", "carol"}, Repos: 35},
		},
		Scopes: []string{"account", "email", "repository"},
		// Scopes per the REST reference: /user/workspaces needs account,
		// /repositories/{workspace} repository.
		RequiredScopes: map[Endpoint][]string{
			EndpointUser:       {"account"},
			EndpointEmails:     {"email"},
			EndpointRepos:      {"repository"},
			EndpointWorkspaces: {"account"},
		},
		ClientAuth:           ClientAuthBasic,
		AccessTokenLifetime:  2 * time.Hour,
		RefreshTokenLifetime: 90 * 24 * time.Hour,
		IssueRefreshTokens:   true,
		RotateRefreshTokens:  true,
		// Whether a refresh kills the old access token at Bitbucket is not
		// documented: the fake takes the unkinder reading, as GitHub and
		// GitLab document it.
		InvalidateAccessOnRefresh: true,
		TokenLength:               64,
		Token:                     TokenResponse{Format: TokenJSON, TokenType: "bearer", ScopeField: "scope", GrantTypeAsState: true},
		Errors: ErrorCodes{
			InvalidClient:   OAuthError{"invalid_client", "Client credentials missing or invalid; this request needs to be authenticated with the OAuth client id and secret (HTTP Basic)."},
			BadCode:         OAuthError{"invalid_grant", "The specified code is not valid."},
			BadRefreshToken: OAuthError{"invalid_grant", "Invalid refresh_token"},
		},
		Revoke:         RevokeNone,
		APIAuthSchemes: []string{"Bearer"},
		Pagination:     PaginationBitbucket,
		PageSize:       10,
		MaxPageSize:    100,
	}
}

// Google returns the configuration of a fake Google sign-in
// (accounts.google.com, oauth2.googleapis.com and
// openidconnect.googleapis.com on one host), login only: JSON token
// answers with expires_in 3599 and, when the scope includes openid, an
// UNSIGNED placeholder id_token (alg "none"; use /v1/userinfo, never verify
// it); a refresh token only with access_type=offline, not rotated (the
// refresh answer has no refresh_token); POST /revoke?token= revokes the
// whole grant; /v1/userinfo answers sub, email, email_verified, name,
// picture.
func Google() Config {
	return Config{
		Name:   "Google",
		Flavor: FlavorGoogle,
		Paths: Paths{
			Authorize: "/o/oauth2/v2/auth",
			Token:     "/token",
			Revoke:    "/revoke",
			User:      "/v1/userinfo",
		},
		Users: []User{
			{ID: 1, Login: "jane", Name: "Jane Doe", Emails: []Email{
				{Address: "jane.doe@example.com", Primary: true, Verified: true},
			}},
			{ID: 2, Login: "sam", Name: "Sam Unverified", Emails: []Email{
				{Address: "sam@example.net", Primary: true, Verified: false},
			}},
		},
		// jane's is a Google Workspace account of example.com (hd); sam's
		// a consumer account (no hd).
		Memberships: map[string][]string{"jane": {"example.com"}},
		RequiredScopes: map[Endpoint][]string{
			EndpointUser: {"openid", "email", "profile"},
		},
		ClientAuth:             ClientAuthEither,
		AccessTokenLifetime:    3599 * time.Second,
		IssueRefreshTokens:     true,
		RefreshRequiresOffline: true,
		RotateRefreshTokens:    false,
		AccessTokenPrefix:      "ya29.",
		RefreshTokenPrefix:     "1//",
		TokenLength:            100,
		Token:                  TokenResponse{Format: TokenJSON, TokenType: "Bearer", IDToken: true},
		Errors: ErrorCodes{
			InvalidClient:    OAuthError{"invalid_client", "Unauthorized"},
			BadCode:          OAuthError{"invalid_grant", "Bad Request"},
			BadRefreshToken:  OAuthError{"invalid_grant", "Token has been expired or revoked."},
			RedirectMismatch: OAuthError{"redirect_uri_mismatch", "Bad Request"},
			BadVerifier:      OAuthError{"invalid_grant", "Invalid code verifier."},
		},
		Revoke:                RevokeGoogle,
		RevokeAllForUser:      true,
		APIAuthSchemes:        []string{"Bearer"},
		AccessTokenQueryParam: true,
	}
}

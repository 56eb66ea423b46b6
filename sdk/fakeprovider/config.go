package fakeprovider

import (
	"time"
)

// Endpoint names one of the fake's endpoints. Calls, FailNext, HangNext and
// SetDelay use it.
type Endpoint string

// The endpoints a fake can serve. Which ones exist, and at which paths,
// depends on Config.Paths.
const (
	EndpointAuthorize Endpoint = "authorize" // consent page (GET) and its form (POST)
	EndpointToken     Endpoint = "token"     // code and refresh_token grants
	EndpointRevoke    Endpoint = "revoke"    // token or grant revocation
	EndpointUser      Endpoint = "user"      // the authenticated user
	EndpointEmails    Endpoint = "emails"    // the user's e-mail addresses
	EndpointRepos     Endpoint = "repos"     // the user's repositories (Bitbucket: one workspace's; GitHub: also /user/installations/{id}/repositories)
	// EndpointWorkspaces lists the user's workspaces (Bitbucket's
	// /2.0/user/workspaces).
	EndpointWorkspaces Endpoint = "workspaces"
	// EndpointInstallations is GitHub's GET /user/installations: the
	// installations of the GitHub App the user's token can see
	// (Config.AppInstallations).
	EndpointInstallations Endpoint = "installations"
	// EndpointOrgs is GitHub's GET /user/orgs, EndpointTeams its GET
	// /user/teams and EndpointOrgMembership its GET
	// /user/memberships/orgs/{org}: the user's organisations and teams
	// (Config.Memberships, Config.RestrictedOrgs).
	EndpointOrgs          Endpoint = "orgs"
	EndpointTeams         Endpoint = "teams"
	EndpointOrgMembership Endpoint = "org_membership"
	// EndpointGroups is GitLab's GET /groups: the groups the user is a
	// member of (Config.Memberships).
	EndpointGroups Endpoint = "groups"
	// EndpointGone is a path the provider removed (Config.GonePaths): 410.
	EndpointGone    Endpoint = "gone"
	EndpointUnknown Endpoint = "unknown" // any other path: 404
)

// Flavor selects the JSON shapes of the API endpoints (user, emails,
// repositories) and the provider's error bodies.
type Flavor int

const (
	// FlavorGeneric answers with plain shapes (user: id, login, full_name,
	// email, avatar_url; repositories: id, name, full_name, private,
	// html_url, clone_url, default_branch, owner.login) and RFC 6750 error
	// bodies ({"error":"invalid_token",…}). It is the zero value, for
	// providers that are not built in.
	FlavorGeneric Flavor = iota
	// FlavorGitHub answers as GitHub's REST API does.
	FlavorGitHub
	// FlavorGitLab answers as GitLab's REST API v4 does.
	FlavorGitLab
	// FlavorBitbucket answers as Bitbucket Cloud's REST API 2.0 does.
	FlavorBitbucket
	// FlavorGoogle answers as Google's OpenID Connect userinfo endpoint
	// does. It has no emails or repositories endpoints whatever Paths says.
	FlavorGoogle
)

// String returns the flavor's provider name.
func (f Flavor) String() string {
	switch f {
	case FlavorGitHub:
		return "GitHub"
	case FlavorGitLab:
		return "GitLab"
	case FlavorBitbucket:
		return "Bitbucket"
	case FlavorGoogle:
		return "Google"
	}
	return "Generic"
}

// ClientAuth says how the token (and RFC 7009 revocation) endpoint accepts
// the client's credentials (RFC 6749 section 2.3.1).
type ClientAuth int

const (
	// ClientAuthEither accepts client_secret_basic or client_secret_post.
	ClientAuthEither ClientAuth = iota
	// ClientAuthBody accepts only client_id and client_secret in the form
	// body (GitHub); Basic credentials alone are rejected.
	ClientAuthBody
	// ClientAuthBasic accepts only HTTP Basic (Bitbucket); credentials in
	// the body alone are rejected with 401 invalid_client.
	ClientAuthBasic
	// ClientAuthNone takes no client credentials at all (Gitee's refresh,
	// see Config.Grants); a request that sends some anyway is refused with
	// 400 invalid_request.
	ClientAuthNone
)

// TokenFormat is the encoding of token endpoint responses, errors included.
type TokenFormat int

const (
	// TokenJSON answers application/json (RFC 6749 section 5.1).
	TokenJSON TokenFormat = iota
	// TokenForm answers application/x-www-form-urlencoded.
	TokenForm
	// TokenFormUnlessAcceptJSON answers form-encoded unless the request's
	// Accept header names application/json (GitHub).
	TokenFormUnlessAcceptJSON
)

// RevokeStyle is how, if at all, a client revokes tokens.
type RevokeStyle int

const (
	// RevokeNone: no revocation endpoint (Bitbucket Cloud documents none for
	// OAuth consumers).
	RevokeNone RevokeStyle = iota
	// RevokeRFC7009: POST token=…(&token_type_hint=…) with client
	// authentication → 200 "{}", also for unknown tokens (GitLab).
	RevokeRFC7009
	// RevokeGoogle: POST with token in the query or form body, no client
	// authentication → 200; an unknown or dead token → 400 invalid_token.
	RevokeGoogle
	// RevokeGitHubGrant: DELETE /applications/{client_id}/grant with Basic
	// client authentication and the JSON body {"access_token": …} → 204.
	// Missing access_token → 422; an unknown, revoked or replaced token
	// and wrong or missing client credentials → 404 (the documentation
	// lists only 204 and 422; see docs/fake-providers.md).
	RevokeGitHubGrant
)

// Pagination is how list endpoints page.
type Pagination int

const (
	// PaginationLink: ?page=&per_page=, RFC 8288 Link header with
	// rel="prev", "next", "first" (past page 1) and "last" (before the last
	// page), body a bare JSON array (GitHub).
	PaginationLink Pagination = iota
	// PaginationGitLab: ?page=&per_page=, headers X-Page, X-Per-Page,
	// X-Next-Page, X-Prev-Page (empty when none), X-Total, X-Total-Pages and
	// a Link header with prev/next/first/last; body a bare JSON array.
	PaginationGitLab
	// PaginationBitbucket: ?page=&pagelen=, body {"size","page","pagelen",
	// "next","previous","values"}; next and previous are absolute URLs and
	// are omitted on the last and first page.
	PaginationBitbucket
	// PaginationTotalPages: ?page=&per_page=, a header with the number of
	// pages and one with the number of items (PagingNames.TotalPages,
	// default "X-Total-Pages", and PagingNames.TotalCount, default
	// "X-Total"; Gitee's are total_page and total_count), no Link header;
	// body a bare JSON array.
	PaginationTotalPages
)

// PKCEMode is how the fake treats RFC 7636 code challenges.
type PKCEMode int

const (
	// PKCEVerify: when the authorization request carried a code_challenge
	// (method S256 only), the token request must carry the matching
	// code_verifier; a verifier for a code issued without a challenge is
	// rejected too (downgrade protection).
	PKCEVerify PKCEMode = iota
	// PKCERequired is PKCEVerify plus: an authorization request without a
	// code_challenge is refused with invalid_request.
	PKCERequired
	// PKCEIgnore ignores code_challenge and code_verifier, like a server
	// that does not implement RFC 7636.
	PKCEIgnore
)

// OAuthError is an RFC 6749 error code and its description.
type OAuthError struct {
	Code        string
	Description string
}

// ErrorCodes are the error codes (and descriptions) the OAuth endpoints
// answer in each situation. A zero field means the RFC 6749 section 5.2
// code with a generic description.
type ErrorCodes struct {
	InvalidClient    OAuthError // unknown client or wrong secret; default invalid_client (401)
	BadCode          OAuthError // unknown, used, expired or foreign code; default invalid_grant
	BadRefreshToken  OAuthError // unknown, rotated, revoked or expired refresh token; default invalid_grant
	RedirectMismatch OAuthError // token request redirect_uri differs; default invalid_grant
	BadVerifier      OAuthError // PKCE verifier missing, malformed or wrong; default invalid_grant
	AccessDenied     OAuthError // the user pressed Deny; default access_denied
	// URI, when set, is sent as error_uri with every OAuth error (GitHub
	// links its troubleshooting pages).
	URI string
}

// TokenResponse shapes token endpoint answers.
type TokenResponse struct {
	Format TokenFormat
	// TokenType is the token_type value. Default "Bearer".
	TokenType string
	// ScopeField is the name of the granted-scope field: "scope" (default)
	// or "scopes" (Bitbucket).
	ScopeField string
	// ScopeSeparator joins granted scopes. Default " "; GitHub uses ",".
	ScopeSeparator string
	// CreatedAt adds created_at (Unix seconds) as GitLab does.
	CreatedAt bool
	// RefreshTokenExpiresIn adds refresh_token_expires_in (GitHub) when the
	// refresh token has a lifetime.
	RefreshTokenExpiresIn bool
	// GrantTypeAsState adds "state": "<grant_type>" as Bitbucket does.
	GrantTypeAsState bool
	// IDToken adds an id_token when the scope includes "openid". It is an
	// UNSIGNED placeholder JWT (alg "none") carrying iss, sub, aud, email,
	// email_verified, name, iat, exp and nonce; never verify it, use the
	// userinfo endpoint.
	IDToken bool
	// ErrorsWithStatus200 answers token endpoint errors with HTTP 200 and
	// an error field (GitHub). Default: RFC 6749 status codes (400, 401).
	ErrorsWithStatus200 bool
}

// Paths are the fake's endpoint paths. The zero value means the generic
// defaults (/login/oauth/authorize, /login/oauth/access_token, no revoke,
// /api/v1/user, /api/v1/user/emails, /api/v1/user/repos,
// /api/v1/user/groups); once any field is
// set, an empty field means the endpoint does not exist. Revoke may contain
// the placeholder "{client_id}"; Repos may contain "{workspace}" (Bitbucket:
// the repositories of one workspace, see Workspace).
type Paths struct {
	Authorize string
	Token     string
	Revoke    string
	User      string
	Emails    string
	Repos     string
	// Workspaces lists the user's workspaces (FlavorBitbucket only).
	Workspaces string
	// Installations and InstallationRepos are GitHub's
	// /user/installations and
	// /user/installations/{installation_id}/repositories, served only
	// with Config.AppInstallations.
	Installations     string
	InstallationRepos string
	// Orgs, Teams and OrgMembership are GitHub's /user/orgs, /user/teams
	// and /user/memberships/orgs/{org} (FlavorGitHub only).
	Orgs          string
	Teams         string
	OrgMembership string
	// Groups is GitLab's /groups (FlavorGitLab), or the generic fake's
	// list of the user's groups, [{"id", "name"}] (FlavorGeneric).
	Groups string
}

// Email is one of a fake user's addresses.
type Email struct {
	Address  string
	Primary  bool
	Verified bool
}

// User is a fake account. The provider-specific identifiers (GitHub node_id,
// Bitbucket account_id and uuid, Google sub) are derived from ID.
type User struct {
	ID     int64
	Login  string // username; Google users are looked up by e-mail too
	Name   string // display name; "" is sent as null where the provider does
	Emails []Email
	// PrivateEmail hides the address from GitHub's /user (email: null), as
	// when the user keeps it private; /user/emails still lists it.
	PrivateEmail bool
	// Repos is the number of generated repositories the user owns
	// (repo-001, repo-002, …): every third is private, every seventh has
	// default branch "master", the rest "main".
	Repos int
	// Installation is the GitHub App's installation on the user's account,
	// which limits what the user's tokens see when
	// Config.AppInstallations is set. The zero value: the app is not
	// installed, so the user's token sees no repository.
	Installation Installation
}

// Installation is a GitHub App's installation on a user's account
// (https://docs.github.com/en/rest/apps/installations).
type Installation struct {
	// ID is the installation id; 0 means the app is not installed.
	ID int64
	// Selected, when > 0, limits the installation to the user's first
	// Selected repositories (repository_selection "selected"); 0 means all
	// of them ("all").
	Selected int
}

// Config configures a fake provider. The zero value is a generic RFC 6749
// server with one default user; GitHub, GitLab, Bitbucket and Google return
// the presets. Every field documents its default.
type Config struct {
	// Name is shown on the consent page ("<Name> (fake) — Authorize …").
	// Default: the flavor's name.
	Name string
	// Flavor selects API shapes and error bodies. Default FlavorGeneric.
	Flavor Flavor
	// Addr is where Start listens. Default "127.0.0.1:0".
	Addr string
	// BaseURL is the externally visible URL, for absolute links
	// (pagination, repository URLs). Default: from the request's Host.
	// Set it when the handler is mounted under a path prefix.
	BaseURL string
	// Paths of the endpoints; see Paths for the default.
	Paths Paths

	// ClientID and ClientSecret of the one registered client. Defaults
	// "fake-client-id" and "fake-client-secret".
	ClientID     string
	ClientSecret string
	// AppName is the client's name on the consent page. Default "Arbor".
	AppName string
	// RedirectURIs are the registered redirect URIs, matched exactly.
	// Default none: register with AllowRedirect or set AllowAnyRedirect.
	RedirectURIs []string
	// AllowAnyRedirect accepts any absolute http(s) redirect_uri on the
	// authorization request (the token request must still repeat it
	// exactly). Default false.
	AllowAnyRedirect bool
	// RedirectMismatchRedirects sends an unregistered redirect_uri's error
	// to the first registered URI as error=redirect_uri_mismatch (GitHub)
	// instead of showing an error page. Default false.
	RedirectMismatchRedirects bool
	// RedirectURIOptionalAtToken lets a token request omit redirect_uri even
	// if the authorization request had one (GitHub). A redirect_uri that is
	// present must always match. Default false (RFC 6749 section 4.1.3).
	RedirectURIOptionalAtToken bool
	// AutoApprove skips the consent page: the authorization request
	// redirects at once with a code for fake_user, login_hint or the first
	// user. Default false.
	AutoApprove bool

	// Users are the fake accounts; the first is the default. Default: one
	// generated user with 3 repositories.
	Users []User
	// Workspaces are shared workspaces (FlavorBitbucket): each user also
	// has a personal workspace whose slug is the login. Default none.
	Workspaces []Workspace
	// Memberships are the groups each user belongs to, by login, in the
	// provider's own names: GitHub organisations ("vintner") and teams
	// ("vintner/platform", which make the user a member of the
	// organisation too), GitLab group full paths ("grp/sub"), Bitbucket
	// shared workspace slugs (a user with an entry belongs to exactly
	// those shared workspaces, whatever Workspaces says; without one,
	// Workspaces decides), Google the hosted domain ("example.com", the
	// first entry, sent as hd). SetMemberships and POST
	// /__fake/memberships change them while the fake runs. Default: the
	// preset's (docs/fake-providers.md), none for FlavorGeneric.
	Memberships map[string][]string
	// RestrictedOrgs are GitHub organisations with OAuth app access
	// restrictions that have not approved this client: they are missing
	// from /user/orgs and /user/teams, and /user/memberships/orgs/{org}
	// answers GitHub's 403 whether or not the user is a member. Default
	// none.
	RestrictedOrgs []string
	// GonePaths answer 410 Gone with the flavor's error body, whatever the
	// credentials: endpoints the provider removed (Bitbucket's CHANGE-2770).
	// Matched exactly, like Paths. Default none.
	GonePaths []string

	// Scopes, when non-nil, are granted whatever was requested (Bitbucket
	// grants the consumer's configured scopes). Default: grant what was
	// requested, or DefaultScopes when nothing was.
	Scopes []string
	// DefaultScopes are granted when the request names none. Default none.
	DefaultScopes []string
	// RequiredScopes gates API endpoints: a token needs at least one of the
	// listed scopes, otherwise 403 in the flavor's format. Default: none.
	RequiredScopes map[Endpoint][]string
	// ScopesHeader adds X-OAuth-Scopes and X-Accepted-OAuth-Scopes to API
	// answers (GitHub). Default false.
	ScopesHeader bool

	// ClientAuth is the accepted client authentication. Default either.
	ClientAuth ClientAuth
	// GrantTypeOptional treats a token request without grant_type but with
	// a code as authorization_code (GitHub). Default false.
	GrantTypeOptional bool
	// PKCE mode. Default PKCEVerify.
	PKCE PKCEMode
	// CodeLifetime of authorization codes; codes are single-use. Default
	// 10 minutes.
	CodeLifetime time.Duration
	// RevokeOnCodeReuse revokes the tokens issued for a code when the code
	// is presented again (RFC 6749 section 4.1.2 "SHOULD"). Default false.
	RevokeOnCodeReuse bool

	// AccessTokenLifetime; 0 means access tokens never expire (classic
	// GitHub OAuth apps) and expires_in is omitted. Default 0.
	AccessTokenLifetime time.Duration
	// RefreshTokenLifetime; 0 means refresh tokens do not expire. Default 0.
	RefreshTokenLifetime time.Duration
	// IssueRefreshTokens issues refresh tokens. Default false.
	IssueRefreshTokens bool
	// RefreshOnlyWhenExpiring issues refresh tokens only while
	// AccessTokenLifetime > 0 (GitHub: only expiring user tokens come with
	// one). Default false.
	RefreshOnlyWhenExpiring bool
	// RefreshRequiresOffline issues refresh tokens only when the
	// authorization request had access_type=offline (Google). Default false.
	RefreshRequiresOffline bool
	// RotateRefreshTokens issues a new refresh token on every refresh and
	// kills the old one, whose reuse then fails with BadRefreshToken. When
	// false the refresh response carries no refresh_token and the old one
	// stays valid (Google). Default false.
	RotateRefreshTokens bool
	// InvalidateAccessOnRefresh kills, at every successful refresh, the
	// access tokens of the same grant issued before it: using one then
	// fails as a revoked token would, and Call.DeadToken says "replaced".
	// GitHub Apps ("that refresh token and the old user access token will
	// no longer work",
	// https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens)
	// and GitLab (a refresh "invalidates the existing access_token and
	// refresh_token", https://docs.gitlab.com/api/oauth2/) do this.
	// Default false: old access tokens live until they expire (Google).
	InvalidateAccessOnRefresh bool
	// AccessTokenPrefix, NonExpiringAccessTokenPrefix (used instead when
	// AccessTokenLifetime is 0, e.g. GitHub's gho_ vs ghu_) and
	// RefreshTokenPrefix start every token. Default none.
	AccessTokenPrefix            string
	NonExpiringAccessTokenPrefix string
	RefreshTokenPrefix           string
	// TokenLength is the number of random characters after the prefix.
	// Default 40.
	TokenLength int
	// Token shapes the token endpoint's answers.
	Token TokenResponse
	// Errors are the OAuth error codes per situation.
	Errors ErrorCodes

	// Revoke is the revocation style. Default RevokeNone.
	Revoke RevokeStyle
	// RevokeAllForUser makes one revocation kill every token the user holds
	// for the client (GitHub's grant, Google). Default: the tokens of that
	// one authorization (the access token, its refresh token and the
	// tokens refreshed from it — RFC 7009 section 2.1, GitLab).
	RevokeAllForUser bool
	// RevokeIgnoresExpired reproduces Doorkeeper before 5.8.1 (the OAuth
	// server of self-managed GitLab instances that have not upgraded): an
	// RFC 7009 revocation of a token whose access token has expired answers
	// 200 but revokes nothing, so the refresh token stays usable
	// (doorkeeper-gem/doorkeeper#1671, fixed by #1744 in 5.8.1). Default
	// false (gitlab.com).
	RevokeIgnoresExpired bool

	// AppInstallations makes the access tokens a GitHub App's user access
	// tokens: they see only the repositories where the app is installed
	// (User.Installation) intersected with the user's own, on /user/repos
	// too, and Paths.Installations and Paths.InstallationRepos are served
	// (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-with-a-github-app-on-behalf-of-a-user).
	// Default false: a token sees all of the user's repositories.
	AppInstallations bool

	// APIAuthSchemes accepted in the Authorization header of API requests,
	// case-insensitively. Default ["Bearer"]; GitHub also takes "token".
	APIAuthSchemes []string
	// AccessTokenQueryParam also accepts ?access_token= on API requests
	// (Google; Bitbucket until 4 May 2026). Default false: a token in the
	// query is ignored, so the request is unauthenticated (401).
	AccessTokenQueryParam bool
	// Pagination style of list endpoints. Default PaginationLink.
	Pagination Pagination
	// PageSize is the default page size, MaxPageSize the largest honoured.
	// Defaults 30 and 100.
	PageSize    int
	MaxPageSize int
	// TotalCountHeader adds X-Total-Count to Link-paginated lists. Default
	// false.
	TotalCountHeader bool
	// PagingNames rename the page parameters, headers and body fields of
	// the Pagination style (Gitee's total_page header). Default: the
	// style's own names.
	PagingNames PagingNames

	// Grants say, per grant type ("authorization_code", "refresh_token"),
	// where the token request's parameters go and how the client
	// authenticates (Gitee refreshes with the parameters in the query and
	// no client credentials). A grant without an entry takes its
	// parameters in the form body and authenticates as ClientAuth says.
	// Default none.
	Grants map[string]GrantRule
	// APITokenQueryOnly accepts the API's access token only as
	// ?access_token= (with AccessTokenQueryParam): an Authorization header
	// is ignored, so a request that sends only the header is
	// unauthenticated (401). Default false.
	APITokenQueryOnly bool
	// UserFields, RepoFields and EmailShape rename the fields of the user,
	// repository and e-mail objects of FlavorGeneric (see FieldMap and
	// EmailShape). Default: the generic names (docs/fake-providers.md).
	UserFields FieldMap
	RepoFields FieldMap
	EmailShape EmailShape

	// Now is the clock for expiry. Default time.Now.
	Now func() time.Time
}

package plugin

import "github.com/vintner/arbor/sdk/abi"

// The messages an operation receives and returns are the ABI's (package
// sdk/abi), named here so that a plugin imports only this package. Their
// fields are listed with each; the ABI's field numbers and encoding are
// the host's business.

// AuthorizeRequest asks for the authorization URL's query parameters
// (Authorizer; DefaultAuthorizeParams builds the standard ones).
//
//	ClientID            string    // the operator's client id
//	Endpoints           Endpoints // the provider's URLs
//	Purpose             string    // "login" (sign-in) or "git" (a Git connection)
//	RedirectURI         string
//	Scopes              []string  // the operator's or the manifest's for Purpose
//	State               string
//	CodeChallenge       string    // PKCE S256 challenge; "" when PKCE is off
//	CodeChallengeMethod string
//	KeepGrant           bool      // the grant is kept to read groups later: ask for a refresh token
type AuthorizeRequest = abi.AuthorizeRequest

// ExchangeRequest exchanges an authorization code (Exchanger).
//
//	Client       Client // id and secret
//	Endpoints    Endpoints
//	Code         string
//	RedirectURI  string
//	CodeVerifier string // PKCE verifier; "" when PKCE is off
type ExchangeRequest = abi.ExchangeRequest

// RefreshRequest uses a refresh token (Refresher).
//
//	Client       Client
//	Endpoints    Endpoints
//	RefreshToken string
//	Scopes       []string // when set, a narrower grant is asked for
type RefreshRequest = abi.RefreshRequest

// RevokeRequest revokes a user's grant (Revoker). Either token may be
// empty; revoke what the provider supports.
//
//	Client       Client
//	Endpoints    Endpoints
//	AccessToken  string
//	RefreshToken string
type RevokeRequest = abi.RevokeRequest

// UserRequest asks who owns an access token (UserInfoer).
//
//	Endpoints   Endpoints
//	AccessToken string
type UserRequest = abi.UserRequest

// ReposRequest asks for one page of the user's repositories (RepoLister).
//
//	Endpoints   Endpoints
//	AccessToken string
//	Cursor      string // "" for the first page, else a NextCursor this plugin returned
//	PerPage     int    // 0: the plugin's default (clamp it with PerPage)
type ReposRequest = abi.ReposRequest

// GroupsRequest asks which groups the token's owner belongs to
// (GroupLister).
//
//	Client      Client   // the id only: the secret never travels with groups
//	Endpoints   Endpoints
//	AccessToken string
//	Wanted      []string // the groups the operator's policy names, by the provider's names
type GroupsRequest = abi.GroupsRequest

// Groups are a user's groups by the provider's own names, without the
// provider's prefix (the host adds "github:").
//
//	Groups     []string
//	Restricted []string // groups the provider hides from this app: not joined, and why
type Groups = abi.Groups

// GitHostRequest asks where the provider's Git host is (GitHoster).
//
//	Endpoints Endpoints // the effective ones: the operator's overrides applied
type GitHostRequest = abi.GitHostRequest

// GitHost is the provider's Git host and the Basic user name that goes
// with an OAuth token as password.
//
//	URL       string // "https://github.com"; "" for no Git host
//	BasicUser string // "x-access-token"
type GitHost = abi.GitHost

// Token is what Exchange and Refresh return (ParseTokenResponse fills it).
//
//	AccessToken      string
//	RefreshToken     string   // "" keeps the one the host has (a provider that does not rotate)
//	TokenType        string
//	ExpiresIn        int64    // seconds; 0: the provider did not say
//	RefreshExpiresIn int64    // seconds, for providers that say (GitHub)
//	Scopes           []string
//	IDToken          string
type Token = abi.Token

// User is the provider's account (UserFields fills it).
//
//	ID            string // stable, never reused: Arbor keys identities on (provider, ID)
//	Login         string
//	Name          string
//	Email         string
//	EmailVerified bool   // only an address the provider marks verified
//	AvatarURL     string
//	ProfileURL    string
type User = abi.User

// Repo is one repository (RepoFields fills it).
//
//	ID            string
//	FullName      string // "owner/name"
//	Description   string
//	Private       bool
//	DefaultBranch string
//	HTMLURL       string
//	CloneURL      string
//	UpdatedAt     int64  // Unix seconds, 0 if unknown
type Repo = abi.Repo

// RepoPage is one page of repositories.
//
//	Repos      []Repo
//	NextCursor string // "" on the last page
type RepoPage = abi.RepoPage

// Client is the OAuth client the operator registered with the provider.
//
//	ID     string
//	Secret string // sent only with exchange, refresh and revoke
type Client = abi.Client

// Endpoints are the provider's URLs: the manifest's, with the operator's
// overrides (a self-hosted instance, a test's fake).
//
//	AuthorizeURL string
//	TokenURL     string
//	APIBase      string // the REST API root, no trailing slash ("https://api.github.com")
//	RevokeURL    string
type Endpoints = abi.Endpoints

// Code is an error's stable code (Error.Code): the gateway acts on it, the
// message is for people.
type Code = abi.Code

// Error codes. A plugin returns the first group (ErrInvalidGrant and the
// other constructors make them); the host reports the second, and Do
// returns them as *Error when the host refused or failed a request.
const (
	// CodeInvalidRequest: the request lacked something the operation
	// needs (no token URL configured, an empty code, a foreign cursor).
	CodeInvalidRequest = abi.CodeInvalidRequest
	// CodeInvalidGrant: the provider refused the code or refresh token;
	// the user must sign in or reconnect.
	CodeInvalidGrant = abi.CodeInvalidGrant
	// CodeInvalidClient: the provider refused the client id or secret;
	// the operator must fix the configuration.
	CodeInvalidClient = abi.CodeInvalidClient
	// CodeInvalidToken: the provider refused the access token (expired
	// or revoked); the gateway refreshes it or asks to reconnect.
	CodeInvalidToken = abi.CodeInvalidToken
	// CodeUnsupported: the plugin or provider cannot do the operation.
	CodeUnsupported = abi.CodeUnsupported
	// CodeProviderError: the provider answered unexpectedly (retryable
	// for 5xx).
	CodeProviderError = abi.CodeProviderError
	// CodeRateLimited: the provider asked to slow down; Error.RetryAfter
	// says how long.
	CodeRateLimited = abi.CodeRateLimited

	// CodeHostNotAllowed: the host refused the destination (not in the
	// manifest's allowed_hosts, a private address, a forbidden redirect).
	CodeHostNotAllowed = abi.CodeHostNotAllowed
	// CodeTimeout: the call's deadline passed.
	CodeTimeout = abi.CodeTimeout
	// CodeResponseTooLarge: a response exceeded the host's cap.
	CodeResponseTooLarge = abi.CodeResponseTooLarge
	// CodeUnavailable: the provider could not be reached, or the plugin
	// is closed.
	CodeUnavailable = abi.CodeUnavailable
	// CodeInternal: the plugin crashed or returned an error without a
	// code (any error that is not an *Error).
	CodeInternal = abi.CodeInternal
)

package abi

// This file holds every message that crosses the ABI. Field numbers are
// part of ABI v1: never renumber or reuse one; add new fields with new
// numbers. Each request carries only what its operation needs: the client
// secret travels only with exchange, refresh and revoke, and a request
// carries one user's tokens at most.

// Result is the envelope every operation export returns. Code is empty on
// success and Payload then holds the operation's result message.
type Result struct {
	Payload   []byte
	Code      Code
	Message   string
	Retryable bool
	// Status is the provider's HTTP status when the error came from an
	// HTTP response, else 0.
	Status int
	// RetryAfter is how many seconds the provider asked to wait, with
	// CodeRateLimited; 0 means it did not say (see DefaultRetryAfter).
	// Field 6 was added within v1: plugins built before it never set it,
	// hosts built before it skip it.
	RetryAfter int
}

func (m *Result) fields(f fields) fields {
	f.bytes(1, &m.Payload)
	f.str(2, (*string)(&m.Code))
	f.str(3, &m.Message)
	f.bool(4, &m.Retryable)
	f.int(5, &m.Status)
	f.int(6, &m.RetryAfter)
	return f
}

func (m *Result) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *Result) UnmarshalABI(b []byte) error {
	*m = Result{}
	return decode(b, "result", m.fields)
}

// Client is the OAuth client the operator registered with the provider.
type Client struct {
	ID string
	// Secret is sent only with exchange, refresh and revoke.
	Secret string
}

func (m *Client) fields(f fields) fields {
	f.str(1, &m.ID)
	f.str(2, &m.Secret)
	return f
}

func (m *Client) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *Client) UnmarshalABI(b []byte) error {
	*m = Client{}
	return decode(b, "client", m.fields)
}

// Endpoints are the provider's URLs: the manifest's defaults with the
// operator's overrides applied (GitHub Enterprise, self-managed GitLab,
// tests pointing at a fake).
type Endpoints struct {
	AuthorizeURL string `json:"authorize_url,omitempty"`
	TokenURL     string `json:"token_url,omitempty"`
	// APIBase is the REST API root, without a trailing slash
	// ("https://api.github.com").
	APIBase string `json:"api_base,omitempty"`
	// RevokeURL is the revocation endpoint for providers that have one
	// apart from the API.
	RevokeURL string `json:"revoke_url,omitempty"`
}

func (m *Endpoints) fields(f fields) fields {
	f.str(1, &m.AuthorizeURL)
	f.str(2, &m.TokenURL)
	f.str(3, &m.APIBase)
	f.str(4, &m.RevokeURL)
	return f
}

func (m *Endpoints) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *Endpoints) UnmarshalABI(b []byte) error {
	*m = Endpoints{}
	return decode(b, "endpoints", m.fields)
}

// Purpose says why the user is sent to the provider.
type Purpose string

const (
	// PurposeLogin: signing in to Arbor (login scopes).
	PurposeLogin Purpose = "login"
	// PurposeGit: connecting a Git provider account (repository scopes).
	PurposeGit Purpose = "git"
)

// AuthorizeRequest asks for the query parameters of the authorization URL.
type AuthorizeRequest struct {
	ClientID    string
	Endpoints   Endpoints
	Purpose     Purpose
	RedirectURI string
	// Scopes are the scopes to request: the operator's or the manifest's
	// defaults for Purpose, unless the caller chose others.
	Scopes []string
	State  string
	// CodeChallenge is the PKCE S256 challenge; empty when PKCE is off.
	CodeChallenge       string
	CodeChallengeMethod string
	// KeepGrant says that the sign-in's grant is kept to read the user's
	// groups again later (OpGroups, in the background, while the user stays
	// signed in). A plugin whose provider issues no refresh token unless
	// asked (Google: access_type=offline) asks for one. Added within v1: a
	// plugin built before ignores it, and an older host never sets it.
	KeepGrant bool
}

func (m *AuthorizeRequest) fields(f fields) fields {
	f.str(1, &m.ClientID)
	f.msg(2, &m.Endpoints)
	f.str(3, (*string)(&m.Purpose))
	f.str(4, &m.RedirectURI)
	f.strs(5, &m.Scopes)
	f.str(6, &m.State)
	f.str(7, &m.CodeChallenge)
	f.str(8, &m.CodeChallengeMethod)
	f.bool(9, &m.KeepGrant)
	return f
}

func (m *AuthorizeRequest) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *AuthorizeRequest) UnmarshalABI(b []byte) error {
	*m = AuthorizeRequest{}
	return decode(b, "authorize request", m.fields)
}

// Param is one query parameter, kept in order.
type Param struct {
	Name, Value string
}

func (m *Param) fields(f fields) fields {
	f.str(1, &m.Name)
	f.str(2, &m.Value)
	return f
}

func (m *Param) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *Param) UnmarshalABI(b []byte) error {
	*m = Param{}
	return decode(b, "param", m.fields)
}

// AuthorizeResult holds the authorization URL's query parameters. The host
// appends them to Endpoints.AuthorizeURL.
type AuthorizeResult struct {
	Params []Param
}

func (m *AuthorizeResult) fields(f fields) fields {
	msgs(&f, 1, &m.Params)
	return f
}

func (m *AuthorizeResult) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *AuthorizeResult) UnmarshalABI(b []byte) error {
	*m = AuthorizeResult{}
	return decode(b, "authorize result", m.fields)
}

// ExchangeRequest exchanges an authorization code.
type ExchangeRequest struct {
	Client       Client
	Endpoints    Endpoints
	Code         string
	RedirectURI  string
	CodeVerifier string
}

func (m *ExchangeRequest) fields(f fields) fields {
	f.msg(1, &m.Client)
	f.msg(2, &m.Endpoints)
	f.str(3, &m.Code)
	f.str(4, &m.RedirectURI)
	f.str(5, &m.CodeVerifier)
	return f
}

func (m *ExchangeRequest) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *ExchangeRequest) UnmarshalABI(b []byte) error {
	*m = ExchangeRequest{}
	return decode(b, "exchange request", m.fields)
}

// RefreshRequest uses a refresh token.
type RefreshRequest struct {
	Client       Client
	Endpoints    Endpoints
	RefreshToken string
	// Scopes, when set, asks for a narrower grant.
	Scopes []string
}

func (m *RefreshRequest) fields(f fields) fields {
	f.msg(1, &m.Client)
	f.msg(2, &m.Endpoints)
	f.str(3, &m.RefreshToken)
	f.strs(4, &m.Scopes)
	return f
}

func (m *RefreshRequest) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *RefreshRequest) UnmarshalABI(b []byte) error {
	*m = RefreshRequest{}
	return decode(b, "refresh request", m.fields)
}

// RevokeRequest revokes a user's grant. Either token may be empty; the
// plugin revokes what its provider supports.
type RevokeRequest struct {
	Client       Client
	Endpoints    Endpoints
	AccessToken  string
	RefreshToken string
}

func (m *RevokeRequest) fields(f fields) fields {
	f.msg(1, &m.Client)
	f.msg(2, &m.Endpoints)
	f.str(3, &m.AccessToken)
	f.str(4, &m.RefreshToken)
	return f
}

func (m *RevokeRequest) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *RevokeRequest) UnmarshalABI(b []byte) error {
	*m = RevokeRequest{}
	return decode(b, "revoke request", m.fields)
}

// Token is what exchange and refresh return.
type Token struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	// ExpiresIn is the access token's lifetime in seconds as the provider
	// stated it; 0 means the provider did not say.
	ExpiresIn int64
	// RefreshExpiresIn is the refresh token's lifetime in seconds, for
	// providers that state it (GitHub's refresh_token_expires_in).
	RefreshExpiresIn int64
	Scopes           []string
	IDToken          string
}

func (m *Token) fields(f fields) fields {
	f.str(1, &m.AccessToken)
	f.str(2, &m.RefreshToken)
	f.str(3, &m.TokenType)
	f.int64(4, &m.ExpiresIn)
	f.int64(5, &m.RefreshExpiresIn)
	f.strs(6, &m.Scopes)
	f.str(7, &m.IDToken)
	return f
}

func (m *Token) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *Token) UnmarshalABI(b []byte) error {
	*m = Token{}
	return decode(b, "token", m.fields)
}

// UserRequest asks who owns an access token.
type UserRequest struct {
	Endpoints   Endpoints
	AccessToken string
}

func (m *UserRequest) fields(f fields) fields {
	f.msg(1, &m.Endpoints)
	f.str(2, &m.AccessToken)
	return f
}

func (m *UserRequest) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *UserRequest) UnmarshalABI(b []byte) error {
	*m = UserRequest{}
	return decode(b, "user request", m.fields)
}

// User is the provider's account.
type User struct {
	// ID is the provider's stable, never reused account id; Arbor keys
	// identities on (provider, ID), never on the login or e-mail.
	ID            string
	Login         string
	Name          string
	Email         string
	EmailVerified bool
	AvatarURL     string
	ProfileURL    string
}

func (m *User) fields(f fields) fields {
	f.str(1, &m.ID)
	f.str(2, &m.Login)
	f.str(3, &m.Name)
	f.str(4, &m.Email)
	f.bool(5, &m.EmailVerified)
	f.str(6, &m.AvatarURL)
	f.str(7, &m.ProfileURL)
	return f
}

func (m *User) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *User) UnmarshalABI(b []byte) error {
	*m = User{}
	return decode(b, "user", m.fields)
}

// ReposRequest asks for one page of the user's repositories.
type ReposRequest struct {
	Endpoints   Endpoints
	AccessToken string
	// Cursor is empty for the first page, else a previous page's
	// NextCursor. Its meaning belongs to the plugin (a page number, a URL).
	Cursor  string
	PerPage int
}

func (m *ReposRequest) fields(f fields) fields {
	f.msg(1, &m.Endpoints)
	f.str(2, &m.AccessToken)
	f.str(3, &m.Cursor)
	f.int(4, &m.PerPage)
	return f
}

func (m *ReposRequest) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *ReposRequest) UnmarshalABI(b []byte) error {
	*m = ReposRequest{}
	return decode(b, "repos request", m.fields)
}

// Repo is one repository.
type Repo struct {
	ID            string
	FullName      string
	Description   string
	Private       bool
	DefaultBranch string
	HTMLURL       string
	CloneURL      string
	// UpdatedAt is Unix seconds, 0 if unknown.
	UpdatedAt int64
}

func (m *Repo) fields(f fields) fields {
	f.str(1, &m.ID)
	f.str(2, &m.FullName)
	f.str(3, &m.Description)
	f.bool(4, &m.Private)
	f.str(5, &m.DefaultBranch)
	f.str(6, &m.HTMLURL)
	f.str(7, &m.CloneURL)
	f.int64(8, &m.UpdatedAt)
	return f
}

func (m *Repo) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *Repo) UnmarshalABI(b []byte) error {
	*m = Repo{}
	return decode(b, "repo", m.fields)
}

// RepoPage is one page of repositories.
type RepoPage struct {
	Repos []Repo
	// NextCursor is empty on the last page.
	NextCursor string
}

func (m *RepoPage) fields(f fields) fields {
	msgs(&f, 1, &m.Repos)
	f.str(2, &m.NextCursor)
	return f
}

func (m *RepoPage) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *RepoPage) UnmarshalABI(b []byte) error {
	*m = RepoPage{}
	return decode(b, "repo page", m.fields)
}

// GroupsRequest asks which groups the owner of an access token belongs to
// (OpGroups, added within v1).
type GroupsRequest struct {
	// Client carries the client id only: the secret never travels with
	// groups. A plugin may name the app with it when it explains a
	// restriction.
	Client      Client
	Endpoints   Endpoints
	AccessToken string
	// Wanted are the groups, by the provider's own names ("vintner",
	// "vintner/platform"), that the operator's policy mentions for this
	// provider, so that the plugin can ask about them specifically (a
	// group that a listing leaves out may be hidden from this app rather
	// than left). Empty means the policy names none: list what the
	// provider shows.
	Wanted []string
}

func (m *GroupsRequest) fields(f fields) fields {
	f.msg(1, &m.Client)
	f.msg(2, &m.Endpoints)
	f.str(3, &m.AccessToken)
	f.strs(4, &m.Wanted)
	return f
}

func (m *GroupsRequest) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *GroupsRequest) UnmarshalABI(b []byte) error {
	*m = GroupsRequest{}
	return decode(b, "groups request", m.fields)
}

// Groups are the groups a user belongs to, by the provider's own names,
// never prefixed with the provider: GitHub "vintner" (an organisation) and
// "vintner/platform" (a team), GitLab "grp/sub" (a group's full path),
// Bitbucket "ws-one" (a workspace), Google "example.com" (a hosted domain).
// The host adds the provider's name ("github:vintner").
type Groups struct {
	Groups []string
	// Restricted are groups the user may belong to but the provider hides
	// from this app (a GitHub organisation with OAuth app access
	// restrictions): neither in Groups nor known to be left. Policy treats
	// them as not joined and says why.
	Restricted []string
}

func (m *Groups) fields(f fields) fields {
	f.strs(1, &m.Groups)
	f.strs(2, &m.Restricted)
	return f
}

func (m *Groups) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *Groups) UnmarshalABI(b []byte) error {
	*m = Groups{}
	return decode(b, "groups", m.fields)
}

// GitHostRequest asks where the provider's Git host is (OpGitHost, added
// within v1). It carries the effective endpoints only, no client and no
// token: the answer depends on the configuration alone, so the host asks
// once per loaded version and keeps the answer.
type GitHostRequest struct {
	Endpoints Endpoints
}

func (m *GitHostRequest) fields(f fields) fields {
	f.msg(1, &m.Endpoints)
	return f
}

func (m *GitHostRequest) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *GitHostRequest) UnmarshalABI(b []byte) error {
	*m = GitHostRequest{}
	return decode(b, "git host request", m.fields)
}

// GitHost is where the provider's Git repositories are served over HTTPS
// and how an OAuth token authenticates there.
type GitHost struct {
	// URL is the Git host's root, without a trailing slash, credentials
	// or query ("https://github.com", "https://ghe.example.com"); empty
	// means the provider has no Git host for these endpoints.
	URL string
	// BasicUser is the HTTP Basic user name that goes with the access
	// token as password (GitHub "x-access-token", GitLab "oauth2",
	// Bitbucket "x-token-auth").
	BasicUser string
}

func (m *GitHost) fields(f fields) fields {
	f.str(1, &m.URL)
	f.str(2, &m.BasicUser)
	return f
}

func (m *GitHost) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *GitHost) UnmarshalABI(b []byte) error {
	*m = GitHost{}
	return decode(b, "git host", m.fields)
}

// Empty is the payload of operations that return nothing (revoke).
type Empty struct{}

func (*Empty) fields(f fields) fields {
	return f
}

func (m *Empty) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *Empty) UnmarshalABI(b []byte) error {
	*m = Empty{}
	return decode(b, "empty", m.fields)
}

// Header is one HTTP header field, kept in order.
type Header struct {
	Name, Value string
}

func (m *Header) fields(f fields) fields {
	f.str(1, &m.Name)
	f.str(2, &m.Value)
	return f
}

func (m *Header) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *Header) UnmarshalABI(b []byte) error {
	*m = Header{}
	return decode(b, "header", m.fields)
}

// HTTPRequest is what a plugin hands to http_do.
type HTTPRequest struct {
	Method  string
	URL     string
	Headers []Header
	Body    []byte
}

func (m *HTTPRequest) fields(f fields) fields {
	f.str(1, &m.Method)
	f.str(2, &m.URL)
	msgs(&f, 3, &m.Headers)
	f.bytes(4, &m.Body)
	return f
}

func (m *HTTPRequest) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *HTTPRequest) UnmarshalABI(b []byte) error {
	*m = HTTPRequest{}
	return decode(b, "http request", m.fields)
}

// HTTPResponse is what http_do returns. When the host refused or failed the
// request, Code and Message say why and Status is 0.
type HTTPResponse struct {
	Status  int
	Headers []Header
	Body    []byte
	Code    Code
	Message string
	// Retryable is set with Code for transient failures (timeouts,
	// connection errors).
	Retryable bool
}

func (m *HTTPResponse) fields(f fields) fields {
	f.int(1, &m.Status)
	msgs(&f, 2, &m.Headers)
	f.bytes(3, &m.Body)
	f.str(4, (*string)(&m.Code))
	f.str(5, &m.Message)
	f.bool(6, &m.Retryable)
	return f
}

func (m *HTTPResponse) AppendABI(b []byte) []byte { return m.fields(fields{b: b}).b }
func (m *HTTPResponse) UnmarshalABI(b []byte) error {
	*m = HTTPResponse{}
	return decode(b, "http response", m.fields)
}

// AppendResult appends a successful Result whose payload is m, encoding m
// in place rather than into a separate buffer first.
func AppendResult(b []byte, m Message) []byte {
	return appendMessage(b, 1, m)
}

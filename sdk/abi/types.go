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

func (m *Result) AppendABI(b []byte) []byte {
	b = appendBytes(b, 1, m.Payload)
	b = appendString(b, 2, string(m.Code))
	b = appendString(b, 3, m.Message)
	b = appendBool(b, 4, m.Retryable)
	b = appendInt(b, 5, int64(m.Status))
	b = appendInt(b, 6, int64(m.RetryAfter))
	return b
}

func (m *Result) UnmarshalABI(b []byte) error {
	*m = Result{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			m.Payload = d.bytes()
		case 2:
			m.Code = Code(d.str())
		case 3:
			m.Message = d.str()
		case 4:
			m.Retryable = d.boolean()
		case 5:
			m.Status = int(d.int())
		case 6:
			m.RetryAfter = int(d.int())
		default:
			d.skip()
		}
	}
	return d.err("result")
}

// Client is the OAuth client the operator registered with the provider.
type Client struct {
	ID string
	// Secret is sent only with exchange, refresh and revoke.
	Secret string
}

func (m *Client) AppendABI(b []byte) []byte {
	b = appendString(b, 1, m.ID)
	return appendString(b, 2, m.Secret)
}

func (m *Client) UnmarshalABI(b []byte) error {
	*m = Client{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			m.ID = d.str()
		case 2:
			m.Secret = d.str()
		default:
			d.skip()
		}
	}
	return d.err("client")
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

func (m *Endpoints) AppendABI(b []byte) []byte {
	b = appendString(b, 1, m.AuthorizeURL)
	b = appendString(b, 2, m.TokenURL)
	b = appendString(b, 3, m.APIBase)
	return appendString(b, 4, m.RevokeURL)
}

func (m *Endpoints) UnmarshalABI(b []byte) error {
	*m = Endpoints{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			m.AuthorizeURL = d.str()
		case 2:
			m.TokenURL = d.str()
		case 3:
			m.APIBase = d.str()
		case 4:
			m.RevokeURL = d.str()
		default:
			d.skip()
		}
	}
	return d.err("endpoints")
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
}

func (m *AuthorizeRequest) AppendABI(b []byte) []byte {
	b = appendString(b, 1, m.ClientID)
	b = appendMessage(b, 2, &m.Endpoints)
	b = appendString(b, 3, string(m.Purpose))
	b = appendString(b, 4, m.RedirectURI)
	b = appendStrings(b, 5, m.Scopes)
	b = appendString(b, 6, m.State)
	b = appendString(b, 7, m.CodeChallenge)
	return appendString(b, 8, m.CodeChallengeMethod)
}

func (m *AuthorizeRequest) UnmarshalABI(b []byte) error {
	*m = AuthorizeRequest{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			m.ClientID = d.str()
		case 2:
			d.msg(&m.Endpoints)
		case 3:
			m.Purpose = Purpose(d.str())
		case 4:
			m.RedirectURI = d.str()
		case 5:
			m.Scopes = append(m.Scopes, d.str())
		case 6:
			m.State = d.str()
		case 7:
			m.CodeChallenge = d.str()
		case 8:
			m.CodeChallengeMethod = d.str()
		default:
			d.skip()
		}
	}
	return d.err("authorize request")
}

// Param is one query parameter, kept in order.
type Param struct {
	Name, Value string
}

func (m *Param) AppendABI(b []byte) []byte {
	b = appendString(b, 1, m.Name)
	return appendString(b, 2, m.Value)
}

func (m *Param) UnmarshalABI(b []byte) error {
	*m = Param{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			m.Name = d.str()
		case 2:
			m.Value = d.str()
		default:
			d.skip()
		}
	}
	return d.err("param")
}

// AuthorizeResult holds the authorization URL's query parameters. The host
// appends them to Endpoints.AuthorizeURL.
type AuthorizeResult struct {
	Params []Param
}

func (m *AuthorizeResult) AppendABI(b []byte) []byte {
	for i := range m.Params {
		b = appendMessage(b, 1, &m.Params[i])
	}
	return b
}

func (m *AuthorizeResult) UnmarshalABI(b []byte) error {
	*m = AuthorizeResult{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			var p Param
			d.msg(&p)
			m.Params = append(m.Params, p)
		default:
			d.skip()
		}
	}
	return d.err("authorize result")
}

// ExchangeRequest exchanges an authorization code.
type ExchangeRequest struct {
	Client       Client
	Endpoints    Endpoints
	Code         string
	RedirectURI  string
	CodeVerifier string
}

func (m *ExchangeRequest) AppendABI(b []byte) []byte {
	b = appendMessage(b, 1, &m.Client)
	b = appendMessage(b, 2, &m.Endpoints)
	b = appendString(b, 3, m.Code)
	b = appendString(b, 4, m.RedirectURI)
	return appendString(b, 5, m.CodeVerifier)
}

func (m *ExchangeRequest) UnmarshalABI(b []byte) error {
	*m = ExchangeRequest{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			d.msg(&m.Client)
		case 2:
			d.msg(&m.Endpoints)
		case 3:
			m.Code = d.str()
		case 4:
			m.RedirectURI = d.str()
		case 5:
			m.CodeVerifier = d.str()
		default:
			d.skip()
		}
	}
	return d.err("exchange request")
}

// RefreshRequest uses a refresh token.
type RefreshRequest struct {
	Client       Client
	Endpoints    Endpoints
	RefreshToken string
	// Scopes, when set, asks for a narrower grant.
	Scopes []string
}

func (m *RefreshRequest) AppendABI(b []byte) []byte {
	b = appendMessage(b, 1, &m.Client)
	b = appendMessage(b, 2, &m.Endpoints)
	b = appendString(b, 3, m.RefreshToken)
	return appendStrings(b, 4, m.Scopes)
}

func (m *RefreshRequest) UnmarshalABI(b []byte) error {
	*m = RefreshRequest{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			d.msg(&m.Client)
		case 2:
			d.msg(&m.Endpoints)
		case 3:
			m.RefreshToken = d.str()
		case 4:
			m.Scopes = append(m.Scopes, d.str())
		default:
			d.skip()
		}
	}
	return d.err("refresh request")
}

// RevokeRequest revokes a user's grant. Either token may be empty; the
// plugin revokes what its provider supports.
type RevokeRequest struct {
	Client       Client
	Endpoints    Endpoints
	AccessToken  string
	RefreshToken string
}

func (m *RevokeRequest) AppendABI(b []byte) []byte {
	b = appendMessage(b, 1, &m.Client)
	b = appendMessage(b, 2, &m.Endpoints)
	b = appendString(b, 3, m.AccessToken)
	return appendString(b, 4, m.RefreshToken)
}

func (m *RevokeRequest) UnmarshalABI(b []byte) error {
	*m = RevokeRequest{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			d.msg(&m.Client)
		case 2:
			d.msg(&m.Endpoints)
		case 3:
			m.AccessToken = d.str()
		case 4:
			m.RefreshToken = d.str()
		default:
			d.skip()
		}
	}
	return d.err("revoke request")
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

func (m *Token) AppendABI(b []byte) []byte {
	b = appendString(b, 1, m.AccessToken)
	b = appendString(b, 2, m.RefreshToken)
	b = appendString(b, 3, m.TokenType)
	b = appendInt(b, 4, m.ExpiresIn)
	b = appendInt(b, 5, m.RefreshExpiresIn)
	b = appendStrings(b, 6, m.Scopes)
	return appendString(b, 7, m.IDToken)
}

func (m *Token) UnmarshalABI(b []byte) error {
	*m = Token{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			m.AccessToken = d.str()
		case 2:
			m.RefreshToken = d.str()
		case 3:
			m.TokenType = d.str()
		case 4:
			m.ExpiresIn = d.int()
		case 5:
			m.RefreshExpiresIn = d.int()
		case 6:
			m.Scopes = append(m.Scopes, d.str())
		case 7:
			m.IDToken = d.str()
		default:
			d.skip()
		}
	}
	return d.err("token")
}

// UserRequest asks who owns an access token.
type UserRequest struct {
	Endpoints   Endpoints
	AccessToken string
}

func (m *UserRequest) AppendABI(b []byte) []byte {
	b = appendMessage(b, 1, &m.Endpoints)
	return appendString(b, 2, m.AccessToken)
}

func (m *UserRequest) UnmarshalABI(b []byte) error {
	*m = UserRequest{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			d.msg(&m.Endpoints)
		case 2:
			m.AccessToken = d.str()
		default:
			d.skip()
		}
	}
	return d.err("user request")
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

func (m *User) AppendABI(b []byte) []byte {
	b = appendString(b, 1, m.ID)
	b = appendString(b, 2, m.Login)
	b = appendString(b, 3, m.Name)
	b = appendString(b, 4, m.Email)
	b = appendBool(b, 5, m.EmailVerified)
	b = appendString(b, 6, m.AvatarURL)
	return appendString(b, 7, m.ProfileURL)
}

func (m *User) UnmarshalABI(b []byte) error {
	*m = User{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			m.ID = d.str()
		case 2:
			m.Login = d.str()
		case 3:
			m.Name = d.str()
		case 4:
			m.Email = d.str()
		case 5:
			m.EmailVerified = d.boolean()
		case 6:
			m.AvatarURL = d.str()
		case 7:
			m.ProfileURL = d.str()
		default:
			d.skip()
		}
	}
	return d.err("user")
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

func (m *ReposRequest) AppendABI(b []byte) []byte {
	b = appendMessage(b, 1, &m.Endpoints)
	b = appendString(b, 2, m.AccessToken)
	b = appendString(b, 3, m.Cursor)
	return appendInt(b, 4, int64(m.PerPage))
}

func (m *ReposRequest) UnmarshalABI(b []byte) error {
	*m = ReposRequest{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			d.msg(&m.Endpoints)
		case 2:
			m.AccessToken = d.str()
		case 3:
			m.Cursor = d.str()
		case 4:
			m.PerPage = int(d.int())
		default:
			d.skip()
		}
	}
	return d.err("repos request")
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

func (m *Repo) AppendABI(b []byte) []byte {
	b = appendString(b, 1, m.ID)
	b = appendString(b, 2, m.FullName)
	b = appendString(b, 3, m.Description)
	b = appendBool(b, 4, m.Private)
	b = appendString(b, 5, m.DefaultBranch)
	b = appendString(b, 6, m.HTMLURL)
	b = appendString(b, 7, m.CloneURL)
	return appendInt(b, 8, m.UpdatedAt)
}

func (m *Repo) UnmarshalABI(b []byte) error {
	*m = Repo{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			m.ID = d.str()
		case 2:
			m.FullName = d.str()
		case 3:
			m.Description = d.str()
		case 4:
			m.Private = d.boolean()
		case 5:
			m.DefaultBranch = d.str()
		case 6:
			m.HTMLURL = d.str()
		case 7:
			m.CloneURL = d.str()
		case 8:
			m.UpdatedAt = d.int()
		default:
			d.skip()
		}
	}
	return d.err("repo")
}

// RepoPage is one page of repositories.
type RepoPage struct {
	Repos []Repo
	// NextCursor is empty on the last page.
	NextCursor string
}

func (m *RepoPage) AppendABI(b []byte) []byte {
	for i := range m.Repos {
		b = appendMessage(b, 1, &m.Repos[i])
	}
	return appendString(b, 2, m.NextCursor)
}

func (m *RepoPage) UnmarshalABI(b []byte) error {
	*m = RepoPage{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			m.Repos = append(m.Repos, Repo{})
			d.msg(&m.Repos[len(m.Repos)-1])
		case 2:
			m.NextCursor = d.str()
		default:
			d.skip()
		}
	}
	return d.err("repo page")
}

// Empty is the payload of operations that return nothing (revoke).
type Empty struct{}

func (*Empty) AppendABI(b []byte) []byte { return b }

func (m *Empty) UnmarshalABI(b []byte) error {
	d := decoder{b: b}
	for d.next() {
		d.skip()
	}
	return d.err("empty")
}

// Header is one HTTP header field, kept in order.
type Header struct {
	Name, Value string
}

func (m *Header) AppendABI(b []byte) []byte {
	b = appendString(b, 1, m.Name)
	return appendString(b, 2, m.Value)
}

func (m *Header) UnmarshalABI(b []byte) error {
	*m = Header{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			m.Name = d.str()
		case 2:
			m.Value = d.str()
		default:
			d.skip()
		}
	}
	return d.err("header")
}

// HTTPRequest is what a plugin hands to http_do.
type HTTPRequest struct {
	Method  string
	URL     string
	Headers []Header
	Body    []byte
}

func (m *HTTPRequest) AppendABI(b []byte) []byte {
	b = appendString(b, 1, m.Method)
	b = appendString(b, 2, m.URL)
	for i := range m.Headers {
		b = appendMessage(b, 3, &m.Headers[i])
	}
	return appendBytes(b, 4, m.Body)
}

func (m *HTTPRequest) UnmarshalABI(b []byte) error {
	*m = HTTPRequest{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			m.Method = d.str()
		case 2:
			m.URL = d.str()
		case 3:
			m.Headers = append(m.Headers, Header{})
			d.msg(&m.Headers[len(m.Headers)-1])
		case 4:
			m.Body = d.bytes()
		default:
			d.skip()
		}
	}
	return d.err("http request")
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

func (m *HTTPResponse) AppendABI(b []byte) []byte {
	b = appendInt(b, 1, int64(m.Status))
	for i := range m.Headers {
		b = appendMessage(b, 2, &m.Headers[i])
	}
	b = appendBytes(b, 3, m.Body)
	b = appendString(b, 4, string(m.Code))
	b = appendString(b, 5, m.Message)
	return appendBool(b, 6, m.Retryable)
}

func (m *HTTPResponse) UnmarshalABI(b []byte) error {
	*m = HTTPResponse{}
	d := decoder{b: b}
	for d.next() {
		switch d.field {
		case 1:
			m.Status = int(d.int())
		case 2:
			m.Headers = append(m.Headers, Header{})
			d.msg(&m.Headers[len(m.Headers)-1])
		case 3:
			m.Body = d.bytes()
		case 4:
			m.Code = Code(d.str())
		case 5:
			m.Message = d.str()
		case 6:
			m.Retryable = d.boolean()
		default:
			d.skip()
		}
	}
	return d.err("http response")
}

// AppendResult appends a successful Result whose payload is m, encoding m
// in place rather than into a separate buffer first.
func AppendResult(b []byte, m Message) []byte {
	return appendMessage(b, 1, m)
}

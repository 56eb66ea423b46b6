package plugin

import (
	"context"
	"strings"
)

// API says how a provider's REST API is called with a user's access
// token: the fields every call carries and how answers are judged. Declare
// it once per plugin and bind it to one operation's base URL and token with
// For; the zero value is right for most providers (Bearer token, JSON,
// CheckResponse).
//
//	var api = plugin.API{Header: plugin.Header{
//		"Accept":               {"application/vnd.github+json"},
//		"X-Github-Api-Version": {"2022-11-28"},
//	}}
//
//	c, err := api.For(r.Endpoints, r.AccessToken)
//	if err != nil {
//		return nil, err // no API base URL is configured
//	}
//	resp, err := c.Get(ctx, "/user/emails")
//	if err != nil {
//		return nil, err // 401 is invalid_token, 429 rate_limited, …
//	}
//
// Its User and Repos methods do the whole of the usual User and Repos
// operations.
type API struct {
	// Header holds fields sent with every call. The token goes in
	// Authorization with the Bearer scheme, and Accept is
	// application/json, unless Header sets them.
	Header Header
	// Scheme is the Authorization scheme in front of the token: "Bearer"
	// when empty (RFC 6750), "token" for GitHub's and Gitea's older form
	// (https://docs.gitea.com/development/api-usage, "Authorization:
	// token …").
	Scheme string
	// TokenParam, when set, sends the token as this query parameter of
	// every call instead of in Authorization (Gitee: "access_token",
	// https://gitee.com/api/v5/swagger). The Caller removes it from the
	// next-page URLs it returns as cursors, so that the token never
	// leaves the plugin in a cursor; CheckResponse's messages and the
	// host's leave the query out.
	TokenParam string
	// Check judges the answers of Caller.Get and Caller.Page: nil for
	// success, else the error the operation returns. It is CheckResponse
	// when nil; a provider with signals of its own wraps CheckResponse
	// (Bitbucket marks its 4xx refusals permanent).
	Check func(method, url string, r *Response) error
}

// For binds the API to one operation's base URL (e.APIBase) and access
// token. It fails with invalid_request when no API base URL is configured.
func (a API) For(e Endpoints, token string) (*Caller, error) {
	if e.APIBase == "" {
		return nil, ErrInvalidRequest("no API base URL is configured")
	}
	h := Header{"Accept": {"application/json"}}
	c := &Caller{base: e.APIBase, header: h, check: a.Check}
	switch {
	case a.TokenParam != "":
		c.param, c.token = a.TokenParam, token
	case a.Scheme != "":
		h["Authorization"] = []string{a.Scheme + " " + token}
	default:
		h["Authorization"] = []string{"Bearer " + token}
	}
	for k, v := range a.Header {
		h[CanonicalHeaderKey(k)] = v
	}
	if c.check == nil {
		c.check = CheckResponse
	}
	return c, nil
}

// Caller calls a provider's API for one operation with one access token
// (API.For makes it). Every request it sends stays under the API base
// URL, the only place the user's token may go: a path ("/user") is taken
// relative to the base, and a URL elsewhere (a cursor from the caller, a
// next link from the provider) is refused with invalid_request before
// anything is sent.
type Caller struct {
	base   string
	header Header
	check  func(method, url string, r *Response) error
	// param, when set, is the query parameter that carries token.
	param, token string
}

// Base returns the API base URL ("https://api.github.com").
func (c *Caller) Base() string { return c.base }

// Owns reports whether u is a URL under the API base (and does not climb
// out of it with "/../").
func (c *Caller) Owns(u string) bool {
	return strings.HasPrefix(u, c.base+"/") && !strings.Contains(u, "/../") && !strings.HasSuffix(u, "/..")
}

// resolve returns ref, a path under the base or a URL on it, as a URL.
func (c *Caller) resolve(ref string) (string, error) {
	if strings.HasPrefix(ref, "/") {
		return c.base + ref, nil
	}
	if !c.Owns(ref) {
		return "", ErrInvalidRequest("the URL is not a page of this provider's API")
	}
	return ref, nil
}

// Do sends req with the token and the API's header fields (those req does
// not set itself). req.URL is a path under the API base or a URL on it.
// Like the package's Do it does not judge the status: use it for an
// answer the plugin reads itself.
func (c *Caller) Do(ctx context.Context, req *Request) (*Response, error) {
	u, err := c.resolve(req.URL)
	if err != nil {
		return nil, err
	}
	if c.param != "" {
		u = setParam(u, c.param, c.token)
	}
	req.URL = u
	if req.Header == nil {
		req.Header = Header{}
	}
	for k, v := range c.header {
		if _, set := req.Header[k]; !set {
			req.Header[k] = v
		}
	}
	return Do(ctx, req)
}

// Get sends a GET of ref (a path under the API base or a URL on it) and
// judges the answer with the API's Check: an error status is an error.
func (c *Caller) Get(ctx context.Context, ref string) (*Response, error) {
	req := NewRequest("GET", ref, nil)
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := c.check("GET", req.URL, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// Paging is how a provider's list says where it goes on, and so what a
// list's cursor holds.
type Paging int

const (
	// PagingLink follows the Link header's rel="next" URL (RFC 8288;
	// GitHub, Gitea): the cursor is that URL.
	PagingLink Paging = iota
	// PagingNextPage follows the X-Next-Page header (GitLab): the cursor
	// is the next page's number, which Page adds to the first page's URL
	// as page=N. An answer without the header (GitLab's keyset
	// pagination) goes on through its Link header, as with PagingLink.
	PagingNextPage
)

// Page reads one page of a list paged by PagingLink or PagingNextPage
// (Caller.List reads every style and adds the page size parameters):
// first (a path under the API base) when cursor is "", else the page the
// cursor names. It returns the answer,
// judged as Get does, and the next page's cursor, "" after the last page.
// A cursor that names no page of this API is invalid_request, and nothing
// is sent.
//
//	per := plugin.PerPage(r.PerPage, 100)
//	resp, next, err := c.Page(ctx, plugin.PagingLink, "/user/repos?per_page="+strconv.Itoa(per), r.Cursor)
//	if err != nil {
//		return nil, err
//	}
//	repos, err := plugin.GitHubRepoFields.Append(make([]plugin.Repo, 0, per), resp.Body)
//	return &plugin.RepoPage{Repos: repos, NextCursor: next}, err
func (c *Caller) Page(ctx context.Context, p Paging, first, cursor string) (resp *Response, next string, err error) {
	ref := first
	switch {
	case cursor == "":
	case p == PagingNextPage && isDigits(cursor):
		sep := "?"
		if strings.Contains(first, "?") {
			sep = "&"
		}
		ref = first + sep + "page=" + cursor
	case c.Owns(cursor):
		ref = cursor
	default:
		return nil, "", ErrInvalidRequest("the cursor is not a page of this provider's API")
	}
	resp, err = c.Get(ctx, ref)
	if err != nil {
		return nil, "", err
	}
	if _, ok := resp.Header["X-Next-Page"]; ok && p == PagingNextPage {
		return resp, strings.TrimSpace(resp.Header.Get("X-Next-Page")), nil
	}
	return resp, c.cursorOf(NextLink(resp.Header)), nil
}

// cursorOf returns a next-page URL as a cursor: without the token's query
// parameter, which Do adds again.
func (c *Caller) cursorOf(u string) string {
	if c.param == "" || u == "" {
		return u
	}
	return setParam(u, c.param, "")
}

// setParam returns u with every name=… parameter of its query removed and,
// if value is not empty, name=value appended.
func setParam(u, name, value string) string {
	base, query, _ := strings.Cut(u, "?")
	frag := ""
	if i := strings.IndexByte(query, '#'); i >= 0 {
		query, frag = query[:i], query[i:]
	}
	var b strings.Builder
	b.Grow(len(u) + len(name) + len(value) + 2)
	b.WriteString(base)
	sep := byte('?')
	for part := range strings.SplitSeq(query, "&") {
		if k, _, _ := strings.Cut(part, "="); part == "" || k == name || k == QueryEscape(name) {
			continue
		}
		b.WriteByte(sep)
		b.WriteString(part)
		sep = '&'
	}
	if value != "" {
		b.WriteByte(sep)
		b.WriteString(QueryEscape(name))
		b.WriteByte('=')
		b.WriteString(QueryEscape(value))
	}
	b.WriteString(frag)
	return b.String()
}

// User reads the user object at path (under the API base) with f: the
// whole of most providers' User operation. It returns the Caller too, for
// further calls with the same token (GitHub's /user/emails).
//
//	func (*gitlab) User(ctx context.Context, r *plugin.UserRequest) (*plugin.User, error) {
//		u, _, err := api.User(ctx, r, "/user", userFields)
//		return u, err
//	}
func (a API) User(ctx context.Context, r *UserRequest, path string, f UserFields) (*User, *Caller, error) {
	c, err := a.For(r.Endpoints, r.AccessToken)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.Get(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	u, err := f.Parse(resp)
	if err != nil {
		return nil, nil, err
	}
	return u, c, nil
}

// Repos reads one page of a repository list that is a JSON array, with f:
// the first page at first (a path under the API base), else the page
// r.Cursor names (see Caller.Page). It is the whole of most providers'
// Repos operation.
//
//	func (*gitea) Repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
//		per := strconv.Itoa(plugin.PerPage(r.PerPage, 50))
//		return api.Repos(ctx, r, plugin.PagingLink, "/user/repos?limit="+per, plugin.GitHubRepoFields)
//	}
func (a API) Repos(ctx context.Context, r *ReposRequest, p Paging, first string, f RepoFields) (*RepoPage, error) {
	c, err := a.For(r.Endpoints, r.AccessToken)
	if err != nil {
		return nil, err
	}
	resp, next, err := c.Page(ctx, p, first, r.Cursor)
	if err != nil {
		return nil, err
	}
	repos, err := f.Append(make([]Repo, 0, PerPage(r.PerPage, 100)), resp.Body)
	if err != nil {
		return nil, err
	}
	return &RepoPage{Repos: repos, NextCursor: next}, nil
}

// PerPage returns the page size to ask for: n, or max when n is 0 or
// beyond what the provider serves.
func PerPage(n, max int) int {
	if n <= 0 || n > max {
		return max
	}
	return n
}

// isDigits reports a non-empty string of decimal digits.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

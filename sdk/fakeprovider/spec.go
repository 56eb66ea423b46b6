package fakeprovider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Spec describes a fake provider as data, for providers that are not
// built in: the paths of its endpoints, how each grant takes its
// parameters and client credentials, where the API takes the access
// token, how lists page and what the user, e-mail and repository objects
// are called. Config turns it into a Config of FlavorGeneric; the fake
// then enforces what the Spec says, as it enforces a preset's quirks (a
// refresh whose parameters are in the body when the Spec says query is
// refused with invalid_request, an API call with the token in a header
// when the Spec says query is unauthenticated).
//
// A Spec is what `arbor plugin test PATH --fake-config FILE` reads (JSON
// or YAML, strict: an unknown key is an error) and what
// plugintest.Suite.FakeSpec takes in Go. The zero Spec is the generic fake
// (Config{}); GenericSpec writes it out. Every field documents its
// default. docs/fake-providers.md shows a Gitee example.
type Spec struct {
	// Name is shown on the consent page. Default "OAuth provider".
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// ClientID and ClientSecret of the fake's one client. Defaults
	// "fake-client-id" and "fake-client-secret".
	ClientID     string `json:"client_id,omitempty" yaml:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty" yaml:"client_secret,omitempty"`
	// Paths of the endpoints. Default (all empty): the generic paths.
	Paths SpecPaths `json:"paths,omitzero" yaml:"paths,omitempty"`
	// Tokens shapes the tokens and the token endpoint's answers.
	Tokens SpecTokens `json:"tokens,omitzero" yaml:"tokens,omitempty"`
	// Grants, by grant type ("authorization_code", "refresh_token"): where
	// the parameters go and how the client authenticates. Default, for a
	// grant without an entry: parameters in the body, client credentials
	// in the body or HTTP Basic (exactly one).
	Grants map[string]SpecGrant `json:"grants,omitempty" yaml:"grants,omitempty"`
	// API says where the API takes the access token.
	API SpecAPI `json:"api,omitzero" yaml:"api,omitempty"`
	// Paging is how list endpoints (e-mails, repositories) page.
	Paging SpecPaging `json:"paging,omitzero" yaml:"paging,omitempty"`
	// Fields rename the user's and the repositories' fields.
	Fields SpecFields `json:"fields,omitzero" yaml:"fields,omitempty"`
	// Emails is the shape of the e-mail objects.
	Emails SpecEmails `json:"emails,omitzero" yaml:"emails,omitempty"`
	// Scopes granted when the authorization request names none. Default
	// none.
	DefaultScopes []string `json:"default_scopes,omitempty" yaml:"default_scopes,omitempty"`
	// Users are the fake accounts, the first the default. Default: one
	// user, fakeuser (id 1, fakeuser@example.com verified, 3
	// repositories).
	Users []SpecUser `json:"users,omitempty" yaml:"users,omitempty"`
	// Memberships are the groups each user (by login) belongs to, served
	// at paths.groups as [{"id", "name"}]. Default none.
	Memberships map[string][]string `json:"memberships,omitempty" yaml:"memberships,omitempty"`
}

// SpecPaths are the endpoints' paths on the fake's host. When all are
// empty, they are the generic ones (/login/oauth/authorize,
// /login/oauth/access_token, /api/v1/user, /api/v1/user/emails,
// /api/v1/user/repos, /api/v1/user/groups); otherwise an empty one means
// the provider has no such endpoint, and authorize, token and user are
// required.
type SpecPaths struct {
	Authorize string `json:"authorize,omitempty" yaml:"authorize,omitempty"`
	Token     string `json:"token,omitempty" yaml:"token,omitempty"`
	// Revoke is an RFC 7009 revocation endpoint (client authentication as
	// the token endpoint's default). Default none.
	Revoke string `json:"revoke,omitempty" yaml:"revoke,omitempty"`
	User   string `json:"user,omitempty" yaml:"user,omitempty"`
	Emails string `json:"emails,omitempty" yaml:"emails,omitempty"`
	Repos  string `json:"repos,omitempty" yaml:"repos,omitempty"`
	// Groups lists the user's groups as [{"id", "name"}]. Default none.
	Groups string `json:"groups,omitempty" yaml:"groups,omitempty"`
}

// SpecTokens shape tokens and token answers.
type SpecTokens struct {
	// Type is the token_type answered. Default "Bearer".
	Type string `json:"type,omitempty" yaml:"type,omitempty"`
	// AccessLifetime is a Go duration ("2h", "86400s"); "" or "0" means
	// access tokens never expire and expires_in is left out. Default "".
	AccessLifetime string `json:"access_lifetime,omitempty" yaml:"access_lifetime,omitempty"`
	// Refresh issues refresh tokens. Default false.
	Refresh bool `json:"refresh,omitempty" yaml:"refresh,omitempty"`
	// Rotate replaces the refresh token at every refresh (the old one then
	// fails). Default false: the refresh answer has no refresh_token and
	// the old one stays valid.
	Rotate bool `json:"rotate,omitempty" yaml:"rotate,omitempty"`
	// RefreshLifetime is a Go duration; "" or "0": refresh tokens do not
	// expire. Default "".
	RefreshLifetime string `json:"refresh_lifetime,omitempty" yaml:"refresh_lifetime,omitempty"`
	// InvalidateAccessOnRefresh kills a grant's older access tokens at
	// every refresh. Default false.
	InvalidateAccessOnRefresh bool `json:"invalidate_access_on_refresh,omitempty" yaml:"invalidate_access_on_refresh,omitempty"`
	// CreatedAt adds created_at (Unix seconds) to token answers. Default
	// false.
	CreatedAt bool `json:"created_at,omitempty" yaml:"created_at,omitempty"`
	// ScopeSeparator joins the granted scopes in the answer. Default " ".
	ScopeSeparator string `json:"scope_separator,omitempty" yaml:"scope_separator,omitempty"`
}

// SpecGrant is how the token endpoint takes one grant.
type SpecGrant struct {
	// Params is where the grant's parameters (grant_type, code,
	// redirect_uri, code_verifier, refresh_token, scope) go: "body" (the
	// default) or "query". A client_secret always goes in the body.
	Params string `json:"params,omitempty" yaml:"params,omitempty"`
	// ClientAuth is "either" (the default: body or HTTP Basic, exactly
	// one), "body", "basic" or "none" (no client credentials at all).
	ClientAuth string `json:"client_auth,omitempty" yaml:"client_auth,omitempty"`
}

// SpecAPI is where API calls carry the access token.
type SpecAPI struct {
	// Token lists the accepted placements: "bearer" (Authorization:
	// Bearer …), "token" (Authorization: token …) and "query"
	// (?access_token=…). A placement not listed is ignored, so a request
	// using only it is unauthenticated (401). Default ["bearer"].
	Token []string `json:"token,omitempty" yaml:"token,omitempty"`
}

// SpecPaging is how list endpoints page. The names default to the
// style's own (PagingNames).
type SpecPaging struct {
	// Style is "link" (RFC 8288 Link header, the default),
	// "x-next-page" (GitLab's X-Next-Page, X-Total-Pages and X-Total
	// headers, and a Link header), "total-pages" (a total-pages and a
	// total-count header only, Gitee) or "body-next" (a JSON object with
	// the items and the next page's URL, Bitbucket).
	Style string `json:"style,omitempty" yaml:"style,omitempty"`
	// Page and PerPage are the query parameters. Defaults "page" and
	// "per_page" ("pagelen" for body-next).
	Page    string `json:"page,omitempty" yaml:"page,omitempty"`
	PerPage string `json:"per_page,omitempty" yaml:"per_page,omitempty"`
	// NextPageHeader is x-next-page's header. Default "X-Next-Page".
	NextPageHeader string `json:"next_page_header,omitempty" yaml:"next_page_header,omitempty"`
	// TotalPagesHeader is the total-pages header of x-next-page and
	// total-pages. Default "X-Total-Pages".
	TotalPagesHeader string `json:"total_pages_header,omitempty" yaml:"total_pages_header,omitempty"`
	// TotalCountHeader is the item-count header: x-next-page and
	// total-pages send it (default "X-Total"), link only when it is set.
	TotalCountHeader string `json:"total_count_header,omitempty" yaml:"total_count_header,omitempty"`
	// NextField and ItemsField are body-next's fields. Defaults "next" and
	// "values".
	NextField  string `json:"next_field,omitempty" yaml:"next_field,omitempty"`
	ItemsField string `json:"items_field,omitempty" yaml:"items_field,omitempty"`
	// Size is the default page size, MaxSize the largest honoured.
	// Defaults 30 and 100.
	Size    int `json:"size,omitempty" yaml:"size,omitempty"`
	MaxSize int `json:"max_size,omitempty" yaml:"max_size,omitempty"`
}

// SpecFields rename object fields: see FieldMap for the keys, their
// generic names, dotted paths and "" (leave the field out).
type SpecFields struct {
	User FieldMap `json:"user,omitempty" yaml:"user,omitempty"`
	Repo FieldMap `json:"repo,omitempty" yaml:"repo,omitempty"`
}

// SpecEmails is the shape of the e-mail objects (EmailShape).
type SpecEmails struct {
	// Style is "flags" ({"email", "verified", "primary"}, the default) or
	// "state-scope" (Gitee's {"email", "state": "confirmed", "scope":
	// ["primary", …]}).
	Style string `json:"style,omitempty" yaml:"style,omitempty"`
	// Address is the address field. Default "email".
	Address string `json:"address,omitempty" yaml:"address,omitempty"`
	// Primary and Verified are the flags style's fields. Defaults
	// "primary" and "verified".
	Primary  string `json:"primary,omitempty" yaml:"primary,omitempty"`
	Verified string `json:"verified,omitempty" yaml:"verified,omitempty"`
	// State is the state-scope style's state field (default "state"), with
	// Confirmed (default "confirmed") for a verified address and
	// Unconfirmed (default "unconfirmed") for the others.
	State       string `json:"state,omitempty" yaml:"state,omitempty"`
	Confirmed   string `json:"confirmed,omitempty" yaml:"confirmed,omitempty"`
	Unconfirmed string `json:"unconfirmed,omitempty" yaml:"unconfirmed,omitempty"`
	// Scope is the state-scope style's list field (default "scope"), with
	// PrimaryScopes (default ["primary"]) for the primary address and
	// OtherScopes (default []) for the others.
	Scope         string   `json:"scope,omitempty" yaml:"scope,omitempty"`
	PrimaryScopes []string `json:"primary_scopes,omitempty" yaml:"primary_scopes,omitempty"`
	OtherScopes   []string `json:"other_scopes,omitempty" yaml:"other_scopes,omitempty"`
}

// SpecUser is a fake account (User).
type SpecUser struct {
	// ID is the numeric id; required, unique.
	ID int64 `json:"id" yaml:"id"`
	// Login is the username; required, unique.
	Login string `json:"login" yaml:"login"`
	// Name is the display name. Default "".
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Emails are the addresses. Default none.
	Emails []SpecEmail `json:"emails,omitempty" yaml:"emails,omitempty"`
	// Repos is the number of generated repositories (repo-001, …; every
	// third private). Default 0.
	Repos int `json:"repos,omitempty" yaml:"repos,omitempty"`
}

// SpecEmail is one of a SpecUser's addresses.
type SpecEmail struct {
	Address  string `json:"address" yaml:"address"`
	Primary  bool   `json:"primary,omitempty" yaml:"primary,omitempty"`
	Verified bool   `json:"verified,omitempty" yaml:"verified,omitempty"`
}

// GenericSpec returns the generic fake (Config{}) written out as a Spec:
// every default spelt, so that it can be copied and changed.
// GenericSpec().Config() behaves as Config{}.
func GenericSpec() Spec {
	return Spec{
		Name:         "OAuth provider",
		ClientID:     "fake-client-id",
		ClientSecret: "fake-client-secret",
		Paths: SpecPaths{
			Authorize: "/login/oauth/authorize",
			Token:     "/login/oauth/access_token",
			User:      "/api/v1/user",
			Emails:    "/api/v1/user/emails",
			Repos:     "/api/v1/user/repos",
			Groups:    "/api/v1/user/groups",
		},
		Tokens: SpecTokens{Type: "Bearer", ScopeSeparator: " "},
		Grants: map[string]SpecGrant{
			"authorization_code": {Params: "body", ClientAuth: "either"},
			"refresh_token":      {Params: "body", ClientAuth: "either"},
		},
		API:    SpecAPI{Token: []string{"bearer"}},
		Paging: SpecPaging{Style: "link", Page: "page", PerPage: "per_page", Size: 30, MaxSize: 100},
		Fields: SpecFields{User: maps.Clone(genericUserFields), Repo: maps.Clone(genericRepoFields)},
		Emails: SpecEmails{Style: "flags", Address: "email", Primary: "primary", Verified: "verified"},
		Users: []SpecUser{{ID: 1, Login: "fakeuser", Name: "Fake User", Repos: 3,
			Emails: []SpecEmail{{Address: "fakeuser@example.com", Primary: true, Verified: true}}}},
	}
}

// ParseSpec decodes a JSON Spec strictly (an unknown key is an error) and
// validates it. plugintest.LoadFakeSpec reads YAML too.
func ParseSpec(data []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("fakeprovider: the fake's description: %w", err)
	}
	if dec.More() {
		return Spec{}, errors.New("fakeprovider: the fake's description: more than one JSON value")
	}
	if _, err := s.Config(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// SpecError is a Spec field that is wrong: Field is its path as written
// in a file ("grants.refresh_token.params").
type SpecError struct {
	Field string
	Err   error
}

func (e *SpecError) Error() string {
	return "fakeprovider: the fake's description: " + e.Field + ": " + e.Err.Error()
}

func (e *SpecError) Unwrap() error { return e.Err }

// Validate reports the first wrong field as a *SpecError.
func (s Spec) Validate() error {
	_, err := s.Config()
	return err
}

// Config validates the Spec and returns the Config of the fake it
// describes. The error is a *SpecError naming the wrong field.
func (s Spec) Config() (Config, error) {
	bad := func(field, format string, args ...any) (Config, error) {
		return Config{}, &SpecError{Field: field, Err: fmt.Errorf(format, args...)}
	}
	c := Config{Flavor: FlavorGeneric, Name: s.Name, ClientID: s.ClientID, ClientSecret: s.ClientSecret,
		DefaultScopes: slices.Clone(s.DefaultScopes)}

	// Paths.
	ps := s.Paths
	if ps != (SpecPaths{}) {
		for _, f := range []struct {
			name, v  string
			required bool
		}{
			{"authorize", ps.Authorize, true}, {"token", ps.Token, true}, {"revoke", ps.Revoke, false},
			{"user", ps.User, true}, {"emails", ps.Emails, false}, {"repos", ps.Repos, false}, {"groups", ps.Groups, false},
		} {
			switch {
			case f.v == "" && f.required:
				return bad("paths."+f.name, "required (a path such as /oauth/%s)", f.name)
			case f.v != "" && !strings.HasPrefix(f.v, "/"):
				return bad("paths."+f.name, "%q must be a path starting with /", f.v)
			case strings.ContainsAny(f.v, "?# "):
				return bad("paths."+f.name, "%q must be a bare path, without query, fragment or spaces", f.v)
			}
		}
		c.Paths = Paths{Authorize: ps.Authorize, Token: ps.Token, Revoke: ps.Revoke, User: ps.User,
			Emails: ps.Emails, Repos: ps.Repos, Groups: ps.Groups}
		if ps.Revoke != "" {
			c.Revoke = RevokeRFC7009
		}
	}

	// Tokens.
	t := s.Tokens
	c.Token = TokenResponse{Format: TokenJSON, TokenType: t.Type, ScopeSeparator: t.ScopeSeparator, CreatedAt: t.CreatedAt}
	var err error
	if c.AccessTokenLifetime, err = specDuration(t.AccessLifetime); err != nil {
		return bad("tokens.access_lifetime", "%v", err)
	}
	if c.RefreshTokenLifetime, err = specDuration(t.RefreshLifetime); err != nil {
		return bad("tokens.refresh_lifetime", "%v", err)
	}
	if !t.Refresh {
		switch {
		case t.Rotate:
			return bad("tokens.rotate", "needs tokens.refresh: true")
		case t.RefreshLifetime != "":
			return bad("tokens.refresh_lifetime", "needs tokens.refresh: true")
		}
	}
	c.IssueRefreshTokens, c.RotateRefreshTokens = t.Refresh, t.Rotate
	c.InvalidateAccessOnRefresh = t.InvalidateAccessOnRefresh

	// Grants.
	for _, name := range slices.Sorted(maps.Keys(s.Grants)) {
		g := s.Grants[name]
		field := "grants." + name
		if name != "authorization_code" && name != "refresh_token" {
			return bad(field, "unknown grant (want authorization_code or refresh_token)")
		}
		var rule GrantRule
		switch g.Params {
		case "", "body":
		case "query":
			rule.Params = ParamsInQuery
		default:
			return bad(field+".params", "%q: want body or query", g.Params)
		}
		switch g.ClientAuth {
		case "", "either":
		case "body":
			rule.ClientAuth = ClientAuthBody
		case "basic":
			rule.ClientAuth = ClientAuthBasic
		case "none":
			rule.ClientAuth = ClientAuthNone
		default:
			return bad(field+".client_auth", "%q: want either, body, basic or none", g.ClientAuth)
		}
		if name == "authorization_code" && rule.ClientAuth == ClientAuthNone {
			return bad(field+".client_auth", "none: the code exchange must authenticate the client (the fake has no public clients)")
		}
		if rule == (GrantRule{}) {
			continue // the default: the fake behaves as without an entry
		}
		if name == "refresh_token" && !t.Refresh {
			return bad(field, "the fake issues no refresh tokens: set tokens.refresh: true")
		}
		if c.Grants == nil {
			c.Grants = map[string]GrantRule{}
		}
		c.Grants[name] = rule
	}

	// API token placement.
	if len(s.API.Token) > 0 {
		header := false
		for i, tp := range s.API.Token {
			switch strings.ToLower(tp) {
			case "bearer":
				c.APIAuthSchemes, header = append(c.APIAuthSchemes, "Bearer"), true
			case "token":
				c.APIAuthSchemes, header = append(c.APIAuthSchemes, "token"), true
			case "query":
				c.AccessTokenQueryParam = true
			default:
				return bad(fmt.Sprintf("api.token[%d]", i), "%q: want bearer, token or query", tp)
			}
		}
		c.APITokenQueryOnly = !header
	}

	// Paging.
	pg := s.Paging
	names := PagingNames{Page: pg.Page, PerPage: pg.PerPage, NextPage: pg.NextPageHeader,
		TotalPages: pg.TotalPagesHeader, TotalCount: pg.TotalCountHeader, Next: pg.NextField, Items: pg.ItemsField}
	only := func(style string, set map[string]string) error {
		for _, k := range slices.Sorted(maps.Keys(set)) {
			if set[k] != "" {
				return &SpecError{Field: "paging." + k, Err: fmt.Errorf("not used by paging style %q", style)}
			}
		}
		return nil
	}
	switch pg.Style {
	case "", "link":
		c.Pagination = PaginationLink
		c.TotalCountHeader = pg.TotalCountHeader != ""
		err = only("link", map[string]string{"next_page_header": pg.NextPageHeader, "total_pages_header": pg.TotalPagesHeader,
			"next_field": pg.NextField, "items_field": pg.ItemsField})
	case "x-next-page":
		c.Pagination = PaginationGitLab
		err = only(pg.Style, map[string]string{"next_field": pg.NextField, "items_field": pg.ItemsField})
	case "total-pages":
		c.Pagination = PaginationTotalPages
		err = only(pg.Style, map[string]string{"next_page_header": pg.NextPageHeader, "next_field": pg.NextField, "items_field": pg.ItemsField})
	case "body-next":
		c.Pagination = PaginationBitbucket
		err = only(pg.Style, map[string]string{"next_page_header": pg.NextPageHeader, "total_pages_header": pg.TotalPagesHeader,
			"total_count_header": pg.TotalCountHeader})
	default:
		return bad("paging.style", "%q: want link, x-next-page, total-pages or body-next", pg.Style)
	}
	if err != nil {
		return Config{}, err
	}
	for _, f := range []struct{ field, v string }{{"page", pg.Page}, {"per_page", pg.PerPage}} {
		if strings.ContainsAny(f.v, "&=?# ") {
			return bad("paging."+f.field, "%q is not a query parameter name", f.v)
		}
	}
	if pg.Page != "" && pg.Page == pg.PerPage {
		return bad("paging.per_page", "%q is also paging.page", pg.PerPage)
	}
	for _, f := range []struct{ field, v string }{{"next_page_header", pg.NextPageHeader},
		{"total_pages_header", pg.TotalPagesHeader}, {"total_count_header", pg.TotalCountHeader}} {
		if !validHeaderName(f.v) {
			return bad("paging."+f.field, "%q is not an HTTP header name", f.v)
		}
	}
	switch {
	case pg.Size < 0:
		return bad("paging.size", "%d: want a positive page size (default 30)", pg.Size)
	case pg.MaxSize < 0:
		return bad("paging.max_size", "%d: want a positive page size (default 100)", pg.MaxSize)
	case pg.MaxSize > 0 && pg.Size > pg.MaxSize:
		return bad("paging.size", "%d is larger than paging.max_size %d", pg.Size, pg.MaxSize)
	}
	c.PagingNames, c.PageSize, c.MaxPageSize = names, pg.Size, pg.MaxSize

	// Fields and e-mails.
	if err := checkFieldMap(s.Fields.User, userFieldKeys); err != nil {
		return bad("fields.user", "%v", err)
	}
	if err := checkFieldMap(s.Fields.Repo, repoFieldKeys); err != nil {
		return bad("fields.repo", "%v", err)
	}
	for _, k := range []string{"id", "login"} {
		if v, ok := s.Fields.User[k]; ok && v == "" {
			return bad("fields.user."+k, "cannot be left out: a plugin needs the user's %s", k)
		}
	}
	c.UserFields, c.RepoFields = maps.Clone(s.Fields.User), maps.Clone(s.Fields.Repo)
	e := s.Emails
	shape := EmailShape{Address: e.Address, Primary: e.Primary, Verified: e.Verified, State: e.State,
		Confirmed: e.Confirmed, Unconfirmed: e.Unconfirmed, Scope: e.Scope,
		PrimaryScopes: slices.Clone(e.PrimaryScopes), OtherScopes: slices.Clone(e.OtherScopes)}
	switch e.Style {
	case "", "flags":
		for _, f := range []struct{ field, v string }{{"state", e.State}, {"confirmed", e.Confirmed}, {"unconfirmed", e.Unconfirmed}, {"scope", e.Scope}} {
			if f.v != "" {
				return bad("emails."+f.field, "not used by the flags style (set emails.style: state-scope)")
			}
		}
		if len(e.PrimaryScopes)+len(e.OtherScopes) > 0 {
			return bad("emails.primary_scopes", "not used by the flags style (set emails.style: state-scope)")
		}
	case "state-scope":
		shape.Style = EmailStateScope
		if e.Primary != "" || e.Verified != "" {
			return bad("emails.primary", "not used by the state-scope style (use emails.primary_scopes and emails.confirmed)")
		}
		if e.Confirmed != "" && e.Confirmed == e.Unconfirmed {
			return bad("emails.unconfirmed", "%q is also emails.confirmed", e.Unconfirmed)
		}
		if e.PrimaryScopes != nil && len(e.PrimaryScopes) == 0 {
			return bad("emails.primary_scopes", "empty: the primary address would look like any other")
		}
	default:
		return bad("emails.style", "%q: want flags or state-scope", e.Style)
	}
	c.EmailShape = shape

	// Users.
	logins, ids := map[string]bool{}, map[int64]bool{}
	for i, u := range s.Users {
		field := fmt.Sprintf("users[%d]", i)
		switch {
		case u.Login == "":
			return bad(field+".login", "required")
		case logins[strings.ToLower(u.Login)]:
			return bad(field+".login", "%q is taken by another user", u.Login)
		case u.ID <= 0:
			return bad(field+".id", "want a positive number")
		case ids[u.ID]:
			return bad(field+".id", "%d is taken by another user", u.ID)
		case u.Repos < 0:
			return bad(field+".repos", "%d: want 0 or more", u.Repos)
		}
		logins[strings.ToLower(u.Login)], ids[u.ID] = true, true
		fu := User{ID: u.ID, Login: u.Login, Name: u.Name, Repos: u.Repos}
		primaries := 0
		for j, em := range u.Emails {
			if !strings.Contains(em.Address, "@") {
				return bad(fmt.Sprintf("%s.emails[%d].address", field, j), "%q is not an e-mail address", em.Address)
			}
			if em.Primary {
				primaries++
			}
			fu.Emails = append(fu.Emails, Email{Address: em.Address, Primary: em.Primary, Verified: em.Verified})
		}
		if primaries > 1 {
			return bad(field+".emails", "%d addresses are primary: want at most one", primaries)
		}
		c.Users = append(c.Users, fu)
	}
	known := func(login string) bool {
		if len(s.Users) == 0 {
			return login == "fakeuser" // the default user
		}
		return logins[strings.ToLower(login)]
	}
	for _, login := range slices.Sorted(maps.Keys(s.Memberships)) {
		switch {
		case !known(login):
			return bad("memberships."+login, "no such user (users[].login)")
		case slices.Contains(s.Memberships[login], ""):
			return bad("memberships."+login, "an empty group name")
		}
	}
	if len(s.Memberships) > 0 {
		c.Memberships = map[string][]string{}
		for k, v := range s.Memberships {
			c.Memberships[k] = slices.Clone(v)
		}
	}
	return c, nil
}

// specDuration parses a Spec duration: "" and "0" are 0.
func specDuration(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q: want a Go duration such as 2h or 86400s", s)
	case d < 0:
		return 0, fmt.Errorf("%q: want a positive duration", s)
	case d < time.Second:
		return 0, fmt.Errorf("%q: want at least 1s (expires_in counts seconds)", s)
	}
	return d, nil
}

// validHeaderName reports whether s is "" or an RFC 9110 token.
func validHeaderName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

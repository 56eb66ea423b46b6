package fakeprovider

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ParamPlacement is where a token request carries its grant's parameters
// (grant_type, code, redirect_uri, code_verifier, refresh_token, scope).
type ParamPlacement int

const (
	// ParamsInBody: in the application/x-www-form-urlencoded body (RFC
	// 6749 section 4.1.3). Parameters in the query are refused.
	ParamsInBody ParamPlacement = iota
	// ParamsInQuery: in the URL's query string, as Gitee documents its
	// refresh (POST /oauth/token?grant_type=refresh_token&refresh_token=…,
	// https://gitee.com/api/v5/oauth_doc). Grant parameters in the body are
	// refused; a client_secret, when the grant takes one, still goes in the
	// body and never in the URL.
	ParamsInQuery
)

// String returns the placement's name in a Spec ("body", "query").
func (p ParamPlacement) String() string {
	if p == ParamsInQuery {
		return "query"
	}
	return "body"
}

// GrantRule is how the token endpoint takes one grant (Config.Grants).
type GrantRule struct {
	// Params is where the grant's parameters go. Default ParamsInBody.
	Params ParamPlacement
	// ClientAuth is how the client authenticates for this grant:
	// ClientAuthEither (the zero value), ClientAuthBody, ClientAuthBasic
	// or ClientAuthNone. It replaces Config.ClientAuth for the grant.
	ClientAuth ClientAuth
}

// grantParams are the token request parameters that belong to the grant
// and so follow GrantRule.Params.
var grantParams = []string{"grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope"}

// PagingNames rename what a Pagination style reads and writes. A zero field
// is the style's default, given with each field.
type PagingNames struct {
	// Page is the query parameter of the page number. Default "page".
	Page string
	// PerPage is the query parameter of the page size. Default "per_page"
	// ("pagelen" for PaginationBitbucket).
	PerPage string
	// NextPage is PaginationGitLab's header with the next page's number.
	// Default "X-Next-Page".
	NextPage string
	// TotalPages is the header with the number of pages
	// (PaginationGitLab, PaginationTotalPages). Default "X-Total-Pages".
	TotalPages string
	// TotalCount is the header with the number of items: PaginationGitLab
	// and PaginationTotalPages default "X-Total", PaginationLink (with
	// Config.TotalCountHeader) "X-Total-Count".
	TotalCount string
	// Next and Items are PaginationBitbucket's body fields with the next
	// page's URL and the page's items. Defaults "next" and "values".
	Next  string
	Items string
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// FieldMap renames the fields of a generic (FlavorGeneric) user or
// repository object: key is the fake's name for the value, value the JSON
// field it is sent as, with dots for nested objects ("owner.login"). A key
// that is absent keeps its generic name; a key mapped to "" is left out.
//
// User keys: id, login, name, email, avatar_url (generic names id, login,
// full_name, email, avatar_url). Repository keys: id, name, full_name,
// private, owner_login, owner_id, html_url, clone_url, default_branch
// (generic names the same, owner_login and owner_id as owner.login and
// owner.id).
type FieldMap map[string]string

// userFieldKeys and repoFieldKeys are the keys a FieldMap knows, in the
// order the fields are sent.
var (
	userFieldKeys = []string{"id", "login", "name", "email", "avatar_url"}
	repoFieldKeys = []string{"id", "name", "full_name", "private", "owner_login", "owner_id", "html_url", "clone_url", "default_branch"}
)

// genericUserFields and genericRepoFields are the generic flavor's names.
var (
	genericUserFields = FieldMap{"id": "id", "login": "login", "name": "full_name", "email": "email", "avatar_url": "avatar_url"}
	genericRepoFields = FieldMap{"id": "id", "name": "name", "full_name": "full_name", "private": "private",
		"owner_login": "owner.login", "owner_id": "owner.id", "html_url": "html_url", "clone_url": "clone_url", "default_branch": "default_branch"}
)

// EmailStyle is how an e-mail object says that the address is the primary
// one and that it is verified.
type EmailStyle int

const (
	// EmailFlags: two booleans, {"email", "verified", "primary"} (the
	// generic shape; GitHub's and Gitea's).
	EmailFlags EmailStyle = iota
	// EmailStateScope: a state string and a list of scopes, as Gitee's
	// GET /v5/emails answers: {"email": "…", "state": "confirmed",
	// "scope": ["primary", "notified"]}
	// (https://gitee.com/api/v5/swagger#/getV5Emails).
	EmailStateScope
)

// EmailShape is the shape of a generic fake's e-mail objects. Each zero
// field is the default given with it.
type EmailShape struct {
	Style EmailStyle
	// Address is the field with the address. Default "email".
	Address string
	// Primary and Verified are EmailFlags' boolean fields. Defaults
	// "primary" and "verified".
	Primary  string
	Verified string
	// State is EmailStateScope's state field (default "state"), Confirmed
	// its value for a verified address (default "confirmed") and
	// Unconfirmed for the others (default "unconfirmed").
	State       string
	Confirmed   string
	Unconfirmed string
	// Scope is EmailStateScope's list field (default "scope");
	// PrimaryScopes are its values for the primary address (default
	// ["primary"]), OtherScopes for the others (default none: []).
	Scope         string
	PrimaryScopes []string
	OtherScopes   []string
}

// shapedUser is the generic user object under the configured field names.
func (p *Provider) shapedUser(r *http.Request, u *User) fields {
	email := ""
	if pe := u.PrimaryEmail(); pe != nil {
		email = pe.Address
	}
	vals := map[string]any{"id": u.ID, "login": u.Login, "name": u.Name, "email": email,
		"avatar_url": p.base(r) + "/avatars/" + url.PathEscape(u.Login) + ".png"}
	return shape(userFieldKeys, p.cfg.UserFields, genericUserFields, vals)
}

// shapedRepo is the generic repository object under the configured field
// names.
func shapedRepo(m FieldMap, vals map[string]any) fields {
	return shape(repoFieldKeys, m, genericRepoFields, vals)
}

// shape builds an object from vals, naming each key as m (or def) says.
func shape(keys []string, m, def FieldMap, vals map[string]any) fields {
	var out fields
	for _, k := range keys {
		name, ok := m[k]
		if !ok {
			name = def[k]
		}
		if name == "" {
			continue
		}
		out = setPath(out, strings.Split(name, "."), vals[k])
	}
	return out
}

// setPath sets v at the dotted path in f, creating nested objects.
func setPath(f fields, path []string, v any) fields {
	for i := range f {
		if f[i].k == path[0] {
			if len(path) == 1 {
				f[i].v = v
				return f
			}
			inner, _ := f[i].v.(fields)
			f[i].v = setPath(inner, path[1:], v)
			return f
		}
	}
	if len(path) == 1 {
		return append(f, kv{path[0], v})
	}
	return append(f, kv{path[0], setPath(nil, path[1:], v)})
}

// shapedEmail is one generic e-mail object in the configured shape.
func (s *EmailShape) shapedEmail(e Email) fields {
	out := fields{{or(s.Address, "email"), e.Address}}
	if s.Style == EmailStateScope {
		state := or(s.Confirmed, "confirmed")
		if !e.Verified {
			state = or(s.Unconfirmed, "unconfirmed")
		}
		scopes := s.OtherScopes
		if e.Primary {
			scopes = s.PrimaryScopes
			if scopes == nil {
				scopes = []string{"primary"}
			}
		}
		if scopes == nil {
			scopes = []string{}
		}
		return append(out, kv{or(s.State, "state"), state}, kv{or(s.Scope, "scope"), scopes})
	}
	return append(out, kv{or(s.Verified, "verified"), e.Verified}, kv{or(s.Primary, "primary"), e.Primary})
}

// checkFieldMap returns an error naming the first unknown key or bad name
// of m.
func checkFieldMap(m FieldMap, keys []string) error {
	for k, v := range m {
		known := false
		for _, want := range keys {
			known = known || k == want
		}
		if !known {
			return fmt.Errorf("%q is not a field the fake knows (want one of %s)", k, strings.Join(keys, ", "))
		}
		if v != "" && (strings.HasPrefix(v, ".") || strings.HasSuffix(v, ".") || strings.Contains(v, "..")) {
			return fmt.Errorf("%s: %q is not a field name or a dotted path (owner.login)", k, v)
		}
	}
	return nil
}

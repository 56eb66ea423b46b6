package plugin

import (
	"context"

	"github.com/vintner/arbor/sdk/abi"
)

// Provider declares a whole provider: register one and it is the plugin.
// The fields say what most providers share (the token requests, how the
// API takes the token, where the user, the addresses and the
// repositories are and what their members are called); the …Func fields
// and AfterUser are the escape hatch for quirks a declaration cannot say.
// Its operations are the ones it declares: the manifest lists the same.
//
//	func init() {
//		plugin.Register(&plugin.Provider{
//			Grants:     plugin.Grants{Params: plugin.ParamsInQuery, RefreshAuth: plugin.AuthNone},
//			API:        plugin.API{TokenParam: "access_token"},
//			UserPath:   "/user",
//			UserFields: plugin.UserFields{ID: "id", Login: "login", Name: "name", AvatarURL: "avatar_url", ProfileURL: "html_url"},
//			Emails: &plugin.EmailList{List: plugin.List{Path: "/emails"},
//				Fields: plugin.EmailFields{Address: "email", Verified: "state", VerifiedWhen: "confirmed", Primary: "scope", PrimaryWhen: "primary"}},
//			Repositories: &plugin.RepoList{List: plugin.List{Path: "/user/repos", Paging: plugin.PagingTotalPages,
//				TotalPagesHeaders: []string{"total_page"}}, Fields: plugin.GitHubRepoFields},
//		})
//	}
//
// A type that embeds *Provider may replace a declared operation with a
// method of its own (calling the Provider's for the usual case); an
// operation the declaration lacks is added with its …Func field.
//
// # Operations
//
//   - authorize: AuthorizeFunc, else DefaultAuthorizeParams.
//   - exchange: always, by Grants.
//   - refresh: by Grants, unless NoRefresh.
//   - user: when UserPath or UserFunc is set.
//   - repos: when Repositories or ReposFunc is set.
//   - revoke: when RevokeFunc is set.
//   - groups: when GroupsFunc is set.
//   - git_host: when Git or GitHostFunc is set.
//
// # Errors
//
// Register panics, failing the plugin's load with the reason, when the
// declaration is incomplete (a user path without an ID member, a list
// without a path).
type Provider struct {
	// Grants are the token requests: client authentication and where
	// the parameters go, for the code and the refresh grant. The zero
	// value sends both in the form body.
	Grants Grants
	// NoRefresh leaves the refresh operation out: the provider issues no
	// refresh tokens.
	NoRefresh bool
	// API is how the provider's REST API takes the token (Bearer,
	// "token", a query parameter) and judges answers.
	API API
	// UserPath is the user object's path under the API base ("/user");
	// UserFields name its members (ID is required).
	UserPath   string
	UserFields UserFields
	// Emails, if set, lists the user's addresses to find the verified
	// one after the user object is read.
	Emails *EmailList
	// Repositories, if set, is the repository list.
	Repositories *RepoList
	// AfterUser, if set, finishes the user after the user object and the
	// addresses are read, with the same Caller (Gitea derives a missing
	// profile URL from the API base).
	AfterUser func(ctx context.Context, c *Caller, u *User) error

	// AuthorizeFunc, if set, gives the authorization URL's parameters
	// (start from DefaultAuthorizeParams).
	AuthorizeFunc func(ctx context.Context, r *AuthorizeRequest) (Values, error)
	// UserFunc, if set, replaces the declared user operation.
	UserFunc func(ctx context.Context, r *UserRequest) (*User, error)
	// ReposFunc, if set, replaces the declared repository listing.
	ReposFunc func(ctx context.Context, r *ReposRequest) (*RepoPage, error)
	// RevokeFunc, if set, is the revoke operation.
	RevokeFunc func(ctx context.Context, r *RevokeRequest) error
	// GroupsFunc, if set, is the groups operation.
	GroupsFunc func(ctx context.Context, r *GroupsRequest) (*Groups, error)

	// Git, if set, says where the provider's Git host is and which Basic
	// user name goes with a token there: the git_host operation.
	Git *GitHosting
	// GitHostFunc, if set, replaces the declared git_host operation.
	GitHostFunc func(ctx context.Context, r *GitHostRequest) (*GitHost, error)
}

// RepoList declares the user's repository list: where it is and how it
// pages (List), and its objects' members (Fields).
type RepoList struct {
	List
	Fields RepoFields
}

var (
	_ FullProvider = (*Provider)(nil)
	_ Authorizer   = (*Provider)(nil)
	_ GroupLister  = (*Provider)(nil)
	_ GitHoster    = (*Provider)(nil)
)

// operations returns the operations p declares; Implemented reports them
// for a registered Provider instead of the methods it has.
func (p *Provider) operations() abi.OpSet {
	s := abi.OpSet(0).With(abi.OpAuthorize).With(abi.OpExchange)
	if !p.NoRefresh {
		s = s.With(abi.OpRefresh)
	}
	if p.UserPath != "" || p.UserFunc != nil {
		s = s.With(abi.OpUser)
	}
	if p.Repositories != nil || p.ReposFunc != nil {
		s = s.With(abi.OpRepos)
	}
	if p.RevokeFunc != nil {
		s = s.With(abi.OpRevoke)
	}
	if p.GroupsFunc != nil {
		s = s.With(abi.OpGroups)
	}
	if p.Git != nil || p.GitHostFunc != nil {
		s = s.With(abi.OpGitHost)
	}
	return s
}

// check reports what is missing from the declaration.
func (p *Provider) check() string {
	switch {
	case p.UserPath != "" && p.UserFields.ID == "":
		return "plugin.Provider: UserPath is set but UserFields.ID is empty: name the member holding the account's stable id"
	case p.Emails != nil && p.Emails.Path == "":
		return "plugin.Provider: Emails.Path is empty"
	case p.Emails != nil && p.Emails.Fields.Address == "":
		return "plugin.Provider: Emails.Fields.Address is empty"
	case p.Repositories != nil && p.Repositories.Path == "":
		return "plugin.Provider: Repositories.Path is empty"
	case p.Git != nil && p.Git.check() != "":
		return p.Git.check()
	case p.Repositories != nil && p.Repositories.Paging == PagingBodyNext && p.Repositories.ItemsMember == "":
		return "plugin.Provider: Repositories pages with PagingBodyNext but ItemsMember is empty"
	}
	return ""
}

// AuthorizeParams is AuthorizeFunc, or DefaultAuthorizeParams.
func (p *Provider) AuthorizeParams(ctx context.Context, r *AuthorizeRequest) (Values, error) {
	if p.AuthorizeFunc != nil {
		return p.AuthorizeFunc(ctx, r)
	}
	return DefaultAuthorizeParams(r), nil
}

// Exchange is the code grant in Grants' style.
func (p *Provider) Exchange(ctx context.Context, r *ExchangeRequest) (*Token, error) {
	return p.Grants.Exchange(ctx, r)
}

// Refresh is the refresh grant in Grants' style.
func (p *Provider) Refresh(ctx context.Context, r *RefreshRequest) (*Token, error) {
	if p.NoRefresh {
		return nil, unsupported(abi.OpRefresh)
	}
	return p.Grants.Refresh(ctx, r)
}

// User reads the user object at UserPath with UserFields, then the
// addresses (Emails) and AfterUser; or it is UserFunc.
func (p *Provider) User(ctx context.Context, r *UserRequest) (*User, error) {
	if p.UserFunc != nil {
		return p.UserFunc(ctx, r)
	}
	if p.UserPath == "" {
		return nil, unsupported(abi.OpUser)
	}
	u, c, err := p.API.User(ctx, r, p.UserPath, p.UserFields)
	if err != nil {
		return nil, err
	}
	if p.Emails != nil {
		if err := p.Emails.Apply(ctx, c, u); err != nil {
			return nil, err
		}
	}
	if p.AfterUser != nil {
		if err := p.AfterUser(ctx, c, u); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// Repos reads one page of Repositories; or it is ReposFunc.
func (p *Provider) Repos(ctx context.Context, r *ReposRequest) (*RepoPage, error) {
	if p.ReposFunc != nil {
		return p.ReposFunc(ctx, r)
	}
	if p.Repositories == nil {
		return nil, unsupported(abi.OpRepos)
	}
	return p.API.ListRepos(ctx, r, &p.Repositories.List, p.Repositories.Fields)
}

// Revoke is RevokeFunc.
func (p *Provider) Revoke(ctx context.Context, r *RevokeRequest) error {
	if p.RevokeFunc == nil {
		return unsupported(abi.OpRevoke)
	}
	return p.RevokeFunc(ctx, r)
}

// Groups is GroupsFunc.
func (p *Provider) Groups(ctx context.Context, r *GroupsRequest) (*Groups, error) {
	if p.GroupsFunc == nil {
		return nil, unsupported(abi.OpGroups)
	}
	return p.GroupsFunc(ctx, r)
}

// GitHost is GitHostFunc, else the Git declaration's answer for the
// request's endpoints.
func (p *Provider) GitHost(ctx context.Context, r *GitHostRequest) (*GitHost, error) {
	if p.GitHostFunc != nil {
		return p.GitHostFunc(ctx, r)
	}
	if p.Git == nil {
		return nil, unsupported(abi.OpGitHost)
	}
	return p.Git.For(r.Endpoints), nil
}

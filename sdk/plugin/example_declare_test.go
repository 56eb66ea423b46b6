//go:build !wasip1

package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vintner/arbor/sdk/plugin"
)

// A whole provider in one declaration: Gitee takes both grants'
// parameters in the query string (the code grant's client_secret in the
// body), the refresh without client credentials, takes the
// access token as a query parameter, lists addresses as {state, scope}
// and pages repositories by a total_page header. Register it from init
// and list the same operations in plugin.json: authorize, exchange,
// refresh, user, repos. examples/gitee is this plugin, tested against
// the fake Gitee of examples/fakes/gitee.yaml. (Examples that send
// requests are not run here: only the Arbor host performs them.)
func ExampleProvider() {
	plugin.Register(&plugin.Provider{
		Grants:     plugin.Grants{Params: plugin.ParamsInQuery, RefreshAuth: plugin.AuthNone},
		API:        plugin.API{TokenParam: "access_token"},
		UserPath:   "/user",
		UserFields: plugin.UserFields{ID: "id", Login: "login", Name: "name", AvatarURL: "avatar_url", ProfileURL: "html_url"},
		Emails: &plugin.EmailList{List: plugin.List{Path: "/emails", Paging: plugin.PagingNone},
			Fields: plugin.EmailFields{Address: "email", Verified: "state", VerifiedWhen: "confirmed", Primary: "scope", PrimaryWhen: "primary"}},
		Repositories: &plugin.RepoList{Fields: plugin.GitHubRepoFields, List: plugin.List{
			Path: "/user/repos?sort=full_name", Paging: plugin.PagingTotalPages, TotalPagesHeaders: []string{"total_page"}}},
	})
}

// The escape hatch: AfterUser finishes the user with the operation's
// Caller, and a …Func field adds an operation the declaration cannot say.
func ExampleProvider_hooks() {
	plugin.Register(&plugin.Provider{
		UserPath:   "/user",
		UserFields: plugin.UserFields{ID: "id", Login: "login"},
		AfterUser: func(ctx context.Context, c *plugin.Caller, u *plugin.User) error {
			u.ProfileURL = strings.TrimSuffix(c.Base(), "/api/v1") + "/" + u.Login
			return nil
		},
		RevokeFunc: func(ctx context.Context, r *plugin.RevokeRequest) error {
			return plugin.ErrUnsupported("revoke access in the provider's settings")
		},
	})
}

// The refresh grant may authenticate and place its parameters unlike the
// code grant.
func ExampleGrants_RefreshStyle() {
	g := plugin.Grants{Auth: plugin.AuthInParams, RefreshAuth: plugin.AuthNone, RefreshParams: plugin.ParamsInQuery}
	fmt.Println(g.ExchangeStyle() == plugin.TokenStyle{Auth: plugin.AuthInParams})
	fmt.Println(g.RefreshStyle() == plugin.TokenStyle{Auth: plugin.AuthNone, Params: plugin.ParamsInQuery})
	// Output:
	// true
	// true
}

// A token request of one's own, in a provider's style: here HTTP Basic
// client authentication with the parameters in the body.
func ExampleTokenStyle_Request() {
	refresh := func(ctx context.Context, r *plugin.RefreshRequest) (*plugin.Token, error) {
		style := plugin.TokenStyle{Auth: plugin.AuthInHeader}
		return style.Request(ctx, r.Endpoints.TokenURL, r.Client, plugin.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {r.RefreshToken},
		})
	}
	_ = refresh
}

// How the API takes the token: Bearer (the zero value), another scheme,
// or a query parameter that the Caller keeps out of its cursors.
func ExampleAPI_For() {
	bearer := plugin.API{}                          // Authorization: Bearer <token>
	gitea := plugin.API{Scheme: "token"}            // Authorization: token <token>
	gitee := plugin.API{TokenParam: "access_token"} // ?access_token=<token>
	user := func(ctx context.Context, r *plugin.UserRequest) (*plugin.Response, error) {
		c, err := gitee.For(r.Endpoints, r.AccessToken)
		if err != nil {
			return nil, err // no API base URL is configured
		}
		return c.Get(ctx, "/user") // 401 is invalid_token, 429 rate_limited, …
	}
	_, _, _ = bearer, gitea, user
}

// The paging styles a List declares.
func ExampleList() {
	_ = []plugin.List{
		{Path: "/user/repos"}, // Link header (GitHub, Gitea)
		{Path: "/projects?membership=true", Paging: plugin.PagingNextPage},                                                   // X-Next-Page (GitLab)
		{Path: "/user/repos", Paging: plugin.PagingTotalPages, TotalPagesHeaders: []string{"total_page"}},                    // Gitee
		{Path: "/repositories/ws", Paging: plugin.PagingBodyNext, ItemsMember: "values", PerPageParams: []string{"pagelen"}}, // Bitbucket
		{Path: "/repos", Paging: plugin.PagingPages},                                                                         // page=N until a short page
		{Path: "/user/emails", Paging: plugin.PagingNone},                                                                    // one request, no paging
	}
}

// Caller.List reads one page and hands each entry to a field map.
func ExampleCaller_List() {
	names := func(ctx context.Context, c *plugin.Caller, cursor string) ([]string, string, error) {
		l := &plugin.List{Path: "/orgs", Paging: plugin.PagingPages}
		var out []string
		next, err := c.List(ctx, l, 50, cursor, func(j *plugin.JSON) {
			j.Object(func(key []byte) {
				if string(key) == "login" {
					out = append(out, j.String())
				}
			})
		})
		return out, next, err
	}
	_ = names
}

// A Repos operation of one's own with a declared list.
func ExampleAPI_ListRepos() {
	api := plugin.API{TokenParam: "access_token"}
	repos := &plugin.List{Path: "/user/repos", Paging: plugin.PagingTotalPages, TotalPagesHeaders: []string{"total_page"}}
	list := func(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
		return api.ListRepos(ctx, r, repos, plugin.GitHubRepoFields)
	}
	_ = list
}

// Gitee's address entries: verified when state is "confirmed", primary
// when the scope list holds "primary".
func ExampleEmailFields() {
	gitee := plugin.EmailFields{Address: "email", Verified: "state", VerifiedWhen: "confirmed", Primary: "scope", PrimaryWhen: "primary"}
	list, err := gitee.Parse([]byte(`[{"email":"ada@example.com","state":"confirmed","scope":["primary","committed"]},
		{"email":"old@example.com","state":"unconfirmed","scope":["committed"]}]`))
	fmt.Printf("%+v %v\n", list, err)
	// Output: [{Address:ada@example.com Primary:true Verified:true} {Address:old@example.com Primary:false Verified:false}] <nil>
}

// Gitea's primary address need not be verified or listed: fall back to
// the first verified one.
func ExampleEmailChoice_Choose() {
	list := []plugin.Email{{Address: "new@example.com"}, {Address: "ada@example.com", Verified: true}}
	e, ok := plugin.EmailPrimary.Choose(list)
	fmt.Printf("%q %v\n", e.Address, ok)
	e, ok = plugin.EmailPrimaryElseVerified.Choose(list)
	fmt.Printf("%q %v %v\n", e.Address, e.Verified, ok)
	// Output:
	// "" false
	// "ada@example.com" true true
}

// An EmailList reads the addresses after the user object and sets the
// verified one; Ignore keeps the user's own address, unverified, when the
// token may not read the list (GitHub without user:email). A list read
// over several pages (MaxPages, Bitbucket's) follows the provider's next
// links only under the API base: a link elsewhere is a provider_error.
func ExampleEmailList() {
	github := &plugin.EmailList{List: plugin.List{Path: "/user/emails"}, Fields: plugin.GitHubEmailFields,
		Ignore: func(err error) bool {
			var e *plugin.Error
			return errors.As(err, &e) && e.Code == plugin.CodeProviderError && (e.Status == 403 || e.Status == 404)
		}}
	bitbucket := &plugin.EmailList{List: plugin.List{Path: "/user/emails", Paging: plugin.PagingBodyNext,
		ItemsMember: "values", PerPageParams: []string{"pagelen"}},
		Fields: plugin.EmailFields{Address: "email", Primary: "is_primary", Verified: "is_confirmed"}, MaxPages: 5}
	_, _ = github, bitbucket
}

// Error codes are constants of this package: branch on them with
// errors.As.
func ExampleError() {
	var err error = plugin.ErrInvalidGrant("the refresh token was revoked")
	var e *plugin.Error
	if errors.As(err, &e) && e.Code == plugin.CodeInvalidGrant {
		fmt.Println(e.Code, "-", e.Message)
	}
	// Output: invalid_grant - the refresh token was revoked
}

// Command gitee is an example provider plugin for Gitee (gitee.com),
// declared with Arbor's plugin SDK (sdk/plugin) in one plugin.Provider.
// Build it with `arbor plugin build examples/gitee -o /path/to/plugins/gitee`
// and test it with
//
//	arbor plugin test examples/gitee --fake-config examples/fakes/gitee.yaml
//
// What it relies on (OAuth: https://gitee.com/api/v5/oauth_doc; API:
// https://gitee.com/api/v5/swagger), each quirk one field below:
//
//   - The token requests take their parameters in the query string:
//     POST /oauth/token?grant_type=authorization_code&code=…&client_id=…&redirect_uri=…
//     with the client_secret in the body (the docs advise it), and
//     POST /oauth/token?grant_type=refresh_token&refresh_token=… with no
//     client credentials at all. No PKCE, no revocation endpoint.
//   - The API takes the token as the access_token query parameter.
//   - GET /v5/emails lists {"email", "state": "confirmed", "scope":
//     ["primary", …]}: the primary address is the one whose scope holds
//     "primary", verified when its state is "confirmed".
//   - GET /v5/user/repos pages with ?page= and ?per_page= (at most 100)
//     and says how many pages there are in the total_page header.
package main

import "github.com/vintner/arbor/sdk/plugin"

func init() {
	plugin.Register(&plugin.Provider{
		Grants:   plugin.Grants{Params: plugin.ParamsInQuery, RefreshAuth: plugin.AuthNone},
		API:      plugin.API{TokenParam: "access_token"},
		UserPath: "/user",
		UserFields: plugin.UserFields{ID: "id", Login: "login", Name: "name", Email: "email",
			AvatarURL: "avatar_url", ProfileURL: "html_url"},
		Emails: &plugin.EmailList{List: plugin.List{Path: "/emails", Paging: plugin.PagingNone},
			Fields: plugin.EmailFields{Address: "email", Verified: "state", VerifiedWhen: "confirmed",
				Primary: "scope", PrimaryWhen: "primary"}},
		Repositories: &plugin.RepoList{Fields: plugin.GitHubRepoFields, List: plugin.List{Path: "/user/repos",
			Paging: plugin.PagingTotalPages, TotalPagesHeaders: []string{"total_page"}, MaxPerPage: 100}},
	})
}

func main() {}

// Command gitee is a test fixture of package plugin: a Gitee-like
// provider declared with plugin.Provider, compiled to WebAssembly and run
// through the real host by TestProviderInTheHost.
package main

import "github.com/vintner/arbor/sdk/plugin"

func init() {
	plugin.Register(&plugin.Provider{
		Grants:     plugin.Grants{RefreshAuth: plugin.AuthNone, RefreshParams: plugin.ParamsInQuery},
		API:        plugin.API{TokenParam: "access_token"},
		UserPath:   "/user",
		UserFields: plugin.UserFields{ID: "id", Login: "login", Name: "name", Email: "email", AvatarURL: "avatar_url", ProfileURL: "html_url"},
		Emails: &plugin.EmailList{List: plugin.List{Path: "/emails", Paging: plugin.PagingNone},
			Fields: plugin.EmailFields{Address: "email", Verified: "state", VerifiedWhen: "confirmed", Primary: "scope", PrimaryWhen: "primary"}},
		Repositories: &plugin.RepoList{Fields: plugin.GitHubRepoFields, List: plugin.List{
			Path: "/user/repos", Paging: plugin.PagingTotalPages, TotalPagesHeaders: []string{"total_page"}}},
	})
}

func main() {}

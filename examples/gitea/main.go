// Command gitea is an example provider plugin for Gitea and Forgejo,
// written only with Arbor's plugin SDK (sdk/plugin) as a declaration. It is
// not built into Arbor: build it with
//
//	arbor plugin build examples/gitea -o /path/to/plugins/gitea
//
// and Arbor loads it from its plugins directory at the next SIGHUP or
// `arbor plugin reload`. Point it at your instance with the providers
// section of the config:
//
//	providers:
//	  gitea:
//	    client_id: …
//	    authorize_url: https://git.example.com/login/oauth/authorize
//	    token_url: https://git.example.com/login/oauth/access_token
//	    api_base: https://git.example.com/api/v1
//
// What it relies on (Gitea's OAuth2 provider and REST API v1 docs,
// https://docs.gitea.com/development/oauth2-provider and
// https://docs.gitea.com/development/api-usage):
//
//   - Authorization code grant with PKCE (S256); the client credentials go
//     in the form body; JSON token responses; refresh tokens.
//   - No token revocation endpoint: Gitea has none, so the plugin does not
//     list the revoke operation and Arbor forgets tokens locally instead.
//   - GET /user for the profile and GET /user/emails (not paged) for the
//     verified flag: the primary address, else the first verified one.
//   - GET /user/repos, paged with ?page= and a Link header (rel="next");
//     the page size is ?limit= (Gitea, at most MAX_RESPONSE_ITEMS, 50 by
//     default) and ?per_page= (Forgejo, GitHub compatible tools); both
//     are sent.
package main

import (
	"context"
	"strings"

	"github.com/vintner/arbor/sdk/plugin"
)

func init() {
	plugin.Register(&plugin.Provider{
		// The zero Grants and API: credentials in the form body, a
		// Bearer token, JSON.
		UserPath: "/user",
		UserFields: plugin.UserFields{ID: "id", Login: "login", Name: "full_name", Email: "email",
			AvatarURL: "avatar_url", ProfileURL: "html_url"},
		Emails: &plugin.EmailList{List: plugin.List{Path: "/user/emails", Paging: plugin.PagingNone},
			Fields: plugin.GitHubEmailFields, Choice: plugin.EmailPrimaryElseVerified},
		AfterUser: profileURL,
		Repositories: &plugin.RepoList{Fields: plugin.GitHubRepoFields, List: plugin.List{
			Path: "/user/repos?page=1", PerPageParams: []string{"limit", "per_page"}, MaxPerPage: 50}},
	})
}

func main() {}

// profileURL fills in a profile URL that an older Gitea leaves out: the
// instance's root (the API base without /api/v1) and the login.
func profileURL(_ context.Context, c *plugin.Caller, u *plugin.User) error {
	if u.ProfileURL == "" && u.Login != "" {
		if base, ok := strings.CutSuffix(c.Base(), "/api/v1"); ok {
			u.ProfileURL = base + "/" + u.Login
		}
	}
	return nil
}

// Command gitea is an example provider plugin for Gitea and Forgejo,
// written only with Arbor's plugin SDK (sdk/plugin). It is not built into
// Arbor: build it with
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
// What it relies on (Gitea's OAuth2 provider and REST API v1 docs):
//
//   - Authorization code grant with PKCE (S256); the client credentials go
//     in the form body; JSON token responses; refresh tokens.
//   - No token revocation endpoint: Gitea has none, so the plugin does not
//     list the revoke operation and Arbor forgets tokens locally instead.
//   - GET /user for the profile and GET /user/emails for the verified flag
//     of the primary address.
//   - GET /user/repos, paged with ?page= and a Link header (rel="next");
//     the page size is ?limit= (Gitea) and ?per_page= (Forgejo, GitHub
//     compatible tools); both are sent.
package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/vintner/arbor/sdk/plugin"
)

// gitea gets Exchange and Refresh from plugin.Grants, with the client
// credentials in the form body. (Its errors need not name Gitea: the host
// puts the plugin's name in front of what a plugin says.)
type gitea struct{ plugin.Grants }

var _ interface {
	plugin.UserInfoer
	plugin.RepoLister
} = (*gitea)(nil)

func init() { plugin.Register(&gitea{plugin.Grants{Auth: plugin.AuthInParams}}) }

func main() {}

// api calls Gitea's REST API with the defaults: a Bearer token, JSON.
var api plugin.API

// Gitea's user object names the display name full_name.
var userFields = plugin.UserFields{ID: "id", Login: "login", Name: "full_name", Email: "email",
	AvatarURL: "avatar_url", ProfileURL: "html_url"}

func (*gitea) User(ctx context.Context, r *plugin.UserRequest) (*plugin.User, error) {
	u, c, err := api.User(ctx, r, "/user", userFields)
	if err != nil {
		return nil, err
	}
	if u.ProfileURL == "" && u.Login != "" {
		if base, ok := strings.CutSuffix(c.Base(), "/api/v1"); ok {
			u.ProfileURL = base + "/" + u.Login
		}
	}
	// /user does not say whether the address is verified; /user/emails
	// does. Only a verified address counts: prefer the primary one, else
	// the first verified one.
	resp, err := c.Get(ctx, "/user/emails")
	if err != nil {
		return nil, err
	}
	list, err := plugin.GitHubEmailFields.Parse(resp.Body)
	if err != nil {
		return nil, err
	}
	e, ok := plugin.PrimaryEmail(list)
	for i := 0; !ok && i < len(list); i++ {
		e, ok = list[i], list[i].Verified && list[i].Address != ""
	}
	if ok {
		u.Email, u.EmailVerified = e.Address, e.Verified
	}
	return u, nil
}

// maxPerPage is Gitea's default MAX_RESPONSE_ITEMS.
const maxPerPage = 50

// Repos lists the repositories the user owns or is a member of. The
// cursor is the Link header's next URL.
func (*gitea) Repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	per := strconv.Itoa(plugin.PerPage(r.PerPage, maxPerPage))
	return api.Repos(ctx, r, plugin.PagingLink, "/user/repos?page=1&limit="+per+"&per_page="+per, plugin.GitHubRepoFields)
}

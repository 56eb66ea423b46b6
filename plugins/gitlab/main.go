// Package gitlab is Arbor's built-in GitLab provider plugin (sign-in and Git
// connections) for gitlab.com and self-managed GitLab, a wasip1 reactor
// module written only with sdk/plugin.
//
// GitLab's quirks, each handled here (docs/provider-plugins.md has the
// details and the documentation followed):
//
//   - Access tokens last two hours and refresh tokens rotate: every
//     refresh returns a new refresh token and the old one is refused
//     afterwards (invalid_grant).
//   - PKCE (S256) is supported; client credentials go in the form body.
//   - /oauth/revoke (RFC 7009) takes the token and the client credentials
//     and answers 200 even for unknown tokens.
//   - /api/v4/projects?membership=true pages with X-Next-Page; an answer
//     without it (keyset pagination) is followed through its Link header.
//
// Build: make plugins, which compiles it with the other built-in plugins
// into one module, plugins/builtin/builtin.wasm (see package builtin).
package gitlab

import (
	"context"
	"strconv"

	"github.com/vintner/arbor/sdk/plugin"
)

// The provider is a declaration (sdk/plugin's Provider) with code for the
// quirks: the revocation and the groups (groups.go).
//
// The grants are the standard ones, the client credentials in the form
// body. GitLab rotates refresh tokens: the caller must store the returned
// one, the old one is dead.
//
// The authorization URL is the standard one (plugin.DefaultAuthorizeParams):
// response_type, client_id, redirect_uri, scope (space-separated), state and
// the PKCE challenge.
//
// The API takes the defaults: a Bearer token, JSON.
func init() {
	plugin.RegisterAs("gitlab", &plugin.Provider{
		Grants: plugin.Grants{Auth: plugin.AuthInParams},
		// Git over HTTPS takes an OAuth token as the password of the user
		// oauth2; a self-managed GitLab serves Git where its API base,
		// https://HOST/api/v4, says.
		Git:        &plugin.GitHosting{URL: "https://gitlab.com", User: "oauth2", APISuffix: "/api/v4"},
		UserPath:   "/user",
		UserFields: userFields,
		AfterUser:  confirmed,
		// The projects the user is a member of. The cursor is the next
		// page number (X-Next-Page), or the Link header's next URL when
		// GitLab omits the page headers.
		Repositories: &plugin.RepoList{Fields: repoFields, List: plugin.List{
			Path: "/projects?membership=true&order_by=id&sort=asc", Paging: plugin.PagingNextPage, MaxPerPage: maxPerPage}},
		RevokeFunc: revoke,
		GroupsFunc: groups,
	})
}

// revoke revokes the authorization through /oauth/revoke. GitLab
// (Doorkeeper) keeps an access token and its refresh token in one record,
// and revoking either revokes the record: the plugin sends one of them,
// the refresh token when there is one (it outlives the access token), so
// that it never presents a token the first revocation already killed.
// Doorkeeper before 5.8.1 ignores the revocation of a record whose access
// token has expired (doorkeeper-gem/doorkeeper#1671); Arbor's broker
// renews such a grant before revoking it.
func revoke(ctx context.Context, r *plugin.RevokeRequest) error {
	u := r.Endpoints.RevokeURL
	if u == "" {
		return plugin.ErrInvalidRequest("no revoke URL is configured")
	}
	token, hint := r.RefreshToken, "refresh_token"
	if token == "" {
		token, hint = r.AccessToken, "access_token"
	}
	if token == "" {
		return plugin.ErrInvalidRequest("there is no token to revoke")
	}
	form := plugin.Values{
		"token": {token}, "token_type_hint": {hint},
		"client_id": {r.Client.ID}, "client_secret": {r.Client.Secret},
	}
	resp, err := plugin.PostForm(ctx, u, form, plugin.Header{"Accept": {"application/json"}})
	if err != nil {
		return err
	}
	if resp.StatusCode == 401 || resp.StatusCode == 403 {
		return plugin.ErrInvalidClient("POST /oauth/revoke: the client id or secret was refused (status " +
			strconv.Itoa(resp.StatusCode) + ")")
	}
	return plugin.CheckResponse("POST", u, resp)
}

var userFields = plugin.UserFields{
	ID: "id", Login: "username", Name: "name", AvatarURL: "avatar_url", ProfileURL: "web_url",
	Email: "email", // the primary address, visible to the user themselves
	Other: func(j *plugin.JSON, key []byte, u *plugin.User) {
		if string(key) == "confirmed_at" {
			u.EmailVerified = j.String() != "" // see confirmed
		}
	},
}

// confirmed finishes the user. GitLab makes an address primary only once
// it is confirmed; confirmed_at says the account's address was confirmed.
// Without it (older versions, an unconfirmed account) the address does not
// count as verified.
func confirmed(_ context.Context, _ *plugin.Caller, u *plugin.User) error {
	u.EmailVerified = u.Email != "" && u.EmailVerified
	return nil
}

// maxPerPage is the largest page GitLab serves.
const maxPerPage = 100

var repoFields = plugin.RepoFields{
	ID: "id", FullName: "path_with_namespace", Description: "description", DefaultBranch: "default_branch",
	HTMLURL: "web_url", CloneURL: "http_url_to_repo", UpdatedAt: "last_activity_at",
	Other: func(j *plugin.JSON, key []byte, r *plugin.Repo) {
		if string(key) == "visibility" {
			// internal projects are visible to every signed-in user of
			// the instance, not to the world: not public.
			r.Private = j.String() != "public"
		}
	},
}

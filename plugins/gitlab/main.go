// Command gitlab is Arbor's built-in GitLab provider plugin (sign-in and Git
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
// Build: make plugins (or GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared).
package main

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/vintner/arbor/sdk/plugin"
)

type gitlab struct{}

var (
	_ plugin.Exchanger  = (*gitlab)(nil)
	_ plugin.Refresher  = (*gitlab)(nil)
	_ plugin.Revoker    = (*gitlab)(nil)
	_ plugin.UserInfoer = (*gitlab)(nil)
	_ plugin.RepoLister = (*gitlab)(nil)
)

func init() { plugin.Register(&gitlab{}) }

func main() {}

// maxPerPage is the largest page GitLab serves.
const maxPerPage = 100

// The authorization URL is the standard one (plugin.DefaultAuthorizeParams):
// response_type, client_id, redirect_uri, scope (space-separated), state and
// the PKCE challenge.

func (*gitlab) Exchange(ctx context.Context, r *plugin.ExchangeRequest) (*plugin.Token, error) {
	t, err := plugin.ExchangeCode(ctx, r, plugin.AuthInParams)
	return t, err
}

// Refresh uses a refresh token. GitLab rotates it: the caller must store
// the returned one, the old one is dead.
func (*gitlab) Refresh(ctx context.Context, r *plugin.RefreshRequest) (*plugin.Token, error) {
	t, err := plugin.RefreshToken(ctx, r, plugin.AuthInParams)
	return t, err
}

// Revoke revokes the authorization through /oauth/revoke. GitLab
// (Doorkeeper) keeps an access token and its refresh token in one record,
// and revoking either revokes the record: the plugin sends one of them,
// the refresh token when there is one (it outlives the access token), so
// that it never presents a token the first revocation already killed.
// Doorkeeper before 5.8.1 ignores the revocation of a record whose access
// token has expired (doorkeeper-gem/doorkeeper#1671); Arbor's broker
// renews such a grant before revoking it.
func (*gitlab) Revoke(ctx context.Context, r *plugin.RevokeRequest) error {
	u := r.Endpoints.RevokeURL
	if u == "" {
		return plugin.ErrInvalidRequest("no revoke URL is configured")
	}
	sent := false
	for _, t := range []struct{ token, hint string }{
		{r.RefreshToken, "refresh_token"}, {r.AccessToken, "access_token"},
	} {
		if t.token == "" || sent {
			continue
		}
		sent = true
		form := plugin.Values{
			"token": {t.token}, "token_type_hint": {t.hint},
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
		if err := plugin.CheckResponse("POST", u, resp); err != nil {
			return err
		}
	}
	if !sent {
		return plugin.ErrInvalidRequest("there is no token to revoke")
	}
	return nil
}

func (*gitlab) User(ctx context.Context, r *plugin.UserRequest) (*plugin.User, error) {
	if r.Endpoints.APIBase == "" {
		return nil, plugin.ErrInvalidRequest("no API base URL is configured")
	}
	resp, err := get(ctx, r.Endpoints.APIBase+"/user", r.AccessToken)
	if err != nil {
		return nil, err
	}
	u := &plugin.User{}
	var confirmed bool
	j := plugin.NewJSON(resp.Body)
	j.Object(func(key []byte) {
		switch string(key) {
		case "id":
			u.ID = j.Number()
		case "username":
			u.Login = j.String()
		case "name":
			u.Name = j.String()
		case "email":
			// The primary address, visible to the user themselves.
			u.Email = j.String()
		case "confirmed_at":
			confirmed = j.String() != ""
		case "avatar_url":
			u.AvatarURL = j.String()
		case "web_url":
			u.ProfileURL = j.String()
		}
	})
	if err := j.Err(); err != nil {
		return nil, err
	}
	if u.ID == "" {
		return nil, plugin.ErrProvider(resp.StatusCode, "/user answered without an id")
	}
	// GitLab makes an address primary only once it is confirmed;
	// confirmed_at says the account's address was confirmed. Without it
	// (older versions, an unconfirmed account) the address does not count
	// as verified.
	u.EmailVerified = u.Email != "" && confirmed
	return u, nil
}

// Repos lists the projects the user is a member of. The cursor is the next
// page number (X-Next-Page), or the Link header's next URL when GitLab
// omits the page headers.
func (*gitlab) Repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	if r.Endpoints.APIBase == "" {
		return nil, plugin.ErrInvalidRequest("no API base URL is configured")
	}
	per := r.PerPage
	if per <= 0 || per > maxPerPage {
		per = maxPerPage
	}
	u := r.Endpoints.APIBase + "/projects?membership=true&order_by=id&sort=asc&per_page=" + strconv.Itoa(per)
	switch c := r.Cursor; {
	case c == "":
	case isDigits(c):
		u += "&page=" + c
	case strings.HasPrefix(c, r.Endpoints.APIBase+"/"):
		u = c
	default:
		return nil, plugin.ErrInvalidRequest("the cursor is neither a page number nor a page of this provider's API")
	}
	resp, err := get(ctx, u, r.AccessToken)
	if err != nil {
		return nil, err
	}
	page := &plugin.RepoPage{Repos: make([]plugin.Repo, 0, per)}
	if _, ok := resp.Header["X-Next-Page"]; ok {
		page.NextCursor = strings.TrimSpace(resp.Header.Get("X-Next-Page"))
	} else {
		page.NextCursor = plugin.NextLink(resp.Header)
	}
	j := plugin.NewJSON(resp.Body)
	j.Array(func() {
		var repo plugin.Repo
		j.Object(func(key []byte) {
			switch string(key) {
			case "id":
				repo.ID = j.Number()
			case "path_with_namespace":
				repo.FullName = j.String()
			case "description":
				repo.Description = j.String()
			case "visibility":
				// internal projects are visible to every signed-in user of
				// the instance, not to the world: not public.
				repo.Private = j.String() != "public"
			case "default_branch":
				repo.DefaultBranch = j.String()
			case "web_url":
				repo.HTMLURL = j.String()
			case "http_url_to_repo":
				repo.CloneURL = j.String()
			case "last_activity_at":
				repo.UpdatedAt = unixTime(j.String())
			}
		})
		page.Repos = append(page.Repos, repo)
	})
	if err := j.Err(); err != nil {
		return nil, err
	}
	return page, nil
}

// get performs an authenticated API GET and turns error statuses into
// typed errors.
func get(ctx context.Context, u, token string) (*plugin.Response, error) {
	resp, err := plugin.Get(ctx, u, plugin.Bearer(token))
	if err != nil {
		return nil, err
	}
	if err := plugin.CheckResponse("GET", u, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// unixTime parses an RFC 3339 time, 0 if it is empty or malformed.
func unixTime(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0
	}
	return t.Unix()
}

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
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/vintner/arbor/sdk/plugin"
)

type gitea struct{}

var (
	_ plugin.Exchanger  = (*gitea)(nil)
	_ plugin.Refresher  = (*gitea)(nil)
	_ plugin.UserInfoer = (*gitea)(nil)
	_ plugin.RepoLister = (*gitea)(nil)
)

func init() { plugin.Register(&gitea{}) }

func main() {}

// maxPerPage is Gitea's default MAX_RESPONSE_ITEMS.
const maxPerPage = 50

func (*gitea) Exchange(ctx context.Context, r *plugin.ExchangeRequest) (*plugin.Token, error) {
	t, err := plugin.ExchangeCode(ctx, r, plugin.AuthInParams)
	return t, prefix(err)
}

func (*gitea) Refresh(ctx context.Context, r *plugin.RefreshRequest) (*plugin.Token, error) {
	t, err := plugin.RefreshToken(ctx, r, plugin.AuthInParams)
	return t, prefix(err)
}

func (*gitea) User(ctx context.Context, r *plugin.UserRequest) (*plugin.User, error) {
	api := r.Endpoints.APIBase
	if api == "" {
		return nil, plugin.ErrInvalidRequest("gitea: no API base URL is configured")
	}
	resp, err := apiGet(ctx, api+"/user", r.AccessToken)
	if err != nil {
		return nil, err
	}
	u := &plugin.User{}
	j := plugin.NewJSON(resp.Body)
	j.Object(func(key []byte) {
		switch string(key) {
		case "id":
			u.ID = j.Number()
		case "login":
			u.Login = j.String()
		case "full_name":
			u.Name = j.String()
		case "email":
			u.Email = j.String()
		case "avatar_url":
			u.AvatarURL = j.String()
		case "html_url":
			u.ProfileURL = j.String()
		}
	})
	if err := j.Err(); err != nil {
		return nil, prefix(err)
	}
	if u.ID == "" {
		return nil, plugin.ErrProvider(resp.StatusCode, "gitea: /user answered without an id")
	}
	if u.ProfileURL == "" && u.Login != "" {
		if base, ok := strings.CutSuffix(api, "/api/v1"); ok {
			u.ProfileURL = base + "/" + u.Login
		}
	}
	// /user does not say whether the address is verified; /user/emails
	// does. Only a verified address counts: prefer the primary one.
	resp, err = apiGet(ctx, api+"/user/emails", r.AccessToken)
	if err != nil {
		return nil, err
	}
	type email struct {
		addr              string
		verified, primary bool
	}
	var primary, verified *email
	j = plugin.NewJSON(resp.Body)
	j.Array(func() {
		var e email
		j.Object(func(key []byte) {
			switch string(key) {
			case "email":
				e.addr = j.String()
			case "verified":
				e.verified = j.Bool()
			case "primary":
				e.primary = j.Bool()
			}
		})
		switch {
		case e.addr == "":
		case e.primary && primary == nil:
			primary = &e
		case e.verified && verified == nil:
			verified = &e
		}
	})
	if err := j.Err(); err != nil {
		return nil, prefix(err)
	}
	pick := primary
	if pick == nil {
		pick = verified
	}
	u.EmailVerified = false
	if pick != nil {
		u.Email, u.EmailVerified = pick.addr, pick.verified
	}
	return u, nil
}

// Repos lists the repositories the user owns or is a member of. The
// cursor is the Link header's next URL.
func (*gitea) Repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	api := r.Endpoints.APIBase
	if api == "" {
		return nil, plugin.ErrInvalidRequest("gitea: no API base URL is configured")
	}
	per := r.PerPage
	if per <= 0 || per > maxPerPage {
		per = maxPerPage
	}
	u := api + "/user/repos?page=1&limit=" + strconv.Itoa(per) + "&per_page=" + strconv.Itoa(per)
	if c := r.Cursor; c != "" {
		// Only follow links into this provider's API: the cursor comes back
		// from the caller.
		if !strings.HasPrefix(c, api+"/") {
			return nil, plugin.ErrInvalidRequest("gitea: the cursor is not a page of this provider's API")
		}
		u = c
	}
	resp, err := apiGet(ctx, u, r.AccessToken)
	if err != nil {
		return nil, err
	}
	page := &plugin.RepoPage{Repos: make([]plugin.Repo, 0, per), NextCursor: plugin.NextLink(resp.Header)}
	j := plugin.NewJSON(resp.Body)
	j.Array(func() {
		var repo plugin.Repo
		j.Object(func(key []byte) {
			switch string(key) {
			case "id":
				repo.ID = j.Number()
			case "full_name":
				repo.FullName = j.String()
			case "description":
				repo.Description = j.String()
			case "private":
				repo.Private = j.Bool()
			case "default_branch":
				repo.DefaultBranch = j.String()
			case "html_url":
				repo.HTMLURL = j.String()
			case "clone_url":
				repo.CloneURL = j.String()
			case "updated_at":
				if t, err := time.Parse(time.RFC3339, j.String()); err == nil {
					repo.UpdatedAt = t.Unix()
				}
			}
		})
		page.Repos = append(page.Repos, repo)
	})
	if err := j.Err(); err != nil {
		return nil, prefix(err)
	}
	return page, nil
}

// apiGet performs an authenticated API GET; error statuses become typed
// errors (401 invalid_token, 429 rate_limited, others provider_error).
func apiGet(ctx context.Context, u, token string) (*plugin.Response, error) {
	h := plugin.Bearer(token)
	h.Set("Accept", "application/json")
	resp, err := plugin.Get(ctx, u, h)
	if err != nil {
		return nil, prefix(err)
	}
	if err := plugin.CheckResponse("GET", u, resp); err != nil {
		return nil, prefix(err)
	}
	return resp, nil
}

// prefix names the provider in an error's message and keeps its code.
func prefix(err error) error {
	if err == nil {
		return nil
	}
	var e *plugin.Error
	if errors.As(err, &e) {
		c := *e
		c.Message = "gitea: " + c.Message
		return &c
	}
	return errors.New("gitea: " + err.Error())
}

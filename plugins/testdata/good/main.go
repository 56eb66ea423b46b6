// Command good is a well-behaved test plugin: a generic OAuth provider whose
// endpoints the tests point at an httptest fake.
package main

import (
	"context"
	"strconv"

	"github.com/vintner/arbor/sdk/plugin"
)

// build tells builds apart in the hot-reload test (-ldflags -X main.build=…).
var build = "v1"

type provider struct{}

var (
	_ plugin.Authorizer = provider{}
	_ plugin.Exchanger  = provider{}
	_ plugin.Refresher  = provider{}
	_ plugin.Revoker    = provider{}
	_ plugin.UserInfoer = provider{}
	_ plugin.RepoLister = provider{}
)

func (provider) AuthorizeParams(_ context.Context, r *plugin.AuthorizeRequest) (plugin.Values, error) {
	v := plugin.DefaultAuthorizeParams(r)
	v.Set("build", build)
	return v, nil
}

func (provider) Exchange(ctx context.Context, r *plugin.ExchangeRequest) (*plugin.Token, error) {
	return plugin.ExchangeCode(ctx, r, plugin.AuthInParams)
}

func (provider) Refresh(ctx context.Context, r *plugin.RefreshRequest) (*plugin.Token, error) {
	t, err := plugin.RefreshToken(ctx, r, plugin.AuthInHeader)
	if err != nil {
		return nil, err
	}
	t.TokenType += "/" + build
	return t, nil
}

func (provider) Revoke(ctx context.Context, r *plugin.RevokeRequest) error {
	resp, err := plugin.PostForm(ctx, r.Endpoints.RevokeURL, plugin.Values{"token": {r.AccessToken}},
		plugin.Header{"Authorization": {plugin.BasicAuth(r.Client.ID, r.Client.Secret)}})
	if err != nil {
		return err
	}
	return plugin.CheckResponse("POST", r.Endpoints.RevokeURL, resp)
}

func (provider) User(ctx context.Context, r *plugin.UserRequest) (*plugin.User, error) {
	u := r.Endpoints.APIBase + "/user"
	resp, err := plugin.Get(ctx, u, plugin.Bearer(r.AccessToken))
	if err != nil {
		return nil, err
	}
	if err := plugin.CheckResponse("GET", u, resp); err != nil {
		return nil, err
	}
	user := &plugin.User{EmailVerified: true}
	j := plugin.NewJSON(resp.Body)
	j.Object(func(key []byte) {
		switch string(key) {
		case "id":
			user.ID = j.Number()
		case "login":
			user.Login = j.String()
		case "name":
			user.Name = j.String()
		case "email":
			user.Email = j.String()
		}
	})
	return user, j.Err()
}

func (provider) Repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	u := r.Cursor
	if u == "" {
		per := r.PerPage
		if per <= 0 {
			per = 100
		}
		u = r.Endpoints.APIBase + "/user/repos?per_page=" + strconv.Itoa(per)
	}
	resp, err := plugin.Get(ctx, u, plugin.Bearer(r.AccessToken))
	if err != nil {
		return nil, err
	}
	if err := plugin.CheckResponse("GET", u, resp); err != nil {
		return nil, err
	}
	page := &plugin.RepoPage{Repos: make([]plugin.Repo, 0, 100), NextCursor: plugin.NextLink(resp.Header)}
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
			}
		})
		page.Repos = append(page.Repos, repo)
	})
	return page, j.Err()
}

func init() { plugin.Register(provider{}) }

func main() {}

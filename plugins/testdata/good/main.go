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

var _ interface {
	plugin.FullProvider
	plugin.Authorizer
} = provider{}

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

var userFields = plugin.UserFields{ID: "id", Login: "login", Name: "name", Email: "email"}

// api calls the fake's API with the defaults: a Bearer token, JSON.
var api plugin.API

func (provider) User(ctx context.Context, r *plugin.UserRequest) (*plugin.User, error) {
	user, _, err := api.User(ctx, r, "/user", userFields)
	if err != nil {
		return nil, err
	}
	user.EmailVerified = true
	return user, nil
}

func (provider) Repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	per := strconv.Itoa(plugin.PerPage(r.PerPage, 100))
	return api.Repos(ctx, r, plugin.PagingLink, "/user/repos?per_page="+per, plugin.GitHubRepoFields)
}

func init() { plugin.Register(provider{}) }

func main() {}

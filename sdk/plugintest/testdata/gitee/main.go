// Command gitee is a correct plugin for the fake described by
// examples/fakes/gitee.yaml, for the kit's own tests: it exchanges and
// refreshes with the parameters in the query (the refresh without client
// credentials), sends the token as ?access_token=, pages by the total_page
// header and reads e-mails as {email, state, scope}. It shows that the
// description alone lets such a plugin be tested; it is written with the
// SDK's lower-level calls, not as an example of style.
package main

import (
	"context"
	"strconv"

	"github.com/vintner/arbor/sdk/plugin"
)

type gitee struct{}

var _ interface {
	plugin.Exchanger
	plugin.Refresher
	plugin.UserInfoer
	plugin.RepoLister
} = gitee{}

func init() { plugin.Register(gitee{}) }

func main() {}

func (gitee) Exchange(ctx context.Context, r *plugin.ExchangeRequest) (*plugin.Token, error) {
	q := plugin.Values{"grant_type": {"authorization_code"}, "code": {r.Code}, "client_id": {r.Client.ID}, "redirect_uri": {r.RedirectURI}}
	return token(ctx, r.Endpoints.TokenURL+"?"+q.Encode(), plugin.Values{"client_secret": {r.Client.Secret}})
}

func (gitee) Refresh(ctx context.Context, r *plugin.RefreshRequest) (*plugin.Token, error) {
	q := plugin.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.RefreshToken}}
	return token(ctx, r.Endpoints.TokenURL+"?"+q.Encode(), nil)
}

func token(ctx context.Context, u string, form plugin.Values) (*plugin.Token, error) {
	resp, err := plugin.PostForm(ctx, u, form, plugin.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, err
	}
	return plugin.ParseTokenResponse(resp)
}

// get calls the API with the token in the query, where Gitee takes it.
func get(ctx context.Context, e plugin.Endpoints, token, path string) (*plugin.Response, error) {
	u := e.APIBase + path
	sep := "?"
	for i := range len(path) {
		if path[i] == '?' {
			sep = "&"
		}
	}
	u += sep + "access_token=" + plugin.QueryEscape(token)
	resp, err := plugin.Get(ctx, u, plugin.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, err
	}
	// The URL carries the token: name only the path in errors.
	return resp, plugin.CheckResponse("GET", e.APIBase+path, resp)
}

var userFields = plugin.UserFields{ID: "id", Login: "login", Name: "name"}

func (gitee) User(ctx context.Context, r *plugin.UserRequest) (*plugin.User, error) {
	resp, err := get(ctx, r.Endpoints, r.AccessToken, "/user")
	if err != nil {
		return nil, err
	}
	u, err := userFields.Parse(resp)
	if err != nil {
		return nil, err
	}
	resp, err = get(ctx, r.Endpoints, r.AccessToken, "/emails")
	if err != nil {
		return nil, err
	}
	j := plugin.NewJSON(resp.Body)
	j.Array(func() {
		var addr string
		var confirmed, primary bool
		j.Object(func(key []byte) {
			switch string(key) {
			case "email":
				addr = j.String()
			case "state":
				confirmed = j.String() == "confirmed"
			case "scope":
				j.Array(func() { primary = j.String() == "primary" || primary })
			}
		})
		if primary {
			u.Email, u.EmailVerified = addr, confirmed
		}
	})
	return u, j.Err()
}

func (gitee) Repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	page := 1
	if r.Cursor != "" {
		n, err := strconv.Atoi(r.Cursor)
		if err != nil || n < 1 {
			return nil, plugin.ErrInvalidRequest("bad cursor")
		}
		page = n
	}
	per := plugin.PerPage(r.PerPage, 100)
	resp, err := get(ctx, r.Endpoints, r.AccessToken, "/user/repos?page="+strconv.Itoa(page)+"&per_page="+strconv.Itoa(per))
	if err != nil {
		return nil, err
	}
	repos, err := plugin.GitHubRepoFields.Append(make([]plugin.Repo, 0, per), resp.Body)
	if err != nil {
		return nil, err
	}
	out := &plugin.RepoPage{Repos: repos}
	if total, _ := strconv.Atoi(resp.Header.Get("Total_page")); page < total {
		out.NextCursor = strconv.Itoa(page + 1)
	}
	return out, nil
}

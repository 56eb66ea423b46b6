// Command shallow is a Bitbucket plugin with two listing bugs, for the
// kit's own tests: it lists only the user's first workspace, and every call
// re-reads that workspace's first page before the page it was asked for.
package main

import (
	"context"
	"strconv"

	"github.com/vintner/arbor/sdk/plugin"
)

type shallow struct{}

func init() { plugin.Register(shallow{}) }

func main() {}

func (shallow) AuthorizeParams(_ context.Context, r *plugin.AuthorizeRequest) (plugin.Values, error) {
	v := plugin.DefaultAuthorizeParams(r)
	v.Del("scope")
	return v, nil
}

func (shallow) Exchange(ctx context.Context, r *plugin.ExchangeRequest) (*plugin.Token, error) {
	return plugin.ExchangeCode(ctx, r, plugin.AuthInHeader)
}

func get(ctx context.Context, u, token string) (*plugin.JSON, error) {
	resp, err := plugin.Get(ctx, u, plugin.Bearer(token))
	if err != nil {
		return nil, err
	}
	if err := plugin.CheckResponse("GET", u, resp); err != nil {
		return nil, err
	}
	return plugin.NewJSON(resp.Body), nil
}

func (shallow) Repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	api := r.Endpoints.APIBase
	j, err := get(ctx, api+"/user/workspaces", r.AccessToken)
	if err != nil {
		return nil, err
	}
	var slugs []string
	j.Object(func(key []byte) {
		if string(key) == "values" {
			j.Array(func() {
				j.Object(func(key []byte) {
					if string(key) == "workspace" {
						j.Object(func(key []byte) {
							if string(key) == "slug" {
								slugs = append(slugs, j.String())
							}
						})
					}
				})
			})
		}
	})
	if err := j.Err(); err != nil || len(slugs) == 0 {
		return nil, plugin.ErrProvider(200, "no workspaces")
	}
	n := r.PerPage
	if n <= 0 || n > 100 {
		n = 100
	}
	// Bug: the first workspace only. Bug: its first page on every call.
	first := api + "/repositories/" + plugin.PathEscape(slugs[0]) + "?role=member&pagelen=" + strconv.Itoa(n)
	if j, err = get(ctx, first, r.AccessToken); err != nil {
		return nil, err
	}
	if r.Cursor != "" {
		if j, err = get(ctx, r.Cursor, r.AccessToken); err != nil {
			return nil, err
		}
	}
	page := &plugin.RepoPage{}
	j.Object(func(key []byte) {
		switch string(key) {
		case "next":
			page.NextCursor = j.String()
		case "values":
			j.Array(func() {
				var repo plugin.Repo
				j.Object(func(key []byte) {
					switch string(key) {
					case "uuid":
						repo.ID = j.String()
					case "full_name":
						repo.FullName = j.String()
					case "is_private":
						repo.Private = j.Bool()
					case "mainbranch":
						j.Object(func(key []byte) {
							if string(key) == "name" {
								repo.DefaultBranch = j.String()
							}
						})
					case "links":
						j.Object(func(key []byte) {
							if string(key) == "html" {
								j.Object(func(key []byte) {
									if string(key) == "href" {
										repo.HTMLURL = j.String()
									}
								})
							}
						})
					}
				})
				page.Repos = append(page.Repos, repo)
			})
		}
	})
	return page, j.Err()
}

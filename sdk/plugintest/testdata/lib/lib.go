// Package lib is a provider for the kit's own tests: a plain RFC 6749
// provider with the generic fake's API layout. Sloppy turns on one bug per
// area, each of which a conformance case must catch.
package lib

import (
	"context"
	"strconv"

	"github.com/vintner/arbor/sdk/plugin"
)

// Provider implements every operation.
type Provider struct {
	// Sloppy: refresh hands back the old refresh token, 401 is not
	// invalid_token, every address counts as verified, pagination and the
	// page size are ignored, revoke does nothing, the client
	// authenticates with Basic where the kit expects the body, and groups
	// are kept per token after the first call.
	Sloppy bool
}

// groupCache is Sloppy's memory of each token's groups.
var groupCache = map[string][]string{}

func (p Provider) Groups(ctx context.Context, r *plugin.GroupsRequest) (*plugin.Groups, error) {
	if g, ok := groupCache[r.AccessToken]; ok && p.Sloppy {
		return plugin.NewGroups(g, nil), nil
	}
	c, err := p.api().For(r.Endpoints, r.AccessToken)
	if err != nil {
		return nil, err
	}
	var names []string
	err = c.EachPage(ctx, plugin.PagingLink, "/user/groups?per_page=100", 10, func(resp *plugin.Response) (err error) {
		names, err = plugin.AppendNames(names, resp.Body, "name")
		return err
	})
	if err != nil {
		return nil, err
	}
	if p.Sloppy {
		groupCache[r.AccessToken] = names
	}
	return plugin.NewGroups(names, nil), nil
}

var _ interface {
	plugin.FullProvider
	plugin.GroupLister
} = Provider{}

func (p Provider) grants() plugin.Grants {
	if p.Sloppy {
		return plugin.Grants{Auth: plugin.AuthInHeader}
	}
	return plugin.Grants{Auth: plugin.AuthInParams}
}

func (p Provider) Exchange(ctx context.Context, r *plugin.ExchangeRequest) (*plugin.Token, error) {
	return p.grants().Exchange(ctx, r)
}

func (p Provider) Refresh(ctx context.Context, r *plugin.RefreshRequest) (*plugin.Token, error) {
	t, err := p.grants().Refresh(ctx, r)
	if err == nil && p.Sloppy {
		t.RefreshToken = r.RefreshToken
	}
	return t, err
}

func (p Provider) Revoke(ctx context.Context, r *plugin.RevokeRequest) error {
	if p.Sloppy {
		return nil
	}
	form := plugin.Values{"token": {r.AccessToken}, "client_id": {r.Client.ID}, "client_secret": {r.Client.Secret}}
	resp, err := plugin.PostForm(ctx, r.Endpoints.RevokeURL, form, nil)
	if err != nil {
		return err
	}
	return plugin.CheckResponse("POST", r.Endpoints.RevokeURL, resp)
}

// api judges answers with CheckResponse, except that Sloppy's 401 is not
// invalid_token.
func (p Provider) api() plugin.API {
	if !p.Sloppy {
		return plugin.API{}
	}
	return plugin.API{Check: func(method, u string, resp *plugin.Response) error {
		if resp.StatusCode == 401 {
			return plugin.ErrProvider(401, "unauthorized")
		}
		return plugin.CheckResponse(method, u, resp)
	}}
}

var userFields = plugin.UserFields{ID: "id", Login: "login", Name: "full_name"}

func (p Provider) User(ctx context.Context, r *plugin.UserRequest) (*plugin.User, error) {
	u, c, err := p.api().User(ctx, r, "/user", userFields)
	if err != nil {
		return nil, err
	}
	resp, err := c.Get(ctx, "/user/emails")
	if err != nil {
		return nil, err
	}
	list, err := plugin.GitHubEmailFields.Parse(resp.Body)
	if e, ok := plugin.PrimaryEmail(list); ok {
		u.Email, u.EmailVerified = e.Address, e.Verified || p.Sloppy
	}
	return u, err
}

func (p Provider) Repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	first := "/user/repos"
	if r.PerPage > 0 && !p.Sloppy {
		first += "?per_page=" + strconv.Itoa(r.PerPage)
	}
	page, err := p.api().Repos(ctx, r, plugin.PagingLink, first, plugin.GitHubRepoFields)
	if err == nil && p.Sloppy {
		page.NextCursor = ""
	}
	return page, err
}

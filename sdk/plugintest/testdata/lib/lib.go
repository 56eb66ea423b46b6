// Package lib is a provider for the kit's own tests: a plain RFC 6749
// provider with the generic fake's API layout. Sloppy turns on one bug per
// area, each of which a conformance case must catch.
package lib

import (
	"context"
	"strconv"
	"strings"

	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/plugin"
)

// Provider implements every operation.
type Provider struct {
	// Sloppy: refresh hands back the old refresh token, 401 is not
	// invalid_token, every address counts as verified, pagination and the
	// page size are ignored, revoke does nothing, and the client
	// authenticates with Basic where the kit expects the body.
	Sloppy bool
}

var (
	_ plugin.Exchanger  = Provider{}
	_ plugin.Refresher  = Provider{}
	_ plugin.Revoker    = Provider{}
	_ plugin.UserInfoer = Provider{}
	_ plugin.RepoLister = Provider{}
)

func (p Provider) style() plugin.AuthStyle {
	if p.Sloppy {
		return plugin.AuthInHeader
	}
	return plugin.AuthInParams
}

func (p Provider) Exchange(ctx context.Context, r *plugin.ExchangeRequest) (*plugin.Token, error) {
	return plugin.ExchangeCode(ctx, r, p.style())
}

func (p Provider) Refresh(ctx context.Context, r *plugin.RefreshRequest) (*plugin.Token, error) {
	t, err := plugin.RefreshToken(ctx, r, p.style())
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

func (p Provider) get(ctx context.Context, u, token string) (*plugin.Response, error) {
	resp, err := plugin.Get(ctx, u, plugin.Bearer(token))
	if err != nil {
		return nil, err
	}
	if p.Sloppy && resp.StatusCode == 401 {
		return nil, plugin.ErrProvider(401, "unauthorized")
	}
	return resp, plugin.CheckResponse("GET", u, resp)
}

func (p Provider) User(ctx context.Context, r *plugin.UserRequest) (*plugin.User, error) {
	resp, err := p.get(ctx, r.Endpoints.APIBase+"/user", r.AccessToken)
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
		}
	})
	if err := j.Err(); err != nil {
		return nil, err
	}
	resp, err = p.get(ctx, r.Endpoints.APIBase+"/user/emails", r.AccessToken)
	if err != nil {
		return nil, err
	}
	j = plugin.NewJSON(resp.Body)
	j.Array(func() {
		var addr string
		var primary, verified bool
		j.Object(func(key []byte) {
			switch string(key) {
			case "email":
				addr = j.String()
			case "primary":
				primary = j.Bool()
			case "verified":
				verified = j.Bool()
			}
		})
		if primary {
			u.Email, u.EmailVerified = addr, verified || p.Sloppy
		}
	})
	return u, j.Err()
}

func (p Provider) Repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	u := r.Cursor
	if u == "" {
		u = r.Endpoints.APIBase + "/user/repos"
		if r.PerPage > 0 && !p.Sloppy {
			u += "?per_page=" + strconv.Itoa(r.PerPage)
		}
	} else if !strings.HasPrefix(u, r.Endpoints.APIBase+"/") {
		return nil, &plugin.Error{Code: abi.CodeInvalidRequest, Message: "foreign cursor"}
	}
	resp, err := p.get(ctx, u, r.AccessToken)
	if err != nil {
		return nil, err
	}
	page := &plugin.RepoPage{}
	if !p.Sloppy {
		page.NextCursor = plugin.NextLink(resp.Header)
	}
	j := plugin.NewJSON(resp.Body)
	j.Array(func() {
		var repo plugin.Repo
		j.Object(func(key []byte) {
			switch string(key) {
			case "id":
				repo.ID = j.Number()
			case "full_name":
				repo.FullName = j.String()
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

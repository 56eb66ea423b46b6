// Command bitbucket is Arbor's built-in Bitbucket Cloud provider plugin
// (sign-in and Git connections), a wasip1 reactor module written only with
// sdk/plugin.
//
// Bitbucket's quirks, each handled here (docs/provider-plugins.md has the
// details and the documentation followed):
//
//   - The token endpoint requires HTTP Basic client authentication;
//     credentials only in the body are refused.
//   - Scopes belong to the OAuth consumer's configuration in Bitbucket, not
//     to the authorization request, so the URL carries none.
//   - Access tokens last two hours and refresh tokens rotate.
//   - E-mail addresses come from /2.0/user/emails (is_primary,
//     is_confirmed), not from /2.0/user.
//   - Lists page in the body: {"values": […], "next": "<absolute URL>"}.
//   - There is no token revocation endpoint for OAuth consumers: Revoke
//     says so with the code "unsupported" and tells the user where to
//     revoke access themselves.
//
// Build: make plugins (or GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared).
package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/vintner/arbor/sdk/plugin"
)

type bitbucket struct{}

var (
	_ plugin.Authorizer = (*bitbucket)(nil)
	_ plugin.Exchanger  = (*bitbucket)(nil)
	_ plugin.Refresher  = (*bitbucket)(nil)
	_ plugin.Revoker    = (*bitbucket)(nil)
	_ plugin.UserInfoer = (*bitbucket)(nil)
	_ plugin.RepoLister = (*bitbucket)(nil)
)

func init() { plugin.Register(&bitbucket{}) }

func main() {}

const (
	// maxPageLen is the largest page Bitbucket serves.
	maxPageLen = 100
	// maxEmailPages bounds the e-mail address pages read for one user.
	maxEmailPages = 5
)

// revokeMessage is what Revoke answers: Bitbucket Cloud has no revocation
// endpoint for OAuth consumers.
const revokeMessage = "bitbucket: Bitbucket Cloud offers OAuth consumers no way to revoke a grant; " +
	"Arbor has forgotten its tokens; revoke Arbor's access yourself at bitbucket.org under " +
	"Personal Bitbucket settings → App authorizations → Revoke"

// AuthorizeParams leaves out scope: Bitbucket grants the scopes configured
// on the OAuth consumer, whatever the request says.
func (*bitbucket) AuthorizeParams(_ context.Context, r *plugin.AuthorizeRequest) (plugin.Values, error) {
	v := plugin.DefaultAuthorizeParams(r)
	v.Del("scope")
	return v, nil
}

func (*bitbucket) Exchange(ctx context.Context, r *plugin.ExchangeRequest) (*plugin.Token, error) {
	t, err := plugin.ExchangeCode(ctx, r, plugin.AuthInHeader)
	return t, wrap(err)
}

// Refresh uses a refresh token with Basic client authentication. Bitbucket
// rotates it: the caller must store the returned one.
func (*bitbucket) Refresh(ctx context.Context, r *plugin.RefreshRequest) (*plugin.Token, error) {
	r.Scopes = nil // scopes come from the consumer
	t, err := plugin.RefreshToken(ctx, r, plugin.AuthInHeader)
	return t, wrap(err)
}

// Revoke reports "unsupported": see revokeMessage.
func (*bitbucket) Revoke(context.Context, *plugin.RevokeRequest) error {
	return plugin.ErrUnsupported(revokeMessage)
}

func (*bitbucket) User(ctx context.Context, r *plugin.UserRequest) (*plugin.User, error) {
	if r.Endpoints.APIBase == "" {
		return nil, plugin.ErrInvalidRequest("bitbucket: no API base URL is configured")
	}
	resp, err := get(ctx, r.Endpoints.APIBase+"/user", r.AccessToken)
	if err != nil {
		return nil, err
	}
	u := &plugin.User{}
	var nickname string
	j := plugin.NewJSON(resp.Body)
	j.Object(func(key []byte) {
		switch string(key) {
		case "uuid":
			// Stable and never reused; account_id is Atlassian-wide and
			// absent for some accounts.
			u.ID = j.String()
		case "username":
			u.Login = j.String()
		case "nickname":
			nickname = j.String()
		case "display_name":
			u.Name = j.String()
		case "links":
			j.Object(func(key []byte) {
				switch string(key) {
				case "avatar":
					u.AvatarURL = href(j)
				case "html":
					u.ProfileURL = href(j)
				}
			})
		}
	})
	if err := j.Err(); err != nil {
		return nil, wrap(err)
	}
	if u.ID == "" {
		return nil, plugin.ErrProvider(resp.StatusCode, "bitbucket: /2.0/user answered without a uuid")
	}
	if u.Login == "" {
		u.Login = nickname // Bitbucket drops username for some accounts
	}

	next := r.Endpoints.APIBase + "/user/emails?pagelen=100"
	for i := 0; next != "" && i < maxEmailPages; i++ {
		if !strings.HasPrefix(next, r.Endpoints.APIBase+"/") {
			return nil, plugin.ErrProvider(0, "bitbucket: /2.0/user/emails pointed its next page outside the API")
		}
		resp, err := get(ctx, next, r.AccessToken)
		if err != nil {
			return nil, err
		}
		next = ""
		j := plugin.NewJSON(resp.Body)
		j.Object(func(key []byte) {
			switch string(key) {
			case "next":
				next = j.String()
			case "values":
				j.Array(func() {
					var addr string
					var primary, confirmed bool
					j.Object(func(key []byte) {
						switch string(key) {
						case "email":
							addr = j.String()
						case "is_primary":
							primary = j.Bool()
						case "is_confirmed":
							confirmed = j.Bool()
						}
					})
					if primary && u.Email == "" {
						u.Email, u.EmailVerified = addr, confirmed
					}
				})
			}
		})
		if err := j.Err(); err != nil {
			return nil, wrap(err)
		}
		if u.Email != "" {
			break
		}
	}
	return u, nil
}

// Repos lists the repositories the user is a member of. The cursor is the
// body's next URL.
func (*bitbucket) Repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	if r.Endpoints.APIBase == "" {
		return nil, plugin.ErrInvalidRequest("bitbucket: no API base URL is configured")
	}
	u := r.Cursor
	if u == "" {
		n := r.PerPage
		if n <= 0 || n > maxPageLen {
			n = maxPageLen
		}
		u = r.Endpoints.APIBase + "/repositories?role=member&pagelen=" + strconv.Itoa(n)
	} else if !strings.HasPrefix(u, r.Endpoints.APIBase+"/") {
		return nil, plugin.ErrInvalidRequest("bitbucket: the cursor is not a page of this provider's API")
	}
	resp, err := get(ctx, u, r.AccessToken)
	if err != nil {
		return nil, err
	}
	page := &plugin.RepoPage{Repos: make([]plugin.Repo, 0, maxPageLen)}
	j := plugin.NewJSON(resp.Body)
	j.Object(func(key []byte) {
		switch string(key) {
		case "next":
			page.NextCursor = j.String()
		case "values":
			j.Array(func() { page.Repos = append(page.Repos, repo(j)) })
		}
	})
	if err := j.Err(); err != nil {
		return nil, wrap(err)
	}
	return page, nil
}

// repo reads one repository object.
func repo(j *plugin.JSON) plugin.Repo {
	var r plugin.Repo
	j.Object(func(key []byte) {
		switch string(key) {
		case "uuid":
			r.ID = j.String()
		case "full_name":
			r.FullName = j.String()
		case "description":
			r.Description = j.String()
		case "is_private":
			r.Private = j.Bool()
		case "mainbranch":
			j.Object(func(key []byte) {
				if string(key) == "name" {
					r.DefaultBranch = j.String()
				}
			})
		case "updated_on":
			r.UpdatedAt = unixTime(j.String())
		case "links":
			j.Object(func(key []byte) {
				switch string(key) {
				case "html":
					r.HTMLURL = href(j)
				case "clone":
					j.Array(func() {
						var name, h string
						j.Object(func(key []byte) {
							switch string(key) {
							case "name":
								name = j.String()
							case "href":
								h = j.String()
							}
						})
						if name == "https" {
							r.CloneURL = stripUserinfo(h)
						}
					})
				}
			})
		}
	})
	return r
}

// href reads {"href": "…"}.
func href(j *plugin.JSON) string {
	var h string
	j.Object(func(key []byte) {
		if string(key) == "href" {
			h = j.String()
		}
	})
	return h
}

// stripUserinfo removes the "user@" Bitbucket puts into HTTPS clone URLs
// (https://atlas@bitbucket.org/atlas/repo.git): the token, not the
// username, authenticates Arbor's clones.
func stripUserinfo(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	host := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host = rest[:i]
	}
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		return scheme + "://" + rest[at+1:]
	}
	return u
}

// get performs an authenticated API GET and turns error statuses into
// typed errors.
func get(ctx context.Context, u, token string) (*plugin.Response, error) {
	resp, err := plugin.Get(ctx, u, plugin.Bearer(token))
	if err != nil {
		return nil, wrap(err)
	}
	if err := plugin.CheckResponse("GET", u, resp); err != nil {
		return nil, wrap(err)
	}
	return resp, nil
}

// wrap prefixes the provider's name to an error's message, keeping its
// code.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var e *plugin.Error
	if errors.As(err, &e) {
		c := *e
		c.Message = "bitbucket: " + c.Message
		return &c
	}
	return errors.New("bitbucket: " + err.Error())
}

// unixTime parses an RFC 3339 time (Bitbucket adds microseconds and an
// offset), 0 if it is empty or malformed.
func unixTime(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0
	}
	return t.Unix()
}

// Command github is Arbor's built-in GitHub provider plugin (sign-in and Git
// connections), a wasip1 reactor module written only with sdk/plugin.
//
// GitHub's quirks, each handled here (docs/provider-plugins.md has the
// details and the documentation followed):
//
//   - The token endpoint answers form-encoded unless the request says
//     Accept: application/json, and reports errors with HTTP 200 and an
//     "error" field; the SDK's token parser handles both forms.
//   - Client credentials go in the form body.
//   - Expiring user tokens (8 h) come with a refresh token that is
//     single-use: every refresh returns a new one. bad_verification_code and
//     bad_refresh_token mean invalid_grant.
//   - /user may say "email": null (a private address); the verified primary
//     address comes from /user/emails, which needs the user:email scope.
//   - Revocation deletes the whole grant: DELETE
//     /applications/{client_id}/grant on the API host, with HTTP Basic
//     client authentication and the access token in a JSON body.
//   - /user/repos pages with a Link header.
//
// Build: make plugins (or GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared).
package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/plugin"
)

type github struct{}

var (
	_ plugin.Exchanger  = (*github)(nil)
	_ plugin.Refresher  = (*github)(nil)
	_ plugin.Revoker    = (*github)(nil)
	_ plugin.UserInfoer = (*github)(nil)
	_ plugin.RepoLister = (*github)(nil)
)

func init() { plugin.Register(&github{}) }

func main() {}

// apiVersion pins the REST API version GitHub answers with.
const apiVersion = "2022-11-28"

// maxPerPage is the largest page /user/repos serves.
const maxPerPage = 100

// The authorization URL is the standard one (plugin.DefaultAuthorizeParams):
// GitHub ignores response_type, takes space-separated scopes and, since
// July 2025, S256 PKCE challenges.

func (*github) Exchange(ctx context.Context, r *plugin.ExchangeRequest) (*plugin.Token, error) {
	t, err := plugin.ExchangeCode(ctx, r, plugin.AuthInParams)
	return t, wrap(err)
}

func (*github) Refresh(ctx context.Context, r *plugin.RefreshRequest) (*plugin.Token, error) {
	// The refresh grant takes no scope parameter at GitHub: a refreshed
	// token keeps the scopes of the grant.
	r.Scopes = nil
	t, err := plugin.RefreshToken(ctx, r, plugin.AuthInParams)
	return t, wrap(err)
}

// Revoke deletes the user's grant for this OAuth app, which revokes every
// token of the grant, refresh tokens included. GitHub identifies the grant
// by an access token (an expired one will do); a refresh token alone
// cannot revoke.
func (*github) Revoke(ctx context.Context, r *plugin.RevokeRequest) error {
	if r.AccessToken == "" {
		return plugin.ErrInvalidRequest("github: revoking a grant needs its access token")
	}
	if r.Endpoints.APIBase == "" {
		return plugin.ErrInvalidRequest("github: no API base URL is configured")
	}
	u := r.Endpoints.APIBase + "/applications/" + plugin.PathEscape(r.Client.ID) + "/grant"
	req := plugin.NewRequest("DELETE", u, []byte(`{"access_token":`+jsonQuote(r.AccessToken)+`}`))
	req.Header.Set("Authorization", plugin.BasicAuth(r.Client.ID, r.Client.Secret))
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	resp, err := plugin.Do(ctx, req)
	if err != nil {
		return wrap(err)
	}
	switch resp.StatusCode {
	case 204, 200:
		return nil
	case 404:
		// GitHub no longer knows the token: the grant was already revoked
		// (by the user in their settings, or by an earlier call).
		plugin.Log(plugin.LevelInfo, "github: the grant was already revoked (404)")
		return nil
	case 401:
		return plugin.ErrInvalidClient("github: DELETE /applications/{client_id}/grant: the client id or secret was refused (401)")
	}
	return wrap(plugin.CheckResponse("DELETE", u, resp))
}

func (*github) User(ctx context.Context, r *plugin.UserRequest) (*plugin.User, error) {
	if r.Endpoints.APIBase == "" {
		return nil, plugin.ErrInvalidRequest("github: no API base URL is configured")
	}
	resp, err := get(ctx, r.Endpoints.APIBase+"/user", r.AccessToken)
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
		case "name":
			u.Name = j.String()
		case "email":
			u.Email = j.String() // null when the user keeps it private
		case "avatar_url":
			u.AvatarURL = j.String()
		case "html_url":
			u.ProfileURL = j.String()
		}
	})
	if err := j.Err(); err != nil {
		return nil, wrap(err)
	}
	if u.ID == "" {
		return nil, plugin.ErrProvider(resp.StatusCode, "github: /user answered without an id")
	}

	// The address on /user is the public one, which need not be the
	// primary or verified. /user/emails says which is which.
	email, verified, err := primaryEmail(ctx, r)
	switch {
	case err == nil:
		if email != "" {
			u.Email, u.EmailVerified = email, verified
		}
	case isScopeError(err):
		// The token lacks user:email (an operator's narrower scopes): keep
		// the public address, unverified.
		plugin.Log(plugin.LevelWarn, "github: cannot read /user/emails (grant the user:email scope); the e-mail address is treated as unverified")
	default:
		return nil, err
	}
	return u, nil
}

// primaryEmail returns the primary address from /user/emails and whether
// GitHub has verified it.
func primaryEmail(ctx context.Context, r *plugin.UserRequest) (string, bool, error) {
	resp, err := get(ctx, r.Endpoints.APIBase+"/user/emails?per_page=100", r.AccessToken)
	if err != nil {
		return "", false, err
	}
	var email string
	var verified bool
	j := plugin.NewJSON(resp.Body)
	j.Array(func() {
		var addr string
		var primary, ok bool
		j.Object(func(key []byte) {
			switch string(key) {
			case "email":
				addr = j.String()
			case "primary":
				primary = j.Bool()
			case "verified":
				ok = j.Bool()
			}
		})
		if primary && email == "" {
			email, verified = addr, ok
		}
	})
	return email, verified, wrap(j.Err())
}

func (*github) Repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	if r.Endpoints.APIBase == "" {
		return nil, plugin.ErrInvalidRequest("github: no API base URL is configured")
	}
	u := r.Cursor
	if u == "" {
		per := r.PerPage
		if per <= 0 || per > maxPerPage {
			per = maxPerPage
		}
		u = r.Endpoints.APIBase + "/user/repos?per_page=" + strconv.Itoa(per)
	} else if !strings.HasPrefix(u, r.Endpoints.APIBase+"/") {
		// The cursor is the Link header's next URL; anything else would
		// send the user's token somewhere it was not sent before.
		return nil, plugin.ErrInvalidRequest("github: the cursor is not a page of this provider's API")
	}
	resp, err := get(ctx, u, r.AccessToken)
	if err != nil {
		return nil, err
	}
	page := &plugin.RepoPage{Repos: make([]plugin.Repo, 0, maxPerPage), NextCursor: plugin.NextLink(resp.Header)}
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
				repo.UpdatedAt = unixTime(j.String())
			}
		})
		page.Repos = append(page.Repos, repo)
	})
	if err := j.Err(); err != nil {
		return nil, wrap(err)
	}
	return page, nil
}

// get performs an authenticated API GET and turns error statuses into
// typed errors.
func get(ctx context.Context, u, token string) (*plugin.Response, error) {
	h := plugin.Header{
		"Authorization":        {"Bearer " + token},
		"Accept":               {"application/vnd.github+json"},
		"X-Github-Api-Version": {apiVersion},
	}
	resp, err := plugin.Get(ctx, u, h)
	if err != nil {
		return nil, wrap(err)
	}
	if err := plugin.CheckResponse("GET", u, resp); err != nil {
		return nil, wrap(err)
	}
	return resp, nil
}

// isScopeError reports a 403 or 404, which GitHub answers when the token
// lacks the scope an endpoint needs.
func isScopeError(err error) bool {
	var e *plugin.Error
	return errors.As(err, &e) && e.Code == abi.CodeProviderError && (e.Status == 403 || e.Status == 404)
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
		c.Message = "github: " + c.Message
		return &c
	}
	return errors.New("github: " + err.Error())
}

// jsonQuote returns s as a JSON string literal.
func jsonQuote(s string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return string(append(b, '"'))
}

// unixTime parses an RFC 3339 time, 0 if it is empty or malformed.
func unixTime(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0
	}
	return t.Unix()
}

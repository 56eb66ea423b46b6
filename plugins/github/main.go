// Package github is Arbor's built-in GitHub provider plugin (sign-in and Git
// connections), a wasip1 reactor module written only with sdk/plugin.
//
// It works with both kinds of GitHub client, which issue different tokens
// (https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/differences-between-github-apps-and-oauth-apps):
// a GitHub App with expiring user access tokens (ghu_, 8 h, with a ghr_
// refresh token; the default Arbor is tested against, since Arbor
// refreshes tokens by itself) and an OAuth app (gho_ tokens that never
// expire, OAuth scopes, no refresh token). The token prefixes are
// documented
// (https://github.blog/engineering/platform-security/behind-githubs-new-authentication-token-formats/).
//
// GitHub's quirks, each handled here (docs/provider-plugins.md has the
// details and the documentation followed):
//
//   - The token endpoint answers form-encoded unless the request says
//     Accept: application/json, and reports errors with HTTP 200 and an
//     "error" field; the SDK's token parser handles both forms.
//   - Client credentials go in the form body.
//   - A GitHub App's refresh token is single-use and the refresh kills the
//     old access token too ("that refresh token and the old user access
//     token will no longer work",
//     https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens).
//     bad_verification_code and bad_refresh_token mean invalid_grant.
//   - /user may say "email": null (a private address); the verified primary
//     address comes from /user/emails, which an OAuth app's token reads only
//     with the user:email scope (403 or 404 otherwise: the public address is
//     kept, unverified). A rate-limited /user/emails (403 or 429 with
//     x-ratelimit-remaining: 0, a retry-after header, or a "rate limit"
//     message: GitHub's secondary limits need not exhaust the primary one,
//     https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api)
//     is rate_limited, never read as a missing scope.
//   - Revocation deletes the whole grant: DELETE
//     /applications/{client_id}/grant on the API host, with HTTP Basic
//     client authentication and the access token in a JSON body. Its
//     documentation lists only 204 and 422
//     (https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-authorization),
//     so a 404 is not taken as "already revoked": GET /user with the same
//     token tells a dead grant (401: invalid_token) from refused client
//     credentials (200: invalid_client).
//   - A GitHub App's user token reaches only the repositories where the app
//     is installed and the user has access
//     (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-with-a-github-app-on-behalf-of-a-user):
//     for ghu_ tokens repositories are listed per installation, GET
//     /user/installations then GET
//     /user/installations/{installation_id}/repositories
//     (https://docs.github.com/en/rest/apps/installations), with a cursor
//     that carries the installation and the page. Other tokens list GET
//     /user/repos. Both page with a Link header.
//
// Build: make plugins, which compiles it with the other built-in plugins
// into one module, plugins/builtin/builtin.wasm (see package builtin).
package github

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/plugin"
)

// The provider is a declaration (sdk/plugin's Provider) with code for the
// quirks: the grant revocation, the GitHub App's repositories and the
// organisations' access restrictions (groups.go).
//
// The grants are the standard ones, the client credentials in the form
// body; the refresh grant takes no scope parameter at GitHub (a refreshed
// token keeps the grant's scopes), and the SDK's token parser reads the
// errors GitHub answers with HTTP 200 and a rotated refresh token.
//
// The authorization URL is the standard one (plugin.DefaultAuthorizeParams):
// GitHub ignores response_type, takes space-separated scopes and, since
// July 2025, S256 PKCE challenges.
func init() {
	plugin.RegisterAs("github", &plugin.Provider{
		Grants: plugin.Grants{Auth: plugin.AuthInParams, RefreshWithoutScope: true},
		API:    api,
		// Git over HTTPS takes the token as the password of the user
		// x-access-token; GitHub Enterprise Server serves Git at the host
		// whose API base is https://HOST/api/v3.
		Git:      &plugin.GitHosting{URL: "https://github.com", User: "x-access-token", APISuffix: "/api/v3"},
		UserPath: "/user",
		UserFields: plugin.UserFields{ID: "id", Login: "login", Name: "name", AvatarURL: "avatar_url", ProfileURL: "html_url",
			Email: "email"}, // null when the user keeps it private
		// The address on /user is the public one, which need not be the
		// primary or verified: /user/emails says which is which. A token
		// without user:email (an operator's narrower scopes, or a GitHub
		// App without the e-mail permission) keeps the public address,
		// unverified; a rate limit is rate_limited, not this (see api).
		Emails: &plugin.EmailList{List: plugin.List{Path: "/user/emails"}, Fields: plugin.GitHubEmailFields,
			Ignore: emailScope},
		ReposFunc:  repos,
		RevokeFunc: revoke,
		GroupsFunc: groups,
	})
}

// api calls GitHub's REST API with its media type and pinned version.
// Answers are judged by plugin.CheckResponse, which reads GitHub's rate
// limits too: a 403 or 429 with x-ratelimit-remaining: 0 (primary limit),
// a retry-after header or a "rate limit" message (secondary limits, whose
// x-ratelimit-remaining need not be 0) is rate_limited, retryable, with
// RetryAfter, so that a limited /user/emails is never mistaken for a
// missing scope
// (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
var api = plugin.API{Header: plugin.Header{
	"Accept":               {"application/vnd.github+json"},
	"X-Github-Api-Version": {"2022-11-28"},
}}

// maxPerPage is the largest page /user/repos and the installation
// listings serve.
const maxPerPage = 100

// revoke deletes the user's grant for this OAuth app, which revokes every
// token of the grant, refresh tokens included. GitHub identifies the grant
// by an access token (an expired one will do); a refresh token alone
// cannot revoke.
func revoke(ctx context.Context, r *plugin.RevokeRequest) error {
	if r.AccessToken == "" {
		return plugin.ErrInvalidRequest("revoking a grant needs its access token")
	}
	c, err := api.For(r.Endpoints, r.AccessToken)
	if err != nil {
		return err
	}
	// The client authenticates this call, not the token.
	req := plugin.NewRequest("DELETE", "/applications/"+plugin.PathEscape(r.Client.ID)+"/grant",
		[]byte(`{"access_token":`+jsonQuote(r.AccessToken)+`}`))
	req.Header.Set("Authorization", plugin.BasicAuth(r.Client.ID, r.Client.Secret))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(ctx, req)
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case 204, 200:
		return nil
	case 404:
		return revokeNotFound(ctx, c)
	case 422:
		return plugin.ErrInvalidRequest("DELETE /applications/{client_id}/grant refused the request as invalid (422)")
	case 401:
		return plugin.ErrInvalidClient("DELETE /applications/{client_id}/grant: the client id or secret was refused (401); check the GitHub client id and secret configured for this provider")
	}
	return plugin.CheckResponse("DELETE", req.URL, resp)
}

// revokeNotFound explains a 404 from DELETE /applications/{client_id}/grant.
// GitHub documents only 204 and 422 for that call, and a 404 may mean
// either that the grant is gone or that GitHub refused the client
// credentials (not confirmed from documentation). The access token tells
// which: if it still works, the grant exists and the credentials were the
// problem.
func revokeNotFound(ctx context.Context, c *plugin.Caller) error {
	resp, err := c.Do(ctx, plugin.NewRequest("GET", "/user", nil))
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case 200:
		return plugin.ErrInvalidClient("DELETE /applications/{client_id}/grant answered 404 while the access token still works, " +
			"so GitHub refused the client credentials: check the GitHub client secret (and client id) configured for this provider")
	case 401:
		return plugin.ErrInvalidToken("the grant is already revoked or the access token expired (DELETE /applications/{client_id}/grant answered 404, GET /user 401)")
	}
	if err := plugin.CheckResponse("GET", c.Base()+"/user", resp); err != nil {
		return err
	}
	return plugin.ErrProvider(resp.StatusCode, "DELETE /applications/{client_id}/grant answered 404 and GET /user "+strconv.Itoa(resp.StatusCode))
}

// userRepos is an OAuth app token's repository list, paged by the Link
// header.
var userRepos = plugin.List{Path: "/user/repos", MaxPerPage: maxPerPage}

// repos lists a GitHub App token's repositories installation by
// installation (appRepos), any other token's at /user/repos.
func repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	if strings.HasPrefix(r.AccessToken, "ghu_") {
		return appRepos(ctx, r)
	}
	return api.ListRepos(ctx, r, &userRepos, plugin.GitHubRepoFields)
}

// maxAppCalls bounds the HTTP calls of one Repos operation for a GitHub
// App token; maxInstallationPages the pages of /user/installations read
// (100 installations each).
const (
	maxAppCalls          = 6
	maxInstallationPages = 5
)

// appCursor is where a GitHub App listing goes on: page p (of n
// repositories) of installation i. It travels as "i=…&n=…&p=…" and only
// numbers are taken from it, so every URL built from it stays on APIBase.
type appCursor struct {
	inst      string
	page, per int
}

func (c appCursor) encode() string {
	v := plugin.Values{}
	v.Set("i", c.inst)
	v.Set("p", strconv.Itoa(c.page))
	v.Set("n", strconv.Itoa(c.per))
	return v.Encode()
}

func parseAppCursor(s string) (appCursor, bool) {
	v, err := plugin.ParseQuery(s)
	if err != nil || len(v) != 3 {
		return appCursor{}, false
	}
	c := appCursor{inst: v.Get("i")}
	var err1, err2 error
	c.page, err1 = strconv.Atoi(v.Get("p"))
	c.per, err2 = strconv.Atoi(v.Get("n"))
	if err1 != nil || err2 != nil || !digits(c.inst) || c.page < 1 || c.page > 100000 || c.per < 1 || c.per > maxPerPage ||
		len(v["i"]) != 1 || len(v["p"]) != 1 || len(v["n"]) != 1 {
		return appCursor{}, false
	}
	return c, true
}

// digits reports a non-empty decimal number of at most 19 digits.
func digits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// appRepos lists a GitHub App user token's repositories installation by
// installation: each page is one page of one installation's
// repositories, and the cursor names the next one.
func appRepos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	c, err := api.For(r.Endpoints, r.AccessToken)
	if err != nil {
		return nil, err
	}
	budget := maxAppCalls
	var (
		insts  []string
		listed bool
		cur    appCursor
	)
	list := func() error {
		var err error
		insts, err = installations(ctx, c, &budget)
		listed = true
		return err
	}
	out := &plugin.RepoPage{Repos: []plugin.Repo{}}
	if r.Cursor == "" {
		if err := list(); err != nil {
			return nil, err
		}
		if len(insts) == 0 {
			// The app is installed nowhere the user can see: nothing to
			// list (the user or an owner must install it).
			return out, nil
		}
		cur = appCursor{inst: insts[0], page: 1, per: plugin.PerPage(r.PerPage, maxPerPage)}
	} else {
		var ok bool
		if cur, ok = parseAppCursor(r.Cursor); !ok {
			return nil, plugin.ErrInvalidRequest("the cursor is not one this plugin issued for a GitHub App token")
		}
	}
	for budget > 0 {
		budget--
		more, err := page(ctx, c, "/user/installations/"+cur.inst+"/repositories", "repositories", cur.page, cur.per, func(j *plugin.JSON) {
			out.Repos = append(out.Repos, plugin.GitHubRepoFields.Read(j))
		})
		if err != nil {
			return nil, err
		}
		if more {
			cur.page++
			out.NextCursor = cur.encode()
			return out, nil
		}
		// This installation is done: on to the next one, if any.
		if !listed {
			if err := list(); err != nil {
				return nil, err
			}
		}
		i := slices.Index(insts, cur.inst)
		if i < 0 {
			return nil, plugin.ErrInvalidRequest("the installation the cursor names is no longer accessible; list the repositories again from the start")
		}
		if i+1 == len(insts) {
			return out, nil
		}
		cur = appCursor{inst: insts[i+1], page: 1, per: cur.per}
		if len(out.Repos) > 0 {
			break
		}
	}
	// A full page, or the call budget spent on empty installations: the
	// caller goes on from the next installation.
	out.NextCursor = cur.encode()
	return out, nil
}

// installations returns the ids of the app's installations the user's
// token can see (GET /user/installations), spending calls from budget.
func installations(ctx context.Context, c *plugin.Caller, budget *int) ([]string, error) {
	var ids []string
	for n := 1; n <= maxInstallationPages; n++ {
		if *budget <= 0 {
			return nil, plugin.ErrProvider(0, "too many requests for one page of repositories (the installation list is too long)")
		}
		*budget--
		more, err := page(ctx, c, "/user/installations", "installations", n, 100, func(j *plugin.JSON) {
			j.Object(func(key []byte) {
				if string(key) == "id" {
					if id := j.Number(); digits(id) {
						ids = append(ids, id)
					}
				}
			})
		})
		if err != nil {
			return nil, err
		}
		if !more {
			return ids, nil
		}
	}
	plugin.Log(plugin.LevelWarn, "more installations than one listing reads; the rest are left out")
	return ids, nil
}

// page reads page n (of per entries) of one of the installation lists,
// whose objects hold their entries in the member items, and reports
// whether the Link header names a next page.
func page(ctx context.Context, c *plugin.Caller, path, items string, n, per int, item func(j *plugin.JSON)) (more bool, err error) {
	l := plugin.List{Path: path + "?page=" + strconv.Itoa(n), ItemsMember: items, MaxPerPage: maxPerPage}
	next, err := c.List(ctx, &l, per, "", item)
	return next != "", err
}

// isScopeError reports a 403 or 404, which GitHub answers when the token
// lacks the scope an endpoint needs.
func isScopeError(err error) bool {
	var e *plugin.Error
	return errors.As(err, &e) && e.Code == abi.CodeProviderError && (e.Status == 403 || e.Status == 404)
}

// emailScope is the e-mail list's Ignore: a scope error keeps the public
// address, unverified (the SDK logs a warning), and the log says what to
// grant.
func emailScope(err error) bool {
	if !isScopeError(err) {
		return false
	}
	plugin.Log(plugin.LevelInfo, "GitHub refused /user/emails: grant the user:email scope (a GitHub App: the email addresses permission)")
	return true
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

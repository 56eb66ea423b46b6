// Package bitbucket is Arbor's built-in Bitbucket Cloud provider plugin
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
//   - Access tokens last two hours and go only in the Authorization
//     header; refresh tokens rotate and expire after 3 months unused; the
//     token response says "scope" (OAuth changes enforced from 4 May 2026:
//     https://community.developer.atlassian.com/t/oauth-2-0-and-api-authentication-changes-for-bitbucket-cloud/99003).
//   - E-mail addresses come from /2.0/user/emails (is_primary,
//     is_confirmed), not from /2.0/user.
//   - Lists page in the body: {"values": […], "next": "<absolute URL>"}.
//   - Repositories are listed per workspace. The cross-workspace
//     GET /2.0/repositories answers 410 Gone since 27 February 2026
//     (CHANGE-2770, https://developer.atlassian.com/cloud/bitbucket/changelog/#CHANGE-2770);
//     Repos lists GET /2.0/user/workspaces (CHANGE-3022), then
//     GET /2.0/repositories/{workspace}?role=member for each, with a
//     cursor that carries the workspace and the page, and at most
//     maxListCalls requests per call (empty workspaces are skipped within
//     that bound, then the call returns what it has, with a cursor).
//   - Every URL followed (the cursor's and Bitbucket's next links) must
//     be under the API base; any other cursor is invalid_request.
//   - A refusal that cannot change on a retry (410, and any 4xx other than
//     401 and rate limits) is a non-retryable provider_error that says so.
//   - There is no token revocation endpoint for OAuth consumers: Revoke
//     says so with the code "unsupported" and tells the user where to
//     revoke access themselves.
//
// Build: make plugins, which compiles it with the other built-in plugins
// into one module, plugins/builtin/builtin.wasm (see package builtin).
package bitbucket

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/plugin"
)

// The provider is a declaration (sdk/plugin's Provider) with code for the
// quirks: the authorization URL without scope, the revocation that cannot
// be, the repositories listed per workspace and the workspaces as groups
// (groups.go).
//
// The grants are the standard ones, with HTTP Basic client authentication
// and no scope on the refresh grant (scopes come from the consumer).
// Bitbucket rotates refresh tokens: the caller must store the returned
// one.
func init() {
	plugin.RegisterAs("bitbucket", &plugin.Provider{
		Grants: plugin.Grants{Auth: plugin.AuthInHeader, RefreshWithoutScope: true},
		// Git over HTTPS takes an OAuth token as the password of the user
		// x-token-auth; Bitbucket Cloud has one Git host.
		Git:           &plugin.GitHosting{URL: "https://bitbucket.org", User: "x-token-auth"},
		API:           api,
		AuthorizeFunc: authorizeParams,
		UserPath:      "/user",
		UserFields:    userFields,
		// The addresses are not on /2.0/user: the primary one of
		// /2.0/user/emails, verified only if confirmed, reading at most
		// maxEmailPages pages until one has it. Its next links must be
		// under the API base, as every URL followed.
		Emails: &plugin.EmailList{List: plugin.List{Path: "/user/emails", Paging: plugin.PagingBodyNext,
			ItemsMember: "values", PerPageParams: pagelen, MaxPerPage: maxPageLen},
			Fields: plugin.EmailFields{Address: "email", Primary: "is_primary", Verified: "is_confirmed"}, MaxPages: maxEmailPages},
		ReposFunc:  repos,
		RevokeFunc: revoke,
		GroupsFunc: groups,
	})
}

// api calls Bitbucket's REST API with a Bearer token; a 4xx refusal is
// permanent.
var api = plugin.API{Check: func(method, u string, resp *plugin.Response) error {
	return permanent(plugin.CheckResponse(method, u, resp), resp)
}}

const (
	// maxPageLen is the largest page Bitbucket serves.
	maxPageLen = 100
	// maxEmailPages bounds the e-mail address pages read for one user.
	maxEmailPages = 5
	// maxListCalls bounds the HTTP requests of one Repos call.
	maxListCalls = 8
	// maxCursorIndex bounds a cursor's workspace index (a page holds at
	// most maxPageLen workspaces).
	maxCursorIndex = maxPageLen
)

// pagelen is the page size parameter of Bitbucket's lists.
var pagelen = []string{"pagelen"}

// revokeMessage is what revoke answers: Bitbucket Cloud has no revocation
// endpoint for OAuth consumers.
const revokeMessage = "Bitbucket Cloud offers OAuth consumers no way to revoke a grant; " +
	"Arbor has forgotten its tokens; revoke Arbor's access yourself at bitbucket.org under " +
	"Personal Bitbucket settings → App authorizations → Revoke"

// authorizeParams leaves out scope: Bitbucket grants the scopes configured
// on the OAuth consumer, whatever the request says.
func authorizeParams(_ context.Context, r *plugin.AuthorizeRequest) (plugin.Values, error) {
	v := plugin.DefaultAuthorizeParams(r)
	v.Del("scope")
	return v, nil
}

// revoke reports "unsupported": see revokeMessage.
func revoke(context.Context, *plugin.RevokeRequest) error {
	return plugin.ErrUnsupported(revokeMessage)
}

// userFields read /2.0/user: uuid is stable and never reused (account_id
// is Atlassian-wide and absent for some accounts); the URLs are under
// links.
var userFields = plugin.UserFields{
	ID: "uuid", Name: "display_name",
	Other: func(j *plugin.JSON, key []byte, u *plugin.User) {
		switch string(key) {
		case "username":
			if s := j.String(); s != "" {
				u.Login = s
			}
		case "nickname":
			// Bitbucket drops username for some accounts.
			if s := j.String(); u.Login == "" {
				u.Login = s
			}
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
	},
}

// listCursor is where a repository listing resumes. Encoded as a query
// string: w, the /user/workspaces page that holds the next workspace; i,
// that workspace's index in the page; r, the current workspace's next
// repositories page ("" when the next step starts workspace i); l=1 when
// the current workspace is the user's last.
type listCursor struct {
	wsPage string
	index  int
	repos  string
	last   bool
}

func (c listCursor) encode() string {
	v := plugin.Values{"w": {c.wsPage}, "i": {strconv.Itoa(c.index)}}
	if c.repos != "" {
		v.Set("r", c.repos)
	}
	if c.last {
		v.Set("l", "1")
	}
	return v.Encode()
}

// decodeCursor parses a cursor from an earlier page and checks that every
// URL in it is a page of this provider's API, the only place the user's
// token may be sent.
func decodeCursor(s string, c *plugin.Caller) (listCursor, error) {
	bad := plugin.ErrInvalidRequest("the cursor is not one this plugin returned for this provider's API; list again from the start")
	v, err := plugin.ParseQuery(s)
	if err != nil {
		return listCursor{}, bad
	}
	cur := listCursor{wsPage: v.Get("w"), repos: v.Get("r"), last: v.Get("l") == "1"}
	i, err := strconv.Atoi(v.Get("i"))
	if err != nil || i < 0 || i > maxCursorIndex || !c.Owns(cur.wsPage) || (v.Has("r") && !c.Owns(cur.repos)) {
		return listCursor{}, bad
	}
	cur.index = i
	return cur, nil
}

// repos lists the repositories the user is a member of, workspace by
// workspace: GET /user/workspaces, then GET /repositories/{workspace}
// ?role=member for each (the cross-workspace /repositories is gone). One
// call returns one page of one workspace, skipping empty workspaces
// within maxListCalls requests; when it runs out of requests it returns
// what it has (possibly nothing) with a cursor.
func repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
	c, err := api.For(r.Endpoints, r.AccessToken)
	if err != nil {
		return nil, err
	}
	n := plugin.PerPage(r.PerPage, maxPageLen)
	cur := listCursor{wsPage: c.Base() + "/user/workspaces?pagelen=" + strconv.Itoa(maxPageLen)}
	if r.Cursor != "" {
		if cur, err = decodeCursor(r.Cursor, c); err != nil {
			return nil, err
		}
	}
	page := &plugin.RepoPage{Repos: make([]plugin.Repo, 0, n)}
	calls := 0
	var cached struct {
		url, next string
		slugs     []string
	}
	// Every step makes a request or moves to a page it has not read yet;
	// steps bounds a provider whose empty workspace pages link in a
	// circle.
	for steps := 0; calls < maxListCalls && steps < 2*maxListCalls; steps++ {
		if cur.repos == "" {
			// Start the next workspace.
			if cached.url != cur.wsPage {
				slugs, next, err := workspaces(ctx, c, cur.wsPage)
				calls++
				if err != nil {
					return nil, err
				}
				cached.url, cached.next, cached.slugs = cur.wsPage, next, slugs
			}
			if cur.index >= len(cached.slugs) {
				if cached.next == "" {
					return page, nil // no workspace left
				}
				cur.wsPage, cur.index = cached.next, 0
				continue
			}
			slug := cached.slugs[cur.index]
			cur.index++
			cur.last = false
			if cur.index >= len(cached.slugs) {
				if cached.next == "" {
					cur.last = true
				} else {
					cur.wsPage, cur.index = cached.next, 0
				}
			}
			cur.repos = c.Base() + "/repositories/" + plugin.PathEscape(slug) + "?role=member&pagelen=" + strconv.Itoa(n)
			if calls >= maxListCalls {
				break
			}
		}
		got, next, err := repoPage(ctx, c, cur.repos)
		calls++
		if err != nil {
			return nil, err
		}
		page.Repos = append(page.Repos, got...)
		cur.repos = next
		if next == "" && cur.last {
			return page, nil // the last page of the last workspace
		}
		if len(page.Repos) > 0 {
			break
		}
		// An empty workspace: go on to the next one.
	}
	page.NextCursor = cur.encode()
	return page, nil
}

// pages is the shape of Bitbucket's lists, {"values": […], "next":
// "<absolute URL>"}, for the pages repos and groups read by their URL (the
// first one's included, which a cursor may carry): c.List with a cursor
// sends it only under the API base, and the caller checks the next URL
// (nextOutside) before it keeps or follows it.
var pages = plugin.List{Paging: plugin.PagingBodyNext, ItemsMember: "values", PerPageParams: pagelen, MaxPerPage: maxPageLen}

// nextOutside is the error for a list whose next page is not under the
// API base, or nil.
func nextOutside(c *plugin.Caller, next, what string) error {
	if next != "" && !c.Owns(next) {
		return plugin.ErrProvider(0, what+" pointed its next page outside the API")
	}
	return nil
}

// workspaces reads one page of GET /user/workspaces: the workspaces' slugs
// and the next page's URL.
func workspaces(ctx context.Context, c *plugin.Caller, u string) (slugs []string, next string, err error) {
	next, err = c.List(ctx, &pages, 0, u, func(j *plugin.JSON) {
		var slug string
		j.Object(func(key []byte) {
			if string(key) == "workspace" {
				j.Object(func(key []byte) {
					if string(key) == "slug" {
						slug = j.String()
					}
				})
			}
		})
		slugs = append(slugs, slug)
	})
	if err != nil {
		return nil, "", err
	}
	if len(slugs) > maxCursorIndex {
		return nil, "", plugin.ErrProvider(0, "/2.0/user/workspaces answered more workspaces on one page than asked for")
	}
	for _, s := range slugs {
		if s == "" || s == "." || s == ".." {
			return nil, "", plugin.ErrProvider(0, "/2.0/user/workspaces answered a workspace without a usable slug")
		}
	}
	if err := nextOutside(c, next, "/2.0/user/workspaces"); err != nil {
		return nil, "", err
	}
	return slugs, next, nil
}

// repoPage reads one page of a workspace's repositories.
func repoPage(ctx context.Context, c *plugin.Caller, u string) (repos []plugin.Repo, next string, err error) {
	next, err = c.List(ctx, &pages, 0, u, func(j *plugin.JSON) { repos = append(repos, repoFields.Read(j)) })
	if err == nil {
		err = nextOutside(c, next, "/2.0/repositories")
	}
	if err != nil {
		return nil, "", err
	}
	return repos, next, nil
}

// repoFields reads a repository object: the default branch is
// mainbranch.name, the URLs are under links.
var repoFields = plugin.RepoFields{
	ID: "uuid", FullName: "full_name", Description: "description", Private: "is_private", UpdatedAt: "updated_on",
	Other: func(j *plugin.JSON, key []byte, r *plugin.Repo) {
		switch string(key) {
		case "mainbranch":
			j.Object(func(key []byte) {
				if string(key) == "name" {
					r.DefaultBranch = j.String()
				}
			})
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
	},
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

// permanent says so in a provider_error for a 4xx answer (CheckResponse
// has already made 401 invalid_token and 429 or an exhausted 403
// rate_limited): the same request will be refused again, so it is not
// retryable. Bitbucket's own error message is kept; it never holds a
// credential.
func permanent(err error, resp *plugin.Response) error {
	var e *plugin.Error
	if !errors.As(err, &e) || e.Code != abi.CodeProviderError || resp.StatusCode < 400 || resp.StatusCode > 499 {
		return err
	}
	c := *e
	c.Retryable = false
	if resp.StatusCode == 410 {
		c.Message = "Bitbucket removed this API (410 Gone): this plugin is out of date (" + e.Message + "); " +
			"the refusal is permanent and retrying will not help: update the plugin"
		return &c
	}
	c.Message = e.Message
	if m := errorMessage(resp.Body); m != "" {
		c.Message += " (" + m + ")"
	}
	c.Message += ": Bitbucket refused the request; the refusal is permanent and retrying will not help"
	return &c
}

// errorMessage reads error.message from Bitbucket's error body
// ({"type":"error","error":{"message":…}}), shortened.
func errorMessage(body []byte) string {
	var m string
	j := plugin.NewJSON(body)
	j.Object(func(key []byte) {
		if string(key) != "error" || j.Kind() != '{' {
			j.Skip()
			return
		}
		j.Object(func(key []byte) {
			if string(key) == "message" && j.Kind() == '"' {
				m = j.String()
			} else {
				j.Skip()
			}
		})
	})
	if j.Err() != nil {
		return ""
	}
	if len(m) > 200 {
		m = m[:200] + "…"
	}
	return m
}

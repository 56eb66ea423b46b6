package fakeprovider

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Bitbucket Cloud lists repositories per workspace. The cross-workspace
// listing GET /2.0/repositories (and /2.0/workspaces,
// /2.0/user/permissions/workspaces, /2.0/user/permissions/repositories)
// was removed on 27 February 2026 and answers 410 Gone (CHANGE-2770,
// https://developer.atlassian.com/cloud/bitbucket/changelog/#CHANGE-2770).
// Its replacement is GET /2.0/user/workspaces (CHANGE-3022,
// https://developer.atlassian.com/cloud/bitbucket/changelog/#CHANGE-3022;
// https://developer.atlassian.com/cloud/bitbucket/rest/api-group-workspaces/)
// and then GET /2.0/repositories/{workspace}?role=member for each workspace
// (https://developer.atlassian.com/cloud/bitbucket/rest/api-group-repositories/).
// The fake models that: every user has a personal workspace (slug = login,
// holding the user's generated repositories) and belongs to the shared
// workspaces of Config.Workspaces that name them.

// bitbucketChangelog2770 is the changelog entry a 410 points at.
const bitbucketChangelog2770 = "https://developer.atlassian.com/cloud/bitbucket/changelog#CHANGE-2770"

// bitbucketNoAccess is the fake's message for a workspace the user is not
// a member of. The text is an approximation: the documentation gives the
// 403 ("The requesting user does not have access to the workspace") only
// for GET /2.0/user/workspaces/{workspace}/permission.
const bitbucketNoAccess = "You do not have access to this workspace."

// sharedWorkspaceID numbers shared workspaces (for UUIDs) above any
// plausible fake user id.
const sharedWorkspaceID = 0x7f000000

// Workspace is a shared Bitbucket Cloud workspace (FlavorBitbucket).
type Workspace struct {
	// Slug identifies the workspace in URLs ("orbit").
	Slug string
	// Name is the display name. Default: Slug.
	Name string
	// Members are the logins of the users who belong to it; the first is
	// its administrator.
	Members []string
	// Repos is the number of generated repositories (<slug>/repo-001, …,
	// every third private, every seventh on "master", as for users).
	Repos int
}

// workspace is a personal or shared workspace, resolved.
type workspace struct {
	slug, name string
	id         int64
	personal   bool
	members    []string
	repos      int
}

func personalWorkspace(u *User) workspace {
	name := u.Name
	if name == "" {
		name = u.Login
	}
	return workspace{slug: u.Login, name: name, id: u.ID, personal: true, members: []string{u.Login}, repos: u.Repos}
}

func sharedWorkspace(i int, w Workspace) workspace {
	name := w.Name
	if name == "" {
		name = w.Slug
	}
	return workspace{slug: w.Slug, name: name, id: sharedWorkspaceID + int64(i), members: w.Members, repos: w.Repos}
}

func (w workspace) uuid() string { return bitbucketUUID(w.id, 0) }

func (w workspace) member(login string) bool {
	for _, m := range w.members {
		if strings.EqualFold(m, login) {
			return true
		}
	}
	return false
}

// workspacesOf returns the user's workspaces: the personal one first, then
// the shared ones in configuration order.
//
// A user with an entry in the memberships (Config.Memberships,
// SetMemberships) belongs to exactly the shared workspaces it lists: a
// listed slug that Config.Workspaces does not have is a workspace without
// repositories.
func (p *Provider) workspacesOf(u *User) []workspace {
	out := []workspace{personalWorkspace(u)}
	listed, ok := p.groupsOf(u)
	for i, w := range p.cfg.Workspaces {
		ws := sharedWorkspace(i, w)
		if ok {
			if slices.Contains(listed, ws.slug) {
				ws.members = []string{u.Login}
				out = append(out, ws)
			}
		} else if ws.member(u.Login) {
			out = append(out, ws)
		}
	}
	for i, slug := range listed {
		if !slices.ContainsFunc(out, func(ws workspace) bool { return ws.slug == slug }) {
			out = append(out, workspace{slug: slug, name: slug, id: sharedWorkspaceID + 0x10000 + int64(i), members: []string{u.Login}})
		}
	}
	return out
}

// findWorkspace resolves a {workspace} path segment: a slug or the
// workspace's UUID in braces, as the API accepts both.
func (p *Provider) findWorkspace(id string) (workspace, bool) {
	for i := range p.cfg.Users {
		ws := personalWorkspace(&p.cfg.Users[i])
		if strings.EqualFold(ws.slug, id) || ws.uuid() == id {
			return ws, true
		}
	}
	for i, w := range p.cfg.Workspaces {
		ws := sharedWorkspace(i, w)
		if ws.slug == id || ws.uuid() == id {
			return ws, true
		}
	}
	return workspace{}, false
}

// bitbucketWorkspacesJSON is GET /2.0/user/workspaces: one
// workspace_access object per workspace, as the documented example.
func (p *Provider) bitbucketWorkspacesJSON(r *http.Request, u *User) []any {
	base := p.base(r)
	var out []any
	for _, ws := range p.workspacesOf(u) {
		admin := ws.personal || (len(ws.members) > 0 && strings.EqualFold(ws.members[0], u.Login))
		out = append(out, fields{
			{"type", "workspace_access"}, {"administrator", admin},
			{"workspace", fields{
				{"type", "workspace_base"}, {"uuid", ws.uuid()}, {"slug", ws.slug}, {"name", ws.name},
				{"links", map[string]any{
					"avatar": map[string]string{"href": base + "/workspaces/" + url.PathEscape(ws.slug) + "/avatar/"},
					"self":   map[string]string{"href": base + "/2.0/workspaces/" + url.PathEscape(ws.slug)},
				}},
			}},
		})
	}
	return out
}

// bitbucketRepos is GET /2.0/repositories/{workspace}: 404 for a workspace
// that does not exist (documented), 403 for one the user is not a member
// of (the documentation is silent for this endpoint: the unkinder answer,
// as its sibling /2.0/user/workspaces/{workspace}/permission documents),
// else the workspace's repositories, paged. The role filter (member,
// contributor, admin, owner) is accepted and ignored: a member of a fake
// workspace can read all of its repositories.
func (p *Provider) bitbucketRepos(w http.ResponseWriter, r *http.Request, c *Call, u *User, id string) {
	mine := p.workspacesOf(u)
	i := slices.IndexFunc(mine, func(ws workspace) bool { return strings.EqualFold(ws.slug, id) || ws.uuid() == id })
	if i < 0 {
		if _, ok := p.findWorkspace(id); ok {
			p.apiError(w, r, c, http.StatusForbidden, apiNoAccess)
		} else {
			p.apiError(w, r, c, http.StatusNotFound, apiNotFound)
		}
		return
	}
	ws := mine[i]
	base := p.base(r)
	items := make([]any, 0, ws.repos)
	for i := 1; i <= ws.repos; i++ {
		items = append(items, bitbucketRepoJSON(base, ws, u.Login, i))
	}
	p.writeList(w, r, items)
}

// bitbucketRepoJSON is the i-th generated repository of a workspace, as
// the user viewer sees it (Bitbucket puts the viewer's name into the HTTPS
// clone URL).
func bitbucketRepoJSON(base string, ws workspace, viewer string, i int) fields {
	bu, _ := url.Parse(base)
	g := generatedRepo(FlavorBitbucket, ws.slug, i)
	name := g.FullName[len(ws.slug)+1:]
	web := base + "/" + g.FullName
	clone := url.URL{Scheme: bu.Scheme, User: url.User(viewer), Host: bu.Host, Path: "/" + g.FullName + ".git"}
	owner := fields{{"type", "user"}, {"uuid", ws.uuid()}, {"display_name", ws.name}, {"nickname", ws.slug}}
	if !ws.personal {
		owner = fields{{"type", "team"}, {"uuid", ws.uuid()}, {"display_name", ws.name}, {"username", ws.slug}}
	}
	return fields{
		{"type", "repository"}, {"uuid", bitbucketUUID(ws.id, i)}, {"full_name", g.FullName},
		{"name", name}, {"slug", name}, {"is_private", g.Private}, {"scm", "git"},
		{"mainbranch", fields{{"name", g.DefaultBranch}, {"type", "branch"}}},
		{"owner", owner},
		{"workspace", fields{{"type", "workspace"}, {"slug", ws.slug}, {"name", ws.name}, {"uuid", ws.uuid()}}},
		{"links", map[string]any{
			"self": map[string]string{"href": base + "/2.0/repositories/" + g.FullName},
			"html": map[string]string{"href": web},
			"clone": []map[string]string{
				{"name": "https", "href": clone.String()},
				{"name": "ssh", "href": "git@" + bu.Hostname() + ":" + g.FullName + ".git"},
			},
		}},
		{"created_on", created.Format(time.RFC3339)},
	}
}

// bitbucketGoneBody is what Bitbucket answers, with 410, on an API that
// CHANGE-2770 removed (the body as reported at
// https://community.atlassian.com/forums/Bitbucket-questions/Is-Get-a-Workspace-endpoint-going-to-be-deprecated/qaq-p/3218050).
func bitbucketGoneBody() fields {
	data := fields{{"announcement_url", bitbucketChangelog2770}}
	return fields{
		{"type", "error"},
		{"error", fields{
			{"message", "CHANGE-2770 - Functionality has been deprecated"},
			{"detail", "Please read the changelog entry for more details."},
			{"data", data},
		}},
		{"data", data},
	}
}

// bitbucketVisible is VisibleRepos for FlavorBitbucket: the repositories
// of every workspace the user belongs to.
func (p *Provider) bitbucketVisible(u *User) []Repo {
	out := []Repo{}
	for _, ws := range p.workspacesOf(u) {
		for i := 1; i <= ws.repos; i++ {
			out = append(out, generatedRepo(FlavorBitbucket, ws.slug, i))
		}
	}
	return out
}

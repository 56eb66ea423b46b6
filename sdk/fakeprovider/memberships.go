package fakeprovider

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Memberships: which groups each user belongs to (Config.Memberships),
// changed while the fake runs by SetMemberships or by a POST to
// ControlMembershipsPath, so that a test or a person trying `arbor dev`
// can remove someone from a group and watch their access end. Each flavor
// serves them the way its provider does:
//
//   - GitHub: GET /user/orgs (organisations) and GET /user/teams (teams,
//     "org/team-slug"), Link-paginated, and GET
//     /user/memberships/orgs/{org}
//     (https://docs.github.com/en/rest/orgs/orgs#list-organizations-for-the-authenticated-user,
//     https://docs.github.com/en/rest/teams/teams#list-teams-for-the-authenticated-user,
//     https://docs.github.com/en/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user).
//     An organisation of Config.RestrictedOrgs has OAuth app access
//     restrictions and has not approved the app
//     (https://docs.github.com/en/organizations/managing-oauth-access-to-your-organizations-data/about-oauth-app-access-restrictions):
//     it is missing from both lists and the membership endpoint answers
//     403 with GitHub's message.
//   - GitLab: GET /groups, the groups the user is a member of, with
//     full_path, X-Next-Page-paginated
//     (https://docs.gitlab.com/api/groups/#list-groups).
//   - Bitbucket: the shared workspaces of GET /2.0/user/workspaces (and
//     the access to their repositories).
//   - Google: the hosted domain, hd, in /v1/userinfo and the id_token
//     (https://developers.google.com/identity/openid-connect/openid-connect#an-id-tokens-payload).

// ControlMembershipsPath is the fake's control endpoint: POST a JSON
// object {"user": "<login>", "groups": ["vintner", "vintner/platform"]}
// to replace that user's memberships. It answers 204, or 400 with
// {"error": "invalid_request", "error_description": …} for a body that
// is not such an object, names no known user, or holds an empty group
// name. It is not a provider endpoint: it is not recorded in Calls and
// takes no credentials (the fake listens on loopback).
const ControlMembershipsPath = "/__fake/memberships"

// maxControlBody bounds a control request's body.
const maxControlBody = 64 << 10

// SetMemberships replaces the groups of the user with that login (or
// e-mail address), in the provider's own names (see Config.Memberships).
// An empty list removes the user from every group. It fails for an
// unknown user or an empty group name.
func (p *Provider) SetMemberships(login string, groups []string) error {
	u := p.findUser(login)
	if login == "" || u == nil {
		return fmt.Errorf("fakeprovider: no user %q", login)
	}
	for _, g := range groups {
		if strings.TrimSpace(g) == "" {
			return fmt.Errorf("fakeprovider: an empty group name for user %q", login)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.memberships[u.Login] = slices.Clone(groups)
	if p.memberships[u.Login] == nil {
		p.memberships[u.Login] = []string{}
	}
	return nil
}

// Memberships returns the groups of the user with that login as the fake
// holds them now (nil when the user has no entry).
func (p *Provider) Memberships(login string) []string {
	u := p.findUser(login)
	if u == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g, _ := p.groupsLocked(u)
	return slices.Clone(g)
}

// groupsLocked returns u's groups and whether u has an entry at all.
func (p *Provider) groupsLocked(u *User) ([]string, bool) {
	g, ok := p.memberships[u.Login]
	return g, ok
}

func (p *Provider) groupsOf(u *User) ([]string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.groupsLocked(u)
	return slices.Clone(g), ok
}

func cloneMemberships(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// handleSetMemberships serves POST ControlMembershipsPath.
func (p *Provider) handleSetMemberships(w http.ResponseWriter, r *http.Request) {
	bad := func(desc string) {
		writeJSON(w, http.StatusBadRequest, fields{{"error", "invalid_request"}, {"error_description", desc}})
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, fields{{"error", "invalid_request"},
			{"error_description", "POST a JSON object {\"user\": …, \"groups\": […]}"}})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
	if err != nil || len(body) > maxControlBody {
		bad("the body is unreadable or larger than 64 KiB")
		return
	}
	var in struct {
		User   *string   `json:"user"`
		Groups *[]string `json:"groups"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		bad("the body must be one JSON object {\"user\": \"<login>\", \"groups\": [\"<group>\", …]}")
		return
	}
	if in.User == nil || in.Groups == nil {
		bad("both \"user\" and \"groups\" are required (\"groups\": [] removes the user from every group)")
		return
	}
	if err := p.SetMemberships(*in.User, *in.Groups); err != nil {
		bad(strings.TrimPrefix(err.Error(), "fakeprovider: "))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// githubOrgsTeams splits u's GitHub memberships into organisations (those
// named, and those of the teams) and teams ("org/slug"), both without the
// restricted organisations' when hide is set, sorted.
func (p *Provider) githubOrgsTeams(u *User, hide bool) (orgs, teams []string) {
	groups, _ := p.groupsOf(u)
	restricted := func(org string) bool {
		return hide && slices.ContainsFunc(p.cfg.RestrictedOrgs, func(r string) bool { return strings.EqualFold(r, org) })
	}
	for _, g := range groups {
		org, team, isTeam := strings.Cut(g, "/")
		if restricted(org) {
			continue
		}
		if !slices.Contains(orgs, org) {
			orgs = append(orgs, org)
		}
		if isTeam && team != "" && !slices.Contains(teams, g) {
			teams = append(teams, g)
		}
	}
	slices.Sort(orgs)
	slices.Sort(teams)
	return orgs, teams
}

// stableID derives a positive id from a name, the same on every run.
func stableID(kind, name string) int64 {
	h := fnv.New32a()
	h.Write([]byte(kind + ":" + strings.ToLower(name)))
	return int64(h.Sum32()%90000000) + 10000000
}

// githubOrgJSON is an organization-simple object.
func githubOrgJSON(base, org string) fields {
	id := stableID("org", org)
	api := base + "/orgs/" + url.PathEscape(org)
	return fields{
		{"login", org}, {"id", id}, {"node_id", fmt.Sprintf("MDEyOk9yZ2FuaXphdGlvbj%d", id)},
		{"url", api}, {"repos_url", api + "/repos"}, {"events_url", api + "/events"},
		{"hooks_url", api + "/hooks"}, {"issues_url", api + "/issues"},
		{"members_url", api + "/members{/member}"}, {"public_members_url", api + "/public_members{/member}"},
		{"avatar_url", base + "/avatars/" + url.PathEscape(org) + ".png"}, {"description", nil},
	}
}

// githubOrgsJSON is GET /user/orgs.
func (p *Provider) githubOrgsJSON(r *http.Request, u *User) []any {
	orgs, _ := p.githubOrgsTeams(u, true)
	base := p.base(r)
	out := make([]any, 0, len(orgs))
	for _, o := range orgs {
		out = append(out, githubOrgJSON(base, o))
	}
	return out
}

// githubTeamsJSON is GET /user/teams: team-full objects with their
// organization.
func (p *Provider) githubTeamsJSON(r *http.Request, u *User) []any {
	_, teams := p.githubOrgsTeams(u, true)
	base := p.base(r)
	out := make([]any, 0, len(teams))
	for _, t := range teams {
		org, slug, _ := strings.Cut(t, "/")
		id := stableID("team", t)
		api := base + "/organizations/" + fmt.Sprint(stableID("org", org)) + "/team/" + fmt.Sprint(id)
		out = append(out, fields{
			{"id", id}, {"node_id", fmt.Sprintf("MDQ6VGVhbT%d", id)}, {"url", api},
			{"html_url", base + "/orgs/" + url.PathEscape(org) + "/teams/" + url.PathEscape(slug)},
			{"name", slug}, {"slug", slug}, {"description", nil}, {"privacy", "closed"},
			{"notification_setting", "notifications_enabled"}, {"permission", "pull"},
			{"members_url", api + "/members{/member}"}, {"repositories_url", api + "/repos"},
			{"parent", nil}, {"members_count", 1}, {"repos_count", 0},
			{"created_at", created.Format(time.RFC3339)}, {"updated_at", created.Format(time.RFC3339)},
			{"organization", githubOrgJSON(base, org)},
		})
	}
	return out
}

// githubRestrictedMessage is GitHub's 403 message for an organisation
// with OAuth app access restrictions. GitHub's REST reference gives only
// the status; the text is as GitHub answers it, quoted by many client
// libraries' tests (docs/quirk-sources.md).
func githubRestrictedMessage(org string) string {
	return "Although you appear to have the correct authorization credentials, the `" + org +
		"` organization has enabled OAuth App access restrictions, meaning that data access to third-parties is limited. " +
		"For more information on these restrictions, including how to enable this app, visit " +
		"https://docs.github.com/articles/restricting-access-to-your-organization-s-data/"
}

// extraOrg is the organisation apiError's extra carries for
// apiOrgRestricted.
func extraOrg(extra [][]string) string {
	if len(extra) > 0 && len(extra[0]) > 0 {
		return extra[0][0]
	}
	return ""
}

// githubOrgMembership is GET /user/memberships/orgs/{org}: 403 for a
// restricted organisation, the membership for one the user belongs to,
// 404 otherwise ("If the authenticated user is not affiliated with the
// organization, a 404 is returned").
func (p *Provider) githubOrgMembership(w http.ResponseWriter, r *http.Request, c *Call, u *User, org string) {
	for _, ro := range p.cfg.RestrictedOrgs {
		if strings.EqualFold(ro, org) {
			p.apiError(w, r, c, http.StatusForbidden, apiOrgRestricted, []string{ro})
			return
		}
	}
	orgs, _ := p.githubOrgsTeams(u, false)
	i := slices.IndexFunc(orgs, func(o string) bool { return strings.EqualFold(o, org) })
	if i < 0 {
		p.apiError(w, r, c, http.StatusNotFound, apiNotFound)
		return
	}
	base := p.base(r)
	name := orgs[i]
	writeJSON(w, http.StatusOK, fields{
		{"url", base + "/orgs/" + url.PathEscape(name) + "/memberships/" + url.PathEscape(u.Login)},
		{"state", "active"}, {"role", "member"},
		{"organization_url", base + "/orgs/" + url.PathEscape(name)},
		{"organization", githubOrgJSON(base, name)},
		{"user", fields{{"login", u.Login}, {"id", u.ID}, {"type", "User"}, {"site_admin", false}}},
	})
}

// gitlabGroupsJSON is GET /groups for a user: the groups of
// Config.Memberships, each with its full_path, sorted by name as GitLab
// orders by default. Filters (min_access_level, all_available,
// top_level_only) are accepted and ignored: the fake lists exactly the
// configured memberships.
func (p *Provider) gitlabGroupsJSON(r *http.Request, u *User) []any {
	groups, _ := p.groupsOf(u)
	slices.Sort(groups)
	groups = slices.Compact(groups)
	base := p.base(r)
	out := make([]any, 0, len(groups))
	for _, g := range groups {
		path := g
		if i := strings.LastIndexByte(g, '/'); i >= 0 {
			path = g[i+1:]
		}
		var parent any
		if i := strings.LastIndexByte(g, '/'); i >= 0 {
			parent = stableID("group", g[:i])
		}
		out = append(out, fields{
			{"id", stableID("group", g)}, {"web_url", base + "/groups/" + g}, {"name", path},
			{"path", path}, {"description", ""}, {"visibility", "private"},
			{"full_name", strings.ReplaceAll(g, "/", " / ")}, {"full_path", g},
			{"created_at", created.Format(time.RFC3339)}, {"parent_id", parent},
		})
	}
	return out
}

// genericGroupsJSON is the generic fake's list of the user's groups:
// [{"id", "name"}], sorted.
func (p *Provider) genericGroupsJSON(u *User) []any {
	groups, _ := p.groupsOf(u)
	slices.Sort(groups)
	groups = slices.Compact(groups)
	out := make([]any, 0, len(groups))
	for _, g := range groups {
		out = append(out, fields{{"id", stableID("group", g)}, {"name", g}})
	}
	return out
}

// googleHostedDomain is the hd claim of u: the first membership, or "" for
// a consumer account. The caller holds p.mu.
func (p *Provider) googleHostedDomainLocked(u *User) string {
	if g, _ := p.groupsLocked(u); len(g) > 0 {
		return g[0]
	}
	return ""
}

// VisibleGroups returns the groups a token of the user with that login
// can see through the fake's API now, in the provider's own names, sorted
// and in lower case (GitHub and Google compare names case-insensitively;
// the others' presets are lower case): what the groups operation of a
// correct plugin returns when it is asked about nothing in particular.
// GitHub: the organisations and teams outside Config.RestrictedOrgs;
// GitLab: the memberships; Bitbucket: the workspaces of
// /2.0/user/workspaces, the personal one included; Google: the hosted
// domain, if any. nil for an unknown login ("" is the first user).
func (p *Provider) VisibleGroups(login string) []string {
	u := p.findUser(login)
	if u == nil {
		return nil
	}
	var out []string
	switch p.cfg.Flavor {
	case FlavorGitHub:
		orgs, teams := p.githubOrgsTeams(u, true)
		out = append(orgs, teams...)
	case FlavorBitbucket:
		for _, ws := range p.workspacesOf(u) {
			out = append(out, ws.slug)
		}
	case FlavorGoogle:
		p.mu.Lock()
		if hd := p.googleHostedDomainLocked(u); hd != "" {
			out = append(out, hd)
		}
		p.mu.Unlock()
	default:
		out, _ = p.groupsOf(u)
	}
	out = slices.Clone(out)
	for i := range out {
		out[i] = strings.ToLower(out[i])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

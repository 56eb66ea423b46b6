package fakeprovider_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// tokenFor signs user in with scope and returns the access token.
func tokenFor(t *testing.T, p *fakeprovider.Provider, style oauth2.AuthStyle, scope, user string) string {
	t.Helper()
	oc := oauthConfig(p, style, strings.Fields(scope)...)
	q := authorize(t, oc.AuthCodeURL("s"), user)
	tok, err := oc.Exchange(ctxTimeout(t, 5*time.Second), q.Get("code"))
	if err != nil {
		t.Fatalf("exchange for %s: %v", user, err)
	}
	return tok.AccessToken
}

// names reads one member of every object of a decoded JSON list.
func names(v any, path ...string) []string {
	var out []string
	list, _ := v.([]any)
	for _, o := range list {
		if s, ok := field(o, path...).(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// post sends body to the control endpoint and returns the status and the
// decoded answer.
func post(t *testing.T, p *fakeprovider.Provider, method, body string) (int, any) {
	t.Helper()
	req, err := http.NewRequest(method, p.URL()+fakeprovider.ControlMembershipsPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v any
	if b := readAll(t, resp); b != "" {
		if err := jsonUnmarshal(b, &v); err != nil {
			t.Fatalf("control answer is not JSON: %q", b)
		}
	}
	return resp.StatusCode, v
}

// TestGitHubMemberships: organisations and teams from the memberships, a
// team making its organisation listed, paging by Link, the membership
// endpoint, and a change through the control endpoint seen at once.
func TestGitHubMemberships(t *testing.T) {
	p := start(t, fakeprovider.GitHub())
	tok := "Bearer " + tokenFor(t, p, oauth2.AuthStyleInParams, "", "octocat")
	base := p.URL()

	st, _, v := apiGet(t, base+"/user/orgs", tok)
	if st != 200 || !slices.Equal(names(v, "login"), []string{"vintner"}) {
		t.Fatalf("/user/orgs: %d %v", st, v)
	}
	st, _, v = apiGet(t, base+"/user/teams", tok)
	if st != 200 || !slices.Equal(names(v, "slug"), []string{"platform"}) || !slices.Equal(names(v, "organization", "login"), []string{"vintner"}) {
		t.Fatalf("/user/teams: %d %v", st, v)
	}
	st, _, v = apiGet(t, base+"/user/memberships/orgs/Vintner", tok)
	if st != 200 || field(v, "state") != "active" || field(v, "organization", "login") != "vintner" {
		t.Fatalf("membership: %d %v", st, v)
	}
	if st, _, v = apiGet(t, base+"/user/memberships/orgs/elsewhere", tok); st != 404 || field(v, "message") != "Not Found" {
		t.Fatalf("membership of another organisation: %d %v", st, v)
	}

	// Many organisations, two pages of 2 and one of 1; a team of an
	// organisation not otherwise named lists it.
	if err := p.SetMemberships("octocat", []string{"a", "b", "c/x", "d", "e"}); err != nil {
		t.Fatal(err)
	}
	var all []string
	next := base + "/user/orgs?per_page=2"
	for range 5 {
		st, h, v := apiGet(t, next, tok)
		if st != 200 {
			t.Fatalf("%s: %d", next, st)
		}
		all = append(all, names(v, "login")...)
		next = nextLink(h.Get("Link"))
		if next == "" {
			break
		}
	}
	if !slices.Equal(all, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("paged organisations %v", all)
	}

	// hubot belongs to none.
	hubot := "Bearer " + tokenFor(t, p, oauth2.AuthStyleInParams, "", "hubot")
	if st, _, v := apiGet(t, base+"/user/orgs", hubot); st != 200 || len(v.([]any)) != 0 {
		t.Fatalf("hubot's organisations: %d %v", st, v)
	}

	// The control endpoint: octocat leaves the team.
	if st, v := post(t, p, http.MethodPost, `{"user":"octocat","groups":["vintner"]}`); st != 204 || v != nil {
		t.Fatalf("control: %d %v", st, v)
	}
	if st, _, v := apiGet(t, base+"/user/teams", tok); st != 200 || len(v.([]any)) != 0 {
		t.Fatalf("teams after leaving: %d %v", st, v)
	}
	if got := p.Memberships("octocat"); !slices.Equal(got, []string{"vintner"}) {
		t.Errorf("Memberships = %v", got)
	}
	// Reset restores the configuration's.
	p.Reset()
	if got := p.Memberships("octocat"); !slices.Equal(got, []string{"vintner", "vintner/platform"}) {
		t.Errorf("after Reset: %v", got)
	}
}

// nextLink returns the rel="next" URL of a Link header.
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		if strings.Contains(part, `rel="next"`) {
			s := strings.TrimSpace(part)
			return s[1:strings.IndexByte(s, '>')]
		}
	}
	return ""
}

// TestGitHubRestrictedOrg: an organisation with OAuth app access
// restrictions is missing from both lists, and the membership endpoint
// answers GitHub's 403, member or not.
func TestGitHubRestrictedOrg(t *testing.T) {
	cfg := fakeprovider.GitHub()
	cfg.RestrictedOrgs = []string{"acme"}
	cfg.Memberships["octocat"] = []string{"vintner", "acme", "acme/ops"}
	p := start(t, cfg)
	base := p.URL()
	for _, who := range []string{"octocat", "hubot"} {
		tok := "Bearer " + tokenFor(t, p, oauth2.AuthStyleInParams, "", who)
		_, _, orgs := apiGet(t, base+"/user/orgs", tok)
		_, _, teams := apiGet(t, base+"/user/teams", tok)
		if slices.Contains(names(orgs, "login"), "acme") || len(names(teams, "slug")) != 0 {
			t.Errorf("%s: the restricted organisation is listed: %v %v", who, orgs, teams)
		}
		st, _, v := apiGet(t, base+"/user/memberships/orgs/acme", tok)
		msg, _ := field(v, "message").(string)
		if st != 403 || !strings.Contains(msg, "the `acme` organization has enabled OAuth App access restrictions") {
			t.Errorf("%s: membership of the restricted organisation: %d %v", who, st, v)
		}
	}
}

// TestGitHubMembershipScopes: an OAuth app's token needs user or read:org
// for /user/orgs and user, repo or read:org for /user/teams, else 403.
func TestGitHubMembershipScopes(t *testing.T) {
	p := start(t, fakeprovider.GitHubOAuthApp())
	base := p.URL()
	narrow := "Bearer " + tokenFor(t, p, oauth2.AuthStyleInParams, "read:user user:email", "octocat")
	for _, path := range []string{"/user/orgs", "/user/teams"} {
		st, h, _ := apiGet(t, base+path, narrow)
		if st != 403 || h.Get("X-Oauth-Scopes") != "read:user, user:email" || h.Get("X-Accepted-Oauth-Scopes") == "" {
			t.Errorf("%s without read:org: %d %v", path, st, h)
		}
	}
	wide := "Bearer " + tokenFor(t, p, oauth2.AuthStyleInParams, "read:user user:email read:org", "octocat")
	for _, path := range []string{"/user/orgs", "/user/teams"} {
		if st, _, v := apiGet(t, base+path, wide); st != 200 || len(v.([]any)) != 1 {
			t.Errorf("%s with read:org: %d %v", path, st, v)
		}
	}
	repo := "Bearer " + tokenFor(t, p, oauth2.AuthStyleInParams, "repo", "octocat")
	if st, _, _ := apiGet(t, base+"/user/teams", repo); st != 200 {
		t.Errorf("/user/teams with repo: %d", st)
	}
	if st, _, _ := apiGet(t, base+"/user/orgs", repo); st != 403 {
		t.Errorf("/user/orgs with repo only: %d", st)
	}
}

// TestMembershipEndpointsShareFaults: rate limits and dead tokens apply to
// the new endpoints as to the others.
func TestMembershipEndpointsShareFaults(t *testing.T) {
	p := start(t, fakeprovider.GitHub())
	tok := tokenFor(t, p, oauth2.AuthStyleInParams, "", "octocat")
	p.RateLimitNext(fakeprovider.EndpointTeams, 1, fakeprovider.RateLimitPrimary)
	st, h, _ := apiGet(t, p.URL()+"/user/teams", "Bearer "+tok)
	if st != 403 || h.Get("X-Ratelimit-Remaining") != "0" {
		t.Fatalf("rate-limited teams: %d %v", st, h)
	}
	p.RevokeAll()
	if st, _, _ := apiGet(t, p.URL()+"/user/orgs", "Bearer "+tok); st != 401 {
		t.Fatalf("revoked token: %d", st)
	}
	if dead := p.DeadTokenCalls(); len(dead) != 1 || dead[0].Endpoint != fakeprovider.EndpointOrgs {
		t.Fatalf("dead token calls %+v", dead)
	}
}

// TestMembershipsControlBadInput: the control endpoint refuses what is not
// a user and a list of groups, with 400 and a JSON body, and changes
// nothing.
func TestMembershipsControlBadInput(t *testing.T) {
	p := start(t, fakeprovider.GitHub())
	for name, body := range map[string]string{
		"not JSON":       `user=octocat`,
		"no groups":      `{"user":"octocat"}`,
		"no user":        `{"groups":["vintner"]}`,
		"unknown user":   `{"user":"nobody","groups":[]}`,
		"empty group":    `{"user":"octocat","groups":["vintner",""]}`,
		"groups not all": `{"user":"octocat","groups":"vintner"}`,
		"unknown field":  `{"user":"octocat","groups":[],"admin":true}`,
		"two objects":    `{"user":"octocat","groups":[]} {}`,
	} {
		st, v := post(t, p, http.MethodPost, body)
		if st != 400 || field(v, "error") != "invalid_request" || field(v, "error_description") == "" {
			t.Errorf("%s: %d %v", name, st, v)
		}
	}
	if st, _ := post(t, p, http.MethodGet, ""); st != 405 {
		t.Errorf("GET: %d", st)
	}
	if got := p.Memberships("octocat"); !slices.Equal(got, []string{"vintner", "vintner/platform"}) {
		t.Errorf("memberships changed by bad input: %v", got)
	}
	if len(p.Calls()) != 0 {
		t.Errorf("control requests recorded as calls: %+v", p.Calls())
	}
	// Removing someone from everything is good input.
	if st, _ := post(t, p, http.MethodPost, `{"user":"octocat","groups":[]}`); st != 204 {
		t.Errorf("empty groups: %d", st)
	}
	if got := p.Memberships("octocat"); got == nil || len(got) != 0 {
		t.Errorf("after removal: %#v", got)
	}
}

// TestGitLabGroups: /groups lists the full paths, paged by X-Next-Page,
// and needs read_api or api.
func TestGitLabGroups(t *testing.T) {
	p := start(t, fakeprovider.GitLab())
	base := p.URL() + "/api/v4/groups"
	narrow := "Bearer " + tokenFor(t, p, oauth2.AuthStyleInParams, "read_user", "jsmith")
	if st, _, v := apiGet(t, base, narrow); st != 403 || field(v, "error") != "insufficient_scope" {
		t.Fatalf("read_user only: %d %v", st, v)
	}
	tok := "Bearer " + tokenFor(t, p, oauth2.AuthStyleInParams, "read_user read_api", "jsmith")
	st, h, v := apiGet(t, base+"?min_access_level=10&per_page=1", tok)
	if st != 200 || !slices.Equal(names(v, "full_path"), []string{"vintner"}) || h.Get("X-Next-Page") != "2" {
		t.Fatalf("page 1: %d %v %v", st, h, v)
	}
	st, h, v = apiGet(t, base+"?min_access_level=10&per_page=1&page=2", tok)
	if st != 200 || !slices.Equal(names(v, "full_path"), []string{"vintner/platform"}) || h.Get("X-Next-Page") != "" {
		t.Fatalf("page 2: %d %v %v", st, h, v)
	}
	mia := "Bearer " + tokenFor(t, p, oauth2.AuthStyleInParams, "read_api", "mwagner")
	if st, _, v := apiGet(t, base, mia); st != 200 || len(v.([]any)) != 0 {
		t.Fatalf("mwagner: %d %v", st, v)
	}
}

// TestBitbucketWorkspaceMemberships: an entry in the memberships decides
// the shared workspaces, on /2.0/user/workspaces and for their
// repositories.
func TestBitbucketWorkspaceMemberships(t *testing.T) {
	p := start(t, fakeprovider.Bitbucket())
	tok := "Bearer " + tokenFor(t, p, oauth2.AuthStyleInHeader, "", "atlas")
	slugs := func() []string {
		st, _, v := apiGet(t, p.URL()+"/2.0/user/workspaces?pagelen=100", tok)
		if st != 200 {
			t.Fatalf("workspaces: %d %v", st, v)
		}
		return names(field(v, "values"), "workspace", "slug")
	}
	if got := slugs(); !slices.Equal(got, []string{"atlas", "vacant", "orbit"}) {
		t.Fatalf("configured workspaces %v", got)
	}
	if st, _, _ := apiGet(t, p.URL()+"/2.0/repositories/orbit", tok); st != 200 {
		t.Fatalf("orbit's repositories: %d", st)
	}
	if st, _ := post(t, p, http.MethodPost, `{"user":"atlas","groups":["vacant","newco"]}`); st != 204 {
		t.Fatalf("control: %d", st)
	}
	if got := slugs(); !slices.Equal(got, []string{"atlas", "vacant", "newco"}) {
		t.Fatalf("after the change %v", got)
	}
	if st, _, _ := apiGet(t, p.URL()+"/2.0/repositories/orbit", tok); st != 403 {
		t.Fatalf("orbit's repositories after leaving: %d", st)
	}
	if st, _, _ := apiGet(t, p.URL()+"/2.0/repositories/newco", tok); st != 200 {
		t.Fatalf("newco's repositories: %d", st)
	}
}

// TestGoogleHostedDomain: a Workspace account's userinfo has hd, a
// consumer account's none, and a change is seen at once.
func TestGoogleHostedDomain(t *testing.T) {
	p := start(t, fakeprovider.Google())
	userinfo := p.URL() + "/v1/userinfo"
	jane := "Bearer " + tokenFor(t, p, oauth2.AuthStyleInParams, "openid email profile", "jane")
	if st, _, v := apiGet(t, userinfo, jane); st != 200 || field(v, "hd") != "example.com" {
		t.Fatalf("jane: %d %v", st, v)
	}
	sam := "Bearer " + tokenFor(t, p, oauth2.AuthStyleInParams, "openid email", "sam")
	if st, _, v := apiGet(t, userinfo, sam); st != 200 || field(v, "hd") != nil {
		t.Fatalf("sam: %d %v", st, v)
	}
	if err := p.SetMemberships("jane.doe@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, v := apiGet(t, userinfo, jane); field(v, "hd") != nil {
		t.Fatalf("jane after leaving the Workspace: %v", v)
	}
	if err := p.SetMemberships("nobody", []string{"x"}); err == nil {
		t.Error("SetMemberships of an unknown user succeeded")
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

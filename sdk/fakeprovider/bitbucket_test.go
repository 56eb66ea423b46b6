package fakeprovider_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// connectAs returns a token pair of one user of the preset's fake.
func connectAs(t *testing.T, p *fakeprovider.Provider, pc preset, user string) *oauth2.Token {
	t.Helper()
	oc := oauthConfig(p, pc.style, pc.scopes...)
	verifier := oauth2.GenerateVerifier()
	tok, err := oc.Exchange(ctxTimeout(t, 5*time.Second), login(t, oc, verifier, user), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// workspaceRepos is the URL of one workspace's repository list.
func workspaceRepos(p *fakeprovider.Provider, ws, query string) string {
	return strings.Replace(p.Endpoints().ReposURL, "{workspace}", url.PathEscape(ws), 1) + query
}

// TestBitbucketGone: the cross-workspace APIs that CHANGE-2770 removed
// answer 410 with Bitbucket's body, with or without a valid token.
func TestBitbucketGone(t *testing.T) {
	pc := presetNamed("Bitbucket")
	p := start(t, pc.cfg())
	tok := connect(t, p, pc)
	for _, path := range []string{"/2.0/repositories?role=member", "/2.0/repositories", "/2.0/workspaces",
		"/2.0/user/permissions/workspaces", "/2.0/user/permissions/repositories"} {
		for _, auth := range []string{"Bearer " + tok.AccessToken, ""} {
			status, _, body := apiGet(t, p.URL()+path, auth)
			if status != 410 || field(body, "type") != "error" ||
				field(body, "error", "message") != "CHANGE-2770 - Functionality has been deprecated" ||
				field(body, "error", "data", "announcement_url") != "https://developer.atlassian.com/cloud/bitbucket/changelog#CHANGE-2770" {
				t.Errorf("GET %s (auth %v): %d %v", path, auth != "", status, body)
			}
		}
	}
	for _, c := range p.CallsTo(fakeprovider.EndpointGone) {
		if c.Status != 410 || c.Error != "gone" {
			t.Errorf("call %+v", c)
		}
	}
	if n := len(p.CallsTo(fakeprovider.EndpointGone)); n != 10 {
		t.Errorf("%d calls recorded as gone, want 10", n)
	}
	// The workspace-scoped listing is a different path and works.
	if status, _, body := apiGet(t, workspaceRepos(p, "atlas", "?role=member"), "Bearer "+tok.AccessToken); status != 200 {
		t.Errorf("workspace listing: %d %v", status, body)
	}
}

// TestBitbucketWorkspaces: /2.0/user/workspaces lists the personal
// workspace and the shared ones the user belongs to, as workspace_access
// objects paged in the body; it needs the account scope.
func TestBitbucketWorkspaces(t *testing.T) {
	pc := presetNamed("Bitbucket")
	p := start(t, pc.cfg())
	if p.Endpoints().WorkspacesURL != p.URL()+"/2.0/user/workspaces" {
		t.Fatalf("WorkspacesURL %q", p.Endpoints().WorkspacesURL)
	}
	cases := []struct {
		user   string
		slugs  []string
		admins []bool
	}{
		{"atlas", []string{"atlas", "vacant", "orbit"}, []bool{true, false, true}},
		{"buddy", []string{"buddy"}, []bool{true}},
		{"carol", []string{"carol", "vacant", "orbit"}, []bool{true, true, false}},
	}
	for _, tc := range cases {
		tok := connectAs(t, p, pc, tc.user)
		pages := walk(t, p, p.Endpoints().WorkspacesURL+"?pagelen=2", "Bearer "+tok.AccessToken)
		if want := (len(tc.slugs) + 1) / 2; len(pages) != want {
			t.Errorf("%s: %d pages of 2, want %d", tc.user, len(pages), want)
		}
		var slugs []string
		var admins []bool
		for _, pg := range pages {
			for _, v := range pg.items {
				slugs = append(slugs, fmt.Sprint(field(v, "workspace", "slug")))
				admins = append(admins, field(v, "administrator") == true)
				uuid, _ := field(v, "workspace", "uuid").(string)
				self, _ := field(v, "workspace", "links", "self", "href").(string)
				if field(v, "type") != "workspace_access" || field(v, "workspace", "type") != "workspace_base" ||
					!strings.HasPrefix(uuid, "{") || !strings.HasSuffix(self, "/2.0/workspaces/"+fmt.Sprint(field(v, "workspace", "slug"))) ||
					field(v, "workspace", "name") == nil || field(v, "workspace", "links", "avatar", "href") == nil {
					t.Errorf("%s: workspace %v", tc.user, v)
				}
			}
		}
		if !slices.Equal(slugs, tc.slugs) || !slices.Equal(admins, tc.admins) {
			t.Errorf("%s: workspaces %v administrator %v, want %v %v", tc.user, slugs, admins, tc.slugs, tc.admins)
		}
	}

	// Without the account scope (the consumer lacks it): 403.
	cfg := pc.cfg()
	cfg.Scopes = []string{"repository"}
	q := start(t, cfg)
	tok := connect(t, q, pc)
	status, _, body := apiGet(t, q.Endpoints().WorkspacesURL, "Bearer "+tok.AccessToken)
	if status != 403 || field(body, "error", "detail", "required") == nil {
		t.Errorf("workspaces without account: %d %v", status, body)
	}
}

// TestBitbucketWorkspaceRepos: /2.0/repositories/{workspace} lists a
// workspace's repositories to its members (by slug or UUID), paged; an
// empty workspace is an empty list; a non-member gets 403, an unknown
// workspace 404.
func TestBitbucketWorkspaceRepos(t *testing.T) {
	pc := presetNamed("Bitbucket")
	p := start(t, pc.cfg())
	atlas := "Bearer " + connectAs(t, p, pc, "atlas").AccessToken
	buddy := "Bearer " + connectAs(t, p, pc, "buddy").AccessToken

	pages := walk(t, p, workspaceRepos(p, "orbit", "?role=member"), atlas)
	var names []string
	for _, pg := range pages {
		for _, r := range pg.items {
			names = append(names, field(r, "full_name").(string))
		}
	}
	if len(pages) != 4 || len(names) != 35 || names[0] != "orbit/repo-001" || names[34] != "orbit/repo-035" ||
		field(pages[0].body, "size") != float64(35) {
		t.Errorf("orbit: %d pages, %d repositories %v", len(pages), len(names), names)
	}
	first := pages[0].items[0]
	clone, _ := field(first, "links", "clone").([]any)
	if field(first, "workspace", "slug") != "orbit" || field(first, "owner", "type") != "team" || len(clone) != 2 ||
		!strings.HasPrefix(field(clone[0], "href").(string), "http://atlas@") || field(first, "is_private") != false {
		t.Errorf("orbit/repo-001: %v", first)
	}

	status, _, body := apiGet(t, workspaceRepos(p, "vacant", "?role=member"), atlas)
	if values, ok := field(body, "values").([]any); status != 200 || !ok || len(values) != 0 || field(body, "size") != float64(0) || field(body, "next") != nil {
		t.Errorf("vacant: %d %v", status, body)
	}

	// By UUID, as the API also accepts.
	_, _, wsBody := apiGet(t, p.Endpoints().WorkspacesURL, atlas)
	var orbitUUID string
	for _, v := range field(wsBody, "values").([]any) {
		if field(v, "workspace", "slug") == "orbit" {
			orbitUUID = field(v, "workspace", "uuid").(string)
		}
	}
	if status, _, body := apiGet(t, workspaceRepos(p, orbitUUID, "?pagelen=100"), atlas); status != 200 || field(body, "size") != float64(35) {
		t.Errorf("orbit by uuid %s: %d %v", orbitUUID, status, body)
	}

	for _, tc := range []struct {
		ws, auth string
		status   int
		msg      string
	}{
		{"orbit", buddy, 403, "You do not have access to this workspace."},
		{"atlas", buddy, 403, "You do not have access to this workspace."},
		{"buddy", atlas, 403, "You do not have access to this workspace."},
		{"nosuch", atlas, 404, "Resource not found"},
		{"buddy", buddy, 200, ""},
	} {
		status, _, body := apiGet(t, workspaceRepos(p, tc.ws, "?role=member"), tc.auth)
		if status != tc.status || (tc.msg != "" && field(body, "error", "message") != tc.msg) {
			t.Errorf("%s: %d %v, want %d %q", tc.ws, status, body, tc.status, tc.msg)
		}
	}
}

// TestBitbucketVisibleRepos: VisibleRepos is what walking every workspace
// of /2.0/user/workspaces lists.
func TestBitbucketVisibleRepos(t *testing.T) {
	pc := presetNamed("Bitbucket")
	p := start(t, pc.cfg())
	for user, want := range map[string]int{"atlas": 245, "buddy": 1, "carol": 35} {
		auth := "Bearer " + connectAs(t, p, pc, user).AccessToken
		var listed []string
		for _, wp := range walk(t, p, p.Endpoints().WorkspacesURL, auth) {
			for _, v := range wp.items {
				for _, pg := range walk(t, p, workspaceRepos(p, field(v, "workspace", "slug").(string), "?role=member&pagelen=100"), auth) {
					for _, r := range pg.items {
						listed = append(listed, field(r, "full_name").(string))
					}
				}
			}
		}
		var visible []string
		for _, r := range p.VisibleRepos(user) {
			visible = append(visible, r.FullName)
		}
		slices.Sort(listed)
		slices.Sort(visible)
		if len(visible) != want || !slices.Equal(listed, visible) {
			t.Errorf("%s: VisibleRepos has %d, the API lists %d (want %d)", user, len(visible), len(listed), want)
		}
	}
	if p.VisibleRepos("nobody") != nil {
		t.Error("VisibleRepos of an unknown login is not nil")
	}
}

// TestBitbucketOAuth2026: since 4 May 2026 the token response says
// "scope", access tokens count only in the Authorization header, and
// refresh tokens rotate and expire when unused for 3 months (90 days).
func TestBitbucketOAuth2026(t *testing.T) {
	pc := presetNamed("Bitbucket")
	clk := newClock()
	cfg := pc.cfg()
	cfg.Now = clk.Now
	p := start(t, cfg)
	tok := connect(t, p, pc)
	if tok.Extra("scope") != "account email repository" || tok.Extra("scopes") != nil {
		t.Errorf("scope %v, scopes %v", tok.Extra("scope"), tok.Extra("scopes"))
	}

	status, _, body := apiGet(t, p.Endpoints().UserURL+"?access_token="+url.QueryEscape(tok.AccessToken), "")
	if status != 401 || field(body, "error", "message") != "Authentication required." {
		t.Errorf("token in the query: %d %v", status, body)
	}
	if c := p.CallsTo(fakeprovider.EndpointUser); len(c) != 1 || c[0].Error != "missing_token" || strings.Contains(c[0].Query, tok.AccessToken) {
		t.Errorf("calls %+v", c)
	}
	if status, _, _ := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken); status != 200 {
		t.Errorf("token in the header: %d", status)
	}

	oc := oauthConfig(p, pc.style)
	refresh := func(rt string) (*oauth2.Token, error) {
		return oc.TokenSource(ctxTimeout(t, 5*time.Second), &oauth2.Token{RefreshToken: rt}).Token()
	}
	// Used just within 90 days: works, and rotates.
	clk.Advance(90*24*time.Hour - time.Minute)
	nt, err := refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh after 90 days less a minute: %v", err)
	}
	if nt.RefreshToken == "" || nt.RefreshToken == tok.RefreshToken || nt.Extra("scope") != "account email repository" {
		t.Errorf("refreshed %+v", nt)
	}
	_, err = refresh(tok.RefreshToken)
	retrieveError(t, err, "invalid_grant", 400)

	// The new one, unused for 90 days: expired, a new authorization is needed.
	clk.Advance(90*24*time.Hour + time.Second)
	if p.ValidRefreshToken(nt.RefreshToken) {
		t.Error("a refresh token unused for 90 days is still valid")
	}
	_, err = refresh(nt.RefreshToken)
	retrieveError(t, err, "invalid_grant", 400)
}

package builtin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/plugins/builtin"
	"github.com/vintner/arbor/plugins/builtin/internal/build"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/abi/manifest"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// conformance says which fake each built-in plugin is tested against and
// how it must authenticate at the token endpoint.
var conformance = map[string]struct {
	fake func() fakeprovider.Config
	auth fakeprovider.ClientAuth
}{
	"github":    {fakeprovider.GitHub, fakeprovider.ClientAuthBody},
	"gitlab":    {fakeprovider.GitLab, fakeprovider.ClientAuthBody},
	"bitbucket": {fakeprovider.Bitbucket, fakeprovider.ClientAuthBasic},
	"google":    {fakeprovider.Google, fakeprovider.ClientAuthBody},
}

// conformanceAlso are further fakes a plugin must pass the kit against:
// plugins/github supports both kinds of GitHub client, and "github" above
// is the GitHub App.
var conformanceAlso = map[string][]struct {
	name string
	fake func() fakeprovider.Config
}{
	"github": {{"oauth-app", fakeprovider.GitHubOAuthApp}},
}

func plugin(t testing.TB, name string) fs.FS {
	t.Helper()
	p, ok := builtin.Plugin(name)
	if !ok {
		t.Fatalf("no built-in plugin %q (have %v)", name, builtin.Names())
	}
	return p
}

// TestConformance runs the kit against each embedded plugin.
// TestCommittedBuildsMatchSource makes sure the embedded modules are what
// the sources build.
func TestConformance(t *testing.T) {
	names := builtin.Names()
	if want := []string{"bitbucket", "github", "gitlab", "google"}; !slices.Equal(names, want) {
		t.Errorf("built-in plugins %v, want %v", names, want)
	}
	for _, name := range names {
		c, ok := conformance[name]
		if !ok {
			t.Errorf("built-in plugin %q has no conformance entry in this test", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			plugintest.Run(t, plugintest.Suite{Plugin: plugin(t, name), Fake: c.fake(), ExpectClientAuth: c.auth})
		})
		for _, also := range conformanceAlso[name] {
			t.Run(name+"-"+also.name, func(t *testing.T) {
				t.Parallel()
				plugintest.Run(t, plugintest.Suite{Plugin: plugin(t, name), Fake: also.fake(), ExpectClientAuth: c.auth})
			})
		}
	}
}

// TestManifests checks the shipped defaults: kinds, operations, endpoints,
// scopes and allowed hosts.
func TestManifests(t *testing.T) {
	type want struct {
		kind       manifest.Kind
		ops        string
		endpoints  abi.Endpoints
		login, git []string
		pkce       bool
		hosts      []string
		groups     []string // scopes.groups
	}
	all := "authorize,exchange,refresh,revoke,user,repos,groups,git_host"
	wants := map[string]want{
		"github": {manifest.KindBoth, all, abi.Endpoints{
			AuthorizeURL: "https://github.com/login/oauth/authorize", TokenURL: "https://github.com/login/oauth/access_token",
			APIBase: "https://api.github.com"},
			[]string{"read:user", "user:email"}, []string{"repo", "read:user", "user:email"}, true,
			[]string{"github.com", "api.github.com"}, []string{"read:org"}},
		"gitlab": {manifest.KindBoth, all, abi.Endpoints{
			AuthorizeURL: "https://gitlab.com/oauth/authorize", TokenURL: "https://gitlab.com/oauth/token",
			APIBase: "https://gitlab.com/api/v4", RevokeURL: "https://gitlab.com/oauth/revoke"},
			[]string{"read_user", "openid", "email"}, []string{"read_user", "read_api", "read_repository"}, true,
			[]string{"gitlab.com"}, []string{"read_api"}},
		"bitbucket": {manifest.KindBoth, all, abi.Endpoints{
			AuthorizeURL: "https://bitbucket.org/site/oauth2/authorize", TokenURL: "https://bitbucket.org/site/oauth2/access_token",
			APIBase: "https://api.bitbucket.org/2.0"},
			[]string{"account", "email"}, []string{"account", "email", "repository"}, false,
			[]string{"bitbucket.org", "api.bitbucket.org"}, nil},
		"google": {manifest.KindLogin, "authorize,exchange,refresh,revoke,user,groups", abi.Endpoints{
			AuthorizeURL: "https://accounts.google.com/o/oauth2/v2/auth", TokenURL: "https://oauth2.googleapis.com/token",
			APIBase: "https://openidconnect.googleapis.com", RevokeURL: "https://oauth2.googleapis.com/revoke"},
			[]string{"openid", "email", "profile"}, nil, true,
			[]string{"accounts.google.com", "oauth2.googleapis.com", "openidconnect.googleapis.com"}, nil},
	}
	h, err := plugins.NewHost(context.Background(), plugins.HostOptions{
		CacheDir: plugintest.DefaultCacheDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	reg, err := plugins.NewRegistry(context.Background(), h, plugins.RegistryOptions{Sources: []fs.FS{builtin.FS()}})
	if err != nil {
		t.Fatalf("loading the built-in plugins: %v", err)
	}
	defer reg.Close()
	if got := len(reg.List()); got != len(wants) {
		t.Errorf("the registry loaded %d plugins, want %d", got, len(wants))
	}
	for name, w := range wants {
		p, ok := reg.Get(name)
		if !ok {
			t.Errorf("%s: not loaded", name)
			continue
		}
		m := p.Manifest()
		ops, _ := m.OpSet()
		if m.Kind != w.kind || ops.String() != w.ops || m.Endpoints != w.endpoints || m.PKCE != w.pkce ||
			!slices.Equal(m.Scopes.Login, w.login) || !slices.Equal(m.Scopes.Git, w.git) || !slices.Equal(m.AllowedHosts, w.hosts) ||
			!slices.Equal(m.Scopes.Groups, w.groups) {
			t.Errorf("%s: manifest\n got %+v (ops %s)\nwant %+v", name, m, ops, w)
		}
		if m.DisplayName == name || m.Version == "" {
			t.Errorf("%s: display name %q, version %q", name, m.DisplayName, m.Version)
		}
	}
}

// TestCommittedBuildsMatchSource rebuilds the built-in plugins' module
// from plugins/<name> and compares it and every manifest, byte for byte,
// with the committed and embedded build, so CI re-checks what the binary
// embeds.
func TestCommittedBuildsMatchSource(t *testing.T) {
	sources, err := build.Sources("..")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sources, builtin.Names()) {
		t.Errorf("plugin sources %v, but plugins/builtin embeds %v: run `make plugins` and commit", sources, builtin.Names())
	}
	committedGo, err := os.ReadFile("GOVERSION")
	if err != nil {
		t.Fatalf("%v: run `make plugins` and commit", err)
	}
	r, err := build.Compile(t.Context(), "..")
	if err != nil {
		t.Fatal(err)
	}
	if v := strings.TrimSpace(string(committedGo)); v != r.GoVersion {
		t.Errorf("the committed plugins were built with %s but this is %s, so the bytes cannot match: "+
			"build with %s, or run `make plugins` with the new release and commit", v, r.GoVersion, v)
	}
	if len(r.Files) != len(sources)+1 {
		t.Errorf("the build has %d files for %d plugins and their module", len(r.Files), len(sources))
	}
	for f, fresh := range r.Files {
		embedded, err := os.ReadFile(filepath.FromSlash(f))
		if err != nil {
			t.Fatalf("%v: run `make plugins` and commit", err)
		}
		served, err := fs.ReadFile(builtin.FS(), f)
		if err != nil || !bytes.Equal(served, embedded) {
			t.Errorf("builtin.FS serves %s other than the committed file (%v)", f, err)
		}
		if !bytes.Equal(fresh, embedded) {
			t.Errorf("plugins/builtin/%s differs from a build of the sources (fresh module sha256 %s): run `make plugins` and commit", f, r.SHA256)
		}
	}
	// Every plugin's directory serves the one module its manifest names.
	for _, name := range sources {
		mod, err := fs.ReadFile(builtin.FS(), name+"/"+build.Module)
		if err != nil || !bytes.Equal(mod, r.Files[build.Module]) {
			t.Errorf("builtin.FS %s/%s is not the module (%v)", name, build.Module, err)
		}
	}
}

// The tests below check provider quirks beyond the kit's table, through
// the kit's Env.

func env(t *testing.T, name string) *plugintest.Env {
	c := conformance[name]
	return plugintest.StartForTest(t, plugintest.Suite{Plugin: plugin(t, name), Fake: c.fake(), ExpectClientAuth: c.auth})
}

func code(err error) abi.Code { return plugins.CodeOf(err) }

func TestGitHubQuirks(t *testing.T) {
	e := env(t, "github")
	ctx := t.Context()
	tok, err := e.Login(ctx, "", abi.PurposeGit)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "ghu_") || !strings.HasPrefix(tok.RefreshToken, "ghr_") || tok.RefreshExpiresIn != 15811200 {
		t.Errorf("expiring user token %+v", tok)
	}
	// Without Accept: application/json GitHub answers form-encoded.
	for _, c := range e.Fake.CallsTo(fakeprovider.EndpointToken) {
		if c.Accept != "application/json" {
			t.Errorf("token request Accept %q, want application/json", c.Accept)
		}
	}
	if err := e.Plugin.Revoke(ctx, plugins.RevokeInput{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	rc := e.Fake.CallsTo(fakeprovider.EndpointRevoke)
	if len(rc) != 1 || rc[0].Method != "DELETE" || rc[0].ClientAuth != "basic" || rc[0].Status != 204 ||
		rc[0].Path != "/applications/fake-client-id/grant" || rc[0].Token != fakeprovider.Fingerprint(tok.AccessToken) {
		t.Errorf("revoke calls %+v", rc)
	}
	// Revoking again: GitHub answers 404 and /user 401, so the grant is
	// gone: invalid_token, which the broker reports as already revoked.
	if err := e.Plugin.Revoke(ctx, plugins.RevokeInput{AccessToken: tok.AccessToken}); code(err) != abi.CodeInvalidToken {
		t.Errorf("second revoke: %v, want invalid_token", err)
	}
	if err := e.Plugin.Revoke(ctx, plugins.RevokeInput{RefreshToken: tok.RefreshToken}); code(err) != abi.CodeInvalidRequest {
		t.Errorf("revoke without an access token: %v", err)
	}

	// An OAuth app: tokens that never expire, no refresh token, scopes.
	o := plugintest.StartForTest(t, plugintest.Suite{Plugin: plugin(t, "github"), Fake: fakeprovider.GitHubOAuthApp()})
	tok, err = o.Login(ctx, "hubot", abi.PurposeLogin)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "gho_") || tok.RefreshToken != "" || tok.ExpiresIn != 0 || !slices.Equal(tok.Scopes, []string{"read:user", "user:email"}) {
		t.Errorf("classic token %+v", tok)
	}
	// hubot's address is private: /user says null, /user/emails has it.
	u, err := o.Plugin.User(ctx, tok.AccessToken)
	if err != nil || u.Email != "hubot@example.com" || !u.EmailVerified || u.Name != "" || u.Login != "hubot" || u.ID != "480938" {
		t.Errorf("hubot: %+v, %v", u, err)
	}
}

// TestGitHubEmailScope: an OAuth app's token without user:email cannot
// read /user/emails; the public address is kept, unverified.
func TestGitHubEmailScope(t *testing.T) {
	e := plugintest.StartForTest(t, plugintest.Suite{Plugin: plugin(t, "github"), Fake: fakeprovider.GitHubOAuthApp()})
	cfg := e.Config
	cfg.LoginScopes = []string{"read:user"}
	p, err := e.Load(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.LoginWith(t.Context(), p, "octocat", abi.PurposeLogin)
	if err != nil {
		t.Fatal(err)
	}
	u, err := p.User(t.Context(), tok.AccessToken)
	if err != nil || u.Email != "octocat@example.com" || u.EmailVerified {
		t.Errorf("without user:email: %+v, %v", u, err)
	}
	if c := e.Fake.CallsTo(fakeprovider.EndpointEmails); len(c) != 1 || c[0].Status != 404 {
		t.Errorf("emails calls %+v, want one refused with 404", c)
	}
}

func TestGitLabQuirks(t *testing.T) {
	e := env(t, "gitlab")
	ctx := t.Context()
	tok, err := e.Login(ctx, "", abi.PurposeGit)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Plugin.Revoke(ctx, plugins.RevokeInput{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	// One call, by the refresh token: it revokes the whole record, access
	// token included, and a second call would present a dead token.
	rc := e.Fake.CallsTo(fakeprovider.EndpointRevoke)
	if len(rc) != 1 || rc[0].Method != "POST" || rc[0].ClientAuth != "body" || rc[0].Status != 200 || rc[0].Token != fakeprovider.Fingerprint(tok.RefreshToken) {
		t.Fatalf("revoke calls %+v, want one by the refresh token", rc)
	}
	if e.Fake.ValidAccessToken(tok.AccessToken) || e.Fake.ValidRefreshToken(tok.RefreshToken) || len(e.Fake.DeadTokenCalls()) > 0 {
		t.Fatalf("after revoking: access valid %v, refresh valid %v, dead-token calls %d",
			e.Fake.ValidAccessToken(tok.AccessToken), e.Fake.ValidRefreshToken(tok.RefreshToken), len(e.Fake.DeadTokenCalls()))
	}
	// The login scopes cannot list projects (read_api or api is needed).
	tok, err = e.Login(ctx, "", abi.PurposeLogin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: tok.AccessToken}); code(err) != abi.CodeProviderError {
		t.Errorf("projects with login scopes: %v, want provider_error (403 insufficient_scope)", err)
	}
}

func TestBitbucketQuirks(t *testing.T) {
	e := env(t, "bitbucket")
	ctx := t.Context()
	tok, err := e.Login(ctx, "", abi.PurposeGit)
	if err != nil {
		t.Fatal(err)
	}
	err = e.Plugin.Revoke(ctx, plugins.RevokeInput{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken})
	var pe *plugins.Error
	if !errors.As(err, &pe) || pe.Code != abi.CodeUnsupported || pe.Retryable ||
		!strings.HasPrefix(pe.Text(), "bitbucket: ") || !strings.Contains(pe.Message, "App authorizations") {
		t.Errorf("revoke: %v", err)
	}
	if n := len(e.Fake.Calls()); n != 2 { // authorize and token only
		t.Errorf("revoke reached the provider: %+v", e.Fake.Calls())
	}
	page, err := e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: tok.AccessToken, PerPage: 5})
	if err != nil || len(page.Repos) != 5 {
		t.Fatalf("repos: %+v, %v", page, err)
	}
	for _, r := range page.Repos {
		if strings.Contains(r.CloneURL, "@") || !strings.HasSuffix(r.CloneURL, "/"+r.FullName+".git") {
			t.Errorf("clone URL %q of %s", r.CloneURL, r.FullName)
		}
	}
}

func TestGoogleQuirks(t *testing.T) {
	e := env(t, "google")
	ctx := t.Context()
	tok, err := e.Login(ctx, "sam", abi.PurposeLogin)
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.Plugin.User(ctx, tok.AccessToken)
	if err != nil || u.Email != "sam@example.net" || u.EmailVerified || u.ID == "" || u.Name != "Sam Unverified" {
		t.Errorf("sam: %+v, %v", u, err)
	}
	// A plain sign-in asks online access: no refresh token (Google's
	// access_type=offline comes only with a kept grant, see
	// TestGoogleOfflineAccess), and a refresh token Google does not know
	// is invalid_grant.
	if tok.RefreshToken != "" {
		t.Errorf("a plain sign-in got a refresh token")
	}
	if _, err := e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: "x"}); code(err) != abi.CodeInvalidGrant {
		t.Errorf("refresh: %v, want invalid_grant", err)
	}
	if err := e.Plugin.Revoke(ctx, plugins.RevokeInput{AccessToken: tok.AccessToken}); err != nil {
		t.Fatal(err)
	}
	// A dead token cannot revoke; the grant may survive, which the error says.
	err = e.Plugin.Revoke(ctx, plugins.RevokeInput{AccessToken: tok.AccessToken})
	if code(err) != abi.CodeInvalidToken || !strings.Contains(err.Error(), "myaccount.google.com") {
		t.Errorf("revoking a dead token: %v", err)
	}
}

// TestForeignCursor: a repository cursor must stay on the provider's API,
// or the user's token would go somewhere it was never sent.
func TestForeignCursor(t *testing.T) {
	for _, name := range []string{"github", "gitlab", "bitbucket"} {
		t.Run(name, func(t *testing.T) {
			e := env(t, name)
			for _, cursor := range []string{"https://evil.example/user/repos?page=2", e.Fake.URL() + "x/evil"} {
				_, err := e.Plugin.Repos(t.Context(), plugins.ReposInput{AccessToken: "tok", Cursor: cursor})
				if code(err) != abi.CodeInvalidRequest {
					t.Errorf("cursor %q: %v", cursor, err)
				}
			}
			if n := len(e.Fake.Calls()); n != 0 {
				t.Errorf("the provider was called: %+v", e.Fake.Calls())
			}
		})
	}
}

// bitbucketEnv starts the Bitbucket plugin against a Bitbucket fake
// edited by edit.
func bitbucketEnv(t *testing.T, edit func(*fakeprovider.Config)) *plugintest.Env {
	cfg := fakeprovider.Bitbucket()
	edit(&cfg)
	return plugintest.StartForTest(t, plugintest.Suite{Plugin: plugin(t, "bitbucket"), Fake: cfg, ExpectClientAuth: fakeprovider.ClientAuthBasic})
}

// TestBitbucketListsAcrossWorkspaces: the plugin lists every repository
// of a user across the personal and several shared workspaces, empty ones
// included (a run of them longer than one call may skip), in pages of the
// size asked for, with no more than a bounded number of requests per
// call; the listing is exactly what the fake says the user can see.
func TestBitbucketListsAcrossWorkspaces(t *testing.T) {
	const maxCallsPerPage = 8 // the plugin's maxListCalls
	e := bitbucketEnv(t, func(c *fakeprovider.Config) {
		c.Users[0].Repos = 7 // atlas
		c.Workspaces = []fakeprovider.Workspace{{Slug: "alpha", Members: []string{"atlas"}, Repos: 3}}
		for i := range 10 { // more empty workspaces in a row than one call may visit
			c.Workspaces = append(c.Workspaces, fakeprovider.Workspace{Slug: fmt.Sprintf("empty-%02d", i), Members: []string{"atlas"}})
		}
		c.Workspaces = append(c.Workspaces,
			fakeprovider.Workspace{Slug: "omega", Members: []string{"buddy", "atlas"}, Repos: 9},
			fakeprovider.Workspace{Slug: "hidden", Members: []string{"buddy"}, Repos: 4})
	})
	ctx := t.Context()
	tok, err := e.Login(ctx, "atlas", abi.PurposeGit)
	if err != nil {
		t.Fatal(err)
	}
	const per = 4
	var got []string
	var sizes []int
	cursor := ""
	for i := 0; ; i++ {
		if i > 50 {
			t.Fatal("the listing does not end")
		}
		before := len(e.Fake.Calls())
		page, err := e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: tok.AccessToken, Cursor: cursor, PerPage: per})
		if err != nil {
			t.Fatalf("page %d: %v", i+1, err)
		}
		calls := e.Fake.Calls()[before:]
		if len(calls) > maxCallsPerPage || len(calls) == 0 {
			t.Errorf("page %d took %d requests, want 1 to %d", i+1, len(calls), maxCallsPerPage)
		}
		for _, c := range calls {
			if c.Status != 200 || !strings.HasPrefix(c.Path, "/2.0/") || c.Endpoint == fakeprovider.EndpointGone {
				t.Errorf("page %d: call %s %s answered %d (%s)", i+1, c.Method, c.Path, c.Status, c.Error)
			}
		}
		sizes = append(sizes, len(page.Repos))
		if len(page.Repos) > per {
			t.Errorf("page %d has %d repositories, %d were asked for", i+1, len(page.Repos), per)
		}
		for _, r := range page.Repos {
			got = append(got, r.FullName)
		}
		if page.NextCursor == "" {
			break
		}
		if page.NextCursor == cursor {
			t.Fatalf("page %d: the cursor repeats", i+1)
		}
		cursor = page.NextCursor
	}
	var want []string
	for _, r := range e.Fake.VisibleRepos("atlas") {
		want = append(want, r.FullName)
	}
	if len(want) != 7+3+9 {
		t.Fatalf("the fake says atlas sees %d repositories", len(want))
	}
	if !slices.Equal(got, want) { // the plugin keeps the provider's order
		t.Errorf("listed %v\nwant %v", got, want)
	}
	// atlas: 4+3, alpha: 3, ten empty workspaces (one empty page when the
	// call runs out of requests), omega: 4+4+1.
	if wantSizes := []int{4, 3, 3, 0, 4, 4, 1}; !slices.Equal(sizes, wantSizes) {
		t.Errorf("page sizes %v, want %v", sizes, wantSizes)
	}
	if n := len(e.Fake.CallsTo(fakeprovider.EndpointWorkspaces)); n == 0 || n > len(sizes) {
		t.Errorf("%d requests to /2.0/user/workspaces for %d pages", n, len(sizes))
	}
}

// TestBitbucketCursorStaysOnTheAPI: a cursor whose workspace list or
// repository page points outside the API base is refused before any
// request, so the user's token never leaves for another host.
func TestBitbucketCursorStaysOnTheAPI(t *testing.T) {
	e := env(t, "bitbucket")
	api := e.Config.Endpoints.APIBase
	ctx := t.Context()
	tok, err := e.Login(ctx, "atlas", abi.PurposeGit)
	if err != nil {
		t.Fatal(err)
	}
	page, err := e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: tok.AccessToken, PerPage: 5})
	if err != nil || page.NextCursor == "" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	good, err := url.ParseQuery(page.NextCursor)
	if err != nil || !strings.HasPrefix(good.Get("w"), api+"/") || !strings.HasPrefix(good.Get("r"), api+"/repositories/atlas?") {
		t.Fatalf("cursor %q does not carry the workspace list and the workspace's page", page.NextCursor)
	}
	evil := func(k, v string) string {
		c := url.Values{}
		for key, vs := range good {
			c[key] = vs
		}
		c.Set(k, v)
		return c.Encode()
	}
	before := len(e.Fake.Calls())
	for _, cursor := range []string{
		evil("w", "https://evil.example/2.0/user/workspaces"),
		evil("r", "https://evil.example/2.0/repositories/atlas?page=2"),
		evil("r", api+".evil.example/repositories/atlas?page=2"),
		evil("w", api+"/../../evil"),
		evil("i", "-1"),
		evil("i", "x"),
		"https://evil.example/2.0/repositories/atlas?page=2",
		api + "/repositories/atlas?page=2", // a bare URL was the old cursor: no longer accepted
		"%zz",
	} {
		_, err := e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: tok.AccessToken, Cursor: cursor})
		if code(err) != abi.CodeInvalidRequest {
			t.Errorf("cursor %q: %v", cursor, err)
		}
	}
	if calls := e.Fake.Calls()[before:]; len(calls) != 0 {
		t.Errorf("the provider was called: %+v", calls)
	}
	if _, err := e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: tok.AccessToken, Cursor: page.NextCursor}); err != nil {
		t.Errorf("the real cursor: %v", err)
	}
}

// TestBitbucketPermanentRefusals: a 410 (an API Bitbucket removed) and
// other 4xx refusals are non-retryable provider_errors that say the
// refusal is permanent; 401, 429 and 5xx keep their meaning.
func TestBitbucketPermanentRefusals(t *testing.T) {
	// A Bitbucket that has removed the workspace list too.
	e := bitbucketEnv(t, func(c *fakeprovider.Config) {
		c.Paths.Workspaces = ""
		c.GonePaths = append(c.GonePaths, "/2.0/user/workspaces")
	})
	ctx := t.Context()
	tok, err := e.Login(ctx, "atlas", abi.PurposeGit)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: tok.AccessToken})
	var pe *plugins.Error
	if !errors.As(err, &pe) || pe.Code != abi.CodeProviderError || pe.Retryable || pe.Status != 410 ||
		!strings.Contains(pe.Message, "Bitbucket removed this API (410 Gone): this plugin is out of date") ||
		!strings.Contains(pe.Message, "permanent") || strings.Contains(pe.Message, tok.AccessToken) {
		t.Errorf("410: %#v", err)
	}

	e = env(t, "bitbucket")
	tok, err = e.Login(ctx, "atlas", abi.PurposeGit)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ep        fakeprovider.Endpoint
		status    int
		code      abi.Code
		retryable bool
		permanent bool
	}{
		{fakeprovider.EndpointWorkspaces, 403, abi.CodeProviderError, false, true},
		{fakeprovider.EndpointRepos, 404, abi.CodeProviderError, false, true},
		{fakeprovider.EndpointRepos, 400, abi.CodeProviderError, false, true},
		{fakeprovider.EndpointRepos, 401, abi.CodeInvalidToken, false, false},
		{fakeprovider.EndpointRepos, 429, abi.CodeRateLimited, true, false},
		{fakeprovider.EndpointWorkspaces, 503, abi.CodeProviderError, true, false},
	} {
		e.Fake.FailNext(tc.ep, 1, tc.status)
		_, err := e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: tok.AccessToken})
		var pe *plugins.Error
		if !errors.As(err, &pe) || pe.Code != tc.code || pe.Retryable != tc.retryable || pe.Status != tc.status ||
			strings.Contains(pe.Message, "permanent") != tc.permanent {
			t.Errorf("%s %d: %#v", tc.ep, tc.status, err)
		}
	}
	if _, err := e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: tok.AccessToken}); err != nil {
		t.Errorf("after the injected failures: %v", err)
	}
}

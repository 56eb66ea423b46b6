package plugintest_test

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/abi/manifest"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// genericFake is a plain provider with the generic fake's API layout, a
// revocation endpoint and rotating refresh tokens; bob's address is not
// verified.
func genericFake() fakeprovider.Config {
	return fakeprovider.Config{
		Paths: fakeprovider.Paths{
			Authorize: "/login/oauth/authorize", Token: "/login/oauth/access_token", Revoke: "/login/oauth/revoke",
			User: "/api/v1/user", Emails: "/api/v1/user/emails", Repos: "/api/v1/user/repos",
			Groups: "/api/v1/user/groups",
		},
		Memberships: map[string][]string{"alice": {"red", "blue"}},
		Users: []fakeprovider.User{
			{ID: 11, Login: "alice", Name: "Alice Example", Repos: 45, Emails: []fakeprovider.Email{
				{Address: "alice@example.com", Primary: true, Verified: true}, {Address: "alice@example.org"}}},
			{ID: 12, Login: "bob", Name: "Bob Example", Repos: 3, Emails: []fakeprovider.Email{
				{Address: "bob@example.net", Primary: true}}},
		},
		IssueRefreshTokens:  true,
		RotateRefreshTokens: true,
		AccessTokenLifetime: time.Hour,
		Revoke:              fakeprovider.RevokeRFC7009,
	}
}

// TestGenericPluginPasses: a correct plugin passes every case.
func TestGenericPluginPasses(t *testing.T) {
	plugintest.Run(t, plugintest.Suite{
		Plugin: plugintest.Build(t, "testdata/generic"), Fake: genericFake(), ExpectClientAuth: fakeprovider.ClientAuthBody,
	})
}

// TestKitCatchesBugs runs the kit on a plugin with one bug per area and
// checks that exactly the cases covering those areas fail, each saying
// why.
func TestKitCatchesBugs(t *testing.T) {
	res, err := plugintest.RunReport(t.Context(), plugintest.Suite{
		Plugin: plugintest.Build(t, "testdata/sloppy"), Fake: genericFake(), ExpectClientAuth: fakeprovider.ClientAuthBody,
	})
	if err != nil {
		t.Fatal(err)
	}
	wantFail := map[string]string{
		"client_auth":          `client authentication "basic", want "body"`,
		"refresh_rotation":     "the provider rotates refresh tokens, but the refresh returned",
		"revoke":               "the provider's revocation endpoint was not called",
		"user":                 "marked verified, but the provider has not verified",
		"user_expired_token":   "got code provider_error",
		"repos":                "30 repositories, the provider lists 45",
		"repos_per_page":       "page 1 has 30 repositories, 25 were asked for",
		"repos_expired_token":  "got code provider_error",
		"groups_changed":       "after leaving every group: groups",
		"groups_expired_token": "got code provider_error",
	}
	if got := len(res); got != len(plugintest.CaseNames()) {
		t.Errorf("%d results for %d cases", got, len(plugintest.CaseNames()))
	}
	for _, r := range res {
		want, shouldFail := wantFail[r.Name]
		switch {
		case shouldFail && r.Outcome != plugintest.Failed:
			t.Errorf("%s: %s, want it to catch the bug (%s)", r.Name, r.Outcome, want)
		case shouldFail && !strings.Contains(r.Err.Error(), want):
			t.Errorf("%s: error %q, want it to say %q", r.Name, r.Err, want)
		case !shouldFail && r.Outcome != plugintest.Passed:
			t.Errorf("%s: %s: %v (%s)", r.Name, r.Outcome, r.Err, r.Reason)
		}
		if r.Doc == "" || r.Doc != plugintest.CaseDoc(r.Name) {
			t.Errorf("%s: doc %q", r.Name, r.Doc)
		}
	}
}

// TestNotApplicable: cases the fake cannot support are reported, not run.
func TestNotApplicable(t *testing.T) {
	cfg := genericFake()
	cfg.IssueRefreshTokens = false
	res, err := plugintest.RunReport(t.Context(), plugintest.Suite{
		Plugin: plugintest.Build(t, "testdata/generic"), Fake: cfg,
		Cases: []string{"exchange", "refresh", "refresh_rotation"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]plugintest.Outcome{}
	for _, r := range res {
		got[r.Name] = r.Outcome
		if r.Outcome == plugintest.NotApplicable && !strings.Contains(r.Reason, "IssueRefreshTokens") {
			t.Errorf("%s: reason %q", r.Name, r.Reason)
		}
	}
	want := map[string]plugintest.Outcome{"exchange": plugintest.Passed, "refresh": plugintest.NotApplicable, "refresh_rotation": plugintest.NotApplicable}
	if !maps.Equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
}

// TestEndpoints: the automatic mapping refuses a fake whose paths do not
// fit and says what to set; Suite.Endpoints fixes it.
func TestEndpoints(t *testing.T) {
	plugin := plugintest.Build(t, "testdata/generic")
	cfg := genericFake()
	cfg.Paths.Token = "/oauth/token"
	_, err := plugintest.Start(t.Context(), plugintest.Suite{Plugin: plugin, Fake: cfg})
	if err == nil || !strings.Contains(err.Error(), "token_url") || !strings.Contains(err.Error(), "Suite.Endpoints") {
		t.Fatalf("mismatched token path: %v", err)
	}
	e := plugintest.StartForTest(t, plugintest.Suite{Plugin: plugin, Fake: cfg, Endpoints: abi.Endpoints{TokenURL: "/oauth/token"}})
	if e.Config.Endpoints.TokenURL != e.Fake.URL()+"/oauth/token" || e.Config.Endpoints.APIBase != e.Fake.URL()+"/api/v1" {
		t.Errorf("endpoints %+v", e.Config.Endpoints)
	}
	tok, err := e.Login(t.Context(), "bob", abi.PurposeGit)
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("login: %+v %v", tok, err)
	}
	if e.Fake.CallsTo(fakeprovider.EndpointToken)[0].User != "bob" {
		t.Errorf("signed in as %+v", e.Fake.CallsTo(fakeprovider.EndpointToken)[0])
	}

	for name, s := range map[string]plugintest.Suite{
		"unknown case": {Plugin: plugin, Fake: cfg, Cases: []string{"exchange", "nope"}},
		"no plugin":    {Fake: cfg},
	} {
		if _, err := plugintest.RunReport(context.Background(), s); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestCompileIsReproducible builds the same plugin twice and compares the
// bytes; the manifest gets the module's hash.
func TestCompileIsReproducible(t *testing.T) {
	a, err := plugintest.Compile(t.Context(), "testdata/generic", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := plugintest.Compile(t.Context(), "testdata/generic", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ma, _ := os.ReadFile(a.Module)
	mb, _ := os.ReadFile(b.Module)
	if a.SHA256 != b.SHA256 || !bytes.Equal(ma, mb) || len(ma) == 0 {
		t.Errorf("two builds differ: %s, %s", a.SHA256, b.SHA256)
	}
	if a.Manifest.SHA256 != a.SHA256 || a.Manifest.VerifyModule(ma) != nil || !strings.HasPrefix(a.GoVersion, "go1.") {
		t.Errorf("built %+v", a)
	}
	src, _ := os.ReadFile("testdata/generic/" + manifest.File)
	out, _ := os.ReadFile(filepath.Join(a.Dir, manifest.File))
	if string(out) != strings.Replace(string(src), `"sha256": ""`, `"sha256": "`+a.SHA256+`"`, 1) {
		t.Errorf("the manifest changed beyond its hash:\n%s", out)
	}
	if !slices.Contains(plugintest.BuildFlags(), "-trimpath") {
		t.Errorf("flags %v", plugintest.BuildFlags())
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, manifest.File), []byte(`{"name": "x", "version": "1", "abi_version": 1}`), 0o644)
	if _, err := plugintest.Compile(t.Context(), dir, t.TempDir()); err == nil || !strings.Contains(err.Error(), `"sha256"`) {
		t.Errorf("manifest without sha256: %v", err)
	}
}

func TestPresets(t *testing.T) {
	if got := plugintest.PresetNames(); !slices.Equal(got, []string{"bitbucket", "generic", "github", "github-app", "github-oauth-app", "gitlab", "google"}) {
		t.Errorf("presets %v", got)
	}
	if c, ok := plugintest.Preset("bitbucket"); !ok || c.ClientAuth != fakeprovider.ClientAuthBasic || c.Flavor != fakeprovider.FlavorBitbucket {
		t.Errorf("bitbucket preset %+v", c)
	}
	// "github" is the model plugins/github targets: the GitHub App.
	for name, app := range map[string]bool{"github": true, "github-app": true, "github-oauth-app": false} {
		if c, ok := plugintest.Preset(name); !ok || c.AppInstallations != app || c.IssueRefreshTokens != app {
			t.Errorf("%s preset: AppInstallations %v, IssueRefreshTokens %v, want %v", name, c.AppInstallations, c.IssueRefreshTokens, app)
		}
	}
	if _, ok := plugintest.Preset("gitea"); ok {
		t.Error("unknown preset found")
	}
}

// TestKitCatchesNestedListingBugs: against Bitbucket, which lists per
// workspace, a plugin that lists only the first workspace and re-reads a
// page on every call fails both repository cases, each saying why.
func TestKitCatchesNestedListingBugs(t *testing.T) {
	res, err := plugintest.RunReport(t.Context(), plugintest.Suite{
		Plugin: plugintest.Build(t, "testdata/shallow"), Fake: fakeprovider.Bitbucket(),
		ExpectClientAuth: fakeprovider.ClientAuthBasic, Cases: []string{"repos", "repos_per_page"},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantFail := map[string][]string{
		"repos":          {"atlas: 210 repositories, the provider lists 245", "was requested twice", "3 pages took 5 requests"},
		"repos_per_page": {"atlas: 210 repositories, the provider lists 245", "was requested twice"},
	}
	if len(res) != len(wantFail) {
		t.Fatalf("%d results: %+v", len(res), res)
	}
	for _, r := range res {
		if r.Outcome != plugintest.Failed {
			t.Errorf("%s: %s, want it to catch the bugs", r.Name, r.Outcome)
			continue
		}
		for _, want := range wantFail[r.Name] {
			if !strings.Contains(r.Err.Error(), want) {
				t.Errorf("%s: error %q, want it to say %q", r.Name, r.Err, want)
			}
		}
	}
}

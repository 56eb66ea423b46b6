package plugintest_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

const examplesFakes = "../../examples/fakes"

// The example descriptions load; gitea.yaml is GenericSpec written out, so
// the file and the Go stay in step; gitee.yaml carries Gitee's three
// quirks.
func TestLoadFakeSpecExamples(t *testing.T) {
	gitea, err := plugintest.LoadFakeSpec(filepath.Join(examplesFakes, "gitea.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*gitea, fakeprovider.GenericSpec()) {
		t.Errorf("gitea.yaml differs from fakeprovider.GenericSpec():\n%+v\n%+v", *gitea, fakeprovider.GenericSpec())
	}
	gitee, err := plugintest.LoadFakeSpec(filepath.Join(examplesFakes, "gitee.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := gitee.Config()
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Grants["refresh_token"]; r.Params != fakeprovider.ParamsInQuery || r.ClientAuth != fakeprovider.ClientAuthNone {
		t.Errorf("gitee refresh rule %+v", r)
	}
	if cfg.Pagination != fakeprovider.PaginationTotalPages || cfg.PagingNames.TotalPages != "total_page" || cfg.PagingNames.TotalCount != "total_count" {
		t.Errorf("gitee paging %v %+v", cfg.Pagination, cfg.PagingNames)
	}
	if cfg.EmailShape.Style != fakeprovider.EmailStateScope || !cfg.APITokenQueryOnly || !cfg.AccessTokenQueryParam {
		t.Errorf("gitee e-mails %+v, query-only token %v", cfg.EmailShape, cfg.APITokenQueryOnly)
	}
}

// LoadFakeSpec reads JSON and YAML strictly and says which field is wrong.
func TestLoadFakeSpecErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		file, content string
		want          []string // "" content: the file does not exist
	}{
		{"ok.json", `{"paths": {"authorize": "/a", "token": "/t", "user": "/u"}}`, nil},
		{"ok.yml", "paging:\n  style: total-pages\n", nil},
		{"empty.yaml", "", nil},
		{"unknown.yaml", "name: x\npagination: link\n", []string{"unknown.yaml", "line 2", "pagination"}},
		{"unknown.json", `{"paging": {"stlye": "link"}}`, []string{"unknown.json", `unknown field "stlye"`}},
		{"badvalue.yaml", "grants:\n  refresh_token:\n    params: header\ntokens:\n  refresh: true\n",
			[]string{"badvalue.yaml", "grants.refresh_token.params", `"header": want body or query`}},
		{"badtype.yaml", "paging:\n  size: many\n", []string{"badtype.yaml", "line 2", "many"}},
		{"missing.yaml", "", []string{"missing.yaml", "no such file"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if tc.file != "missing.yaml" {
				os.WriteFile(path, []byte(tc.content), 0o644)
			}
			s, err := plugintest.LoadFakeSpec(path)
			if tc.want == nil {
				if err != nil || s == nil {
					t.Fatalf("valid description refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	var se *fakeprovider.SpecError
	os.WriteFile(filepath.Join(dir, "field.yaml"), []byte("api:\n  token: [cookie]\n"), 0o644)
	if _, err := plugintest.LoadFakeSpec(filepath.Join(dir, "field.yaml")); !errors.As(err, &se) || se.Field != "api.token[0]" {
		t.Errorf("error %v, want a *fakeprovider.SpecError for api.token[0]", err)
	}
}

// Suite.FakeSpec runs the kit against a described fake: the generic
// plugin passes against the generic description with refresh tokens, and
// fails the refresh cases against one whose refresh takes its parameters
// in the query without client credentials, as Gitee's does: the fake
// enforces the description.
func TestSuiteFakeSpec(t *testing.T) {
	plugin := plugintest.Build(t, "testdata/generic")
	spec := fakeprovider.GenericSpec()
	spec.Tokens.Refresh, spec.Tokens.Rotate, spec.Tokens.AccessLifetime = true, true, "1h"
	spec.Paths.Revoke = "/login/oauth/revoke"
	spec.Memberships = map[string][]string{"fakeuser": {"red", "blue"}}
	plugintest.Run(t, plugintest.Suite{Plugin: plugin, FakeSpec: &spec, ExpectClientAuth: fakeprovider.ClientAuthBody})

	gitee := spec
	gitee.Grants = map[string]fakeprovider.SpecGrant{"refresh_token": {Params: "query", ClientAuth: "none"}}
	res, err := plugintest.RunReport(t.Context(), plugintest.Suite{Plugin: plugin, FakeSpec: &gitee,
		Cases: []string{"exchange", "refresh", "client_auth"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		switch r.Name {
		case "exchange":
			if r.Outcome != plugintest.Passed {
				t.Errorf("exchange: %s %v", r.Outcome, r.Err)
			}
		default:
			if r.Outcome != plugintest.Failed {
				t.Errorf("%s: %s, want it to fail: the plugin refreshes in the body", r.Name, r.Outcome)
			}
			if r.Err != nil && !strings.Contains(r.Err.Error(), "takes its parameters in the query") {
				t.Errorf("%s: %v, want the fake's placement error", r.Name, r.Err)
			}
		}
	}

	// Setup errors: both kinds of fake, an invalid description, paths that
	// do not fit (the error names the description's field).
	for name, tc := range map[string]struct {
		s    plugintest.Suite
		want string
	}{
		"both": {plugintest.Suite{Plugin: plugin, FakeSpec: &spec, Fake: fakeprovider.Config{Name: "x"}}, "not both"},
		"invalid": {plugintest.Suite{Plugin: plugin, FakeSpec: &fakeprovider.Spec{Paging: fakeprovider.SpecPaging{Style: "cursor"}}},
			"paging.style"},
		"paths": {plugintest.Suite{Plugin: plugin, FakeSpec: &fakeprovider.Spec{Paths: fakeprovider.SpecPaths{
			Authorize: "/oauth/authorize", Token: "/oauth/token", User: "/api/v5/user"}}}, "(the fake's paths.token)"},
	} {
		if _, err := plugintest.RunReport(t.Context(), tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
}

// The kit runs a plugin written for Gitee's quirks against
// examples/fakes/gitee.yaml and every applicable case passes: the
// description is all such a plugin's test needs (no proxy in front of the
// fake). The client_auth case expects the refresh without credentials.
func TestGiteeDescriptionRunsTheKit(t *testing.T) {
	spec, err := plugintest.LoadFakeSpec(filepath.Join(examplesFakes, "gitee.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	plugintest.Run(t, plugintest.Suite{Plugin: plugintest.Build(t, "testdata/gitee"), FakeSpec: spec,
		ExpectClientAuth: fakeprovider.ClientAuthBody})
}

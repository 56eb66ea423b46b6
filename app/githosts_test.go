package app

import (
	"strings"
	"testing"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/service/providers"
)

// gitProviders is a providers.Set stand-in: the named providers exist
// and are Git providers, except google.
type gitProviders []string

func (g gitProviders) Git() []providers.Info { return nil }
func (g gitProviders) Get(name string) (providers.Provider, providers.Info, bool) {
	for _, n := range g {
		if n == name {
			return (*plugins.Plugin)(nil), providers.Info{Name: n, Git: n != "google"}, true
		}
	}
	return nil, providers.Info{}, false
}

func TestGitHosts(t *testing.T) {
	cfg := config.Config{Providers: map[string]config.Provider{
		"github": {APIBase: "https://ghe.example.com/api/v3"},
		"gitlab": {APIBase: "https://gitlab.example.com/gitlab/api/v4/"},
		"gitea":  {GitURL: "https://gitea.example.com", GitUser: "oauth2"},
		"google": {},
	}}
	g, err := newGitHosts(cfg, gitProviders{"github", "gitlab", "bitbucket", "gitea", "google"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ provider, url, user string }{
		{"github", "https://ghe.example.com", "x-access-token"},
		{"gitlab", "https://gitlab.example.com/gitlab", "oauth2"},
		{"bitbucket", "https://bitbucket.org", "x-token-auth"},
		{"gitea", "https://gitea.example.com", "oauth2"},
		{"google", "", ""},  // no Git host
		{"unknown", "", ""}, // not loaded
	} {
		u, user, ok := g.GitHost(tc.provider)
		if u != tc.url || user != tc.user || ok != (tc.url != "") {
			t.Errorf("%s: %q %q %v, want %q %q", tc.provider, u, user, ok, tc.url, tc.user)
		}
	}
	for _, bad := range []config.Provider{
		{GitURL: "https://gitea.example.com"}, // no git_user for a provider Arbor does not know
		{GitURL: "ftp://gitea.example.com", GitUser: "x"},
		{GitURL: "https://user:pass@gitea.example.com", GitUser: "x"},
	} {
		_, err := newGitHosts(config.Config{Providers: map[string]config.Provider{"gitea": bad}}, gitProviders{"gitea"})
		if err == nil || !strings.Contains(err.Error(), "providers.gitea.git_") || strings.Contains(err.Error(), "pass") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

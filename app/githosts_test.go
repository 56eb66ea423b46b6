package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/plugins/builtin"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/plugintest"
	"github.com/vintner/arbor/service/providers"
)

// gitProviders is a providers.Set stand-in: loaded plugins by provider
// name, and whether each is a Git provider.
type gitProviders map[string]struct {
	p   *plugins.Plugin
	git bool
}

func (g gitProviders) Git() []providers.Info { return nil }
func (g gitProviders) Get(name string) (providers.Provider, providers.Info, bool) {
	e, ok := g[name]
	if !ok {
		return nil, providers.Info{}, false
	}
	return e.p, providers.Info{Name: name, Git: e.git}, true
}

// loadBuiltins loads built-in plugins under provider names, each with the
// API base given ("" for the manifest's).
func loadBuiltins(t *testing.T, named map[string][2]string) map[string]*plugins.Plugin {
	t.Helper()
	ctx := context.Background()
	h, err := plugins.NewHost(ctx, plugins.HostOptions{CacheDir: plugintest.DefaultCacheDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	out := map[string]*plugins.Plugin{}
	for name, v := range named {
		fsys, ok := builtin.Plugin(v[0])
		if !ok {
			t.Fatalf("no built-in plugin %q", v[0])
		}
		p, err := h.Load(ctx, fsys, ".", plugins.PluginConfig{ClientID: "id", Endpoints: abi.Endpoints{APIBase: v[1]}})
		if err != nil {
			t.Fatalf("loading %s: %v", v[0], err)
		}
		t.Cleanup(func() { p.Close() })
		out[name] = p
	}
	return out
}

// TestGitHosts: the Git hosts come from the plugins (git_host), for their
// default and Enterprise or self-managed API bases; git_url and git_user
// win over them; a provider whose plugin has no git_host needs both.
func TestGitHosts(t *testing.T) {
	ps := loadBuiltins(t, map[string][2]string{
		"github":    {"github", "https://ghe.example.com/api/v3"},
		"github2":   {"github", ""},
		"gitlab":    {"gitlab", "https://gitlab.example.com/gitlab/api/v4/"},
		"gitlab2":   {"gitlab", ""},
		"bitbucket": {"bitbucket", ""},
		"mirror":    {"github", ""},
		"userish":   {"gitlab", ""},
		"gitea":     {"google", ""}, // a plugin without git_host, configured as a Git provider
		"nouser":    {"google", ""},
		"google":    {"google", ""},
	})
	provs := gitProviders{}
	for name, p := range ps {
		provs[name] = struct {
			p   *plugins.Plugin
			git bool
		}{p, name != "google"}
	}
	cfg := config.Config{Providers: map[string]config.Provider{
		"mirror":  {GitURL: "https://git-mirror.example.com"},
		"userish": {GitUser: "gitlab-ci-token"},
		"gitea":   {GitURL: "https://gitea.example.com", GitUser: "oauth2"},
		"nouser":  {GitURL: "https://gitea.example.com"},
	}}
	var logs bytes.Buffer
	g, err := newGitHosts(cfg, provs, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ provider, url, user string }{
		{"github", "https://ghe.example.com", "x-access-token"},
		{"github2", "https://github.com", "x-access-token"},
		{"gitlab", "https://gitlab.example.com/gitlab", "oauth2"},
		{"gitlab2", "https://gitlab.com", "oauth2"},
		{"bitbucket", "https://bitbucket.org", "x-token-auth"},
		{"mirror", "https://git-mirror.example.com", "x-access-token"}, // git_url wins, the plugin's user
		{"userish", "https://gitlab.com", "gitlab-ci-token"},           // git_user wins
		{"gitea", "https://gitea.example.com", "oauth2"},               // all from the configuration
		{"nouser", "", ""},  // git_url, but no user from anywhere
		{"google", "", ""},  // not a Git provider
		{"unknown", "", ""}, // not loaded
	} {
		t.Run(tc.provider, func(t *testing.T) {
			for range 2 { // the second answer comes from the plugin's kept one
				u, user, ok := g.GitHost(tc.provider)
				if u != tc.url || user != tc.user || ok != (tc.url != "") {
					t.Errorf("%q %q %v, want %q %q", u, user, ok, tc.url, tc.user)
				}
			}
		})
	}
	if n := strings.Count(logs.String(), "providers.nouser.git_user"); n != 1 {
		t.Errorf("the missing git_user was logged %d times, want once:\n%s", n, logs.String())
	}
	for _, bad := range []config.Provider{
		{GitURL: "ftp://gitea.example.com", GitUser: "x"},
		{GitURL: "https://user:pass@gitea.example.com", GitUser: "x"},
		{GitURL: "https://gitea.example.com?x=1", GitUser: "x"},
	} {
		_, err := newGitHosts(config.Config{Providers: map[string]config.Provider{"gitea": bad}}, provs, nil)
		if err == nil || !strings.Contains(err.Error(), "providers.gitea.git_url") || strings.Contains(err.Error(), "pass") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

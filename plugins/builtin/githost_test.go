package builtin_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/plugintest"
)

// TestGitHosts: each built-in Git provider answers its Git host and Basic
// user name, for its default endpoints and for the API base of GitHub
// Enterprise or a self-managed GitLab; Google has none. The answer is
// asked once per loaded version.
func TestGitHosts(t *testing.T) {
	h, err := plugins.NewHost(context.Background(), plugins.HostOptions{
		CacheDir: plugintest.DefaultCacheDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	for _, c := range []struct {
		name, plugin, apiBase string
		url, user             string
	}{
		{"github.com", "github", "", "https://github.com", "x-access-token"},
		{"github enterprise", "github", "https://ghe.example.com/api/v3", "https://ghe.example.com", "x-access-token"},
		{"github enterprise, trailing slash", "github", "https://ghe.example.com/api/v3/", "https://ghe.example.com", "x-access-token"},
		{"github, a fake's API base", "github", "https://fake.example.com/api", "https://github.com", "x-access-token"},
		{"gitlab.com", "gitlab", "", "https://gitlab.com", "oauth2"},
		{"gitlab self-managed", "gitlab", "https://gitlab.example.com/api/v4", "https://gitlab.example.com", "oauth2"},
		{"gitlab self-managed under a path", "gitlab", "https://example.com/gitlab/api/v4", "https://example.com/gitlab", "oauth2"},
		{"bitbucket", "bitbucket", "", "https://bitbucket.org", "x-token-auth"},
		{"bitbucket, another API base", "bitbucket", "https://bb.example.com/api/v3", "https://bitbucket.org", "x-token-auth"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			p, err := h.Load(ctx, plugin(t, c.plugin), ".", plugins.PluginConfig{ClientID: "id",
				Endpoints: abi.Endpoints{APIBase: c.apiBase}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if !p.Implements(abi.OpGitHost) {
				t.Fatal("does not implement git_host")
			}
			calls := p.Stats().Calls
			for range 2 {
				g, err := p.GitHost(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if g.URL != c.url || g.BasicUser != c.user {
					t.Errorf("GitHost = %q %q, want %q %q", g.URL, g.BasicUser, c.url, c.user)
				}
			}
			if got := p.Stats().Calls - calls; got != 1 {
				t.Errorf("two GitHost calls made %d plugin calls, want 1 (the answer is kept)", got)
			}
		})
	}
	t.Run("google", func(t *testing.T) {
		p, err := h.Load(context.Background(), plugin(t, "google"), ".", plugins.PluginConfig{ClientID: "id"})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if p.Implements(abi.OpGitHost) {
			t.Error("google implements git_host")
		}
		if _, err := p.GitHost(context.Background()); code(err) != abi.CodeUnsupported {
			t.Errorf("GitHost: %v, want unsupported", err)
		}
	})
}

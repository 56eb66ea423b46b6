package providers_test

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"testing"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/plugins/builtin"
	"github.com/vintner/arbor/sdk/plugintest"
	"github.com/vintner/arbor/service/providers"
)

func names(in []providers.Info) []string {
	var out []string
	for _, i := range in {
		out = append(out, i.Name)
	}
	return out
}

// The lists come from the real built-in plugins' manifests and which of
// them have a client id.
func TestListsFollowManifestsAndConfig(t *testing.T) {
	ctx := context.Background()
	host, err := plugins.NewHost(ctx, plugins.HostOptions{CacheDir: plugintest.DefaultCacheDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close(ctx)
	configured := map[string]bool{"github": true, "google": true, "bitbucket": true}
	reg, err := plugins.NewRegistry(ctx, host, plugins.RegistryOptions{
		Sources: []fs.FS{builtin.FS()},
		Config: func(name string) plugins.PluginConfig {
			if configured[name] {
				return plugins.PluginConfig{ClientID: "id-" + name}
			}
			return plugins.PluginConfig{}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	loading := providers.FromRegistry(func() providers.Registry { return nil })
	if loading.Ready() || len(loading.Login()) != 0 || len(loading.Git()) != 0 {
		t.Fatal("a set without a registry lists providers")
	}
	if _, _, ok := loading.Get("github"); ok {
		t.Fatal("Get works without a registry")
	}

	s := providers.FromRegistry(func() providers.Registry { return reg })
	if got := names(s.Login()); len(got) != 3 || got[0] != "bitbucket" || got[1] != "github" || got[2] != "google" {
		t.Fatalf("Login() = %v", got)
	}
	// Google signs users in but hosts no repositories.
	if got := names(s.Git()); len(got) != 2 || got[0] != "bitbucket" || got[1] != "github" {
		t.Fatalf("Git() = %v", got)
	}
	if _, in, ok := s.Get("github"); !ok || in.DisplayName != "GitHub" || !in.PKCE || !in.Login || !in.Git {
		t.Fatalf("Get(github) = %+v %v", in, ok)
	}
	if _, _, ok := s.Get("gitlab"); ok {
		t.Fatal("an unconfigured provider is offered")
	}
	if _, _, ok := s.Get("nope"); ok {
		t.Fatal("an unknown provider is offered")
	}
}

package builtin_test

import (
	"context"
	"testing"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// BenchmarkListAll lists every repository of each Git plugin's default
// fake user, 100 per page, through the real module against its fake: the
// time of a whole listing and the requests it makes at the provider (a
// GitHub App token goes through its installations, Bitbucket through its
// workspaces: the price of the providers' real APIs, and what counts
// against their rate limits).
func BenchmarkListAll(b *testing.B) {
	for _, c := range []struct {
		name, plugin string
		fake         func() fakeprovider.Config
	}{
		{"github-app", "github", fakeprovider.GitHubApp},
		{"github-oauth-app", "github", fakeprovider.GitHubOAuthApp},
		{"gitlab", "gitlab", fakeprovider.GitLab},
		{"bitbucket", "bitbucket", fakeprovider.Bitbucket},
	} {
		b.Run(c.name, func(b *testing.B) {
			e, err := plugintest.Start(context.Background(), plugintest.Suite{Plugin: plugin(b, c.plugin), Fake: c.fake()})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			ctx := context.Background()
			tok, err := e.Login(ctx, "", abi.PurposeGit)
			if err != nil {
				b.Fatal(err)
			}
			want := len(e.Fake.VisibleRepos(""))
			calls0 := len(e.Fake.Calls())
			b.ResetTimer()
			for range b.N {
				n, cursor := 0, ""
				for {
					p, err := e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: tok.AccessToken, Cursor: cursor, PerPage: 100})
					if err != nil {
						b.Fatal(err)
					}
					n += len(p.Repos)
					if cursor = p.NextCursor; cursor == "" {
						break
					}
				}
				if n != want {
					b.Fatalf("listed %d repositories, want %d", n, want)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(want), "repos")
			b.ReportMetric(float64(len(e.Fake.Calls())-calls0)/float64(b.N), "requests/op")
		})
	}
}

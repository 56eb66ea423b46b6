package gitearust

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// BenchmarkGoVsRust runs the same warm calls on the Go Gitea plugin
// (examples/gitea) and on this Rust one, paired: each iteration makes one
// call on each, in alternating order, through the real host against
// identical fakes on 127.0.0.1, so that a noisy machine slows both alike.
// It reports each plugin's median and mean in microseconds (host, guest,
// and for the calls that make HTTP requests the loopback fake; the mean
// includes the instances replaced every Policy.MaxCallsPerInstance calls
// and the machine's noise) and module size:
//
//	go test -run '^$' -bench GoVsRust -count 5 ./examples/gitea-rust/
//
// authorize makes no HTTP request: it is the per-call overhead of the host
// and the guest alone. refresh makes one (form body, JSON answer), user two
// (/user and /user/emails), repos one for a page of 50 repositories.
func BenchmarkGoVsRust(b *testing.B) {
	ctx := context.Background()
	fake := fakeprovider.Config{IssueRefreshTokens: true, Users: fakeUsers}
	type side struct {
		name string
		dir  string
		e    *plugintest.Env
		tok  *abi.Token
		size int
	}
	sides := []*side{{name: "go", dir: goBuild(b)}, {name: "rust", dir: buildRust(b)}}
	for _, s := range sides {
		e, err := plugintest.Start(ctx, plugintest.Suite{Plugin: os.DirFS(s.dir), Fake: fake, ExpectClientAuth: fakeprovider.ClientAuthBody})
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		s.e = e
		if s.tok, err = e.Login(ctx, "ferris", abi.PurposeGit); err != nil {
			b.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(s.dir, "gitea.wasm"))
		if err != nil {
			b.Fatal(err)
		}
		s.size = int(st.Size())
	}
	calls := []struct {
		name string
		call func(s *side) error
	}{
		{"authorize", func(s *side) error {
			_, err := s.e.Plugin.AuthorizeParams(ctx, plugins.AuthorizeInput{Purpose: abi.PurposeGit,
				RedirectURI: "https://arbor.example/auth/callback/gitea", State: "state", CodeChallenge: "challenge"})
			return err
		}},
		{"refresh", func(s *side) error {
			_, err := s.e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: s.tok.RefreshToken})
			return err
		}},
		{"user", func(s *side) error {
			_, err := s.e.Plugin.User(ctx, s.tok.AccessToken)
			return err
		}},
		{"repos", func(s *side) error {
			p, err := s.e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: s.tok.AccessToken, PerPage: 50})
			if err == nil && len(p.Repos) != 50 {
				b.Fatalf("%s: %d repositories, want 50", s.name, len(p.Repos))
			}
			return err
		}},
	}
	for _, c := range calls {
		b.Run(c.name, func(b *testing.B) {
			durs := make([][]time.Duration, len(sides))
			i := 0
			for b.Loop() {
				for k := range sides {
					j := (i + k) % len(sides) // alternate which goes first
					start := time.Now()
					if err := c.call(sides[j]); err != nil {
						b.Fatalf("%s: %v", sides[j].name, err)
					}
					durs[j] = append(durs[j], time.Since(start))
				}
				i++
			}
			for j, s := range sides {
				slices.Sort(durs[j])
				var sum time.Duration
				for _, d := range durs[j] {
					sum += d
				}
				b.ReportMetric(float64(durs[j][len(durs[j])/2].Nanoseconds())/1000, s.name+"-p50-µs")
				b.ReportMetric(float64(sum.Nanoseconds())/float64(len(durs[j]))/1000, s.name+"-mean-µs")
				if c.name == "authorize" {
					b.ReportMetric(float64(s.size), s.name+"-module-bytes")
				}
			}
		})
	}
}

// goBuild builds the Go Gitea example with the standard toolchain.
func goBuild(b *testing.B) string {
	b.Helper()
	built, err := plugintest.Compile(b.Context(), filepath.Join("..", "gitea"), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return built.Dir
}

// BenchmarkLoadGoVsRust loads each plugin as a restart does, paired like
// BenchmarkGoVsRust: a new host, the module read and hashed, compiled code
// from a warm on-disk cache, the checks and one pre-warmed instance
// (instantiation and, for Go, _initialize).
func BenchmarkLoadGoVsRust(b *testing.B) {
	ctx := context.Background()
	dirs := []string{goBuild(b), buildRust(b)}
	names := []string{"go", "rust"}
	cache := b.TempDir()
	load := func(dir string) {
		h, err := plugins.NewHost(ctx, plugins.HostOptions{CacheDir: cache, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close(ctx)
		p, err := h.LoadDir(ctx, dir, plugins.PluginConfig{})
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
	for _, d := range dirs {
		load(d) // fill the cache
	}
	durs := make([][]time.Duration, len(dirs))
	i := 0
	for b.Loop() {
		for k := range dirs {
			j := (i + k) % len(dirs)
			start := time.Now()
			load(dirs[j])
			durs[j] = append(durs[j], time.Since(start))
		}
		i++
	}
	for j, n := range names {
		slices.Sort(durs[j])
		b.ReportMetric(float64(durs[j][len(durs[j])/2].Microseconds())/1000, n+"-p50-ms")
	}
}

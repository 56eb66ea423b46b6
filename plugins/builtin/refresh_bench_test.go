package builtin_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/plugintest"
)

// BenchmarkBuiltinRefreshOverhead: one refresh through the real host and
// each built-in module against its fake on loopback, and the time spent
// outside the fake's handler (host, guest, HTTP client and loopback) at
// p50 and p99, as examples/gitea's BenchmarkRefreshOverhead reports it.
// The GitHub App rotates its refresh tokens: each refresh uses the one the
// previous returned.
func BenchmarkBuiltinRefreshOverhead(b *testing.B) {
	for _, name := range []string{"github", "gitlab", "bitbucket", "google"} {
		b.Run(name, func(b *testing.B) {
			c := conformance[name]
			e := plugintest.StartForTest(b, plugintest.Suite{Plugin: plugin(b, name), Fake: c.fake(), ExpectClientAuth: c.auth})
			ctx := context.Background()
			login := func() (*abi.Token, error) { return e.Login(ctx, "", abi.PurposeGit) }
			if name == "google" {
				// Google issues a refresh token to offline access only.
				login = func() (*abi.Token, error) { return e.LoginWithGroups(ctx, "") }
			}
			tok, err := login()
			if err != nil {
				b.Fatal(err)
			}
			own := refreshOverhead(b, e, tok.RefreshToken, b.N)
			b.ReportMetric(float64(own[len(own)/2].Microseconds())/1000, "host-p50-ms")
			b.ReportMetric(float64(own[min(len(own)-1, len(own)*99/100)].Microseconds())/1000, "host-p99-ms")
		})
	}
}

// refreshOverhead refreshes n times from refresh (following rotation) and
// returns the sorted times spent outside the fake's handler.
func refreshOverhead(tb testing.TB, e *plugintest.Env, refresh string, n int) []time.Duration {
	ctx := context.Background()
	own := make([]time.Duration, 0, n)
	for range n {
		busy, start := e.Fake.Busy(), time.Now()
		t, err := e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: refresh})
		if err != nil {
			tb.Fatal(err)
		}
		own = append(own, time.Since(start)-(e.Fake.Busy()-busy))
		if t.RefreshToken != "" {
			refresh = t.RefreshToken
		}
	}
	slices.Sort(own)
	return own
}

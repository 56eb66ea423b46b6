package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// BenchmarkRefreshOverhead: one refresh through the real host against the
// generic fake on loopback, and the time spent outside the fake's
// handler (host, guest, HTTP client and loopback) at p50 and p99, as
// plugins' BenchmarkRefreshOverhead reports it.
func BenchmarkRefreshOverhead(b *testing.B) {
	e := plugintest.StartForTest(b, plugintest.Suite{Plugin: plugintest.Build(b, "."), Fake: fakeprovider.Config{IssueRefreshTokens: true}})
	ctx := context.Background()
	tok, err := e.Login(ctx, "", abi.PurposeGit)
	if err != nil {
		b.Fatal(err)
	}
	var own []time.Duration
	for b.Loop() {
		busy, start := e.Fake.Busy(), time.Now()
		if _, err := e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: tok.RefreshToken}); err != nil {
			b.Fatal(err)
		}
		own = append(own, time.Since(start)-(e.Fake.Busy()-busy))
	}
	slices.Sort(own)
	b.ReportMetric(float64(own[len(own)/2].Microseconds())/1000, "host-p50-ms")
	b.ReportMetric(float64(own[min(len(own)-1, len(own)*99/100)].Microseconds())/1000, "host-p99-ms")
}

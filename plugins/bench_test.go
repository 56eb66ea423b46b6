package plugins_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
)

// BenchmarkLoadWarmCache measures what a restart costs per plugin: a new
// runtime, the module read and hashed, compiled code taken from the on-disk
// cache, the export checks and one pre-warmed instance. Target < 100 ms.
func BenchmarkLoadWarmCache(b *testing.B) {
	ctx := context.Background()
	f := newFake(b)
	h, _ := newHost(b, plugins.Policy{}) // warm the cache
	load(b, h, "good", f.config()).Close()
	for b.Loop() {
		h, err := plugins.NewHost(ctx, plugins.HostOptions{CacheDir: cacheDir, Logger: discardLogger()})
		if err != nil {
			b.Fatal(err)
		}
		p, err := h.LoadDir(ctx, pluginDir("good"), f.config())
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
		h.Close(ctx)
	}
}

// BenchmarkTrivialCall measures acquiring an instance and a call that does
// no HTTP (authorization URL parameters).
func BenchmarkTrivialCall(b *testing.B) {
	h, _ := newHost(b, plugins.Policy{})
	f := newFake(b)
	p := load(b, h, "good", f.config())
	ctx := context.Background()
	in := plugins.AuthorizeInput{Purpose: abi.PurposeGit, RedirectURI: "https://arbor.example/cb", State: "state", CodeChallenge: "challenge"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.AuthorizeParams(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// overhead runs call b.N times and reports the time outside the fake's
// handler (host, guest, HTTP client and loopback) at p50 and p99, with the
// deadline option (WithCloseOnContextDone) on as always.
func overhead(b *testing.B, f *fake, call func() error) {
	b.Helper()
	var total, own []time.Duration
	b.ResetTimer()
	for b.Loop() {
		before := f.handlerDur.Load()
		start := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		fd := time.Duration(f.handlerDur.Load() - before)
		total = append(total, d)
		own = append(own, d-fd)
	}
	slices.Sort(total)
	slices.Sort(own)
	pct := func(s []time.Duration, p float64) float64 {
		return float64(s[min(len(s)-1, int(float64(len(s))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(own, 0.50), "host-p50-ms")
	b.ReportMetric(pct(own, 0.99), "host-p99-ms")
	b.ReportMetric(pct(total, 0.50), "total-p50-ms")
}

// BenchmarkRefreshOverhead: a full Bitbucket-style refresh (Basic client
// auth, JSON answer) against a fake on loopback. Target host p50 < 1 ms.
func BenchmarkRefreshOverhead(b *testing.B) {
	h, _ := newHost(b, plugins.Policy{})
	f := newFake(b)
	p := load(b, h, "good", f.config())
	ctx := context.Background()
	overhead(b, f, func() error {
		_, err := p.Refresh(ctx, plugins.RefreshInput{RefreshToken: "a1b2c3d4e5f6g7h8i9j0"})
		return err
	})
}

// BenchmarkRepos100: one page of 100 repositories (about 50 KB of
// GitHub-like JSON) decoded in the guest. Target host+guest < 10 ms.
func BenchmarkRepos100(b *testing.B) {
	h, _ := newHost(b, plugins.Policy{})
	f := newFake(b)
	p := load(b, h, "good", f.config())
	ctx := context.Background()
	overhead(b, f, func() error {
		page, err := p.Repos(ctx, plugins.ReposInput{AccessToken: "at-1", PerPage: 100})
		if err == nil && len(page.Repos) != 100 {
			b.Fatalf("%d repos", len(page.Repos))
		}
		return err
	})
}

// BenchmarkGuestCodec compares, inside the sandbox with the deadline option
// on, one encode+decode round trip of a refresh request in JSON
// (encoding/json) and in the ABI's encoding. This is the measurement behind
// the choice of encoding in docs/plugin-abi.md.
func BenchmarkGuestCodec(b *testing.B) {
	h, _ := newHost(b, plugins.Policy{})
	p := load(b, h, "hostile", plugins.PluginConfig{ClientID: clientID, ClientSecret: clientSecret})
	const n = 200
	for _, codec := range []string{"codecjson", "codecabi"} {
		b.Run(codec, func(b *testing.B) {
			var size string
			for b.Loop() {
				tok, err := exchangeCmd(context.Background(), p, codec+":"+strconv.Itoa(n))
				if err != nil {
					b.Fatal(err)
				}
				size = tok.AccessToken
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1000, "µs/roundtrip")
			bytes, _ := strconv.Atoi(size)
			b.ReportMetric(float64(bytes), "bytes")
			b.ReportMetric(0, "ns/op")
		})
	}
}

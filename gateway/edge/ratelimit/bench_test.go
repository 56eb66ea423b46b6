package ratelimit_test

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/gateway/edge/ratelimit"
)

// browserRequest fills req like a signed-in browser's proxied request.
func browserRequest(req *fasthttp.Request, host string) {
	req.SetRequestURI("http://" + host + "/app/page?x=1")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	req.Header.Set("Accept-Language", "en-GB,en;q=0.9")
	req.Header.Set("Accept-Encoding", "gzip, deflate, br")
	req.Header.Set("Cookie", "arbor_session=abc.def.ghi; theme=dark")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Referer", "http://"+host+"/app/")
}

// BenchmarkGuardOverhead is the cost the limits add to a proxied request
// without credentials (the hot path): the wrapped guard against the bare
// one, on the same request.
func BenchmarkGuardOverhead(b *testing.B) {
	l, err := ratelimit.New(ratelimit.Options{Rates: ratelimit.Defaults})
	if err != nil {
		b.Fatal(err)
	}
	bare := func(c *fiber.Ctx) (bool, error) { return true, nil }
	app := fiber.New()
	fctx := &fasthttp.RequestCtx{}
	browserRequest(&fctx.Request, "arbor.test")
	c := app.AcquireCtx(fctx)
	defer app.ReleaseCtx(c)
	for _, v := range []struct {
		name  string
		guard func(*fiber.Ctx) (bool, error)
	}{{"none", bare}, {"limits", l.Guard(bare)}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := v.guard(c); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// BenchmarkProxiedPaired relays a signed-in browser's request through two
// gateways to the same upstream over loopback, one with the limits' guard
// and one without, in alternating rounds so that both see the same
// machine load. It reports each one's ns/op and the difference.
func BenchmarkProxiedPaired(b *testing.B) {
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("Hello, World!") }}
	go func() { _ = up.Serve(upLn) }()
	defer func() { _ = up.Shutdown() }()

	l, err := ratelimit.New(ratelimit.Options{Rates: ratelimit.Defaults})
	if err != nil {
		b.Fatal(err)
	}
	bare := func(c *fiber.Ctx) (bool, error) { return true, nil }
	start := func(guard func(*fiber.Ctx) (bool, error)) string {
		s, err := gateway.New(gateway.Options{Upstream: proxy.Upstream{URL: "http://" + upLn.Addr().String()}, Guard: guard,
			Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = s.Serve(ln) }()
		b.Cleanup(func() { _ = s.Shutdown(b.Context()) })
		return ln.Addr().String()
	}
	addrs := [2]string{start(bare), start(l.Guard(bare))}
	var clients [2]*fasthttp.HostClient
	var reqs [2]*fasthttp.Request
	for i, a := range addrs {
		clients[i] = &fasthttp.HostClient{Addr: a, MaxConns: 1}
		reqs[i] = fasthttp.AcquireRequest()
		browserRequest(reqs[i], a)
	}
	resp := fasthttp.AcquireResponse()
	const round = 500
	var spent [2]time.Duration
	var n [2]int
	b.ResetTimer()
	for done := 0; done < b.N; {
		for i := range 2 {
			t := time.Now()
			for range round {
				if err := clients[i].Do(reqs[i], resp); err != nil || resp.StatusCode() != 200 {
					b.Fatalf("request failed: %v %d", err, resp.StatusCode())
				}
			}
			spent[i] += time.Since(t)
			n[i] += round
		}
		done += 2 * round
	}
	none := float64(spent[0].Nanoseconds()) / float64(n[0])
	with := float64(spent[1].Nanoseconds()) / float64(n[1])
	b.ReportMetric(none, "ns/op-none")
	b.ReportMetric(with, "ns/op-limits")
	b.ReportMetric(with-none, "ns/op-delta")
}

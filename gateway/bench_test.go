package gateway_test

import (
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/proxy"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/gateway"
	arborproxy "github.com/vintner/arbor/gateway/edge/proxy"
)

// BenchmarkProxy compares a request through Arbor with one through a bare
// Fiber proxy.Forward, both over loopback TCP to the same fasthttp upstream,
// one request at a time. The difference per op is Arbor's overhead
// (request id, access log formatting, metrics, header filtering,
// streaming). cmd/loadbench measures the same under concurrent load.
func BenchmarkProxy(b *testing.B) {
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("Hello, World!")
	}}
	go func() { _ = up.Serve(upLn) }()
	defer func() { _ = up.Shutdown() }()
	upURL := "http://" + upLn.Addr().String()

	run := func(b *testing.B, addr string) {
		c := &fasthttp.HostClient{Addr: addr, MaxConns: 1}
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + addr + "/app/page?x=1")
		req.Header.Set("User-Agent", "bench")
		req.Header.Set("Accept", "text/html")
		req.Header.Set("Cookie", "session=abc; theme=dark")
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Fatalf("request failed: %v %d", err, resp.StatusCode())
			}
		}
	}

	b.Run("bare", func(b *testing.B) {
		app := fiber.New(fiber.Config{DisableStartupMessage: true})
		app.Use(proxy.Forward(upURL + "/"))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = app.Listener(ln) }()
		defer func() { _ = app.Shutdown() }()
		run(b, ln.Addr().String())
	})
	b.Run("arbor", func(b *testing.B) {
		s, err := gateway.New(gateway.Options{Upstream: arborproxy.Upstream{URL: upURL}, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = s.Serve(ln) }()
		defer func() { _ = s.Shutdown(b.Context()) }()
		run(b, ln.Addr().String())
	})
}

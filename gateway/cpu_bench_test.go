package gateway_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/proxy"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/gateway"
	arborproxy "github.com/vintner/arbor/gateway/edge/proxy"
)

// BenchmarkProxyCPU measures the process's CPU time per proxied request
// (user and system, from getrusage) under concurrent load — 32 keep-alive
// connections, as loadbench's wrk -c32 — through a bare Fiber
// proxy.Forward and through the gateway with its default access log (JSON
// through the BufferedWriter, to io.Discard here) and metrics, in paired
// rounds. Client, proxy and upstream share the process, so the figures
// include their CPU too; the difference between the two is the gateway's
// own. CPU time, unlike wall time, is barely moved by other processes on a
// shared machine. It reports cpu-µs/req for each and their ratio, the
// median of the rounds'.
func BenchmarkProxyCPU(b *testing.B) {
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("Hello, World!")
	}, NoDefaultServerHeader: true}
	go func() { _ = up.Serve(upLn) }()
	defer func() { _ = up.Shutdown() }()
	upURL := "http://" + upLn.Addr().String()

	bareLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	bare := fiber.New(fiber.Config{DisableStartupMessage: true})
	bare.Use(proxy.Forward(upURL + "/"))
	go func() { _ = bare.Listener(bareLn) }()
	defer func() { _ = bare.Shutdown() }()

	access := gateway.NewBufferedWriter(io.Discard, 0, 0)
	defer access.Close()
	s, err := gateway.New(gateway.Options{
		Upstream:     arborproxy.Upstream{URL: upURL},
		Logger:       slog.New(slog.DiscardHandler),
		AccessLogger: slog.New(gateway.NewJSONHandler(access, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	arbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = s.Serve(arbLn) }()
	defer func() { _ = s.Shutdown(b.Context()) }()

	const conns = 32
	run := func(addr string, n int) time.Duration {
		var wg sync.WaitGroup
		before := cpuTime()
		for range conns {
			wg.Go(func() {
				c := &fasthttp.HostClient{Addr: addr, MaxConns: 1}
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI("http://" + addr + "/app/page?x=1")
				req.Header.Set("User-Agent", "bench")
				for range n / conns {
					if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
						b.Errorf("request failed: %v %d", err, resp.StatusCode())
						return
					}
				}
			})
		}
		wg.Wait()
		return cpuTime() - before
	}
	perRound := max(b.N, 4000)
	run(bareLn.Addr().String(), 2000) // warm both: connections, pools
	run(arbLn.Addr().String(), 2000)
	b.ResetTimer()
	var bareUS, arbUS, ratios []float64
	for r := range 5 {
		var tb, ta time.Duration
		if r%2 == 0 {
			tb, ta = run(bareLn.Addr().String(), perRound), run(arbLn.Addr().String(), perRound)
		} else {
			ta, tb = run(arbLn.Addr().String(), perRound), run(bareLn.Addr().String(), perRound)
		}
		n := float64(perRound / conns * conns)
		bareUS = append(bareUS, float64(tb.Microseconds())/n)
		arbUS = append(arbUS, float64(ta.Microseconds())/n)
		ratios = append(ratios, float64(ta)/float64(tb))
	}
	b.StopTimer()
	b.ReportMetric(median(bareUS), "bare-cpu-µs/req")
	b.ReportMetric(median(arbUS), "arbor-cpu-µs/req")
	b.ReportMetric(median(ratios), "ratio")
	b.Log(fmt.Sprintf("rounds: bare %.1f, arbor %.1f, ratio %.3f", bareUS, arbUS, ratios))
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

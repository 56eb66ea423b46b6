// Command loadbench measures Arbor's proxy against a bare Fiber proxy.
//
// It runs three targets, interleaved in rounds so that drift in the machine's
// load affects them alike:
//
//   - upstream: wrk straight at a small fasthttp upstream,
//   - bare:     wrk at a Fiber app whose only handler is proxy.Forward to it,
//   - arbor:    wrk at Arbor (request ids, access log, metrics, header
//     filtering, streaming proxy) in front of the same upstream.
//
// The upstream and the bare proxy are loadbench itself, re-executed with a
// hidden subcommand, so that each is its own process: CPU time is read from
// /proc/PID/stat (utime+stime) before and after every wrk run and divided by
// the requests wrk reports. Arbor is started from --arbor-cmd (the upstream
// URL in ARBOR_UPSTREAM_URL, the listen address in ARBOR_LISTEN) or, without
// it, from loadbench's own "arbor-gateway" mode, which runs gateway.New with
// its defaults.
//
// Everything listens on 127.0.0.1. The run is bounded: rounds × 3 targets ×
// duration, plus a one-second warm-up per target. loadbench exits non-zero
// only when something fails (a process, wrk, a non-2xx answer or socket
// error), never because a target ratio was missed.
//
// Usage:
//
//	go build -o bin/loadbench ./cmd/loadbench
//	bin/loadbench [-rounds 3] [-duration 5s] [-connections 32] [-threads 1]
//	              [-arbor-cmd "bin/arbor serve --config arbor.yaml"]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/proxy"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/gateway"
)

func main() {
	// LOADBENCH_CPUPROFILE=file makes a child mode write a CPU profile of
	// its whole life, for finding where the time goes.
	if path := os.Getenv("LOADBENCH_CPUPROFILE"); path != "" && len(os.Args) > 1 && os.Args[1] != "run" {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
		}
	}
	if len(os.Args) > 1 {
		var err error
		switch os.Args[1] {
		case "upstream":
			err = runUpstream(os.Args[2:])
		case "bare-proxy":
			err = runBareProxy(os.Args[2:])
		case "arbor-gateway":
			err = runArborGateway()
		default:
			err = runBench(os.Args[1:])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadbench:", err)
			pprof.StopCPUProfile()
			os.Exit(1)
		}
		return
	}
	if err := runBench(nil); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

// ---- child modes ----------------------------------------------------------

// waitSignal blocks until SIGTERM or SIGINT.
func waitSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}

// runUpstream serves a fixed small body on every path, as cheaply as
// fasthttp allows, so that the machine's CPU goes to the proxies.
func runUpstream(args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	size := fs.Int("body-bytes", 13, "response body size")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body := []byte(strings.Repeat("x", *size))
	if *size == 13 {
		body = []byte("Hello, World!")
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetBody(body)
		},
		NoDefaultServerHeader: true,
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	go func() { waitSignal(); _ = srv.Shutdown() }()
	return srv.Serve(ln)
}

// runBareProxy is the baseline: Fiber with proxy.Forward, nothing else.
func runBareProxy(args []string) error {
	fs := flag.NewFlagSet("bare-proxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	target := fs.String("upstream", "", "upstream URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(proxy.Forward(strings.TrimRight(*target, "/") + "/"))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	go func() { waitSignal(); _ = app.Shutdown() }()
	return app.Listener(ln)
}

// runArborGateway runs the gateway with its defaults, configured like
// "arbor serve" from ARBOR_LISTEN and ARBOR_UPSTREAM_URL. Logs go to stderr
// as the gateway's defaults send them: errors unbuffered, the access log
// through a BufferedWriter.
func runArborGateway() error {
	opts := gateway.Options{
		Listen:   os.Getenv("ARBOR_LISTEN"),
		Upstream: os.Getenv("ARBOR_UPSTREAM_URL"),
	}
	switch os.Getenv("LOADBENCH_ARBOR_LOG") {
	case "discard":
		// Diagnostic: Arbor's cost without the access log.
		opts.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	case "unbuffered":
		// Diagnostic: one write(2) per access log line.
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	srv, err := gateway.New(opts)
	if err != nil {
		return err
	}
	go func() {
		waitSignal()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	return srv.ListenAndServe()
}

// ---- benchmark driver -----------------------------------------------------

type config struct {
	rounds      int
	duration    time.Duration
	connections int
	threads     int
	wrk         string
	arborCmd    string
	bodyBytes   int
	logDir      string
}

// child is a process loadbench started and measures.
type child struct {
	name string
	cmd  *exec.Cmd
	addr string
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func runBench(args []string) error {
	var cfg config
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.IntVar(&cfg.rounds, "rounds", 3, "measurement rounds; each runs every target once")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "wrk duration per target per round")
	fs.IntVar(&cfg.connections, "connections", 32, "wrk connections (-c)")
	fs.IntVar(&cfg.threads, "threads", 1, "wrk threads (-t)")
	fs.StringVar(&cfg.wrk, "wrk", "/usr/bin/wrk", "path to wrk")
	fs.StringVar(&cfg.arborCmd, "arbor-cmd", "", "command that starts Arbor (run via sh -c with exec); default: loadbench's own arbor-gateway mode")
	fs.IntVar(&cfg.bodyBytes, "body-bytes", 13, "upstream response body size")
	fs.StringVar(&cfg.logDir, "log-dir", "", "directory for the children's stderr (default: a new temporary directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case cfg.rounds < 1 || cfg.rounds > 20:
		return fmt.Errorf("-rounds %d: use 1 to 20", cfg.rounds)
	case cfg.duration < time.Second || cfg.duration > 2*time.Minute:
		return fmt.Errorf("-duration %v: use 1s to 2m", cfg.duration)
	case cfg.connections < 1 || cfg.connections > 1024:
		return fmt.Errorf("-connections %d: use 1 to 1024", cfg.connections)
	case cfg.threads < 1 || cfg.threads > cfg.connections:
		return fmt.Errorf("-threads %d: use 1 to -connections", cfg.threads)
	}
	if _, err := os.Stat(cfg.wrk); err != nil {
		return fmt.Errorf("wrk not found at %s (install the Debian package wrk or pass -wrk): %w", cfg.wrk, err)
	}
	if cfg.logDir == "" {
		dir, err := os.MkdirTemp("", "loadbench-")
		if err != nil {
			return err
		}
		cfg.logDir = dir
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding my own executable to re-run it: %w", err)
	}
	tck := clockTicks()

	var (
		childMu  sync.Mutex
		children []*child
	)
	stopAll := func() {
		childMu.Lock()
		defer childMu.Unlock()
		for _, c := range children {
			stop(c)
		}
		children = nil
	}
	defer stopAll()
	// Interrupted: stop the children we started before exiting.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			stopAll()
			os.Exit(130)
		}
	}()
	start := func(name string, cmd *exec.Cmd, addr string) (*child, error) {
		logf, err := os.Create(filepath.Join(cfg.logDir, name+".log"))
		if err != nil {
			return nil, err
		}
		defer logf.Close()
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting %s: %w", name, err)
		}
		c := &child{name: name, cmd: cmd, addr: addr}
		childMu.Lock()
		children = append(children, c)
		childMu.Unlock()
		if err := waitHTTP(addr, 15*time.Second); err != nil {
			return nil, fmt.Errorf("%s did not come up on %s (log: %s): %w", name, addr, logf.Name(), err)
		}
		return c, nil
	}

	upAddr, bareAddr, arborAddr := freePort(), freePort(), freePort()
	upURL := "http://" + upAddr
	up, err := start("upstream", exec.Command(self, "upstream", "-listen", upAddr, "-body-bytes", strconv.Itoa(cfg.bodyBytes)), upAddr)
	if err != nil {
		return err
	}
	bare, err := start("bare", exec.Command(self, "bare-proxy", "-listen", bareAddr, "-upstream", upURL), bareAddr)
	if err != nil {
		return err
	}
	var arborCmd *exec.Cmd
	if cfg.arborCmd != "" {
		arborCmd = exec.Command("/bin/sh", "-c", "exec "+cfg.arborCmd)
	} else {
		arborCmd = exec.Command(self, "arbor-gateway")
	}
	arborCmd.Env = append(os.Environ(), "ARBOR_LISTEN="+arborAddr, "ARBOR_UPSTREAM_URL="+upURL)
	arbor, err := start("arbor", arborCmd, arborAddr)
	if err != nil {
		return err
	}

	type target struct {
		name  string
		addr  string
		proxy *child // the process whose CPU is charged; the upstream itself for "upstream"
	}
	targets := []target{{"upstream", upAddr, up}, {"bare", bareAddr, bare}, {"arbor", arborAddr, arbor}}

	fmt.Printf("loadbench: %d rounds × %d targets × %v, wrk -t%d -c%d, body %d B, CPU clock %d ticks/s, logs in %s\n",
		cfg.rounds, len(targets), cfg.duration, cfg.threads, cfg.connections, cfg.bodyBytes, tck, cfg.logDir)
	for _, t := range targets {
		if _, err := runWrk(cfg, t.addr, time.Second); err != nil {
			return fmt.Errorf("warm-up of %s: %w", t.name, err)
		}
	}

	type total struct {
		requests        int64
		seconds         float64
		cpuTicks        int64 // of the measured process
		upstreamTicks   int64 // of the upstream, during this target's runs
		errors          int64
		perRoundReqsSec []float64
	}
	totals := make(map[string]*total)
	var failures []string
	for r := 1; r <= cfg.rounds; r++ {
		for _, t := range targets {
			before, err := cpuTicks(t.proxy.pid())
			if err != nil {
				return err
			}
			upBefore, err := cpuTicks(up.pid())
			if err != nil {
				return err
			}
			res, err := runWrk(cfg, t.addr, cfg.duration)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r, t.name, err)
			}
			after, err := cpuTicks(t.proxy.pid())
			if err != nil {
				return err
			}
			upAfter, err := cpuTicks(up.pid())
			if err != nil {
				return err
			}
			tt := totals[t.name]
			if tt == nil {
				tt = &total{}
				totals[t.name] = tt
			}
			tt.requests += res.requests
			tt.seconds += res.seconds
			tt.cpuTicks += after - before
			tt.upstreamTicks += upAfter - upBefore
			tt.errors += res.errors
			tt.perRoundReqsSec = append(tt.perRoundReqsSec, res.reqPerSec)
			if res.errors > 0 {
				failures = append(failures, fmt.Sprintf("round %d, %s: %d non-2xx responses or socket errors", r, t.name, res.errors))
			}
			fmt.Printf("round %d  %-8s %10.0f req/s  %8.1f µs CPU/req\n", r, t.name, res.reqPerSec,
				float64(after-before)*1e6/float64(tck)/float64(max(res.requests, 1)))
		}
	}

	cpuPerReq := func(ticks, reqs int64) float64 { return float64(ticks) * 1e6 / float64(tck) / float64(max(reqs, 1)) }
	base := totals["bare"]
	baseRPS := float64(base.requests) / base.seconds
	baseCPU := cpuPerReq(base.cpuTicks, base.requests)
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tCPU µs/req (measured process)\tupstream CPU µs/req\tthroughput vs bare\tCPU vs bare\trounds req/s\t")
	for _, t := range targets {
		tt := totals[t.name]
		rps := float64(tt.requests) / tt.seconds
		cpu := cpuPerReq(tt.cpuTicks, tt.requests)
		var rounds []string
		for _, v := range tt.perRoundReqsSec {
			rounds = append(rounds, strconv.FormatFloat(v, 'f', 0, 64))
		}
		thr, cr := "-", "-"
		if t.name != "upstream" {
			thr = fmt.Sprintf("%.2fx", rps/baseRPS)
			cr = fmt.Sprintf("%.2fx", cpu/baseCPU)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\t%s\t%s\t%s\t\n", t.name, rps, cpu,
			cpuPerReq(tt.upstreamTicks, tt.requests), thr, cr, strings.Join(rounds, " "))
	}
	_ = tw.Flush()
	a := totals["arbor"]
	thr := (float64(a.requests) / a.seconds) / baseRPS
	cr := cpuPerReq(a.cpuTicks, a.requests) / baseCPU
	fmt.Printf("\ntargets: throughput >= 0.90x bare (%s, %.2fx), CPU/request <= 1.25x bare (%s, %.2fx)\n",
		verdict(thr >= 0.90), thr, verdict(cr <= 1.25), cr)
	fmt.Println("(for the upstream row, the CPU column is the upstream's own)")

	for _, c := range []*child{up, bare, arbor} {
		if err := c.cmd.Process.Signal(syscall.Signal(0)); err != nil {
			failures = append(failures, fmt.Sprintf("%s exited during the run (log in %s)", c.name, cfg.logDir))
		}
	}
	if len(failures) > 0 {
		return errors.New("errors during the run:\n  " + strings.Join(failures, "\n  "))
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// stop sends SIGTERM to a child it started and waits up to 10 s before
// killing it.
func stop(c *child) {
	if c.cmd.Process == nil || c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// freePort returns a loopback address that was free a moment ago.
func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("no free loopback port: %v", err))
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP polls until addr answers an HTTP request (any status).
func waitHTTP(addr string, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := c.Get("http://" + addr + "/")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return last
}

// cpuTicks returns utime+stime of pid in clock ticks, from /proc/PID/stat.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading CPU time of pid %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may contain spaces;
	// fields are counted from after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat format", pid)
	}
	return utime + stime, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times.
func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}

type wrkResult struct {
	requests  int64
	seconds   float64
	reqPerSec float64
	errors    int64
}

var (
	reTotal  = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m)`)
	reRPS    = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	reNon2xx = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	reSocket = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// runWrk runs one bounded wrk measurement against addr and parses it.
func runWrk(cfg config, addr string, d time.Duration) (wrkResult, error) {
	secs := strconv.Itoa(int(d.Round(time.Second) / time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cfg.wrk, "-t"+strconv.Itoa(cfg.threads), "-c"+strconv.Itoa(cfg.connections),
		"-d"+secs+"s", "--timeout", "5s", "http://"+addr+"/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk failed: %w\n%s", err, out)
	}
	text := string(out)
	var r wrkResult
	m := reTotal.FindStringSubmatch(text)
	rps := reRPS.FindStringSubmatch(text)
	if m == nil || rps == nil {
		return r, fmt.Errorf("cannot parse wrk output:\n%s", text)
	}
	r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	v, _ := strconv.ParseFloat(m[2], 64)
	switch m[3] {
	case "us":
		v /= 1e6
	case "ms":
		v /= 1e3
	case "m":
		v *= 60
	}
	r.seconds = v
	r.reqPerSec, _ = strconv.ParseFloat(rps[1], 64)
	if n := reNon2xx.FindStringSubmatch(text); n != nil {
		k, _ := strconv.ParseInt(n[1], 10, 64)
		r.errors += k
	}
	if s := reSocket.FindStringSubmatch(text); s != nil {
		for _, x := range s[1:] {
			k, _ := strconv.ParseInt(x, 10, 64)
			r.errors += k
		}
	}
	return r, nil
}

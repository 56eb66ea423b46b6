// Command loadbench measures Arbor's proxy against a bare Fiber proxy.
//
// It runs four targets, interleaved in rounds so that drift in the machine's
// load affects them alike:
//
//   - upstream:   wrk straight at a small fasthttp upstream,
//   - bare:       wrk at a Fiber app whose only handler is proxy.Forward to it,
//   - arbor-anon: wrk at Arbor (request ids, access log, metrics, header
//     filtering, route policy, streaming proxy) in front of the same
//     upstream, without a session cookie,
//   - arbor-auth: the same Arbor process, every request carrying a valid
//     session cookie, so that each one also goes through the session check
//     (token verification and session lookup) and gets the identity headers
//     and the signed identity assertion added.
//   - arbor-worker: the same Arbor process, every request to a worker route
//     (/api/tendril/, ARBOR_WORKERS_PATHS) carrying X-Worker-ID and
//     X-Worker-Token of a worker registered through POST /api/workers, so
//     that each one goes through worker authentication (format and
//     checksum, SHA-256, the cached worker record, constant-time compare,
//     last-use bookkeeping) and gets the worker identity and the assertion.
//   - arbor-rule: a second `arbor serve` (rule.go), the same but for a
//     policy: policy.allow admits members of github:vintner and a route
//     rule on "/" keeps every proxied path for github:vintner/platform.
//     Every request carries the session cookie of octocat, signed in there
//     through the fake GitHub, whose memberships (vintner,
//     vintner/platform) the real membership service read at sign-in; so
//     each one also takes the policy's per-request path (the Member from
//     the membership service's cache, the route rule, the groups header
//     and the assertion's groups claim). It is paired round by round with
//     arbor-auth, the same request to the Arbor without a policy, for
//     issue 19's target: with the rule at least 0.95x the throughput
//     without.
//
// The upstream and the bare proxy are loadbench itself, re-executed with a
// hidden subcommand, so that each is its own process: CPU time is read from
// /proc/PID/stat (utime+stime) before and after every wrk run and divided by
// the requests wrk reports. Arbor is started from --arbor-cmd (the upstream
// URL in ARBOR_UPSTREAM_URL, the listen address in ARBOR_LISTEN) or, without
// it, from loadbench's own "arbor-gateway" mode, which runs gateway.New with
// its defaults and has no sign-in (no arbor-auth target then).
//
// With --arbor-cmd, Arbor runs with auth.default_route public
// (ARBOR_AUTH_DEFAULT_ROUTE), so that requests without a cookie are proxied,
// and its built-in provider plugins point at fake providers that loadbench
// starts on loopback (package plugins/builtin/fakes, as `arbor dev` does).
// Once /readyz answers 200, loadbench signs in through the fake GitHub like
// a browser (GET /auth/start/github, the fake's authorize URL with
// fake_auto=approve, Arbor's callback) and takes the arbor_session cookie.
// The token lifetime is set to -token-ttl (default 1h), so the cookie is not
// re-issued during the run: what arbor-auth measures is the steady state of
// the session check, where the token is in the verification cache and the
// session in the session cache. The upstream counts the requests that arrive
// with Arbor's user id header, and every run is checked: all arbor-auth
// requests must carry it, no arbor-anon request may.
//
// With -store etcd, loadbench starts an embedded 1-member etcd (package
// data/etcd/etcdtest) in its own process, on 127.0.0.1, with fsync on as
// bbolt has it, and runs Arbor with ARBOR_STORE_BACKEND=etcd and its
// endpoint; the table then has a column for etcd's CPU per request
// (loadbench's own process, where the rest is idle during a run). Sessions
// and worker records are cached in Arbor, so arbor-auth and arbor-worker
// stay near their bbolt figures; the etcd column shows what the store
// still costs per request.
//
// With -replicas 2 (which needs -store etcd), a second `arbor serve` runs
// on the same etcd with the same secrets (the session key, CLI secret and
// encryption keys from the environment, generated where it has none; one
// assertion key file, ARBOR_SECRETS_ASSERTION_KEY_FILE) and public URL, on
// its own port and data dir. Two targets compare them:
//
//   - arbor-auth-1r: wrk with the session cookie at replica 1 only (as
//     arbor-auth, while replica 2 idles),
//   - arbor-auth-2r: two wrk at once, one per replica, each with half the
//     connections; req/s is their sum and CPU per request charges both
//     replicas.
//
// and the output gives their throughput ratio. With N cores shared by the
// replicas, wrk, the upstream and etcd, the ratio is bounded by the cores:
// on a small machine it shows that replicas do not get in each other's way
// through etcd, not that they scale out.
//
// Req/s is the median across rounds; CPU per request is the measured
// process's CPU time over all rounds divided by all its requests. After the
// upstream, each round runs arbor-worker, bare, arbor-anon, arbor-auth and
// arbor-rule in that order, and the next round backwards, so that every
// pair a verdict compares runs back to back or with one target between,
// each first as often as second (roundOrder). arbor-auth and arbor-worker
// are judged against arbor-anon by the median of the per-round ratios: a
// ratio pairs two runs seconds apart, so a slow spell of the machine (on a
// shared VM, CPU per request of one target can move by 20% from one round
// to the next) moves one ratio rather than one target's median. Many short
// rounds (make loadbench: 20 of 2 s) give more pairs than a few long ones.
//
// -tls (with -arbor-cmd) measures the same kinds of request over https:
// Arbor terminating TLS against the bare Fiber proxy behind the same TLS
// listener, with Caddy as a reference, keep-alive and full handshakes
// (see tlsbench.go; make loadbench-tls).
//
// -git (with -arbor-cmd) clones a repository of about 50 MiB with the real
// git through Arbor's Git proxy and straight from a fake Git host, in
// paired rounds, and reports Arbor's resident memory growth during each
// clone (issue 22; see git.go; make loadbench-git).
//
// -ab (with -arbor-cmd and -arbor-cmd-b) compares two builds of Arbor
// beside the bare proxy, to judge a change of a few per cent: A from
// -arbor-cmd, started as above, and B from -arbor-cmd-b with the same
// environment but its own address, public URL and data dir. In each
// round wrk runs at bare, A and B, A and B in an order that alternates
// between rounds, and each process's CPU time is read before and after
// its own run. It prints every round's req/s, CPU µs/req and the ratios
// B/A, A/bare and B/bare, then the medians of those per-round ratios and
// one summary line, "ab: B/A cpu/req 0.951 (0.930–0.970), req/s …". The
// requests are anonymous, or with -ab-kind auth carry each Arbor's own
// session cookie. No verdicts: it is a diagnostic (see ab.go; make
// loadbench-ab BASE=rev compares the working tree's build with a
// revision's).
//
// Every other mode ends with one verdict line per judged target
// (verdict.go), also appended to the -verdicts file when one is named
// (make bench).
//
// -only NAME,... measures just those targets and prints no summary: for
// profiling one kind of request, e.g. with perf record on the Arbor
// process. It prints the verdicts whose targets were all measured, such as
// the route rule's when it names both arbor-auth and arbor-rule: `-only
// arbor-auth,arbor-rule` is the narrowest paired comparison of issue 19
// (the two alternate, each round in the other order, so that every pair
// runs back to back).
//
// Everything listens on 127.0.0.1. The run is bounded: rounds × targets ×
// duration, plus a one-second warm-up per target. loadbench exits non-zero
// only when something fails (a process, wrk, sign-in, a non-2xx answer or
// socket error, a measurement without a request, a missing or unexpected
// identity header), never because a target ratio was missed.
//
// Usage:
//
//	go build -o bin/loadbench ./cmd/loadbench
//	bin/loadbench [-rounds 3] [-duration 5s] [-connections 32] [-threads 1]
//	              [-arbor-cmd "bin/arbor serve --config arbor.yaml"] [-auth=true]
//	              [-store bbolt|etcd] [-replicas 1|2] [-only arbor-worker,...]
//	              [-tls [-caddy /usr/bin/caddy]] [-git [-git-mib 50]] [-verdicts FILE]
//	              [-ab -arbor-cmd-b "bin/arbor serve" [-ab-kind anon|auth]]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/proxy"
	"github.com/valyala/fasthttp"

	arborconfig "github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data/etcd/etcdtest"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/edge/https"
	arborproxy "github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/internal/freeport"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/client"
	"github.com/vintner/arbor/sdk/fakeprovider"
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

// countPath is the upstream's path that answers how many requests carried
// the -count-header header.
const countPath = "/__loadbench/count"

// runUpstream serves a fixed small body on every path, as cheaply as
// fasthttp allows, so that the machine's CPU goes to the proxies. It counts
// the requests that carry -count-header (Arbor's user id header), which
// countPath reports.
func runUpstream(args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	size := fs.Int("body-bytes", 13, "response body size")
	countHeader := fs.String("count-header", "", "count the requests that carry this header")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body := []byte(strings.Repeat("x", *size))
	if *size == 13 {
		body = []byte("Hello, World!")
	}
	var counted atomic.Int64
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if *countHeader != "" && len(ctx.Request.Header.Peek(*countHeader)) > 0 {
				counted.Add(1)
			}
			ctx.SetContentType("text/plain; charset=utf-8")
			switch string(ctx.Path()) {
			case countPath:
				ctx.SetBodyString(strconv.FormatInt(counted.Load(), 10))
				return
			case groupsPath:
				ctx.SetBody(ctx.Request.Header.Peek(groupsHeader))
				return
			}
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
// With -tls-cert and -tls-key it serves https through the same TLS
// listener as `arbor serve` (gateway/edge/https: its Terminator and
// Listener, the same settings and certificate), so that the -tls
// comparison is of the proxying only.
func runBareProxy(args []string) error {
	fs := flag.NewFlagSet("bare-proxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	target := fs.String("upstream", "", "upstream URL")
	certFile := fs.String("tls-cert", "", "serve https with this certificate chain (PEM)")
	keyFile := fs.String("tls-key", "", "and this private key (PEM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(proxy.Forward(strings.TrimRight(*target, "/") + "/"))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if *certFile != "" || *keyFile != "" {
		term, err := https.New(https.Options{CertFile: *certFile, KeyFile: *keyFile, PollInterval: -1})
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer term.Close()
		ln = term.Listener(ln)
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
		Upstream: arborproxy.Upstream{URL: os.Getenv("ARBOR_UPSTREAM_URL")},
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
	auth        bool
	tokenTTL    time.Duration
	bodyBytes   int
	logDir      string
	store       string // bbolt or etcd
	replicas    int    // Arbor processes on the store: 1, or 2 with etcd
	only        string // comma-separated target names to measure; "" for all
	flood       bool   // measure arbor-auth quiet and under an anonymous flood instead (flood.go)
	tls         bool   // measure over https instead: Arbor against a bare proxy behind the same TLS listener, and Caddy (tlsbench.go)
	caddy       string // path to caddy, with -tls
	rule        bool   // also start an Arbor with a policy route rule and measure arbor-rule (rule.go)
	verdicts    string // file the verdict lines are appended to (verdict.go); "" for none
	git         bool   // measure git clones through Arbor's Git proxy against straight from the Git host instead (git.go)
	gitMiB      int    // with git: the repository's size in MiB
	ab          bool   // compare two Arbor builds instead, -arbor-cmd (A) and -arbor-cmd-b (B), in paired rounds (ab.go)
	arborCmdB   string // with ab: the command that starts B
	abKind      string // with ab: the requests, anon or auth (a session cookie)
}

// child is a process loadbench started and measures.
type child struct {
	name string
	cmd  *exec.Cmd
	addr string
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// userIDHeader is the header Arbor sets on requests with a session (the
// default of identity.user_id_header); the upstream counts it.
const userIDHeader = "X-Arbor-User-Id"

func runBench(args []string) error {
	var cfg config
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.IntVar(&cfg.rounds, "rounds", 3, "measurement rounds; each runs every target once")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "wrk duration per target per round")
	fs.IntVar(&cfg.connections, "connections", 32, "wrk connections (-c)")
	fs.IntVar(&cfg.threads, "threads", 1, "wrk threads (-t)")
	fs.StringVar(&cfg.wrk, "wrk", "/usr/bin/wrk", "path to wrk")
	fs.StringVar(&cfg.arborCmd, "arbor-cmd", "", "command that starts Arbor (run via sh -c with exec); default: loadbench's own arbor-gateway mode")
	fs.BoolVar(&cfg.auth, "auth", true, "with -arbor-cmd: also measure requests with a session cookie (sign-in through fake providers)")
	fs.DurationVar(&cfg.tokenTTL, "token-ttl", time.Hour, "session token lifetime given to Arbor (ARBOR_SESSION_TOKEN_TTL); keep it above twice the run's length so that no cookie is re-issued")
	fs.IntVar(&cfg.bodyBytes, "body-bytes", 13, "upstream response body size")
	fs.StringVar(&cfg.logDir, "log-dir", "", "directory for the children's stderr (default: a new temporary directory)")
	fs.StringVar(&cfg.store, "store", "bbolt", "with -arbor-cmd: Arbor's store, bbolt (its own file under the data dir) or etcd (an embedded 1-member etcd with fsync, started by loadbench on 127.0.0.1)")
	fs.StringVar(&cfg.only, "only", "", "measure only these targets (comma-separated names, e.g. arbor-worker), for profiling one kind of request with perf or pprof; the summary and target verdicts are skipped, but for the route rule's when arbor-auth and arbor-rule are both named")
	fs.BoolVar(&cfg.flood, "flood", false, "with -arbor-cmd: measure only arbor-auth, quiet and while a second client (127.0.0.2) floods /auth/start and /oauth/device/code, in paired rounds; reports the store file's growth (see flood.go)")
	fs.BoolVar(&cfg.tls, "tls", false, "with -arbor-cmd: measure over https, one test certificate, one upstream: Arbor (anonymous, session cookie, worker headers) against a bare Fiber proxy behind the same TLS listener (gateway/edge/https), and Caddy as a reference; keep-alive req/s, CPU per request and full handshakes/s, after a discarded warm-up round (see tlsbench.go)")
	fs.StringVar(&cfg.caddy, "caddy", "/usr/bin/caddy", "with -tls: path to caddy")
	fs.BoolVar(&cfg.rule, "rule", true, "with -arbor-cmd and -auth, one replica, no -flood: also start a second `arbor serve` with a policy whose route rule covers the proxied path, sign in there as a user who passes it, and compare its throughput (arbor-rule) with arbor-auth's (see rule.go)")
	fs.StringVar(&cfg.verdicts, "verdicts", "", "also append the verdict lines (one per judged target, see verdict.go) to this file, and a \"broken\" line if the run fails; make bench collects them")
	fs.BoolVar(&cfg.git, "git", false, "with -arbor-cmd: clone a repository of -git-mib MiB of random bytes with the real git through Arbor's Git proxy and straight from a fake Git host (git http-backend), in paired rounds; reports MiB/s, the per-round ratios and Arbor's resident memory growth during a clone (see git.go)")
	fs.IntVar(&cfg.gitMiB, "git-mib", 50, "with -git: the repository's size in MiB")
	fs.BoolVar(&cfg.ab, "ab", false, "compare two Arbor builds, -arbor-cmd (A) and -arbor-cmd-b (B), each its own `arbor serve`, beside the bare proxy: paired rounds of req/s and CPU per request, medians of the per-round ratios B/A, A/bare and B/bare; no verdicts (see ab.go)")
	fs.StringVar(&cfg.arborCmdB, "arbor-cmd-b", "", "with -ab: the command that starts B, run like -arbor-cmd (same environment, its own address and data dir)")
	fs.StringVar(&cfg.abKind, "ab-kind", "anon", "with -ab: the requests measured at A and B, anon (no cookie) or auth (each Arbor's own session cookie, signed in through the fake GitHub; needs -auth)")
	fs.IntVar(&cfg.replicas, "replicas", 1, "with -store etcd: 2 also starts a second `arbor serve` on the same etcd and secrets and compares authenticated throughput of both replicas with one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := runMode(cfg); err != nil {
		return errors.Join(err, appendVerdicts(cfg.verdicts, brokenLine(modeName(cfg), err)))
	}
	return nil
}

// modeName names the run in a "broken" line of the -verdicts file.
func modeName(cfg config) string {
	switch {
	case cfg.ab:
		return "loadbench-ab"
	case cfg.git:
		return "loadbench-git"
	case cfg.tls:
		return "loadbench-tls"
	case cfg.flood:
		return "loadbench-flood"
	case cfg.store == "etcd":
		return "loadbench-etcd"
	}
	return "loadbench"
}

// runMode checks cfg and runs the measurement it asks for.
func runMode(cfg config) error {
	switch {
	case cfg.rounds < 1 || cfg.rounds > 20:
		return fmt.Errorf("-rounds %d: use 1 to 20", cfg.rounds)
	case cfg.duration < time.Second || cfg.duration > 2*time.Minute:
		return fmt.Errorf("-duration %v: use 1s to 2m", cfg.duration)
	case cfg.connections < 1 || cfg.connections > 1024:
		return fmt.Errorf("-connections %d: use 1 to 1024", cfg.connections)
	case cfg.threads < 1 || cfg.threads > cfg.connections:
		return fmt.Errorf("-threads %d: use 1 to -connections", cfg.threads)
	case cfg.tokenTTL < 2*time.Second || cfg.tokenTTL > 24*time.Hour:
		return fmt.Errorf("-token-ttl %v: use 2s to 24h", cfg.tokenTTL)
	case cfg.store != "bbolt" && cfg.store != "etcd":
		return fmt.Errorf("-store %q: use bbolt or etcd", cfg.store)
	case cfg.store == "etcd" && cfg.arborCmd == "":
		return errors.New("-store etcd needs -arbor-cmd: the built-in arbor-gateway mode has no store")
	case cfg.replicas != 1 && cfg.replicas != 2:
		return fmt.Errorf("-replicas %d: use 1 or 2", cfg.replicas)
	case cfg.replicas == 2 && cfg.store != "etcd":
		return errors.New("-replicas 2 needs -store etcd: replicas share their store, and a bbolt file belongs to one process")
	case cfg.replicas == 2 && !cfg.auth:
		return errors.New("-replicas 2 compares authenticated throughput: it needs -auth")
	case cfg.flood && (cfg.arborCmd == "" || !cfg.auth || cfg.replicas != 1 || cfg.only != ""):
		return errors.New("-flood needs -arbor-cmd and -auth, with one replica and no -only: it measures the signed-in client under a flood")
	case cfg.replicas == 2 && cfg.connections < 2:
		return fmt.Errorf("-connections %d: -replicas 2 splits them between two wrk processes; use at least 2", cfg.connections)
	}
	if cfg.ab || cfg.arborCmdB != "" {
		if err := checkAB(cfg); err != nil {
			return err
		}
	}
	if cfg.git {
		if cfg.tls || cfg.flood || cfg.store != "bbolt" || cfg.replicas != 1 || cfg.only != "" {
			return errors.New("-git runs alone: with the bbolt store, one replica, no -tls, -flood or -only")
		}
		return runGitBench(cfg)
	}
	if cfg.tls {
		if cfg.arborCmd == "" || !cfg.auth || cfg.flood || cfg.store != "bbolt" || cfg.replicas != 1 || cfg.only != "" {
			return errors.New("-tls needs -arbor-cmd and -auth (it signs in and registers a worker), with the bbolt store, one replica, no -flood and no -only")
		}
		if _, err := os.Stat(cfg.wrk); err != nil {
			return fmt.Errorf("wrk not found at %s (install the Debian package wrk or pass -wrk): %w", cfg.wrk, err)
		}
		return runTLSBench(cfg)
	}
	if _, err := os.Stat(cfg.wrk); err != nil {
		return fmt.Errorf("wrk not found at %s (install the Debian package wrk or pass -wrk): %w", cfg.wrk, err)
	}
	auth := cfg.auth && cfg.arborCmd != ""
	if cfg.auth && !auth {
		fmt.Println("loadbench: no -arbor-cmd: the built-in arbor-gateway mode has no sign-in, so arbor-auth is skipped")
	}
	if auth {
		// The cookie is re-issued past half the token's lifetime; the
		// measurement is of the steady state, without re-issues.
		n := 5 // upstream, bare, arbor-anon, arbor-auth, arbor-worker
		if cfg.replicas == 2 {
			n += 2 // arbor-auth-1r, arbor-auth-2r
		}
		if ruleOn(cfg) {
			n++ // arbor-rule
		}
		if cfg.ab {
			n = 3 // bare, A, B
		}
		runLen := time.Duration(cfg.rounds*n+n)*(cfg.duration+time.Second) + 2*time.Minute
		if cfg.tokenTTL/2 < runLen {
			fmt.Printf("loadbench: warning: -token-ttl %v: the cookie may be re-issued during the run (about %v); arbor-auth then includes re-issues\n", cfg.tokenTTL, runLen.Round(time.Second))
		}
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
		cleanups []func() // after the children have stopped, last first
	)
	stopAll := func() {
		childMu.Lock()
		defer childMu.Unlock()
		for _, c := range children {
			stop(c)
		}
		children = nil
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		cleanups = nil
	}
	defer stopAll()
	// afterStop registers f to run once every child has stopped, also when
	// loadbench is interrupted.
	afterStop := func(f func()) {
		childMu.Lock()
		defer childMu.Unlock()
		cleanups = append(cleanups, f)
	}
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
	up, err := start("upstream", exec.Command(self, "upstream", "-listen", upAddr,
		"-body-bytes", strconv.Itoa(cfg.bodyBytes), "-count-header", userIDHeader), upAddr)
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
	publicURL := "http://" + arborAddr
	arborCmd.Env = append(os.Environ(), "ARBOR_LISTEN="+arborAddr, "ARBOR_UPSTREAM_URL="+upURL,
		// Requests without a cookie are proxied, not sent to sign-in.
		"ARBOR_AUTH_DEFAULT_ROUTE=public",
		// Only registered workers may call the worker route.
		"ARBOR_WORKERS_PATHS="+workerPath,
		// Two replicas may share the host: each its own metrics port.
		"ARBOR_SERVER_METRICS_LISTEN=127.0.0.1:0")
	if cfg.flood {
		// The flooder asks for device codes as a registered client, so
		// that its requests go as far as an attacker's could.
		arborCmd.Env = append(arborCmd.Env, "ARBOR_CLI_DEVICE_CLIENTS=[{id: "+floodClientID+", name: Loadbench flood, scopes: [proxy]}]")
	}
	var etcdNote string
	if cfg.store == "etcd" {
		env, note, err := startEtcd(cfg.logDir, afterStop)
		if err != nil {
			return err
		}
		arborCmd.Env = append(arborCmd.Env, env...)
		etcdNote = note
	}
	var secretsNote string
	if cfg.replicas == 2 {
		env, note, err := sharedSecrets(afterStop)
		if err != nil {
			return err
		}
		arborCmd.Env = append(arborCmd.Env, env...)
		secretsNote = note
	}
	// The Arbor with a route rule (rule.go) and -ab's B (ab.go) sign in
	// through the same fakes, at their own public URLs.
	var ruleAddr, abAddr string
	if ruleOn(cfg) {
		ruleAddr = freePort()
	}
	if cfg.ab {
		abAddr = freePort()
	}
	if auth {
		set, env, err := startFakes(publicURL, ruleAddr, abAddr)
		if err != nil {
			return err
		}
		defer set.Close()
		arborCmd.Env = append(arborCmd.Env, env...)
		arborCmd.Env = append(arborCmd.Env, "ARBOR_PUBLIC_URL="+publicURL,
			"ARBOR_SESSION_TOKEN_TTL="+cfg.tokenTTL.String())
	}
	arbor, err := start("arbor", arborCmd, arborAddr)
	if err != nil {
		return err
	}
	// Replica 2: the same command, environment, secrets, store and public
	// URL, its own listen address and data dir (admin socket). It starts
	// once replica 1 is up, so that replica 1 has written the shared
	// assertion key file.
	var arbor2 *child
	var arbor2Addr string
	if cfg.replicas == 2 {
		dir, err := os.MkdirTemp("", "loadbench-replica2-")
		if err != nil {
			return err
		}
		afterStop(func() { _ = os.RemoveAll(dir) })
		arbor2Addr = freePort()
		cmd := exec.Command("/bin/sh", "-c", "exec "+cfg.arborCmd)
		cmd.Env = append(slices.Clone(arborCmd.Env), "ARBOR_LISTEN="+arbor2Addr, "ARBOR_DATA_DIR="+dir)
		if arbor2, err = start("arbor2", cmd, arbor2Addr); err != nil {
			return err
		}
	}
	var cookie string // "arbor_session=…", the arbor-auth requests' Cookie header
	var workerHeaders []string
	if auth {
		// The provider plugins load in the background; /readyz says when.
		if err := waitReady(arborAddr, 3*time.Minute); err != nil {
			return fmt.Errorf("arbor never became ready (log: %s): %w", filepath.Join(cfg.logDir, "arbor.log"), err)
		}
		if arbor2 != nil {
			if err := waitReady(arbor2Addr, 3*time.Minute); err != nil {
				return fmt.Errorf("arbor replica 2 never became ready (log: %s): %w", filepath.Join(cfg.logDir, "arbor2.log"), err)
			}
		}
		value, err := signIn(publicURL)
		if err != nil {
			return fmt.Errorf("signing in through the fake GitHub (log: %s): %w", filepath.Join(cfg.logDir, "arbor.log"), err)
		}
		cookie = session.InsecureCookieName + "=" + value
		id, token, err := registerWorker(publicURL, cookie)
		if err != nil {
			return fmt.Errorf("registering a worker: %w", err)
		}
		workerHeaders = []string{client.HeaderWorkerID + ": " + id, client.HeaderWorkerToken + ": " + token}
		// One request each way: the cookie must make Arbor add the
		// identity, and no cookie must not.
		for _, tc := range []struct {
			cookie string
			want   int64
			addr   string
		}{{cookie, 1, arborAddr}, {"", 0, arborAddr}, {cookie, 1, arbor2Addr}} {
			if tc.addr == "" {
				continue // no replica 2
			}
			// Replica 2 knows the session only from the shared store.
			if err := identityCheck(upAddr, tc.addr, tc.cookie, tc.want); err != nil {
				return err
			}
		}
		if err := getOK(publicURL+workerPath, "", workerHeaders); err != nil {
			return fmt.Errorf("check of the worker's credentials: %w", err)
		}
	}

	if cfg.flood {
		return runFlood(cfg, arborAddr, cookie, arbor, arborCmd.Env)
	}
	if cfg.ab {
		return runAB(cfg, abSetup{start: start, afterStop: afterStop, up: up, bare: bare, a: arbor,
			upAddr: upAddr, bareAddr: bareAddr, aAddr: arborAddr, bAddr: abAddr,
			env: arborCmd.Env, cookieA: cookie, auth: auth, tck: tck})
	}
	// The Arbor with a route rule, its signed-in user and the checks that
	// the rule is in force (rule.go).
	var ruleArbor *child
	var ruleCookie string
	if ruleAddr != "" {
		dir, err := os.MkdirTemp("", "loadbench-rule-")
		if err != nil {
			return err
		}
		afterStop(func() { _ = os.RemoveAll(dir) })
		cmd := exec.Command("/bin/sh", "-c", "exec "+cfg.arborCmd)
		cmd.Env = append(slices.Clone(arborCmd.Env), ruleEnv(cfg, ruleAddr, dir)...)
		if ruleArbor, err = start("arbor-rule", cmd, ruleAddr); err != nil {
			return err
		}
		if ruleCookie, err = prepareRule(cfg, "http://"+ruleAddr, upAddr); err != nil {
			return fmt.Errorf("the Arbor with a route rule (log: %s): %w", filepath.Join(cfg.logDir, "arbor-rule.log"), err)
		}
	}

	type target struct {
		name    string
		addr    string
		path    string   // request path (default /)
		proxy   *child   // the process whose CPU is charged; the upstream itself for "upstream"
		headers []string // extra wrk -H headers
		// identity: whether every request must reach the upstream with the
		// user id header (arbor-auth) or none may (arbor-anon); -1: not checked.
		identity int
		// addr2 and proxy2, if set, are a second process measured at the
		// same time (replica 2): two wrk run at once, one at addr and one
		// at addr2, each with half the connections; the requests and
		// req/s are their sums and the CPU of both processes is charged.
		addr2  string
		proxy2 *child
	}
	targets := []target{
		{name: "upstream", addr: upAddr, proxy: up, identity: -1},
		{name: "bare", addr: bareAddr, proxy: bare, identity: -1},
		{name: "arbor-anon", addr: arborAddr, proxy: arbor, identity: 0},
	}
	if auth {
		targets = append(targets, target{name: "arbor-auth", addr: arborAddr, proxy: arbor,
			headers: []string{"Cookie: " + cookie}, identity: 1})
		targets = append(targets, target{name: "arbor-worker", addr: arborAddr, path: workerPath, proxy: arbor,
			headers: workerHeaders, identity: 1})
	}
	if ruleArbor != nil {
		targets = append(targets, target{name: "arbor-rule", addr: ruleAddr, proxy: ruleArbor,
			headers: []string{"Cookie: " + ruleCookie}, identity: 1})
	}
	if arbor2 != nil {
		targets = append(targets, target{name: "arbor-auth-1r", addr: arborAddr, proxy: arbor,
			headers: []string{"Cookie: " + cookie}, identity: 1})
		targets = append(targets, target{name: "arbor-auth-2r", addr: arborAddr, proxy: arbor,
			addr2: arbor2Addr, proxy2: arbor2, headers: []string{"Cookie: " + cookie}, identity: 1})
	}
	if cfg.only != "" {
		want := strings.Split(cfg.only, ",")
		kept := slices.DeleteFunc(slices.Clone(targets), func(t target) bool { return !slices.Contains(want, t.name) })
		if len(kept) != len(want) {
			var names []string
			for _, t := range targets {
				names = append(names, t.name)
			}
			return fmt.Errorf("-only %q: name targets of this run once each: %s", cfg.only, strings.Join(names, ", "))
		}
		targets = kept
	}
	// measure runs wrk for d at t (at both its processes if it has two).
	measure := func(t target, d time.Duration) (wrkResult, error) {
		if t.addr2 == "" {
			return runWrk(cfg, t.addr+t.path, d, t.headers)
		}
		c1, c2 := cfg, cfg
		c1.connections = cfg.connections / 2
		c2.connections = cfg.connections - c1.connections
		c1.threads, c2.threads = min(cfg.threads, c1.connections), min(cfg.threads, c2.connections)
		var (
			wg       sync.WaitGroup
			r1, r2   wrkResult
			err1, e2 error
		)
		wg.Go(func() { r1, err1 = runWrk(c1, t.addr+t.path, d, t.headers) })
		wg.Go(func() { r2, e2 = runWrk(c2, t.addr2+t.path, d, t.headers) })
		wg.Wait()
		if err := errors.Join(err1, e2); err != nil {
			return wrkResult{}, err
		}
		return wrkResult{
			requests:  r1.requests + r2.requests,
			seconds:   max(r1.seconds, r2.seconds),
			reqPerSec: r1.reqPerSec + r2.reqPerSec,
			errors:    r1.errors + r2.errors,
		}, nil
	}
	// proxyTicks is the CPU time of t's measured process(es).
	proxyTicks := func(t target) (int64, error) {
		n, err := cpuTicks(t.proxy.pid())
		if err != nil || t.proxy2 == nil {
			return n, err
		}
		n2, err := cpuTicks(t.proxy2.pid())
		return n + n2, err
	}

	fmt.Printf("loadbench: %d rounds × %d targets × %v, wrk -t%d -c%d, body %d B, CPU clock %d ticks/s, logs in %s\n",
		cfg.rounds, len(targets), cfg.duration, cfg.threads, cfg.connections, cfg.bodyBytes, tck, cfg.logDir)
	if auth {
		fmt.Printf("arbor-auth: signed in through the fake GitHub; token TTL %v, so the session check is in its steady state (token and session cached, no re-issue)\n", cfg.tokenTTL)
		fmt.Printf("arbor-worker: a worker registered through the API calls %s\n", workerPath)
	}
	if ruleArbor != nil {
		fmt.Println(ruleNote)
	}
	if etcdNote != "" {
		fmt.Println(etcdNote)
	}
	if arbor2 != nil {
		fmt.Printf("replicas: arbor-auth-1r: wrk -c%d with the cookie at replica 1 only; arbor-auth-2r: two wrk at once, -c%d at replica 1 and -c%d at replica 2 (same etcd, same public URL, one session); req/s summed, CPU/request of both replicas\n",
			cfg.connections, cfg.connections/2, cfg.connections-cfg.connections/2)
		fmt.Println(secretsNote)
	}
	for _, t := range targets {
		if _, err := measure(t, time.Second); err != nil {
			return fmt.Errorf("warm-up of %s: %w", t.name, err)
		}
	}

	type total struct {
		requests        int64
		seconds         float64
		cpuTicks        int64 // of the measured process(es)
		upstreamTicks   int64 // of the upstream, during this target's runs
		selfTicks       int64 // of loadbench itself, with -store etcd the embedded etcd
		errors          int64
		perRoundReqsSec []float64
	}
	totals := make(map[string]*total)
	figures := roundFigures{} // per round, for the verdicts' paired ratios
	var failures []string
	for r := 1; r <= cfg.rounds; r++ {
		for _, t := range roundOrder(targets, func(t target) string { return t.name }, r) {
			var idBefore int64
			if t.identity >= 0 {
				// Settled: requests the previous target's wrk left in
				// flight when it exited still reach the upstream for a
				// moment, and a worker's carry the user id header.
				if idBefore, err = settledUpstreamCount(upAddr); err != nil {
					return err
				}
			}
			before, err := proxyTicks(t)
			if err != nil {
				return err
			}
			upBefore, err := cpuTicks(up.pid())
			if err != nil {
				return err
			}
			selfBefore, err := cpuTicks(os.Getpid())
			if err != nil {
				return err
			}
			res, err := measure(t, cfg.duration)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r, t.name, err)
			}
			after, err := proxyTicks(t)
			if err != nil {
				return err
			}
			upAfter, err := cpuTicks(up.pid())
			if err != nil {
				return err
			}
			selfAfter, err := cpuTicks(os.Getpid())
			if err != nil {
				return err
			}
			if t.identity >= 0 {
				// The anonymous target's count is settled too, so that
				// its own in-flight tail is counted against it: one of
				// its last requests that reached the upstream with an
				// identity is not missed (and the next target's
				// idBefore, settled, never counts it).
				read := upstreamCount
				if t.identity == 0 {
					read = settledUpstreamCount
				}
				idAfter, err := read(upAddr)
				if err != nil {
					return err
				}
				if f := identityFailure(t.identity, idAfter-idBefore, res.requests); f != "" {
					failures = append(failures, fmt.Sprintf("round %d, %s: %s", r, t.name, f))
				}
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
			tt.selfTicks += selfAfter - selfBefore
			tt.errors += res.errors
			tt.perRoundReqsSec = append(tt.perRoundReqsSec, res.reqPerSec)
			if f := wrkFailure(res); f != "" {
				failures = append(failures, fmt.Sprintf("round %d, %s: %s", r, t.name, f))
			}
			cpu := ticksPer(after-before, res.requests, tck)
			figures.add(t.name, mThroughput, res.reqPerSec)
			figures.add(t.name, mCPU, cpu)
			fmt.Printf("round %d  %-10s %10.0f req/s  %8.1f µs CPU/req\n", r, t.name, res.reqPerSec, cpu)
		}
	}

	cpuPerReq := func(ticks, reqs int64) float64 { return float64(ticks) * 1e6 / float64(tck) / float64(max(reqs, 1)) }
	ratioLine := func(name, base string) (at float64, paired string, ofMedians float64) {
		var rs []string
		var ratios []float64
		for i, v := range totals[name].perRoundReqsSec {
			r := v / totals[base].perRoundReqsSec[i]
			ratios = append(ratios, r)
			rs = append(rs, fmt.Sprintf("%.2f", r))
		}
		return median(ratios), strings.Join(rs, " "), median(totals[name].perRoundReqsSec) / median(totals[base].perRoundReqsSec)
	}
	// ruleDetail prints the figures behind issue 19's verdict, also
	// after -only when both targets of the pair were measured.
	ruleDetail := func() {
		if totals["arbor-rule"] == nil || totals["arbor-auth"] == nil {
			return
		}
		_, paired, ofMedians := ratioLine("arbor-rule", "arbor-auth")
		cpu := func(name string) float64 { tt := totals[name]; return cpuPerReq(tt.cpuTicks, tt.requests) }
		fmt.Printf("route rule: arbor-rule / arbor-auth throughput, the rounds' ratios %s; ratio of medians %.2fx; CPU/request %.1f vs %.1f µs (%+.1f µs, %.2fx)\n",
			paired, ofMedians, cpu("arbor-rule"), cpu("arbor-auth"), cpu("arbor-rule")-cpu("arbor-auth"), cpu("arbor-rule")/cpu("arbor-auth"))
	}
	label := ""
	if cfg.store == "etcd" {
		label = "@etcd"
	}
	verdicts := func() error {
		return reportVerdicts(cfg, fmt.Sprintf("verdicts (medians of %d per-round paired ratios of req/s and of CPU µs/req; a report, not the run's exit status):", cfg.rounds),
			judge(plainSpecs, figures, label))
	}
	if cfg.only != "" {
		fmt.Println()
		ruleDetail()
		fmt.Println("-only: no summary; the rounds above are the figures")
		return errors.Join(verdicts(), checkRun(failures, cfg, up, bare, arbor, arbor2, ruleArbor))
	}
	rpsOf := func(name string) float64 { return median(totals[name].perRoundReqsSec) }
	cpuOf := func(name string) float64 { tt := totals[name]; return cpuPerReq(tt.cpuTicks, tt.requests) }
	baseRPS, baseCPU := rpsOf("bare"), cpuOf("bare")
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	etcdCol := func(string) string { return "" }
	if cfg.store == "etcd" {
		// The embedded etcd runs in loadbench's process, whose other work
		// during a run (waiting for wrk) is negligible.
		etcdCol = func(name string) string {
			if name == "" {
				return "etcd (loadbench) CPU µs/req\t"
			}
			tt := totals[name]
			return fmt.Sprintf("%.1f\t", cpuPerReq(tt.selfTicks, tt.requests))
		}
	}
	fmt.Fprintln(tw, "target\treq/s (median)\tCPU µs/req (measured process)\tupstream CPU µs/req\t"+etcdCol("")+"throughput vs bare\tCPU vs bare\trounds req/s\t")
	for _, t := range targets {
		tt := totals[t.name]
		rps, cpu := rpsOf(t.name), cpuOf(t.name)
		var rounds []string
		for _, v := range tt.perRoundReqsSec {
			rounds = append(rounds, strconv.FormatFloat(v, 'f', 0, 64))
		}
		thr, cr := "-", "-"
		if t.name != "upstream" {
			thr = fmt.Sprintf("%.2fx", rps/baseRPS)
			cr = fmt.Sprintf("%.2fx", cpu/baseCPU)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\t%s%s\t%s\t%s\t\n", t.name, rps, cpu,
			cpuPerReq(tt.upstreamTicks, tt.requests), etcdCol(t.name), thr, cr, strings.Join(rounds, " "))
	}
	_ = tw.Flush()
	// The figures behind the verdicts: every round's ratio, and the ratio
	// of the medians beside the median of the ratios that is judged (a
	// ratio pairs two runs of the same round, so a slow spell of the
	// machine that hits one round moves one ratio instead of one
	// target's median).
	fmt.Println()
	if totals["arbor-anon"] != nil {
		_, paired, ofMedians := ratioLine("arbor-anon", "bare")
		fmt.Printf("arbor-anon / bare throughput, the rounds' ratios %s; ratio of medians %.2fx; CPU/request (all rounds) %.2fx bare\n",
			paired, ofMedians, cpuOf("arbor-anon")/baseCPU)
	}
	if auth {
		for _, name := range []string{"arbor-auth", "arbor-worker"} {
			_, paired, ofMedians := ratioLine(name, "arbor-anon")
			fmt.Printf("%s / arbor-anon throughput, the rounds' ratios %s; ratio of medians %.2fx; CPU/request %.2fx arbor-anon (%+.1f µs)\n",
				name, paired, ofMedians, cpuOf(name)/cpuOf("arbor-anon"), cpuOf(name)-cpuOf("arbor-anon"))
		}
	}
	ruleDetail()
	fmt.Printf("ratios:  arbor-anon / upstream direct throughput %.2fx", rpsOf("arbor-anon")/rpsOf("upstream"))
	if auth {
		fmt.Printf(", arbor-auth / upstream direct %.2fx", rpsOf("arbor-auth")/rpsOf("upstream"))
	}
	fmt.Println()
	fmt.Println("(req/s: median of the rounds; CPU: all rounds' CPU time over all their requests; for the upstream row, the CPU column is the upstream's own)")
	if cfg.store == "etcd" && auth {
		fmt.Printf("store etcd: sessions and worker records are cached in Arbor, so arbor-auth and arbor-worker should be close to their bbolt figures (CPU/request arbor-worker %.1f µs, arbor-auth %.1f µs; etcd %.1f µs and %.1f µs)\n",
			cpuOf("arbor-worker"), cpuOf("arbor-auth"),
			cpuPerReq(totals["arbor-worker"].selfTicks, totals["arbor-worker"].requests),
			cpuPerReq(totals["arbor-auth"].selfTicks, totals["arbor-auth"].requests))
	}
	if arbor2 != nil {
		one, two := rpsOf("arbor-auth-1r"), rpsOf("arbor-auth-2r")
		fmt.Printf("\n2 replicas / 1 replica authenticated throughput: %.2fx (arbor-auth-2r %.0f req/s, arbor-auth-1r %.0f req/s)\n", two/one, two, one)
		fmt.Printf("  CPU per request: 1 replica %.1f µs (replica 1), 2 replicas %.1f µs (both replicas' CPU over both wrk's requests)\n",
			cpuOf("arbor-auth-1r"), cpuOf("arbor-auth-2r"))
		fmt.Printf("  On a machine with N cores this ratio is bounded by the cores, not by Arbor: here %d cores run both replicas, the wrk processes, the upstream and etcd,\n", runtime.NumCPU())
		fmt.Println("  so a second replica adds no CPU to spend. The ratio measures that replicas do not get in each other's way through the shared etcd")
		fmt.Println("  (about 1.0x or more: they do not; well below: they contend), not scale-out, which needs cores of its own per replica.")
		fmt.Println("  (arbor-auth-2r runs two wrk processes, one thread each, where arbor-auth-1r runs one.)")
	}
	return errors.Join(verdicts(), checkRun(failures, cfg, up, bare, arbor, arbor2, ruleArbor))
}

// checkRun adds a failure for every child that exited during the run and
// returns all failures as one error.
func checkRun(failures []string, cfg config, children ...*child) error {
	for _, c := range children {
		if c == nil {
			continue
		}
		if err := c.cmd.Process.Signal(syscall.Signal(0)); err != nil {
			failures = append(failures, fmt.Sprintf("%s exited during the run (log in %s)", c.name, cfg.logDir))
		}
	}
	if len(failures) > 0 {
		return errors.New("errors during the run:\n  " + strings.Join(failures, "\n  "))
	}
	return nil
}

// pairedOrder lays out the targets whose verdicts pair them, so that each
// pair runs back to back or with one target between:
//
//	arbor-worker, bare, arbor-anon, arbor-auth, arbor-rule
//
// arbor-anon is judged against bare, arbor-auth and arbor-worker against
// arbor-anon, arbor-rule against arbor-auth. Targets not named here keep
// their order after these (the replicas' pair, arbor-auth-1r and -2r, back
// to back).
var pairedOrder = []string{"arbor-worker", "bare", "arbor-anon", "arbor-auth", "arbor-rule"}

// roundOrder is the order of the targets (named by name) in round r, from
// 1. Targets before bare that are not Arbor's (upstream) run first. With
// bare and arbor-anon both measured, the rest runs in pairedOrder, forwards
// in odd rounds and backwards in even ones: every paired verdict then
// compares runs seconds apart (a ratio of runs four targets apart moves
// with the machine), and each target of a pair runs first as often as
// second, which cancels an advantage of either place. Otherwise (-only)
// the Arbor targets rotate one place a round, after the others.
func roundOrder[T any](ts []T, name func(T) string, r int) []T {
	idx := func(n string) int { return slices.IndexFunc(ts, func(t T) bool { return name(t) == n }) }
	first := slices.IndexFunc(ts, func(t T) bool { return strings.HasPrefix(name(t), "arbor") })
	if first < 0 {
		return slices.Clone(ts)
	}
	bare, anon := idx("bare"), idx("arbor-anon")
	if bare < 0 || anon < 0 || bare > first {
		return slices.Concat(ts[:first], rotate(ts[first:], r-1))
	}
	var head, seq []T
	for i, t := range ts[:first] {
		if i != bare {
			head = append(head, t)
		}
	}
	for _, n := range pairedOrder {
		if i := idx(n); i >= 0 {
			seq = append(seq, ts[i])
		}
	}
	for _, t := range ts[first:] {
		if !slices.Contains(pairedOrder, name(t)) {
			seq = append(seq, t)
		}
	}
	if r%2 == 0 {
		slices.Reverse(seq)
	}
	return slices.Concat(head, seq)
}

// median of a non-empty list.
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// startEtcd starts an embedded 1-member etcd on 127.0.0.1 in loadbench's
// process, with fsync on (bbolt fsyncs its commits; etcd without fsync
// would flatter the comparison), closed by the function given to onStop.
// It returns Arbor's environment for it and a line for the output.
//
// etcd logs (level error) to logDir/etcd.log, not to loadbench's stderr:
// its shutdown reports the closed listeners as errors.
func startEtcd(logDir string, onStop func(func())) (env []string, note string, err error) {
	logf, err := os.Create(filepath.Join(logDir, "etcd.log"))
	if err != nil {
		return nil, "", err
	}
	// etcd's logger writes to what os.Stderr is when the member starts.
	stderr := os.Stderr
	os.Stderr = logf
	c, err := etcdtest.New(etcdtest.Fsync())
	os.Stderr = stderr
	if err != nil {
		_ = logf.Close()
		return nil, "", fmt.Errorf("starting the embedded etcd (log: %s): %w", logf.Name(), err)
	}
	onStop(func() { c.Close(); _ = logf.Close() })
	eps := strings.Join(c.Endpoints(), ",")
	env = []string{"ARBOR_STORE_BACKEND=etcd", "ARBOR_STORE_ENDPOINTS=" + eps, "ARBOR_STORE_ROOT=/arbor/"}
	note = fmt.Sprintf("store: etcd, an embedded 1-member cluster in the loadbench process at %s with fsync ON (as bbolt fsyncs, so that the comparison with bbolt is fair); its CPU is the loadbench process's", eps)
	return env, note, nil
}

// sharedSecrets returns the environment that gives two replicas the same
// secrets: the session key, CLI secret and encryption keys from loadbench's
// environment (as `make loadbench-etcd` sets them) or, where neither the
// variable nor its _FILE form is set, generated here; and the identity
// assertion key file (ARBOR_SECRETS_ASSERTION_KEY_FILE, default one per
// data dir), in a directory removed by the function given to onStop unless
// the environment names one. Replica 1 creates the key file, replica 2
// reads it.
func sharedSecrets(onStop func(func())) (env []string, note string, err error) {
	var generated []string
	for _, s := range []struct {
		name string
		gen  func() (string, error)
	}{
		{arborconfig.EnvSessionKey, arborconfig.GenerateToken},
		{arborconfig.EnvCLIJWTSecret, arborconfig.GenerateToken},
		{arborconfig.EnvEncryptionKeys, func() (string, error) { return arborconfig.GenerateKeyringEntry(time.Now()) }},
	} {
		if os.Getenv(s.name) != "" || os.Getenv(s.name+"_FILE") != "" {
			continue
		}
		v, err := s.gen()
		if err != nil {
			return nil, "", fmt.Errorf("generating %s: %w", s.name, err)
		}
		env = append(env, s.name+"="+v)
		generated = append(generated, s.name)
	}
	keyVar := arborconfig.EnvName("secrets.assertion_key_file")
	keyFile := os.Getenv(keyVar)
	if keyFile == "" {
		dir, err := os.MkdirTemp("", "loadbench-secrets-")
		if err != nil {
			return nil, "", err
		}
		onStop(func() { _ = os.RemoveAll(dir) })
		keyFile = filepath.Join(dir, "assertion-key.pem")
		env = append(env, keyVar+"="+keyFile)
	}
	from := "from the environment"
	switch len(generated) {
	case 0:
	case 3:
		from = "generated by loadbench"
	default:
		from = "generated by loadbench: " + strings.Join(generated, ", ") + "; the others from the environment"
	}
	note = fmt.Sprintf("replicas: both share the session key, CLI secret and encryption keys (%s) and the assertion key %s; each has its own data dir", from, keyFile)
	return env, note, nil
}

// startFakes starts a fake provider for every built-in plugin (as `arbor
// dev` does) and returns the environment that points Arbor's provider
// configuration, client secrets included, at them. others are the
// addresses of further Arbors on plain http (the one with a route rule,
// -ab's B; "" for none) whose callbacks the fakes accept too.
func startFakes(publicURL string, others ...string) (*fakes.Set, []string, error) {
	var opts fakes.Options
	others = slices.DeleteFunc(slices.Clone(others), func(a string) bool { return a == "" })
	if len(others) > 0 {
		opts.Edit = func(name string, c *fakeprovider.Config) {
			for _, a := range others {
				c.RedirectURIs = append(c.RedirectURIs, "http://"+a+"/auth/callback/"+name)
			}
		}
	}
	set, err := fakes.Start(publicURL, opts)
	if err != nil {
		return nil, nil, err
	}
	return set, set.Environ(), nil
}

// waitReady polls addr's /readyz until it answers 200.
func waitReady(addr string, timeout time.Duration) error {
	return pollOK(&http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/readyz", timeout, 200*time.Millisecond)
}

// pollOK asks for url every interval until it answers 200 or timeout
// passes, and returns the last failure.
func pollOK(c *http.Client, url string, timeout, interval time.Duration) error {
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	last := errors.New("no answer")
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s: %s", url, resp.Status)
		} else {
			last = err
		}
		time.Sleep(interval)
	}
	return last
}

// signIn signs in at the Arbor at base through the fake GitHub, as a
// browser would but without following redirects, and returns the session
// cookie's value.
func signIn(base string) (string, error) { return signInAs(base, "") }

// signInAs is signIn as the fake GitHub's user login ("": its first,
// octocat).
func signInAs(base, login string) (string, error) {
	cookie, err := signInWith(nil, base, login)
	_, value, _ := strings.Cut(cookie, "=")
	return value, err
}

// signInWith is signInAs through the transport tr (nil: the default; the
// https benchmark's trusts its test CA) and returns the session cookie as
// a Cookie header's "name=value": arbor_session, or __Host-arbor_session
// when Arbor's public URL is https.
func signInWith(tr http.RoundTripper, base, login string) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	client := &http.Client{
		Transport:     tr,
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	step := func(what, u string) (*http.Response, error) {
		resp, err := client.Get(u)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			return nil, fmt.Errorf("%s: GET %s: %s, want 302 Found\n%s", what, u, resp.Status, body)
		}
		return resp, nil
	}
	resp, err := step("start", base+"/auth/start/github")
	if err != nil {
		return "", err
	}
	authURL := resp.Header.Get("Location")
	if u, err := url.Parse(authURL); err != nil || u.Hostname() != "127.0.0.1" || strings.HasPrefix(authURL, base) {
		return "", fmt.Errorf("start: the authorization URL %q is not a loopback fake", authURL)
	}
	approve := authURL + "&fake_auto=approve"
	if login != "" {
		approve += "&fake_user=" + url.QueryEscape(login)
	}
	resp, err = step("authorize", approve)
	if err != nil {
		return "", err
	}
	callback := resp.Header.Get("Location")
	if !strings.HasPrefix(callback, base+"/auth/callback/github?") {
		return "", fmt.Errorf("authorize: the fake sent the browser to %q, not to Arbor's callback", callback)
	}
	resp, err = step("callback", callback)
	if err != nil {
		return "", err
	}
	for _, ck := range resp.Cookies() {
		if (ck.Name == session.InsecureCookieName || ck.Name == session.SecureCookieName) && ck.Value != "" {
			return ck.Name + "=" + ck.Value, nil
		}
	}
	return "", fmt.Errorf("callback: no %s cookie set (Location %q)", session.InsecureCookieName, resp.Header.Get("Location"))
}

// workerPath is the worker route loadbench configures and calls.
const workerPath = "/api/tendril/jobs"

// registerWorker registers a worker through the workers API with the
// session cookie and returns its id and token.
func registerWorker(base, cookie string) (id, token string, err error) {
	return registerWorkerWith(nil, base, cookie)
}

// registerWorkerWith is registerWorker through the transport tr (nil: the
// default).
func registerWorkerWith(tr http.RoundTripper, base, cookie string) (id, token string, err error) {
	req, err := http.NewRequest(http.MethodPost, base+"/api/workers", strings.NewReader(`{"name":"loadbench"}`))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var out struct {
		Worker struct {
			ID string `json:"id"`
		} `json:"worker"`
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return "", "", fmt.Errorf("POST /api/workers: %s\n%s", resp.Status, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Worker.ID == "" || !client.ValidWorkerToken(out.Token) {
		return "", "", fmt.Errorf("POST /api/workers: an answer without a worker id and token (%v)", err)
	}
	return out.Worker.ID, out.Token, nil
}

// getOK requests u (with the Cookie header cookie, if not empty, and the
// "Name: value" headers) and wants a 2xx answer.
func getOK(u, cookie string, headers []string) error {
	return getOKWith(nil, u, cookie, headers)
}

// getOKWith is getOK through the transport tr (nil: the default).
func getOKWith(tr http.RoundTripper, u, cookie string, headers []string) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s (cookie %v): %s\n%s", u, cookie != "", resp.Status, body)
	}
	return nil
}

// identityCheck makes one request to the Arbor at addr with the Cookie
// header cookie ("" for none) and wants the upstream to count want
// requests with the user id header for it (1: the cookie's identity was
// added; 0: none was).
func identityCheck(upAddr, addr, cookie string, want int64) error {
	before, err := upstreamCount(upAddr)
	if err != nil {
		return err
	}
	if err := getOK("http://"+addr+"/", cookie, nil); err != nil {
		return err
	}
	after, err := upstreamCount(upAddr)
	if err != nil {
		return err
	}
	if after-before != want {
		return fmt.Errorf("check through arbor at %s (cookie %v): the upstream saw %d requests with %s, want %d", addr, cookie != "", after-before, userIDHeader, want)
	}
	return nil
}

// upstreamCount asks the upstream how many requests carried the user id
// header so far.
func upstreamCount(addr string) (int64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + countPath)
	if err != nil {
		return 0, fmt.Errorf("reading the upstream's counter: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("reading the upstream's counter: %w", err)
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// settledUpstreamCount reads the upstream's counter until two reads 100 ms
// apart agree (at most 2 s), so that the requests still in flight from the
// previous measurement are counted before the next one starts.
func settledUpstreamCount(addr string) (int64, error) {
	prev, err := upstreamCount(addr)
	if err != nil {
		return 0, err
	}
	for range 20 {
		time.Sleep(100 * time.Millisecond)
		n, err := upstreamCount(addr)
		if err != nil || n == prev {
			return n, err
		}
		prev = n
	}
	return prev, nil
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
	a, err := freeport.Addr()
	if err != nil {
		panic(err)
	}
	return a
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

// runWrk runs one bounded wrk measurement against addr (host:port, with a
// path or not), with the extra request headers ("Name: value"), and parses
// it.
func runWrk(cfg config, addr string, d time.Duration, headers []string) (wrkResult, error) {
	r, _, err := runWrkText(cfg, addr, d, headers)
	return r, err
}

// runWrkText is runWrk with extra wrk arguments (such as --latency) that
// also returns wrk's output.
func runWrkText(cfg config, addr string, d time.Duration, headers []string, extra ...string) (wrkResult, string, error) {
	secs := strconv.Itoa(int(d.Round(time.Second) / time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	args := []string{"-t" + strconv.Itoa(cfg.threads), "-c" + strconv.Itoa(cfg.connections),
		"-d" + secs + "s", "--timeout", "5s"}
	args = append(args, extra...)
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	// addr may be an https:// URL (-tls); wrk does not verify certificates.
	target := addr
	if !strings.HasPrefix(addr, "https://") {
		target = "http://" + addr
		if !strings.Contains(addr, "/") {
			target += "/"
		}
	}
	cmd := exec.CommandContext(ctx, cfg.wrk, append(args, target)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, string(out), fmt.Errorf("wrk failed: %w\n%s", err, out)
	}
	text := string(out)
	r, err := parseWrk(text)
	return r, text, err
}

// parseWrk reads wrk's summary: the requests and the time they took,
// req/s, and as errors the non-2xx answers and socket errors it reports.
func parseWrk(text string) (wrkResult, error) {
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

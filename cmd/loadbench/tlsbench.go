package main

// The https benchmark (-tls, make loadbench-tls): Arbor terminating TLS
// itself against a bare Fiber proxy behind the same TLS listener (issue
// 20), and against Caddy doing the same job (issue 18), all in front of
// the same upstream.
//
// loadbench makes a throw-away test CA and a certificate for 127.0.0.1
// (ECDSA P-256, crypto/x509) and starts:
//
//   - the upstream (loadbench's upstream mode, plain http), which counts
//     the requests that carry Arbor's user id header,
//   - bare-tls: loadbench's bare-proxy mode (Fiber, proxy.Forward) behind
//     gateway/edge/https's Terminator and Listener, the code `arbor
//     serve` terminates TLS with, with the same certificate; so that the
//     comparison with it is of the proxying only. (One difference: Arbor
//     shares its session ticket keys through its store, the bare proxy
//     has Go's own; neither the keep-alive runs nor the handshake loop
//     resume a session, so it does not show here.)
//   - arbor: `arbor serve` (-arbor-cmd) with tls.cert_file/key_file
//     (ARBOR_TLS_CERT_FILE, ARBOR_TLS_KEY_FILE), public_url https,
//     auth.default_route public, a worker route, and its provider plugins
//     pointed at fake providers; loadbench signs in over https through the
//     fake GitHub (the __Host-arbor_session cookie) and registers a worker,
//     as the plain benchmark does. Three targets: arbor-anon-tls (no
//     cookie), arbor-auth-tls (the cookie), arbor-worker-tls (the worker's
//     headers, on the worker route),
//   - caddy-tls: Caddy (-caddy) from a generated Caddyfile: admin off,
//     automatic https off, the same certificate, HTTP/1.1 only (protocols
//     h1, as fasthttp has no HTTP/2), no access log, reverse_proxy to the
//     upstream. A reference: issue 18's targets.
//
// Each round measures every target's keep-alive throughput (wrk https://,
// which does not verify the certificate, -connections connections) with
// the server's CPU per request from /proc/PID/stat, in an order that
// rotates between rounds; for arbor-anon-tls and caddy-tls also full
// handshakes per second, a loop of fresh TLS connections from loadbench
// (hsConns goroutines, no session cache, so no resumption; each
// connection completes the handshake and is closed) for -duration, with
// the server's CPU per handshake. A first round is a warm-up (TLS session
// caches, connection set-up, the first requests of each kind): run and
// printed like the others, and left out of every figure. The identity
// checks are the plain benchmark's: every arbor-auth-tls and
// arbor-worker-tls request reaches the upstream with the user id header,
// no arbor-anon-tls request does (counts read once settled).
//
// The verdicts (verdict.go) are medians of per-round paired ratios:
// arbor-anon-tls against bare-tls (throughput at least 0.9x, CPU per
// request at most 1.25x), arbor-auth-tls and arbor-worker-tls at least
// 0.9x arbor-anon-tls and 0.8x bare-tls; and arbor-anon-tls against
// caddy-tls (keep-alive req/s at least 1.2x, CPU per request at most
// 0.8x, handshakes/s at least 0.9x).

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vintner/arbor/sdk/client"
)

// hsConns is how many goroutines open fresh TLS connections at once in the
// handshake measurement.
const hsConns = 8

// hsMax bounds the handshakes of one measurement.
const hsMax = 1_000_000

func runTLSBench(cfg config) error {
	if _, err := os.Stat(cfg.caddy); err != nil {
		return fmt.Errorf("caddy not found at %s (install the Debian package caddy or pass -caddy): %w", cfg.caddy, err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding my own executable to re-run it: %w", err)
	}
	if cfg.logDir == "" {
		if cfg.logDir, err = os.MkdirTemp("", "loadbench-tls-"); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "loadbench-tls-files-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	certFile, keyFile, pool, err := writeTestCert(dir)
	if err != nil {
		return fmt.Errorf("making the test certificate: %w", err)
	}
	tck := clockTicks()
	// The client of sign-in, worker registration and the checks trusts
	// the test CA.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()

	var (
		mu       sync.Mutex
		children []*child
	)
	stopAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range children {
			stop(c)
		}
		children = nil
	}
	defer stopAll()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			stopAll()
			os.Exit(130)
		}
	}()
	start := func(name string, cmd *exec.Cmd, ready func() error) (*child, error) {
		logf, err := os.Create(filepath.Join(cfg.logDir, name+".log"))
		if err != nil {
			return nil, err
		}
		defer logf.Close()
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting %s: %w", name, err)
		}
		c := &child{name: name, cmd: cmd}
		mu.Lock()
		children = append(children, c)
		mu.Unlock()
		if err := ready(); err != nil {
			return nil, fmt.Errorf("%s did not come up (log: %s): %w", name, logf.Name(), err)
		}
		return c, nil
	}

	upAddr, bareAddr, arborAddr, caddyAddr := freePort(), freePort(), freePort(), freePort()
	up, err := start("upstream", exec.Command(self, "upstream", "-listen", upAddr,
		"-body-bytes", strconv.Itoa(cfg.bodyBytes), "-count-header", userIDHeader), func() error { return waitHTTP(upAddr, 15*time.Second) })
	if err != nil {
		return err
	}
	bare, err := start("bare-tls", exec.Command(self, "bare-proxy", "-listen", bareAddr, "-upstream", "http://"+upAddr,
		"-tls-cert", certFile, "-tls-key", keyFile), func() error { return waitHTTPS(bareAddr, pool, 15*time.Second) })
	if err != nil {
		return err
	}

	publicURL := "https://" + arborAddr
	set, fakeEnv, err := startFakes(publicURL)
	if err != nil {
		return err
	}
	defer set.Close()
	arborCmd := exec.Command("/bin/sh", "-c", "exec "+cfg.arborCmd)
	arborCmd.Env = append(os.Environ(), "ARBOR_LISTEN="+arborAddr, "ARBOR_UPSTREAM_URL=http://"+upAddr,
		"ARBOR_AUTH_DEFAULT_ROUTE=public",
		"ARBOR_WORKERS_PATHS="+workerPath,
		"ARBOR_SERVER_METRICS_LISTEN=127.0.0.1:0",
		"ARBOR_PUBLIC_URL="+publicURL,
		"ARBOR_SESSION_TOKEN_TTL="+cfg.tokenTTL.String(),
		"ARBOR_TLS_CERT_FILE="+certFile, "ARBOR_TLS_KEY_FILE="+keyFile)
	arborCmd.Env = append(arborCmd.Env, fakeEnv...)
	arbor, err := start("arbor", arborCmd, func() error {
		// The provider plugins load in the background; /readyz says when.
		return pollOK(&http.Client{Transport: tr, Timeout: 5 * time.Second}, publicURL+"/readyz", 3*time.Minute, 200*time.Millisecond)
	})
	if err != nil {
		return err
	}
	cookie, workerHeaders, err := prepareTLSIdentities(tr, publicURL, upAddr)
	if err != nil {
		return fmt.Errorf("arbor over https (log: %s): %w", filepath.Join(cfg.logDir, "arbor.log"), err)
	}

	caddyfile := filepath.Join(dir, "Caddyfile")
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	servers {
		protocols h1
	}
	log {
		level ERROR
	}
}

https://%s {
	tls %s %s
	reverse_proxy %s
}
`, caddyAddr, certFile, keyFile, upAddr)
	if err := os.WriteFile(caddyfile, []byte(conf), 0o600); err != nil {
		return err
	}
	caddyCmd := exec.Command(cfg.caddy, "run", "--config", caddyfile, "--adapter", "caddyfile")
	caddyCmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "HOME="+dir)
	caddy, err := start("caddy", caddyCmd, func() error { return waitHTTPS(caddyAddr, pool, 30*time.Second) })
	if err != nil {
		return err
	}

	targets := []tlsTarget{
		{name: "bare-tls", addr: bareAddr, proc: bare, identity: -1},
		{name: "arbor-anon-tls", addr: arborAddr, proc: arbor, identity: 0, handshakes: true},
		{name: "arbor-auth-tls", addr: arborAddr, proc: arbor, identity: 1, headers: []string{"Cookie: " + cookie}},
		{name: "arbor-worker-tls", addr: arborAddr, path: workerPath, proc: arbor, identity: 1, headers: workerHeaders},
		{name: "caddy-tls", addr: caddyAddr, proc: caddy, identity: -1, handshakes: true},
	}
	fmt.Printf("loadbench -tls: 1 warm-up round (run, printed and discarded: TLS session caches, connection set-up) + %d measured rounds × %d targets × keep-alive %v, + full handshakes %v for arbor-anon-tls and caddy-tls; wrk -t%d -c%d; handshakes from %d goroutines without session resumption; upstream body %d bytes\n",
		cfg.rounds, len(targets), cfg.duration, cfg.duration, cfg.threads, cfg.connections, hsConns, cfg.bodyBytes)
	fmt.Printf("certificate: ECDSA P-256 for 127.0.0.1 from a test CA; bare-tls: Fiber's proxy.Forward behind Arbor's own TLS listener (gateway/edge/https, same certificate); caddy: %s (reference); logs: %s\n", caddyVersion(cfg.caddy), cfg.logDir)
	fmt.Printf("arbor-auth-tls: signed in through the fake GitHub over https (%s cookie); arbor-worker-tls: a registered worker calls %s\n\n", cookieName(cookie), workerPath)

	// What each negotiates with the handshake loop's client, for the record.
	for _, t := range []tlsTarget{targets[0], targets[1], targets[4]} {
		c, err := tls.Dial("tcp", t.addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		st := c.ConnectionState()
		_ = c.Close()
		fmt.Printf("%s negotiates %s, %s, ALPN %q\n", t.name, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.NegotiatedProtocol)
	}
	fmt.Println()

	type totals struct {
		requests, reqTicks int64
		hs, hsTicks        int64
		rps, hps           []float64
	}
	tot := map[string]*totals{}
	for _, t := range targets {
		tot[t.name] = &totals{}
	}
	figures := roundFigures{}
	var failures []string
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\ttarget\treq/s\tCPU µs/req\thandshakes/s\tCPU µs/handshake\t")
	// Round 0 is the warm-up: measured like the others, printed, and
	// left out of every figure and ratio.
	for r := 0; r <= cfg.rounds; r++ {
		label := strconv.Itoa(r)
		if r == 0 {
			label = "warm-up"
		}
		type res struct {
			rps, cpu, hps, hcpu float64
		}
		got := map[string]res{}
		for _, t := range rotate(targets, r) {
			var idBefore int64
			if t.identity >= 0 {
				if idBefore, err = settledUpstreamCount(upAddr); err != nil {
					return err
				}
			}
			before, err := cpuTicks(t.proc.pid())
			if err != nil {
				return err
			}
			w, err := runWrk(cfg, "https://"+t.addr+t.urlPath(), cfg.duration, t.headers)
			if err != nil {
				return fmt.Errorf("round %s, %s: %w", label, t.name, err)
			}
			mid, err := cpuTicks(t.proc.pid())
			if err != nil {
				return err
			}
			if f := wrkFailure(w); f != "" {
				failures = append(failures, fmt.Sprintf("round %s, %s: %s", label, t.name, f))
			}
			if t.identity >= 0 {
				read := upstreamCount
				if t.identity == 0 {
					read = settledUpstreamCount
				}
				idAfter, err := read(upAddr)
				if err != nil {
					return err
				}
				if f := identityFailure(t.identity, idAfter-idBefore, w.requests); f != "" {
					failures = append(failures, fmt.Sprintf("round %s, %s: %s", label, t.name, f))
				}
			}
			g := res{rps: w.reqPerSec, cpu: ticksPer(mid-before, w.requests, tck), hps: math.NaN(), hcpu: math.NaN()}
			var n int64
			after := mid
			if t.handshakes {
				if n, err = handshakes(t.addr, pool, cfg.duration); err != nil {
					return fmt.Errorf("round %s, %s handshakes: %w", label, t.name, err)
				}
				if after, err = cpuTicks(t.proc.pid()); err != nil {
					return err
				}
				g.hps, g.hcpu = float64(n)/cfg.duration.Seconds(), ticksPer(after-mid, n, tck)
			}
			got[t.name] = g
			if r == 0 {
				continue
			}
			tt := tot[t.name]
			tt.requests += w.requests
			tt.reqTicks += mid - before
			tt.rps = append(tt.rps, w.reqPerSec)
			figures.add(t.name, mThroughput, g.rps)
			figures.add(t.name, mCPU, g.cpu)
			if t.handshakes {
				tt.hs += n
				tt.hsTicks += after - mid
				tt.hps = append(tt.hps, g.hps)
				figures.add(t.name, mHandshakes, g.hps)
			}
		}
		for _, t := range targets {
			g := got[t.name]
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%s\t%s\t\n", label, t.name, g.rps, g.cpu, orDash(g.hps, "%.0f"), orDash(g.hcpu, "%.0f"))
		}
	}
	_ = tw.Flush()

	fmt.Println()
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tmedian req/s\tCPU µs/req (all rounds)\tmedian handshakes/s\tCPU µs/handshake (all rounds)\t")
	for _, t := range targets {
		tt := tot[t.name]
		hps, hcpu := math.NaN(), math.NaN()
		if t.handshakes {
			hps, hcpu = median(tt.hps), ticksPer(tt.hsTicks, tt.hs, tck)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%s\t%s\t\n", t.name, median(tt.rps), ticksPer(tt.reqTicks, tt.requests, tck),
			orDash(hps, "%.0f"), orDash(hcpu, "%.0f"))
	}
	_ = tw.Flush()
	verr := reportVerdicts(cfg, fmt.Sprintf("verdicts (medians of %d per-round paired ratios, the warm-up round left out; caddy-tls is a reference, issue 18's targets; a report, not the run's exit status):", cfg.rounds),
		judge(tlsSpecs, figures, ""))
	return errors.Join(verr, checkRun(failures, cfg, up, bare, arbor, caddy))
}

// tlsTarget is one target of the https benchmark.
type tlsTarget struct {
	name    string
	addr    string
	path    string // request path; "" for /
	proc    *child // the process whose CPU is charged
	headers []string
	// identity: every request must reach the upstream with the user id
	// header (1), none may (0), not checked (-1).
	identity int
	// handshakes: also measure full handshakes per second after the
	// keep-alive run.
	handshakes bool
}

func (t tlsTarget) urlPath() string {
	if t.path == "" {
		return "/"
	}
	return t.path
}

// tlsSpecs are issue 20's targets over TLS, against the bare Fiber proxy
// behind the same TLS listener, and issue 18's against Caddy.
var tlsSpecs = append(proxySpecs("-tls"),
	verdictSpec{"arbor-anon-tls", []checkSpec{
		{mThroughput, "caddy-tls", ">=", 1.2},
		{mCPU, "caddy-tls", "<=", 0.8},
		{mHandshakes, "caddy-tls", ">=", 0.9},
	}},
)

// rotate returns ts rotated left by r places, so that each round starts
// with another target and none always runs first or after the same one.
func rotate[T any](ts []T, r int) []T {
	if len(ts) == 0 {
		return nil
	}
	k := r % len(ts)
	return append(slices.Clone(ts[k:]), ts[:k]...)
}

// orDash formats v, or "-" when it is NaN (not measured).
func orDash(v float64, format string) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// cookieName is the name in a Cookie header's "name=value".
func cookieName(cookie string) string {
	name, _, _ := strings.Cut(cookie, "=")
	return name
}

// prepareTLSIdentities signs in at the https Arbor at base through the
// fake GitHub and registers a worker, and checks, as the plain benchmark
// does, that the session cookie makes Arbor add the identity, that no
// cookie does not, and that the worker's headers are accepted. It returns
// the Cookie header's value and the worker's headers.
func prepareTLSIdentities(tr http.RoundTripper, base, upAddr string) (cookie string, workerHeaders []string, err error) {
	if cookie, err = signInWith(tr, base, ""); err != nil {
		return "", nil, fmt.Errorf("signing in through the fake GitHub: %w", err)
	}
	id, token, err := registerWorkerWith(tr, base, cookie)
	if err != nil {
		return "", nil, fmt.Errorf("registering a worker: %w", err)
	}
	workerHeaders = []string{client.HeaderWorkerID + ": " + id, client.HeaderWorkerToken + ": " + token}
	for _, tc := range []struct {
		cookie  string
		path    string
		headers []string
		want    int64
	}{{cookie, "/", nil, 1}, {"", "/", nil, 0}, {"", workerPath, workerHeaders, 1}} {
		before, err := upstreamCount(upAddr)
		if err != nil {
			return "", nil, err
		}
		if err := getOKWith(tr, base+tc.path, tc.cookie, tc.headers); err != nil {
			return "", nil, err
		}
		after, err := upstreamCount(upAddr)
		if err != nil {
			return "", nil, err
		}
		if after-before != tc.want {
			return "", nil, fmt.Errorf("check of GET %s (cookie %v, worker headers %v): the upstream saw %d requests with %s, want %d",
				tc.path, tc.cookie != "", tc.headers != nil, after-before, userIDHeader, tc.want)
		}
	}
	return cookie, workerHeaders, nil
}

// ticksPer is CPU ticks per event in microseconds.
func ticksPer(ticks, n, tck int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(ticks) * 1e6 / float64(tck) / float64(n)
}

// handshakes opens fresh TLS connections to addr from hsConns goroutines
// for d (at most hsMax in all), each without a session cache, so that every
// one is a full handshake; it returns how many completed. Any failure ends
// the measurement with an error.
func handshakes(addr string, pool *x509.CertPool, d time.Duration) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var n atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for i := 0; i < hsConns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && n.Load() < hsMax {
				dl := &net.Dialer{Timeout: 5 * time.Second}
				// A new Config each time: no ClientSessionCache, no tickets kept.
				c, err := tls.DialWithDialer(dl, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
				if err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = err })
						cancel()
					}
					return
				}
				if c.ConnectionState().DidResume {
					errOnce.Do(func() { firstErr = errors.New("a handshake resumed a session") })
					cancel()
				}
				_ = c.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return n.Load(), firstErr
}

// waitHTTPS polls until addr answers an https request (any status), with
// the test CA trusted.
func waitHTTPS(addr string, pool *x509.CertPool, timeout time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return pollOK(c, "https://"+addr+"/", timeout, 100*time.Millisecond)
}

// writeTestCert writes a test CA's leaf certificate for 127.0.0.1 (with the
// CA after it, as a chain) and its key into dir, and returns their paths
// and a pool with the CA.
func writeTestCert(dir string) (certFile, keyFile string, pool *x509.CertPool, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "loadbench test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	certPEM := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", nil, err
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return certFile, keyFile, pool, nil
}

// caddyVersion is `caddy version`'s first word, or "unknown".
func caddyVersion(path string) string {
	out, err := exec.Command(path, "version").Output()
	if err != nil || len(out) == 0 {
		return "unknown"
	}
	f := string(out)
	for i, ch := range f {
		if ch == ' ' || ch == '\n' {
			return f[:i]
		}
	}
	return f
}

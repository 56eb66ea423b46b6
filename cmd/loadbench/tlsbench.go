package main

// The https benchmark (-tls, make loadbench-tls): Arbor terminating TLS
// itself against Caddy doing the same job, in front of the same upstream
// (issue 18).
//
// loadbench makes a throw-away test CA and a certificate for 127.0.0.1
// (ECDSA P-256, crypto/x509) and starts:
//
//   - the upstream (loadbench's upstream mode, plain http),
//   - arbor-tls: `arbor serve` (-arbor-cmd) with tls.cert_file/key_file
//     (ARBOR_TLS_CERT_FILE, ARBOR_TLS_KEY_FILE), public_url https and
//     auth.default_route public, so that anonymous requests are proxied,
//   - caddy-tls: Caddy (-caddy) from a generated Caddyfile: admin off,
//     automatic https off, the same certificate, HTTP/1.1 only (protocols
//     h1, as fasthttp has no HTTP/2), no access log, reverse_proxy to the
//     upstream.
//
// Each round measures, for both, in an order that alternates between
// rounds: keep-alive throughput (wrk https://, which does not verify the
// certificate, -connections connections) with the server's CPU per request
// from /proc/PID/stat; then full handshakes per second, a loop of fresh
// TLS connections from loadbench (hsConns goroutines, no session cache, so
// no resumption; each connection completes the handshake and is closed)
// for -duration, with the server's CPU per handshake. The ratios
// Arbor/Caddy are medians of per-round pairs and are judged against the
// issue's targets: keep-alive req/s at least 1.2x Caddy's, CPU per request
// at most 0.8x, handshakes/s at least 0.9x.

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
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
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

	upAddr, arborAddr, caddyAddr := freePort(), freePort(), freePort()
	up, err := start("upstream", exec.Command(self, "upstream", "-listen", upAddr,
		"-body-bytes", strconv.Itoa(cfg.bodyBytes)), func() error { return waitHTTP(upAddr, 15*time.Second) })
	if err != nil {
		return err
	}
	_ = up

	arborCmd := exec.Command("/bin/sh", "-c", "exec "+cfg.arborCmd)
	arborCmd.Env = append(os.Environ(), "ARBOR_LISTEN="+arborAddr, "ARBOR_UPSTREAM_URL=http://"+upAddr,
		"ARBOR_AUTH_DEFAULT_ROUTE=public",
		"ARBOR_SERVER_METRICS_LISTEN=127.0.0.1:0",
		"ARBOR_PUBLIC_URL=https://"+arborAddr,
		"ARBOR_TLS_CERT_FILE="+certFile, "ARBOR_TLS_KEY_FILE="+keyFile)
	arbor, err := start("arbor", arborCmd, func() error { return waitHTTPS(arborAddr, pool, 60*time.Second) })
	if err != nil {
		return err
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

	type target struct {
		name string
		addr string
		proc *child
	}
	targets := []target{{"arbor-tls", arborAddr, arbor}, {"caddy-tls", caddyAddr, caddy}}
	fmt.Printf("loadbench -tls: %d rounds × %d targets × (keep-alive %v + handshakes %v); wrk -t%d -c%d; handshakes from %d goroutines without session resumption; upstream body %d bytes\n",
		cfg.rounds, len(targets), cfg.duration, cfg.duration, cfg.threads, cfg.connections, hsConns, cfg.bodyBytes)
	fmt.Printf("certificate: ECDSA P-256 for 127.0.0.1 from a test CA; caddy: %s; logs: %s\n\n", caddyVersion(cfg.caddy), cfg.logDir)

	// What each negotiates with the handshake loop's client, for the record.
	for _, t := range targets {
		c, err := tls.Dial("tcp", t.addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		st := c.ConnectionState()
		_ = c.Close()
		fmt.Printf("%s negotiates %s, %s, ALPN %q\n", t.name, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.NegotiatedProtocol)
	}
	fmt.Println()
	// Warm-up: a second of each, not counted.
	for _, t := range targets {
		if _, err := runWrk(cfg, "https://"+t.addr+"/", time.Second, nil); err != nil {
			return fmt.Errorf("%s warm-up: %w", t.name, err)
		}
	}

	type totals struct {
		requests, reqTicks int64
		hs, hsTicks        int64
		rps, hps           []float64
	}
	tot := map[string]*totals{}
	for _, t := range targets {
		tot[t.name] = &totals{}
	}
	var rpsRatio, cpuRatio, hsRatio []float64
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\ttarget\treq/s\tCPU µs/req\thandshakes/s\tCPU µs/handshake\t")
	for r := 0; r < cfg.rounds; r++ {
		order := []target{targets[0], targets[1]}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		type res struct{ rps, cpu, hps, hcpu float64 }
		got := map[string]res{}
		for _, t := range order {
			before, err := cpuTicks(t.proc.pid())
			if err != nil {
				return err
			}
			w, err := runWrk(cfg, "https://"+t.addr+"/", cfg.duration, nil)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if w.errors > 0 {
				return fmt.Errorf("%s: wrk saw %d errors (non-2xx answers or socket errors); logs: %s", t.name, w.errors, cfg.logDir)
			}
			mid, err := cpuTicks(t.proc.pid())
			if err != nil {
				return err
			}
			n, err := handshakes(t.addr, pool, cfg.duration)
			if err != nil {
				return fmt.Errorf("%s handshakes: %w", t.name, err)
			}
			after, err := cpuTicks(t.proc.pid())
			if err != nil {
				return err
			}
			tt := tot[t.name]
			tt.requests += w.requests
			tt.reqTicks += mid - before
			tt.hs += n
			tt.hsTicks += after - mid
			hps := float64(n) / cfg.duration.Seconds()
			tt.rps = append(tt.rps, w.reqPerSec)
			tt.hps = append(tt.hps, hps)
			got[t.name] = res{w.reqPerSec, ticksPer(mid-before, w.requests, tck), hps, ticksPer(after-mid, n, tck)}
		}
		for _, t := range targets {
			g := got[t.name]
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.1f\t%.0f\t%.0f\t\n", r+1, t.name, g.rps, g.cpu, g.hps, g.hcpu)
		}
		a, c := got["arbor-tls"], got["caddy-tls"]
		rpsRatio = append(rpsRatio, a.rps/c.rps)
		if c.cpu > 0 {
			cpuRatio = append(cpuRatio, a.cpu/c.cpu)
		}
		hsRatio = append(hsRatio, a.hps/c.hps)
	}
	_ = tw.Flush()

	fmt.Println()
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tmedian req/s\tCPU µs/req (all rounds)\tmedian handshakes/s\tCPU µs/handshake (all rounds)\t")
	for _, t := range targets {
		tt := tot[t.name]
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.0f\t%.0f\t\n", t.name, median(tt.rps), ticksPer(tt.reqTicks, tt.requests, tck),
			median(tt.hps), ticksPer(tt.hsTicks, tt.hs, tck))
	}
	_ = tw.Flush()
	fmt.Println()
	if len(cpuRatio) == 0 {
		return errors.New("caddy's CPU time did not move in any round: cannot compare CPU per request")
	}
	mr, mc, mh := median(rpsRatio), median(cpuRatio), median(hsRatio)
	fmt.Printf("arbor-tls / caddy-tls, medians of %d per-round pairs (issue 18 targets):\n", cfg.rounds)
	fmt.Printf("  keep-alive req/s     %.2fx  (target ≥ 1.2x)  %s\n", mr, verdict(mr >= 1.2))
	fmt.Printf("  CPU per request      %.2fx  (target ≤ 0.8x)  %s\n", mc, verdict(mc <= 0.8))
	fmt.Printf("  full handshakes/s    %.2fx  (target ≥ 0.9x)  %s\n", mh, verdict(mh >= 0.9))
	return nil
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

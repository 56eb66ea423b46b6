package main

// The flood benchmark (-flood): does a signed-in user still get through
// while an anonymous client floods Arbor's sign-in and device endpoints as
// fast as it can?
//
// It runs paired rounds of the arbor-auth target: "quiet", wrk alone with
// the session cookie, and "flood", the same wrk while a flooder floods GET
// /auth/start/github and POST /oauth/device/code (as a registered device
// client, so that its requests go as far as an attacker's can). The flooder is
// loadbench itself, from the source address 127.0.0.2 (still loopback), so
// that Arbor sees it as another client than wrk (127.0.0.1): per-address
// limits apply to the flooder, not to the signed-in user, as they would on
// the internet. Each round's ratio pairs two runs seconds apart; the
// verdicts are on the medians of those ratios: throughput under flood at
// least 0.5x quiet, p99 latency under 3x quiet (issue 15). The store's
// file (bbolt) is measured before and after all flood rounds: its growth is
// what the flood cost on disk.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// floodSource is the flooder's source address: another loopback address, so
// that Arbor tells it apart from wrk's 127.0.0.1.
const floodSource = "127.0.0.2"

// floodClientID is the RFC 8628 client the flooder names, registered in
// Arbor's cli.device_clients for the run.
const floodClientID = "loadbench-flood"

// floodConns is how many connections the flooder keeps busy.
const floodConns = 16

// flooder sends anonymous sign-in starts and device-code requests until
// stopped and counts the answers by status.
type flooder struct {
	base   string
	client *http.Client

	mu     sync.Mutex
	status map[int]int64
	errs   int64
}

func newFlooder(base string) *flooder {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(floodSource)}, Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: floodConns,
		MaxConnsPerHost:     floodConns,
		DisableCompression:  true,
	}
	return &flooder{
		base: base,
		client: &http.Client{
			Transport:     tr,
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		status: make(map[int]int64),
	}
}

// run floods until ctx ends, from floodConns goroutines.
func (f *flooder) run(ctx context.Context) {
	var wg sync.WaitGroup
	var n atomic.Int64
	form := url.Values{"client_id": {floodClientID}}.Encode()
	for range floodConns {
		wg.Go(func() {
			for ctx.Err() == nil {
				var req *http.Request
				if n.Add(1)%2 == 0 {
					req, _ = http.NewRequestWithContext(ctx, http.MethodGet, f.base+"/auth/start/github", nil)
				} else {
					req, _ = http.NewRequestWithContext(ctx, http.MethodPost, f.base+"/oauth/device/code", strings.NewReader(form))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				resp, err := f.client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						f.mu.Lock()
						f.errs++
						f.mu.Unlock()
						time.Sleep(10 * time.Millisecond) // a refused connection must not spin
					}
					continue
				}
				_, _ = resp.Body.Read(make([]byte, 512))
				resp.Body.Close()
				f.mu.Lock()
				f.status[resp.StatusCode]++
				f.mu.Unlock()
			}
		})
	}
	wg.Wait()
	f.client.CloseIdleConnections()
}

// summary is "N requests: 302 ×a, 429 ×b, …" for the answers so far.
func (f *flooder) summary() (int64, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	codes := make([]int, 0, len(f.status))
	var total int64
	for c, k := range f.status {
		codes = append(codes, c)
		total += k
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d ×%d", c, f.status[c]))
	}
	if f.errs > 0 {
		parts = append(parts, fmt.Sprintf("connection errors ×%d", f.errs))
	}
	return total, strings.Join(parts, ", ")
}

var reP99 = regexp.MustCompile(`(?m)^\s+99%\s+([\d.]+)(us|ms|s)\s*$`)

// wrkP99 reads the 99th percentile latency from wrk --latency output.
func wrkP99(text string) (time.Duration, error) {
	m := reP99.FindStringSubmatch(text)
	if m == nil {
		return 0, fmt.Errorf("no 99%% latency line in wrk output:\n%s", text)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[2]]
	return time.Duration(v * float64(unit)), nil
}

// storeSize is the size of Arbor's bbolt file, or -1 when there is none to
// measure (etcd, or no data dir in the environment).
func storeSize(env []string) int64 {
	var dir, path string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "ARBOR_DATA_DIR="); ok {
			dir = v
		}
		if v, ok := strings.CutPrefix(kv, "ARBOR_STORE_PATH="); ok {
			path = v
		}
		if v, ok := strings.CutPrefix(kv, "ARBOR_STORE_BACKEND="); ok && v == "etcd" {
			return -1
		}
	}
	if path == "" && dir != "" {
		path = filepath.Join(dir, "arbor.db")
	}
	if path == "" {
		return -1
	}
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// runFlood measures arbor-auth quiet and under flood in cfg.rounds paired
// rounds and prints every round, the medians of the ratios and the
// verdicts. It fails only when something breaks (a wrk error, a non-2xx
// answer to the signed-in client, Arbor exiting), never on a missed target.
func runFlood(cfg config, arborAddr, cookie string, arbor *child, env []string) error {
	base := "http://" + arborAddr
	// One probe: the flooder's source address must work here.
	probe := newFlooder(base)
	if resp, err := probe.client.Get(base + "/healthz"); err != nil {
		return fmt.Errorf("the flooder cannot connect from %s: %w", floodSource, err)
	} else {
		resp.Body.Close()
	}
	headers := []string{"Cookie: " + cookie}
	run := func(flood bool) (wrkResult, time.Duration, *flooder, error) {
		var f *flooder
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		if flood {
			f = newFlooder(base)
			wg.Go(func() { f.run(ctx) })
			time.Sleep(200 * time.Millisecond) // let the flood build up
		}
		res, out, err := runWrkText(cfg, arborAddr, cfg.duration, headers, "--latency")
		cancel()
		wg.Wait()
		if err != nil {
			return res, 0, f, err
		}
		p99, err := wrkP99(out)
		return res, p99, f, err
	}

	fmt.Printf("loadbench -flood: %d paired rounds × %v of arbor-auth (wrk -t%d -c%d with the session cookie from 127.0.0.1), quiet and while %d connections from %s flood GET /auth/start/github and POST /oauth/device/code; logs in %s\n",
		cfg.rounds, cfg.duration, cfg.threads, cfg.connections, floodConns, floodSource, cfg.logDir)
	if _, _, _, err := run(false); err != nil { // warm-up
		return fmt.Errorf("warm-up: %w", err)
	}
	sizeBefore := storeSize(env)
	var (
		thrRatios, p99Ratios []float64
		failures             []string
		floodTotal           int64
		figures              = roundFigures{}
	)
	for r := 1; r <= cfg.rounds; r++ {
		order := []bool{false, true}
		if r%2 == 0 {
			order = []bool{true, false}
		}
		var quiet, loud wrkResult
		var quietP99, loudP99 time.Duration
		for _, flood := range order {
			res, p99, f, err := run(flood)
			if err != nil {
				return fmt.Errorf("round %d (flood %v): %w", r, flood, err)
			}
			if f := wrkFailure(res); f != "" {
				failures = append(failures, fmt.Sprintf("round %d (flood %v): the signed-in client: %s", r, flood, f))
			}
			if flood {
				loud, loudP99 = res, p99
				n, s := f.summary()
				floodTotal += n
				fmt.Printf("round %2d  flood  %8.0f req/s  p99 %8v   flooder: %d requests (%.0f/s): %s\n", r, res.reqPerSec, p99, n, float64(n)/res.seconds, s)
			} else {
				quiet, quietP99 = res, p99
				fmt.Printf("round %2d  quiet  %8.0f req/s  p99 %8v\n", r, res.reqPerSec, p99)
			}
		}
		thrRatios = append(thrRatios, loud.reqPerSec/quiet.reqPerSec)
		p99Ratios = append(p99Ratios, float64(loudP99)/float64(max(quietP99, time.Microsecond)))
		figures.add("quiet", mThroughput, quiet.reqPerSec)
		figures.add("quiet", mP99, float64(max(quietP99, time.Microsecond)))
		figures.add("arbor-auth-flood", mThroughput, loud.reqPerSec)
		figures.add("arbor-auth-flood", mP99, float64(loudP99))
	}
	sizeAfter := storeSize(env)
	fmtRatios := func(v []float64) string {
		var s []string
		for _, x := range v {
			s = append(s, fmt.Sprintf("%.2f", x))
		}
		return strings.Join(s, " ")
	}
	thr, p99 := median(thrRatios), median(p99Ratios)
	fmt.Printf("\nsigned-in throughput under flood / quiet: median %.2fx (rounds: %s); target >= 0.50x\n", thr, fmtRatios(thrRatios))
	fmt.Printf("signed-in p99 latency under flood / quiet: median %.2fx (rounds: %s); target < 3x\n", p99, fmtRatios(p99Ratios))
	fmt.Printf("flood requests answered: %d in all\n", floodTotal)
	if sizeBefore >= 0 && sizeAfter >= 0 {
		fmt.Printf("store file: %d bytes before the flood rounds, %d after (%+d bytes)\n", sizeBefore, sizeAfter, sizeAfter-sizeBefore)
	} else {
		fmt.Println("store file: not measured (no bbolt file in ARBOR_DATA_DIR / ARBOR_STORE_PATH)")
	}
	verr := reportVerdicts(cfg, fmt.Sprintf("verdicts (medians of %d per-round paired ratios, flood / quiet; a report, not the run's exit status):", cfg.rounds),
		judge(floodSpecs, figures, ""))
	return errors.Join(verr, checkRun(failures, cfg, arbor))
}

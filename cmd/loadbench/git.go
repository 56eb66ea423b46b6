package main

// The Git clone benchmark (-git, issue 22): is cloning a repository of
// about 50 MiB through Arbor's Git proxy as fast as cloning it straight
// from the Git host, and what does it cost Arbor in memory?
//
// loadbench starts the fake providers and, in its own process, a fake
// GitHub Git host (package internal/fakegit: the real `git http-backend`
// behind HTTP Basic with a live token of the fake GitHub) holding
// octocat/big: -git-mib MiB of random bytes (incompressible, so the pack
// is as large as the content) in four files, committed with the real git
// and repacked, as a provider's repositories are. It starts `arbor serve`
// (-arbor-cmd) with the fake GitHub's git_url pointing at that host, signs
// in through the fake GitHub, connects GitHub on the Integrations page and
// registers a repository credential (POST /api/workers with scopes
// git:read).
//
// Then, after one discarded warm-up clone each, it runs paired rounds: in
// each, `git clone` straight from the host (with the fake GitHub's live
// token) and `git clone` through Arbor (with the credential), in an order
// that alternates between rounds, each into a fresh directory removed
// afterwards. Secrets reach git through its environment and a credential
// helper, never its arguments. Throughput is the pack's size over the
// clone's wall time (index-pack and checkout included, on both sides).
// During every clone through Arbor, Arbor's resident set (VmRSS in
// /proc/PID/status) is sampled every 5 ms; the growth reported is the peak
// sample over the value read just before the clone.
//
// The verdict is the median of the per-round ratios, Arbor over direct,
// against issue 22's 0.9x; the RSS growth is printed beside it against
// the 16 MiB. Both are reports: the run fails only when something
// breaks (a clone, sign-in, a process).

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
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
	"time"

	"github.com/vintner/arbor/internal/fakegit"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

// gitRepo is the benchmark's repository on the fake Git host.
const gitRepo = "octocat/big"

// gitSample is how often Arbor's VmRSS is read during a clone.
const gitSample = 5 * time.Millisecond

// gitClone is one measured clone.
type gitClone struct {
	d       time.Duration
	mibps   float64
	rssFrom int64 // bytes; through Arbor only
	rssPeak int64
	samples int // VmRSS readings during the clone
}

func (c gitClone) growth() int64 { return c.rssPeak - c.rssFrom }

func runGitBench(cfg config) error {
	if cfg.arborCmd == "" {
		return errors.New("-git needs -arbor-cmd: it clones through a real `arbor serve` to measure its memory")
	}
	if cfg.gitMiB < 1 || cfg.gitMiB > 512 {
		return fmt.Errorf("-git-mib %d: use 1 to 512", cfg.gitMiB)
	}
	if _, err := exec.LookPath("git"); err != nil {
		return fmt.Errorf("git not found (install the Debian package git): %w", err)
	}
	var err error
	if cfg.logDir == "" {
		if cfg.logDir, err = os.MkdirTemp("", "loadbench-git-"); err != nil {
			return err
		}
	}
	work, err := os.MkdirTemp("", "loadbench-git-work-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	arborAddr := freePort()
	publicURL := "http://" + arborAddr
	set, fakeEnv, err := startFakes(publicURL)
	if err != nil {
		return err
	}
	defer set.Close()
	github := set.Fakes["github"]
	files := map[string]string{"README.md": "# Big\n"}
	per := cfg.gitMiB << 20 / 4
	for i := range 4 {
		b := make([]byte, per)
		_, _ = rand.Read(b)
		files[fmt.Sprintf("data/blob-%d.bin", i)] = string(b)
	}
	made := time.Now()
	host, err := fakegit.Start(fakegit.Options{User: "x-access-token", ValidToken: github.ValidAccessToken,
		Repos: map[string]map[string]string{gitRepo: files}, Dir: filepath.Join(work, "host")})
	files = nil
	if err != nil {
		return err
	}
	defer host.Close()
	bare := filepath.Join(host.Dir(), gitRepo+".git")
	// A provider's repositories are packed; a fresh clone's loose objects
	// would make every upload-pack deflate them again.
	if out, err := exec.Command("git", "-C", bare, "repack", "-a", "-d", "-q").CombinedOutput(); err != nil {
		return fmt.Errorf("git repack in %s: %w\n%s", bare, err, out)
	}
	packBytes, err := packSize(bare)
	if err != nil {
		return err
	}
	fmt.Printf("loadbench -git: %s, %.1f MiB of random bytes in 4 files, pack %.1f MiB (made in %v)\n",
		gitRepo, float64(cfg.gitMiB), float64(packBytes)/(1<<20), time.Since(made).Round(100*time.Millisecond))

	arborCmd := exec.Command("/bin/sh", "-c", "exec "+cfg.arborCmd)
	arborCmd.Env = append(os.Environ(), "ARBOR_LISTEN="+arborAddr, "ARBOR_UPSTREAM_URL="+host.URL(),
		"ARBOR_SERVER_METRICS_LISTEN=127.0.0.1:0",
		"ARBOR_PUBLIC_URL="+publicURL,
		"ARBOR_SESSION_TOKEN_TTL="+cfg.tokenTTL.String(),
		"ARBOR_PROVIDERS_GITHUB_GIT_URL="+host.URL())
	arborCmd.Env = append(arborCmd.Env, fakeEnv...)
	logf, err := os.Create(filepath.Join(cfg.logDir, "arbor.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	arborCmd.Stdout, arborCmd.Stderr = logf, logf
	if err := arborCmd.Start(); err != nil {
		return fmt.Errorf("starting arbor: %w", err)
	}
	arbor := &child{name: "arbor", cmd: arborCmd, addr: arborAddr}
	var stopOnce sync.Once
	stopArbor := func() { stopOnce.Do(func() { stop(arbor) }) }
	defer stopArbor()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			stopArbor()
			_ = os.RemoveAll(work)
			os.Exit(130)
		}
	}()
	if err := waitReady(arborAddr, 3*time.Minute); err != nil {
		return fmt.Errorf("arbor did not get ready (log: %s): %w", logf.Name(), err)
	}
	id, token, err := gitCredential(publicURL)
	if err != nil {
		return fmt.Errorf("arbor (log: %s): %w", logf.Name(), err)
	}

	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	n := 0
	clone := func(through bool) (gitClone, error) {
		n++
		dst := filepath.Join(work, "clone-"+strconv.Itoa(n))
		defer os.RemoveAll(dst)
		user, pass, src := id, token, publicURL+"/git/github/"+gitRepo+".git"
		if !through {
			user, src = "x-access-token", host.URL()+"/"+gitRepo+".git"
			if pass = liveToken(github); pass == "" {
				return gitClone{}, errors.New("the fake GitHub has no live access token for the direct clone")
			}
		}
		cmd := exec.Command("git", "-c", "credential.helper=",
			"-c", `credential.helper=!f() { test "$1" = get && echo "username=$LOADBENCH_GIT_USER" && echo "password=$LOADBENCH_GIT_PASS"; }; f`,
			"clone", "-q", src, dst)
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
			"LOADBENCH_GIT_USER=" + user, "LOADBENCH_GIT_PASS=" + pass}
		var c gitClone
		var stopSampling func() (int64, int)
		if through {
			if c.rssFrom, err = vmRSS(arbor.pid()); err != nil {
				return c, err
			}
			stopSampling = sampleRSS(arbor.pid(), c.rssFrom)
		}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		c.d = time.Since(start)
		if stopSampling != nil {
			c.rssPeak, c.samples = stopSampling()
		}
		if err != nil {
			return c, fmt.Errorf("git clone %s: %w\n%s", src, err, out)
		}
		if _, err := os.Stat(filepath.Join(dst, "data", "blob-3.bin")); err != nil {
			return c, fmt.Errorf("git clone %s: the clone lacks its files: %w", src, err)
		}
		c.mibps = float64(packBytes) / (1 << 20) / c.d.Seconds()
		return c, nil
	}

	wd, err := clone(false)
	if err != nil {
		return err
	}
	wa, err := clone(true)
	if err != nil {
		return fmt.Errorf("%w (arbor log: %s)", err, logf.Name())
	}
	fmt.Printf("warm-up (not counted): direct %.1f MiB/s, arbor %.1f MiB/s, arbor RSS %.2f → peak %.2f MiB (+%.2f MiB, %d samples)\n",
		wd.mibps, wa.mibps, mib(wa.rssFrom), mib(wa.rssPeak), mib(wa.growth()), wa.samples)
	fmt.Printf("\n%-5s  %-10s  %-12s  %-12s  %-6s  %s\n", "round", "order", "direct MiB/s", "arbor MiB/s", "ratio", "arbor RSS before → peak (growth, samples)")
	figures := roundFigures{}
	var ratios []float64
	var maxGrowth int64
	for r := range cfg.rounds {
		var d, a gitClone
		order := "direct 1st"
		if r%2 == 1 {
			order = "arbor 1st"
			if a, err = clone(true); err == nil {
				d, err = clone(false)
			}
		} else if d, err = clone(false); err == nil {
			a, err = clone(true)
		}
		if err != nil {
			return fmt.Errorf("round %d: %w (arbor log: %s)", r+1, err, logf.Name())
		}
		figures.add("git-clone-direct", mThroughput, d.mibps)
		figures.add("git-clone-arbor", mThroughput, a.mibps)
		ratios = append(ratios, a.mibps/d.mibps)
		maxGrowth = max(maxGrowth, a.growth())
		fmt.Printf("%-5d  %-10s  %-12.1f  %-12.1f  %-6.3f  %.2f → %.2f MiB (+%.2f MiB, %d)\n", r+1, order, d.mibps, a.mibps,
			a.mibps/d.mibps, mib(a.rssFrom), mib(a.rssPeak), mib(a.growth()), a.samples)
	}
	if arbor.cmd.ProcessState != nil {
		return fmt.Errorf("arbor exited during the run (log: %s)", logf.Name())
	}
	sorted := slices.Clone(ratios)
	slices.Sort(sorted)
	fmt.Printf("\nmedian direct %.1f MiB/s, arbor %.1f MiB/s; per-round ratios %s, median %.3f\n",
		median(figures["git-clone-direct"][mThroughput]), median(figures["git-clone-arbor"][mThroughput]),
		fmtRatios(ratios), median(ratios))
	word := "MET"
	if maxGrowth >= 16<<20 {
		word = "MISSED"
	}
	fmt.Printf("arbor RSS growth during a clone: at most %.2f MiB over %d rounds (< 16 MiB) %s\n", mib(maxGrowth), cfg.rounds, word)
	return reportVerdicts(cfg, fmt.Sprintf("verdict (median of %d per-round ratios, arbor over direct, %.0f MiB pack):", cfg.rounds, mib(packBytes)),
		judge(gitSpecs, figures, ""))
}

// gitSpecs is issue 22's throughput target: cloning through Arbor at
// least 0.9x as fast as straight from the Git host.
var gitSpecs = []verdictSpec{
	{"git-clone-arbor", []checkSpec{{mThroughput, "git-clone-direct", ">=", 0.90}}},
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func fmtRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.FormatFloat(r, 'f', 3, 64)
	}
	return strings.Join(parts, " ")
}

// packSize is the size of a bare repository's packs.
func packSize(bare string) (int64, error) {
	packs, err := filepath.Glob(filepath.Join(bare, "objects", "pack", "*.pack"))
	if err != nil || len(packs) == 0 {
		return 0, fmt.Errorf("no pack in %s after git repack (%v)", bare, err)
	}
	var n int64
	for _, p := range packs {
		st, err := os.Stat(p)
		if err != nil {
			return 0, err
		}
		n += st.Size()
	}
	return n, nil
}

// liveToken is the last access token the fake issued that is still valid.
func liveToken(p *fakeprovider.Provider) string {
	var live string
	for _, it := range p.IssuedTokens() {
		if it.AccessValid {
			live = it.AccessToken
		}
	}
	return live
}

// vmRSS reads a process's resident set size in bytes.
func vmRSS(pid int) (int64, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading Arbor's memory (Linux /proc): %w", err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS line %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// sampleRSS reads pid's VmRSS every gitSample until the returned function
// is called, which returns the peak (at least from) and how many readings
// it took.
func sampleRSS(pid int, from int64) func() (int64, int) {
	var peak atomic.Int64
	var n atomic.Int64
	peak.Store(from)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(gitSample)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if v, err := vmRSS(pid); err == nil {
					n.Add(1)
					if v > peak.Load() {
						peak.Store(v)
					}
				}
			}
		}
	}()
	return func() (int64, int) {
		close(done)
		<-stopped
		if v, err := vmRSS(pid); err == nil && v > peak.Load() {
			peak.Store(v)
		}
		return peak.Load(), int(n.Load())
	}
}

// gitCredential signs in at base through the fake GitHub, connects GitHub
// on the Integrations page (so that Arbor holds a provider token for the
// Git proxy), and registers a repository credential with git:read.
func gitCredential(base string) (id, token string, err error) {
	cookie, err := signInWith(nil, base, "")
	if err != nil {
		return "", "", fmt.Errorf("sign-in: %w", err)
	}
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(base)
	name, value, _ := strings.Cut(cookie, "=")
	jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(what, u string) (string, error) {
		resp, err := c.Get(u)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			return "", fmt.Errorf("%s: GET %s: %s, want 302 Found\n%s", what, u, resp.Status, body)
		}
		return resp.Header.Get("Location"), nil
	}
	authURL, err := get("connect GitHub", base+"/integrations/github/connect")
	if err != nil {
		return "", "", err
	}
	callback, err := get("connect GitHub: approve", authURL+"&fake_auto=approve")
	if err != nil {
		return "", "", err
	}
	done, err := get("connect GitHub: callback", callback)
	if err != nil {
		return "", "", err
	}
	if !strings.HasSuffix(done, "/integrations?notice=connected") {
		return "", "", fmt.Errorf("connect GitHub: the callback sent the browser to %q, not to the connected notice", done)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/workers",
		strings.NewReader(`{"name":"loadbench-git","scopes":["git:read"],"repos":["`+gitRepo+`"]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("POST /api/workers: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	var out struct {
		Worker struct {
			ID string `json:"id"`
		} `json:"worker"`
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &out) != nil || out.Worker.ID == "" || out.Token == "" {
		return "", "", fmt.Errorf("POST /api/workers (a repository credential): %s\n%s", resp.Status, body)
	}
	return out.Worker.ID, out.Token, nil
}

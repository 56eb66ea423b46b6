package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/sys/unix"
)

// TestBrowserGrapeLogin is CLI login end to end (docs/cli-login.md): the
// real grape binary on a pseudo-terminal (so its masked Bubble Tea prompt
// reads the code), Arbor's approval page in Chromium, through the same
// `arbor dev` and browser as the other browser tests (see useBrowserEnv).
//
//  1. The tab signs in with the fake GitHub (octocat).
//  2. `grape login --no-browser` prints the login URL on its terminal.
//  3. The tab opens it: the approval page names Grape and this machine;
//     Approve shows the verification code (cli-approve.png, cli-code.png).
//  4. The code, typed into the terminal, logs grape in; the terminal never
//     shows it.
//  5. `grape token` prints an access token (auth.json is 0600) that Arbor's
//     API accepts as a bearer (/api/auth/me is octocat, /api/providers 200);
//     the account page lists the login (cli-account.png).
//  6. `grape logout` deletes auth.json, and the old token gets 401.
func TestBrowserGrapeLogin(t *testing.T) {
	findChromium(t) // skip (or fail on CI) before starting a build
	grape := startGrapeBuild(t)
	env := useBrowserEnv(t)
	artifacts := artifactDir(t)
	bin := grape.wait(t)
	start := time.Now()
	browserGrapeFlow(t, env.browserCtx, env.dev, artifacts, bin)
	t.Logf("whole flow took %v", time.Since(start).Round(time.Millisecond))
}

const grapeStepLimit = 30 * time.Second // each step of the grape flow

var (
	grapeLoginURLRE = regexp.MustCompile(`http://127\.0\.0\.1:\d+/cli/login\?device_code=[A-Za-z0-9-]+`)
	grapeCodeRE     = regexp.MustCompile(`^[` + "ABCDEFGHJKLMNPQRSTUVWXYZ23456789" + `]{6}$`)
	ansiRE          = regexp.MustCompile(`\x1b(\[[0-9;?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])`)
)

// grapeBuild is `go build ./cmd/grape`, run while arbor dev starts.
type grapeBuild struct {
	bin  string
	done chan struct{}
	err  error
	took time.Duration
}

// startGrapeBuild builds grape (plain, not -race) from the module root in
// the background; a cleanup stops and awaits it.
func startGrapeBuild(t *testing.T) *grapeBuild {
	t.Helper()
	dir := t.TempDir()
	g := &grapeBuild{bin: filepath.Join(dir, "grape"), done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	go func() {
		defer close(g.done)
		start := time.Now()
		root, err := moduleRoot(ctx)
		if err != nil {
			g.err = err
			return
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-o", g.bin, "./cmd/grape")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			g.err = fmt.Errorf("go build -o %s ./cmd/grape (in %s): %v\n%s", g.bin, root, err, out)
		}
		g.took = time.Since(start)
	}()
	t.Cleanup(func() { cancel(); <-g.done }) // before t.TempDir's removal
	return g
}

func (g *grapeBuild) wait(t *testing.T) string {
	t.Helper()
	select {
	case <-g.done:
	case <-time.After(5 * time.Minute):
		t.Fatal("building grape took more than 5 minutes")
	}
	if g.err != nil {
		t.Fatal(g.err)
	}
	t.Logf("built grape in %v", g.took.Round(time.Millisecond))
	return g.bin
}

// moduleRoot is the directory of go.mod: `go env GOMOD`, or else two
// levels above this file.
func moduleRoot(ctx context.Context) (string, error) {
	if out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output(); err == nil {
		if mod := strings.TrimSpace(string(out)); mod != "" && mod != os.DevNull {
			return filepath.Dir(mod), nil
		}
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot find the module root: no `go env GOMOD` and no runtime.Caller")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("cannot find the module root: %v", err)
	}
	return root, nil
}

// grapeHome makes a fresh HOME for grape runs: it returns their
// environment and the auth file for --config-file.
func grapeHome(t *testing.T) (env []string, authFile string) {
	t.Helper()
	home := t.TempDir()
	env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"TERM=xterm",
	}
	return env, filepath.Join(home, "auth.json")
}

// newGrapeTab opens a tab (see newBrowserTab) for a grape flow, in which
// every step gets grapeStepLimit: step logs the step's name and gives b.ctx
// a new limit, for the tab's commands and waits and the waits on grape.
// closeTab ends the last step and closes the tab.
func newGrapeTab(t *testing.T, browserCtx context.Context, dev *devServer) (b *browserTab, step func(name string), closeTab func()) {
	t.Helper()
	b, cancelTab := newBrowserTab(t, browserCtx, dev, 0)
	tabCtx := b.ctx
	cancelStep := func() {}
	step = func(name string) {
		t.Helper()
		cancelStep()
		b.ctx, cancelStep = context.WithTimeout(tabCtx, grapeStepLimit)
		t.Logf("step: %s", name)
	}
	return b, step, func() { cancelStep(); cancelTab() }
}

// grapeLoginViaBrowser logs grape in to dev as octocat, steps 1–4 of
// TestBrowserGrapeLogin, each checked in detail, in the tab b of
// newGrapeTab: the tab signs in with the fake GitHub, `grape login` runs
// on a pseudo-terminal, the tab approves its URL (screenshots
// cli-approve.png and cli-code.png in artifacts, unless that is ""), and
// the code goes into the masked prompt. It returns this machine's
// hostname, which the approval page names.
func grapeLoginViaBrowser(t *testing.T, b *browserTab, step func(name string), grape string, grapeEnv []string, authFile, artifacts string) (hostname string) {
	t.Helper()
	dev := b.dev
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}

	// 1. Sign the tab in with GitHub, so that the approval page opens
	// without a detour.
	step("sign in with github")
	account := dev.base + "/auth/account"
	b.do("open "+account, chromedp.Navigate(account))
	b.waitPage("the sign-in page", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/auth/sign-in"
	})
	// The account page's return_to is dropped (signin's returnPath keeps
	// no /auth/ path), so this lands on the after-sign-in page, "/".
	st := b.signInWith("github", integrationsLogin, "Arbor after sign-in", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && (u.Path == "/auth/account" || st.SignedIn == "Signed in.")
	})
	b.wantHop("GET", dev.base+"/auth/callback/github", 302, "")
	if st.url(t).Path != "/auth/account" {
		t.Logf("signed in: landed on %s, not on the account page", st.Href)
		b.do("open the account page", chromedp.Navigate(account))
		b.waitPage("the account page", func(st pageState, u *url.URL) bool {
			return u.Host == dev.host && u.Path == "/auth/account"
		})
	}
	if rows := b.cliLoginRows(); len(rows) != 0 {
		t.Errorf("before grape login the account page lists CLI logins: %+v", rows)
	}

	// 2. grape login on a terminal prints the URL.
	step("grape login prints the login URL")
	g := startGrapeOnPTY(t, grape, grapeEnv, "login", "--server", dev.base, "--no-browser", "--config-file", authFile)
	loginURL := g.waitFor(t, b.ctx, "the login URL", grapeLoginURLRE)[0]
	if u, err := url.Parse(loginURL); err != nil || u.Host != dev.host {
		t.Fatalf("grape printed login URL %q: want it on %s (%v)", loginURL, dev.host, err)
	}
	t.Logf("grape printed %s", loginURL)

	// 3. The approval page names the client and the machine; Approve shows
	// the code.
	step("approve in the browser")
	b.do("open the login URL", chromedp.Navigate(loginURL))
	st = b.waitPage("the approval page", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/cli/login"
	})
	ap := b.cliPage()
	if !ap.Approval || !ap.ApproveButton {
		t.Fatalf("approval page: no main#cli-login with button#approve: %+v\n%s", ap, snippet(st.HTML))
	}
	// The fixed name of the built-in client, never what the CLI sent; what
	// the CLI says of its machine is labelled as such.
	if ap.Info["Client"] != "Grape" || !strings.Contains(ap.Heading, "Grape") {
		t.Errorf("approval page: client %q, heading %q; want Grape", ap.Info["Client"], ap.Heading)
	}
	if got := ap.Info["hostname (reported by the device)"]; got != hostname {
		t.Errorf("approval page: hostname %q, want %q (all: %v)", got, hostname, ap.Info)
	}
	if st.Scripts != 0 {
		t.Errorf("approval page has %d <script> elements", st.Scripts)
	}
	t.Logf("approval page: %q, %v", ap.Heading, ap.Info)
	if artifacts != "" {
		b.screenshot(filepath.Join(artifacts, "cli-approve.png"))
	}
	b.do("click Approve", chromedp.Click(chromedp.CSS(`#cli-login button#approve`)))
	st = b.waitPage("the code page", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/cli/login/approve" && strings.Contains(st.HTML, `id="verification-code"`)
	})
	b.wantHop("POST", dev.base+"/cli/login/approve", 200, "")
	code := strings.TrimSpace(b.cliPage().Code)
	if !grapeCodeRE.MatchString(code) {
		t.Fatalf("code page shows %q: want 6 symbols of the code alphabet\n%s", code, snippet(st.HTML))
	}
	if artifacts != "" {
		b.screenshot(filepath.Join(artifacts, "cli-code.png"))
	}

	// 4. Type the code into the masked prompt: grape logs in.
	step("type the code into grape")
	g.waitFor(t, b.ctx, "the code prompt", regexp.MustCompile(`Code: `))
	for _, r := range code {
		if _, err := g.master.Write([]byte(string(r))); err != nil {
			t.Fatalf("typing into the terminal: %v", err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	g.waitFor(t, b.ctx, "six bullets", regexp.MustCompile(strings.Repeat("•", len(code))))
	if _, err := g.master.Write([]byte("\r")); err != nil {
		t.Fatalf("pressing Enter: %v", err)
	}
	step("grape login exits 0")
	if err := g.wait(b.ctx); err != nil {
		t.Fatalf("grape login: %v\n%s", err, plainTerminal(g.transcript(b.ctx)))
	}
	transcript := g.transcript(b.ctx) // all of it: the terminal is closed
	if !strings.Contains(transcript, "Logged in to "+dev.base) || !strings.Contains(transcript, integrationsLogin) {
		t.Errorf("grape login's terminal does not say %q … %s", "Logged in to "+dev.base, integrationsLogin)
	}
	if strings.Contains(transcript, code) {
		t.Errorf("the code %s appeared on the terminal", code)
	}
	t.Logf("grape login's terminal (escape sequences left out):\n%s", plainTerminal(transcript))
	return hostname
}

func browserGrapeFlow(t *testing.T, browserCtx context.Context, dev *devServer, artifacts, grape string) {
	b, step, closeTab := newGrapeTab(t, browserCtx, dev)
	defer closeTab()
	grapeEnv, authFile := grapeHome(t)

	// 1.–4. Sign the tab in, approve grape login in it and type the code.
	hostname := grapeLoginViaBrowser(t, b, step, grape, grapeEnv, authFile, artifacts)
	account := dev.base + "/auth/account"

	// 5. grape token, and the token on Arbor's API.
	step("grape token")
	stdout, stderr, err := runGrape(b.ctx, grape, grapeEnv, "token", "--config-file", authFile)
	if err != nil {
		t.Fatalf("grape token: %v\nstdout: %q\nstderr: %q", err, stdout, stderr)
	}
	token := strings.TrimSpace(stdout)
	if token == "" || strings.ContainsAny(token, " \n") || strings.Count(token, ".") != 2 {
		t.Fatalf("grape token printed %q (stderr %q): want one JWT", stdout, stderr)
	}
	if fi, err := os.Stat(authFile); err != nil {
		t.Errorf("after login: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", authFile, fi.Mode().Perm())
	}
	status, body := bearerGet(t, b.ctx, dev.base+"/api/auth/me", token)
	var me struct {
		UserID string `json:"user_id"`
		Email  string `json:"email"`
		Login  string `json:"login"`
	}
	if err := json.Unmarshal([]byte(body), &me); status != 200 || err != nil || me.Login != integrationsLogin || me.UserID == "" {
		t.Errorf("GET /api/auth/me with the bearer: %d %s (%v); want 200 with login %q", status, snippet(body), err, integrationsLogin)
	} else {
		t.Logf("/api/auth/me: %s", strings.TrimSpace(body))
	}
	if status, body := bearerGet(t, b.ctx, dev.base+"/api/providers", token); status != 200 {
		t.Errorf("GET /api/providers with the bearer: %d %s; want 200", status, snippet(body))
	} else {
		t.Logf("/api/providers: %s", snippet(strings.TrimSpace(body)))
	}

	// The account page lists the login.
	step("the account page lists the CLI login")
	b.do("open the account page", chromedp.Navigate(account))
	b.waitPage("the account page", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/auth/account"
	})
	rows := b.cliLoginRows()
	if len(rows) != 1 || rows[0].Client != "grape" || !strings.Contains(rows[0].Machine, hostname) {
		t.Errorf("account page CLI logins %+v; want one tr.cli-login for grape on %s", rows, hostname)
	}
	b.screenshot(filepath.Join(artifacts, "cli-account.png"))

	// 6. grape logout: the file goes, and so does the token's access.
	step("grape logout")
	stdout, stderr, err = runGrape(b.ctx, grape, grapeEnv, "logout", "--config-file", authFile)
	if err != nil {
		t.Fatalf("grape logout: %v\nstdout: %q\nstderr: %q", err, stdout, stderr)
	}
	t.Logf("grape logout: stdout %q, stderr %q", stdout, stderr)
	if _, err := os.Stat(authFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after logout %s: %v; want it deleted", authFile, err)
	}
	if status, body := bearerGet(t, b.ctx, dev.base+"/api/auth/me", token); status != 401 {
		t.Errorf("GET /api/auth/me with the logged-out token: %d %s; want 401", status, snippet(body))
	}
	b.do("reload the account page", chromedp.Navigate(account))
	b.waitPage("the account page after logout", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/auth/account"
	})
	if rows := b.cliLoginRows(); len(rows) != 0 {
		t.Errorf("after grape logout the account page still lists %+v", rows)
	}
}

// cliPage is what the test reads from the approval and code pages.
type cliPage struct {
	Approval      bool              `json:"approval"` // main#cli-login
	ApproveButton bool              `json:"approveButton"`
	Heading       string            `json:"heading"`
	Info          map[string]string `json:"info"` // the dt/dd pairs
	Code          string            `json:"code"` // p#verification-code
}

func (b *browserTab) cliPage() cliPage {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[cliPage](`(() => {
		const main = document.querySelector('main#cli-login');
		const h1 = document.querySelector('main h1');
		const code = document.querySelector('p#verification-code');
		const info = {};
		if (main) for (const dt of main.querySelectorAll('dl dt')) {
			const dd = dt.nextElementSibling;
			info[dt.textContent.trim()] = dd ? dd.textContent.trim() : '';
		}
		return {
			approval: !!main,
			approveButton: !!(main && main.querySelector('button#approve')),
			heading: h1 ? h1.textContent.trim() : '',
			info: info,
			code: code ? code.textContent : '',
		};
	})()`))
	if err != nil {
		b.t.Fatalf("reading the CLI login page: %v", err)
	}
	return v
}

type cliLoginRow struct {
	Client  string `json:"client"`
	Machine string `json:"machine"`
}

func (b *browserTab) cliLoginRows() []cliLoginRow {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]cliLoginRow](`Array.from(document.querySelectorAll('tr.cli-login'), (tr) => ({
		client: tr.cells[0] ? tr.cells[0].textContent.trim() : '',
		machine: tr.cells[1] ? tr.cells[1].textContent.trim() : '' }))`))
	if err != nil {
		b.t.Fatalf("reading the CLI logins on the account page: %v", err)
	}
	return v
}

// grapeOnPTY is a grape process whose stdin, stdout and stderr are the
// slave side of a pseudo-terminal.
type grapeOnPTY struct {
	cmd    *exec.Cmd
	master *os.File
	exited chan struct{} // closed when Wait returned
	err    error         // Wait's
	read   chan struct{} // closed when the master side reads EOF/EIO
	mu     sync.Mutex
	out    bytes.Buffer
}

func (g *grapeOnPTY) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.out.String()
}

// startGrapeOnPTY starts grape on a new pty, as the session leader with the
// pty as its controlling terminal. A cleanup kills it if it still runs and,
// when the test failed, logs what it wrote.
func startGrapeOnPTY(t *testing.T, bin string, env []string, args ...string) *grapeOnPTY {
	t.Helper()
	master, slave := openGrapePTY(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		master.Close()
		slave.Close()
		t.Fatalf("starting %s: %v", bin, err)
	}
	// Only grape holds the slave now: the master reads EIO once it exits.
	slave.Close()
	g := &grapeOnPTY{cmd: cmd, master: master, exited: make(chan struct{}), read: make(chan struct{})}
	go func() {
		g.err = cmd.Wait()
		close(g.exited)
	}()
	go func() {
		defer close(g.read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			g.mu.Lock()
			g.out.Write(buf[:n])
			g.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-g.exited:
		default:
			t.Logf("killing grape (pid %d), still running", cmd.Process.Pid)
			cmd.Process.Kill()
			<-g.exited
		}
		master.Close()
		<-g.read
		if t.Failed() {
			s := g.String()
			t.Logf("grape %s: terminal transcript (%d bytes):\n%q\nwithout escape sequences:\n%s",
				strings.Join(args, " "), len(s), tail(s, 8000), tail(plainTerminal(s), 4000))
		}
	})
	return g
}

// waitFor waits until the terminal output matches re.
func (g *grapeOnPTY) waitFor(t *testing.T, ctx context.Context, what string, re *regexp.Regexp) []string {
	t.Helper()
	for {
		if m := re.FindStringSubmatch(g.String()); m != nil {
			return m
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s (%v) on grape's terminal: %v", what, re, ctx.Err())
		case <-g.exited:
			// It may have written the match just before exiting.
			select {
			case <-g.read:
			case <-time.After(2 * time.Second):
			}
			if m := re.FindStringSubmatch(g.String()); m != nil {
				return m
			}
			t.Fatalf("waiting for %s (%v): grape exited: %v", what, re, g.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// wait waits for grape to exit and returns its error (nil for status 0).
func (g *grapeOnPTY) wait(ctx context.Context) error {
	select {
	case <-g.exited:
		return g.err
	case <-ctx.Done():
		return fmt.Errorf("still running: %w", ctx.Err())
	}
}

// transcript is everything grape wrote, once the terminal is drained.
func (g *grapeOnPTY) transcript(ctx context.Context) string {
	select {
	case <-g.read:
	case <-ctx.Done():
	}
	return g.String()
}

// openGrapePTY returns the two ends of a new pseudo-terminal (100x24); a
// cleanup closes them.
func openGrapePTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("opening the pty: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 100}); err != nil {
		t.Logf("setting the pty's size: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// plainTerminal drops escape sequences and carriage returns.
func plainTerminal(s string) string {
	return strings.ReplaceAll(ansiRE.ReplaceAllString(s, ""), "\r", "")
}

// runGrape runs grape without a terminal and returns what it printed.
func runGrape(ctx context.Context, bin string, env []string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// bearerGet sends GET with an Authorization: Bearer header and no cookie,
// without following redirects.
func bearerGet(t *testing.T, ctx context.Context, target, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", target, err)
	}
	return resp.StatusCode, string(body)
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/vintner/arbor/sdk/plugintest"
)

// The browser tests drive real headless Chromium through `arbor dev`: web
// sign-in with each fake provider (consent page, callback, return path),
// the session cookie and its re-issue, the account page and sign-out
// (TestBrowserSignIn); connecting and disconnecting a Git provider on the
// Integrations page (TestBrowserIntegrations, in
// browser_integrations_test.go).
//
// It needs Chromium: /usr/bin/chromium (Debian's chromium package, which
// .ci/run installs) or the binary named by ARBOR_CHROMIUM. Without one it
// skips on a developer machine and fails when CI is set. Screenshots go to
// ARBOR_ARTIFACTS when set.

const (
	browserTokenTTL  = 6 * time.Second  // ARBOR_SESSION_TOKEN_TTL for the run
	browserStepLimit = 30 * time.Second // one provider's whole flow
	browserDeepPath  = "/some/deep/path"
	browserDeepQuery = "x=1"
)

// The providers `arbor dev` starts fakes for. login is the fake user the
// consent page selects by default, which must come back as
// X-Arbor-User-Login; "" accepts any non-empty login (Google has no
// login name: which claim Arbor uses is its choice).
var browserProviders = []struct{ name, login string }{
	{"github", "octocat"},
	{"gitlab", "jsmith"},
	{"bitbucket", "atlas"},
	{"google", ""},
}

func TestBrowserSignIn(t *testing.T) {
	env := useBrowserEnv(t)
	artifacts := artifactDir(t)
	for _, p := range browserProviders {
		t.Run(p.name, func(t *testing.T) {
			start := time.Now()
			browserSignInFlow(t, env.browserCtx, env.dev, artifacts, p.name, p.login)
			t.Logf("%s: whole flow took %v", p.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// The browser tests share one `arbor dev` and one Chromium: under -race
// the dev server needs half a minute or more to compile its plugins before
// /readyz answers. Each test takes a fresh browser context (no shared
// cookies) and its own users.
//
// Without a TestMain of their own, the tests count themselves: each one
// registers before it calls t.Parallel (all registrations happen in the
// sequential phase, before any parallel test resumes), and the last one to
// finish stops the server and the browser. A mutex then runs them one at a
// time, so their timing (the sign-in test's token re-issue) is unchanged.
type browserEnv struct {
	dev         *devServer
	browserCtx  context.Context
	chromiumOut *syncBuffer
	stops       []func(testing.TB) // in start order
}

var (
	browserShared struct {
		mu       sync.Mutex
		users    int
		env      *browserEnv
		failedIn string // the test in which starting failed
	}
	browserTurn sync.Mutex // one browser test at a time
)

func useBrowserEnv(t *testing.T) *browserEnv {
	t.Helper()
	chromium := findChromium(t)
	s := &browserShared
	s.mu.Lock()
	s.users++
	s.mu.Unlock()
	t.Cleanup(func() { releaseBrowserEnv(t) })
	t.Parallel()
	browserTurn.Lock()
	t.Cleanup(browserTurn.Unlock) // runs before releaseBrowserEnv

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.env != nil {
		t.Logf("reusing the arbor dev at %s and Chromium started by an earlier browser test", s.env.dev.base)
		return s.env
	}
	if s.failedIn != "" {
		t.Fatalf("arbor dev or Chromium did not start in %s; see its output", s.failedIn)
	}
	s.failedIn = t.Name() // until both are up
	env := &browserEnv{}
	started := false
	defer func() { // also on t.Fatal (runtime.Goexit) while starting
		if !started {
			stopBrowserEnv(t, env)
		}
	}()
	var stop func(testing.TB)
	env.dev, stop = startDev(t, "ARBOR_SESSION_TOKEN_TTL="+browserTokenTTL.String())
	env.stops = append(env.stops, stop)
	env.browserCtx, env.chromiumOut, stop = startBrowser(t, chromium)
	env.stops = append(env.stops, stop)
	started = true
	s.env, s.failedIn = env, ""
	return env
}

// releaseBrowserEnv runs in each browser test's cleanup.
func releaseBrowserEnv(t *testing.T) {
	s := &browserShared
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.Failed() && s.env != nil {
		t.Logf("arbor dev output:\n%s", tail(s.env.dev.logs.String(), 20000))
		t.Logf("chromium output (D-Bus noise left out):\n%s", tail(withoutDBus(s.env.chromiumOut.String()), 4000))
	}
	s.users--
	if s.users > 0 {
		return
	}
	if s.env != nil {
		stopBrowserEnv(t, s.env)
	}
	s.env, s.failedIn = nil, ""
}

func stopBrowserEnv(tb testing.TB, env *browserEnv) {
	for _, stop := range slices.Backward(env.stops) {
		stop(tb)
	}
	env.stops = nil
}

// findChromium returns the browser to drive, or skips (no CI) / fails (CI).
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ARBOR_CHROMIUM"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("ARBOR_CHROMIUM=%s is not an executable: %v", p, err)
		}
		return p
	}
	if st, err := os.Stat("/usr/bin/chromium"); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found (install Debian's chromium: apt-get install --no-install-recommends chromium fonts-dejavu-core, or set ARBOR_CHROMIUM)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI is set, so this test must not be skipped")
	}
	t.Skip(msg)
	return ""
}

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARBOR_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// devServer is a running `arbor dev`.
type devServer struct {
	base string // http://127.0.0.1:PORT, as it printed it, without the final slash
	host string // 127.0.0.1:PORT
	logs *syncBuffer
}

// startDev starts `arbor dev`; stop ends it and removes its data. When
// starting fails, startDev stops it itself.
func startDev(t *testing.T, extraEnv ...string) (dev *devServer, stop func(testing.TB)) {
	t.Helper()
	// Short: the admin socket lives in the data directory.
	dir, err := os.MkdirTemp("", "arbbr")
	if err != nil {
		t.Fatal(err)
	}
	removeDir := func() { os.RemoveAll(dir) }
	addr := freeAddr(t)
	cmd := exec.Command(arborBin, "dev", "--listen", addr, "--data", dir)
	// One dev server serves every browser test, all from 127.0.0.1: far
	// more sign-ins and CLI logins a minute than one person makes. The
	// limits stay on, set out of the way (they are tested in
	// hostile_ratelimit_test.go).
	limits := []string{
		"ARBOR_LIMITS_SIGNIN_PER_MINUTE=1200", "ARBOR_LIMITS_SIGNIN_BURST=200",
		"ARBOR_LIMITS_DEVICE_START_PER_MINUTE=1200", "ARBOR_LIMITS_DEVICE_START_BURST=200",
		"ARBOR_LIMITS_DEVICE_POLL_PER_MINUTE=1200", "ARBOR_LIMITS_DEVICE_POLL_BURST=200",
	}
	// The compiled plugins are cached across test runs and processes
	// (the race-enabled binary takes a minute to compile them).
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "ARBOR_LOG_LEVEL=debug", "ARBOR_SERVER_METRICS_LISTEN=127.0.0.1:0",
		"ARBOR_PLUGINS_CACHE_DIR=" + plugintest.DefaultCacheDir()}, append(limits, extraEnv...)...)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		removeDir()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		removeDir()
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logs, line)
			if strings.Contains(line, "Arbor dev is running: open http://") {
				select {
				case ready <- line:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
		done <- cmd.Wait() // after the last read of the pipe, as os/exec asks
	}()
	exited := false
	stop = func(tb testing.TB) {
		if !exited {
			exited = true
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				tb.Errorf("arbor dev did not stop within 30s of SIGTERM")
				cmd.Process.Kill()
				<-done
			}
		}
		removeDir()
	}
	ok := false
	defer func() { // also on t.Fatal (runtime.Goexit)
		if !ok {
			stop(t)
			t.Logf("arbor dev output:\n%s", logs.String())
		}
	}()
	var line string
	select {
	case line = <-ready:
	case err := <-done:
		exited = true
		t.Fatalf("arbor dev exited before it was ready: %v\n%s", err, logs.String())
	case <-time.After(120 * time.Second):
		t.Fatalf("arbor dev did not print %q within 120s\n%s", "Arbor dev is running: open http://ADDR/", logs.String())
	}
	_, rest, _ := strings.Cut(line, "open ")
	printed := strings.Fields(rest)[0]
	u, err := url.Parse(printed)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Path != "/" {
		t.Fatalf("arbor dev printed %q: want http://127.0.0.1:PORT/ (%v)", printed, err)
	}
	if u.Host != addr {
		t.Fatalf("arbor dev printed %s, was told --listen %s", printed, addr)
	}
	dev = &devServer{base: "http://" + u.Host, host: u.Host, logs: logs}
	// Plugins (the providers) load in the background after the listener is
	// up; /readyz answers 503 until they have, and the sign-in page has no
	// provider buttons meanwhile. A race-enabled build compiles them slowly.
	printedAt := time.Now()
	deadline := printedAt.Add(180 * time.Second)
	for {
		resp, err := http.Get(dev.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			exited = true
			t.Fatalf("arbor dev exited before /readyz answered 200: %v\n%s", err, logs.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("arbor dev: /readyz not 200 within %v of the ready line (last: %v)", time.Since(printedAt).Round(time.Second), err)
		}
	}
	t.Logf("arbor dev: /readyz answered 200 %v after it printed its URL", time.Since(printedAt).Round(time.Millisecond))
	ok = true
	return dev, stop
}

// startBrowser starts one headless Chromium for the browser tests; each
// flow gets a fresh browser context (no shared cookies) in it. stop ends
// it; when starting fails, startBrowser stops it itself. extra options
// follow the common ones.
func startBrowser(t *testing.T, execPath string, extra ...chromedp.ExecAllocatorOption) (browserCtx context.Context, out *syncBuffer, stop func(testing.TB)) {
	t.Helper()
	out = &syncBuffer{}
	// Not t.TempDir: Chromium's helper processes can still be writing to
	// the profile for a moment after the browser exits, which makes the
	// testing package's RemoveAll fail the test. stop removes it instead,
	// retrying briefly.
	profile, err := os.MkdirTemp("", "arbor-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true), // everything is on 127.0.0.1
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(out),
	)
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	stop = func(tb testing.TB) {
		cancelBrowser()
		cancelAlloc()
		var err error
		for range 20 {
			if err = os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		tb.Logf("leaving the Chromium profile %s behind: %v", profile, err)
	}
	ok := false
	defer func() { // also on t.Fatal (runtime.Goexit)
		if !ok {
			stop(t)
			t.Logf("chromium output (D-Bus noise left out):\n%s", tail(withoutDBus(out.String()), 4000))
		}
	}()
	// The first run starts the browser and ties its life to browserCtx, so
	// it gets no timeout of its own; a watchdog bounds it instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(browserCtx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting %s: %v\n%s", execPath, err, tail(out.String(), 4000))
		}
	case <-time.After(60 * time.Second):
		cancelAlloc()
		t.Fatalf("%s did not start within 60s\n%s", execPath, tail(out.String(), 4000))
	}
	if v, err := chromedp.Run(browserCtx, chromedp.Evaluate[string](`navigator.userAgent`)); err == nil {
		t.Logf("browser: %s", v)
	}
	ok = true
	return browserCtx, out, stop
}

// browserSignInFlow is one provider's whole flow in a fresh browser context.
func browserSignInFlow(t *testing.T, browserCtx context.Context, dev *devServer, artifacts, provider, wantLogin string) {
	b, closeTab := newBrowserTab(t, browserCtx, dev, browserStepLimit)
	defer closeTab()
	deep := dev.base + browserDeepPath + "?" + browserDeepQuery
	wantReturn := browserDeepPath + "?" + browserDeepQuery

	// 1. A deep link without a session lands on the sign-in page, with the
	// original path and query as return_to.
	b.do("open "+deep, chromedp.Navigate(deep))
	st := b.waitPage("the sign-in page", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/auth/sign-in"
	})
	if got := st.url(t).Query().Get("return_to"); got != wantReturn {
		t.Fatalf("sign-in page %s: return_to=%q, want %q", st.Href, got, wantReturn)
	}
	b.wantHop("GET", deep, 302, "/auth/sign-in?return_to="+url.QueryEscape(wantReturn))
	if !strings.Contains(st.Title, "Sign in") {
		t.Errorf("sign-in page title %q does not contain %q", st.Title, "Sign in")
	}
	if st.Scripts != 0 {
		t.Errorf("sign-in page has %d <script> elements; the contract says no JavaScript", st.Scripts)
	}
	buttons := b.providerButtons()
	var names []string
	for _, btn := range buttons {
		names = append(names, btn.Provider)
		href, err := url.Parse(btn.Href)
		switch {
		case err != nil || href.IsAbs() || href.Path != "/auth/start/"+btn.Provider:
			t.Errorf("button %q: href %q, want /auth/start/%s?return_to=…", btn.Provider, btn.Href, btn.Provider)
		case href.Query().Get("return_to") != wantReturn:
			t.Errorf("button %q: href %q carries return_to=%q, want %q", btn.Provider, btn.Href, href.Query().Get("return_to"), wantReturn)
		}
		if !strings.HasPrefix(strings.TrimSpace(btn.Text), "Sign in with ") {
			t.Errorf("button %q reads %q, want \"Sign in with …\"", btn.Provider, btn.Text)
		}
	}
	slices.Sort(names)
	if want := []string{"bitbucket", "github", "gitlab", "google"}; !slices.Equal(names, want) {
		t.Errorf("sign-in page offers %v, want %v", names, want)
	}
	b.screenshot(filepath.Join(artifacts, "browser-"+provider+"-sign-in.png"))

	// 2. The provider's button leads to the fake provider's consent page,
	// on another loopback port.
	b.do("click "+provider, chromedp.Click(chromedp.CSS(`a.provider-button[data-provider="`+provider+`"]`)))
	st = b.waitPage(provider+"'s consent page", func(st pageState, u *url.URL) bool {
		return u.Host != dev.host && st.Approve
	})
	if u := st.url(t); u.Hostname() != "127.0.0.1" {
		t.Errorf("the fake %s is at %s, not on 127.0.0.1", provider, u.Host)
	}
	login := st.FakeUser
	if wantLogin != "" && login != wantLogin {
		t.Fatalf("consent page selects fake user %q, want %q", login, wantLogin)
	}

	// 3. Approve: back through Arbor's callback to the page first asked for,
	// signed in.
	b.do("approve", chromedp.Click(chromedp.CSS(`button[name="decision"][value="approve"]`)))
	st = b.waitPage("the demo page after sign-in", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == browserDeepPath
	})
	signedInAt := time.Now() // the cookie's token was issued just before
	if u := st.url(t); u.RawQuery != browserDeepQuery {
		t.Errorf("signed in at %s: query %q, want %q", st.Href, u.RawQuery, browserDeepQuery)
	}
	b.wantHop("GET", dev.base+"/auth/callback/"+provider, 302, wantReturn)
	b.wantSignedIn(st, "after sign-in")
	if st.DemoPath != browserDeepPath {
		t.Errorf("demo page shows Path %q, want %q", st.DemoPath, browserDeepPath)
	}
	id := st.identity()
	if id["X-Arbor-User-Id"] == "" || !strings.Contains(id["X-Arbor-User-Email"], "@") {
		t.Errorf("demo page identity %v: want X-Arbor-User-Id and X-Arbor-User-Email", id)
	}
	switch got := id["X-Arbor-User-Login"]; {
	case got == "":
		t.Errorf("demo page identity %v: no X-Arbor-User-Login", id)
	case wantLogin != "" && got != login:
		t.Errorf("X-Arbor-User-Login %q, want the fake user %q", got, login)
	default:
		t.Logf("signed in with %s as %q: %v", provider, got, id)
	}
	if st.AccountHref != "/auth/account" {
		t.Errorf("demo page account link href %q, want /auth/account", st.AccountHref)
	}
	b.screenshot(filepath.Join(artifacts, "browser-"+provider+"-demo.png"))

	// 4. The session cookie: dev's plain-http name and attributes.
	first := b.sessionCookie("after sign-in")
	if code, body := plainGet(t, deep, first.Value); code != 200 || !strings.Contains(body, "Signed in.") {
		t.Fatalf("GET %s with the browser's cookie from a plain client: %d\n%s", deep, code, snippet(body))
	}

	// 5. Past half the token's life (but well before its end) a reload
	// re-issues the cookie and stays signed in.
	b.do("wait past half the token lifetime", chromedp.Sleep(time.Until(signedInAt.Add(browserTokenTTL/2+700*time.Millisecond))))
	b.do("reload", chromedp.Reload())
	st = b.waitPage("the demo page after reload", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == browserDeepPath
	})
	b.wantSignedIn(st, "after reload")
	second := b.sessionCookie("after reload")
	if second.Value == first.Value {
		t.Errorf("the session cookie was not re-issued %v after sign-in (token TTL %v)", time.Since(signedInAt).Round(time.Millisecond), browserTokenTTL)
	}

	// 6. The account page signs out: 303 to the sign-in page.
	b.do("open the account page", chromedp.Click(chromedp.CSS(`a#account`)))
	st = b.waitPage("the account page", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/auth/account"
	})
	form := b.signOutForm()
	if !form.Found || !strings.EqualFold(form.Method, "post") || form.Action != "/auth/logout" ||
		!form.CSRF || form.Button != "Sign out" || form.ButtonType != "submit" {
		t.Errorf("account page sign-out form: %+v\n%s", form, snippet(st.HTML))
	}
	b.do("sign out", chromedp.Click(chromedp.CSS(`#sign-out`)))
	st = b.waitPage("the sign-in page after sign-out", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/auth/sign-in" && u.Query().Get("signed_out") == "1"
	})
	b.wantHop("POST", dev.base+"/auth/logout", 303, "/auth/sign-in?signed_out=1")
	if c := b.cookie(); c != nil {
		t.Logf("after sign-out the browser still holds %s (value changed: %v)", c.Name, c.Value != second.Value)
	}

	// 7. Signed out: / asks for sign-in again, in the browser and with
	// either copied cookie value.
	b.do("open /", chromedp.Navigate(dev.base+"/"))
	st = b.waitPage("the sign-in page for /", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/auth/sign-in"
	})
	if got := st.url(t).Query().Get("return_to"); got != "/" {
		t.Errorf("after sign-out / lands on %s: return_to=%q, want \"/\"", st.Href, got)
	}
	b.wantHop("GET", dev.base+"/", 302, "/auth/sign-in?return_to=%2F")
	for i, v := range []string{first.Value, second.Value} {
		resp := plainRequest(t, dev.base+"/", v)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 302 || loc == nil || loc.Path != "/auth/sign-in" {
			t.Errorf("GET / with cookie #%d after sign-out: %d Location %q, want 302 to /auth/sign-in", i+1, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// browserTab is one tab, with the document requests it made.
type browserTab struct {
	t   *testing.T
	ctx context.Context
	dev *devServer

	mu        sync.Mutex
	reqMethod map[network.RequestID]string
	hops      []hop
}

// newBrowserTab opens a tab in a fresh browser context of browserCtx (no
// shared cookies) that records its document requests. b.ctx is the tab's
// context, bounded by limit unless limit is 0. closeTab closes the tab.
func newBrowserTab(t *testing.T, browserCtx context.Context, dev *devServer, limit time.Duration) (b *browserTab, closeTab func()) {
	t.Helper()
	tabCtx, cancelTab := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	ctx, cancel := tabCtx, context.CancelFunc(func() {})
	if limit > 0 {
		ctx, cancel = context.WithTimeout(tabCtx, limit)
	}
	closeTab = func() { cancel(); cancelTab() }
	b = &browserTab{t: t, ctx: ctx, dev: dev, reqMethod: map[network.RequestID]string{}}
	if err := chromedp.Listen(ctx, b.record); err != nil {
		closeTab()
		t.Fatalf("opening a tab: %v", err)
	}
	return b, closeTab
}

// signInWith signs the tab in from the sign-in page it is on: it clicks
// provider's button, approves on the fake provider's consent page (which
// must select the fake user wantLogin, unless that is ""), and waits for
// the page that landed matches, which it returns.
func (b *browserTab) signInWith(provider, wantLogin, landedWhat string, landed func(pageState, *url.URL) bool) pageState {
	b.t.Helper()
	b.do("click "+provider, chromedp.Click(chromedp.CSS(`a.provider-button[data-provider="`+provider+`"]`)))
	st := b.waitPage(provider+"'s consent page", func(st pageState, u *url.URL) bool {
		return u.Host != b.dev.host && st.Approve
	})
	if wantLogin != "" && st.FakeUser != wantLogin {
		b.t.Fatalf("consent page selects fake user %q, want %q", st.FakeUser, wantLogin)
	}
	b.do("approve sign-in", chromedp.Click(chromedp.CSS(`button[name="decision"][value="approve"]`)))
	return b.waitPage(landedWhat, landed)
}

// hop is one response to a document request.
type hop struct {
	method, url string
	status      int64
	to          string // where a redirect led
}

func (h hop) String() string {
	if h.to != "" {
		return fmt.Sprintf("%s %s -> %d -> %s", h.method, h.url, h.status, h.to)
	}
	return fmt.Sprintf("%s %s -> %d", h.method, h.url, h.status)
}

// record runs on chromedp's reader goroutine: keep it short.
func (b *browserTab) record(ev any) {
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Type != network.ResourceTypeDocument || ev.Request == nil {
			return
		}
		b.mu.Lock()
		if r := ev.RedirectResponse; r != nil {
			b.hops = append(b.hops, hop{b.reqMethod[ev.RequestID], r.URL, r.Status, ev.Request.URL})
		}
		b.reqMethod[ev.RequestID] = ev.Request.Method
		b.mu.Unlock()
	case *network.EventResponseReceived:
		if ev.Type != network.ResourceTypeDocument || ev.Response == nil {
			return
		}
		b.mu.Lock()
		b.hops = append(b.hops, hop{b.reqMethod[ev.RequestID], ev.Response.URL, ev.Response.Status, ""})
		b.mu.Unlock()
	}
}

// status is the status of the last document response for href, or 0.
func (b *browserTab) status(href string) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, h := range slices.Backward(b.hops) {
		if h.url == href && h.to == "" {
			return h.status
		}
	}
	return 0
}

func (b *browserTab) navigation() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s strings.Builder
	for _, h := range b.hops {
		fmt.Fprintf(&s, "  %v\n", h)
	}
	return s.String()
}

// wantHop checks that a document request to target (exactly, or with any
// query) was answered with status and, for a redirect, sent to "to" (a
// path and query on Arbor, or an absolute URL).
func (b *browserTab) wantHop(method, target string, status int64, to string) {
	b.t.Helper()
	b.mu.Lock()
	hops := slices.Clone(b.hops)
	b.mu.Unlock()
	var seen []string
	for _, h := range slices.Backward(hops) {
		if h.method != method || (h.url != target && !strings.HasPrefix(h.url, target+"?")) {
			continue
		}
		if h.status == status && (to == "" || h.to == b.dev.base+to || h.to == to) {
			return
		}
		seen = append(seen, h.String())
	}
	if len(seen) == 0 {
		b.t.Errorf("no document request %s %s; navigation:\n%s", method, target, b.navigation())
		return
	}
	b.t.Errorf("%s %s: got %s; want %d to %s", method, target, seen[0], status, to)
}

// do runs chromedp steps, failing the test on an error.
func (b *browserTab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\nnavigation:\n%s", what, err, b.navigation())
	}
}

// pageState is what the test reads from every page it lands on.
type pageState struct {
	Href        string   `json:"href"`
	Ready       string   `json:"ready"`
	Title       string   `json:"title"`
	ArborError  string   `json:"arborError"`  // data-error of .arbor-error
	FakeError   string   `json:"fakeError"`   // the fake provider's error page heading
	Scripts     int      `json:"scripts"`     // <script> elements
	Approve     bool     `json:"approve"`     // the consent page's Approve button
	FakeUser    string   `json:"fakeUser"`    // the consent page's selected fake user
	SignedIn    string   `json:"signedIn"`    // the demo page's identity box heading
	DemoPath    string   `json:"demoPath"`    // the path the demo page says it served
	Identity    []string `json:"identity"`    // the demo page's "Name: value" identity lines
	AccountHref string   `json:"accountHref"` // the demo page's account link
	HTML        string   `json:"html"`
}

const pageStateJS = `(() => {
	const q = (s) => document.querySelector(s);
	const err = q('.arbor-error');
	const h1 = q('h1');
	const user = q('select#fake_user');
	const strong = q('.who strong');
	const path = q('p code');
	const account = q('a#account');
	return {
		href: location.href,
		ready: document.readyState,
		title: document.title,
		arborError: err ? (err.getAttribute('data-error') || '(no data-error)') : '',
		fakeError: h1 && h1.textContent.includes('(fake):') ? h1.textContent : '',
		scripts: document.scripts.length,
		approve: !!q('button[name="decision"][value="approve"]'),
		fakeUser: user ? user.value : '',
		signedIn: strong ? strong.textContent : '',
		demoPath: path ? path.textContent : '',
		identity: Array.from(document.querySelectorAll('.who li code'), (e) => e.textContent),
		accountHref: account ? account.getAttribute('href') : '',
		html: document.documentElement ? document.documentElement.outerHTML : '',
	};
})()`

func (st pageState) url(t *testing.T) *url.URL {
	t.Helper()
	u, err := url.Parse(st.Href)
	if err != nil {
		t.Fatalf("page URL %q: %v", st.Href, err)
	}
	return u
}

func (st pageState) identity() map[string]string {
	m := map[string]string{}
	for _, line := range st.Identity {
		k, v, _ := strings.Cut(line, ": ")
		m[k] = v
	}
	return m
}

// waitPage waits until a loaded page matches, and fails at once on an error
// page (Arbor's or the fake provider's) or when the time is up.
func (b *browserTab) waitPage(what string, match func(pageState, *url.URL) bool) pageState {
	b.t.Helper()
	var (
		last    pageState
		lastErr error
	)
	for {
		// One evaluation can meet a navigation half-way; bound it and retry.
		ectx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		st, err := chromedp.Run(ectx, chromedp.Evaluate[pageState](pageStateJS))
		cancel()
		if err == nil {
			last, lastErr = st, nil
			if st.Ready == "complete" {
				status := b.status(st.Href)
				if st.ArborError != "" || st.FakeError != "" || status >= 400 {
					b.t.Fatalf("waiting for %s: landed on an error page at %s (status %d, arbor-error %q, fake provider error %q)\nnavigation:\n%s\npage:\n%s",
						what, st.Href, status, st.ArborError, st.FakeError, b.navigation(), snippet(st.HTML))
				}
				if u, err := url.Parse(st.Href); err == nil && match(st, u) {
					return st
				}
			}
		} else {
			lastErr = err
		}
		select {
		case <-b.ctx.Done():
			b.t.Fatalf("waiting for %s: %v; last page %s (%s, title %q), last error %v\nnavigation:\n%s\npage:\n%s",
				what, b.ctx.Err(), last.Href, last.Ready, last.Title, lastErr, b.navigation(), snippet(last.HTML))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (b *browserTab) wantSignedIn(st pageState, when string) {
	b.t.Helper()
	if st.SignedIn != "Signed in." {
		b.t.Fatalf("%s the demo page at %s does not say signed in (%q)\n%s", when, st.Href, st.SignedIn, snippet(st.HTML))
	}
}

type providerButton struct {
	Provider string `json:"provider"`
	Href     string `json:"href"`
	Text     string `json:"text"`
}

func (b *browserTab) providerButtons() []providerButton {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]providerButton](`Array.from(document.querySelectorAll('a.provider-button'), (a) => ({
		provider: a.getAttribute('data-provider') || '', href: a.getAttribute('href') || '', text: a.textContent }))`))
	if err != nil {
		b.t.Fatalf("reading the provider buttons: %v", err)
	}
	return v
}

type signOutForm struct {
	Found      bool   `json:"found"`
	Method     string `json:"method"`
	Action     string `json:"action"`
	CSRF       bool   `json:"csrf"` // a hidden input named like csrf, with a value
	Button     string `json:"button"`
	ButtonType string `json:"buttonType"`
}

func (b *browserTab) signOutForm() signOutForm {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[signOutForm](`(() => {
		const f = document.querySelector('form#sign-out-form');
		if (!f) return {found: false, method: '', action: '', csrf: false, button: '', buttonType: ''};
		const btn = f.querySelector('button#sign-out');
		return {
			found: true,
			method: f.getAttribute('method') || '',
			action: f.getAttribute('action') || '',
			csrf: Array.from(f.querySelectorAll('input[type="hidden"]')).some((i) => /csrf/i.test(i.name) && i.value !== ''),
			button: btn ? btn.textContent.trim() : '',
			buttonType: btn ? (btn.getAttribute('type') || '') : '',
		};
	})()`))
	if err != nil {
		b.t.Fatalf("reading the sign-out form: %v", err)
	}
	return v
}

// cookie returns Arbor's session cookie as the browser holds it, or nil.
func (b *browserTab) cookie() *network.Cookie {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.dev.base + "/"}})
	if err != nil {
		b.t.Fatalf("reading cookies: %v", err)
	}
	var found *network.Cookie
	for _, c := range res.Cookies {
		switch c.Name {
		case "__Host-arbor_session":
			b.t.Errorf("over plain http the cookie must be arbor_session, not %s", c.Name)
		case "arbor_session":
			found = c
		}
	}
	return found
}

func (b *browserTab) sessionCookie(when string) *network.Cookie {
	b.t.Helper()
	c := b.cookie()
	if c == nil {
		b.t.Fatalf("%s: no arbor_session cookie for %s", when, b.dev.base)
	}
	if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || c.Secure || c.Value == "" {
		b.t.Errorf("%s: cookie %s: HttpOnly=%v SameSite=%q Path=%q Secure=%v; want HttpOnly, SameSite=Lax, Path=/, not Secure (dev over http)",
			when, c.Name, c.HTTPOnly, c.SameSite, c.Path, c.Secure)
	}
	if c.Domain != "127.0.0.1" {
		b.t.Errorf("%s: cookie domain %q, want host-only 127.0.0.1", when, c.Domain)
	}
	return c
}

// screenshot saves a full-page PNG and checks that it decodes.
func (b *browserTab) screenshot(path string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", path, err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(buf))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		b.t.Fatalf("screenshot %s is not a usable PNG: %+v %v", path, cfg, err)
	}
	b.t.Logf("screenshot %s (%dx%d)", path, cfg.Width, cfg.Height)
}

// plainRequest sends GET with only the session cookie, from outside the
// browser, and does not follow redirects.
func plainRequest(t *testing.T, target, session string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: "arbor_session", Value: session})
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("GET %s: reading the body: %v", target, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

func plainGet(t *testing.T, target, session string) (int, string) {
	t.Helper()
	resp := plainRequest(t, target, session)
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// snippet shortens a page for a failure message.
func snippet(html string) string {
	const limit = 3000
	if len(html) > limit {
		return html[:limit] + "\n…(" + fmt.Sprint(len(html)-limit) + " more bytes)"
	}
	return html
}

// withoutDBus drops Chromium's complaints about the missing D-Bus, which
// every headless run in a container logs.
func withoutDBus(s string) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.Contains(line, "dbus") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

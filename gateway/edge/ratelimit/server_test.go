package ratelimit_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/gateway/edge/ratelimit"
	"github.com/vintner/arbor/gateway/httperr"
)

// clock is a test clock the limiter reads; tests move it instead of
// sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a real gateway on 127.0.0.1 that trusts 127.0.0.1 as a proxy, so
// that X-Forwarded-For sets the client address; the route table's routes
// are mounted with trivial handlers through Limits.RouteHandler, and the proxy
// behind it is guarded through Limits.Guard.
type env struct {
	url    string
	clock  *clock
	limits *ratelimit.Limits
	srv    *gateway.Server
}

const goodToken = "Bearer good"

// authenticate stands in for the CLI bearer / worker check: "Bearer
// good" or X-Worker-Token "good" pass, any other credentials fail 401.
func authenticate(c *fiber.Ctx) error {
	h := &c.Request().Header
	if string(h.Peek("Authorization")) == goodToken || string(h.Peek("X-Worker-Token")) == "good" {
		return nil
	}
	return httperr.New(http.StatusUnauthorized, "unauthenticated", "bad credentials")
}

func newEnv(t *testing.T, rates [ratelimit.NumClasses]ratelimit.Rate) *env {
	t.Helper()
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "upstream") })}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = up.Serve(upLn) }()
	t.Cleanup(func() { _ = up.Close() })

	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l, err := ratelimit.New(ratelimit.Options{Rates: rates, Capacity: 1000, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(gateway.Options{
		Upstream:       proxy.Upstream{URL: "http://" + upLn.Addr().String()},
		TrustedProxies: []string{"127.0.0.1"},
		Logger:         slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Guard: l.Guard(func(c *fiber.Ctx) (bool, error) {
			if len(c.Request().Header.Peek("Authorization")) == 0 && len(c.Request().Header.Peek("X-Worker-Token")) == 0 {
				return true, nil // anonymous: a public route
			}
			err := authenticate(c)
			return err == nil, err
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Register(srv.Registry()); err != nil {
		t.Fatal(err)
	}
	ok := func(c *fiber.Ctx) error { return c.SendString("ok") }
	err = srv.Mount(gateway.ClassAuth, func(r fiber.Router) {
		for _, rt := range ratelimit.Table {
			r.Add(rt.Method, rt.Path, ok)
		}
		r.Get("/api/me", func(c *fiber.Ctx) error {
			if err := authenticate(c); err != nil {
				return err
			}
			return c.SendString("me")
		})
	}, gateway.WithRouteHook(l.RouteHandler))
	if err != nil {
		t.Fatal(err)
	}
	// The Git proxy's route, as gitproxy.Routes registers it.
	err = srv.Mount(gateway.ClassGit, func(r fiber.Router) {
		r.All("/git/*", func(c *fiber.Ctx) error {
			if err := authenticate(c); err != nil {
				return err
			}
			return c.SendString("refs")
		})
	}, gateway.WithRouteHook(l.RouteHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.MissingError(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })
	return &env{url: "http://" + ln.Addr().String(), clock: clk, limits: l, srv: srv}
}

type reply struct {
	status     int
	code       string
	retryAfter string
	body       string
}

// do sends method path as client (its X-Forwarded-For) with the extra
// headers (name, value, …).
func (e *env) do(t *testing.T, method, path, client, body string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", client)
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var eb struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &eb)
		r.code = eb.Error
	}
	return r
}

func (e *env) metric(t *testing.T, class string) int {
	t.Helper()
	mfs, err := e.srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "arbor_rate_limited_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "class" && lp.GetValue() == class {
					return int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return 0
}

func TestEveryClassLimitsItsRoutesAndRecovers(t *testing.T) {
	e := newEnv(t, ratelimit.Defaults)
	deviceGrant := "grant_type=" + url.QueryEscape("urn:ietf:params:oauth:grant-type:device_code") + "&device_code=x"
	cases := []struct {
		class        ratelimit.Class
		method, path string
		body         string
	}{
		{ratelimit.SignIn, "GET", "/auth/start/github", ""},
		{ratelimit.SignIn, "GET", "/auth/callback/github?code=x&state=y", ""},
		{ratelimit.SignIn, "GET", "/auth/link/gitlab", ""},
		{ratelimit.SignIn, "GET", "/integrations/github/connect", ""},
		{ratelimit.DeviceStart, "POST", "/api/auth/cli/start", ""},
		{ratelimit.DeviceStart, "GET", "/cli/login", ""},
		{ratelimit.DeviceStart, "POST", "/oauth/device/code", "client_id=x"},
		{ratelimit.DeviceStart, "POST", "/device", "user_code=ABCD-EFGH"},
		{ratelimit.DevicePoll, "POST", "/api/auth/cli/exchange", ""},
		{ratelimit.DevicePoll, "POST", "/oauth/token", deviceGrant},
		{ratelimit.Refresh, "POST", "/api/auth/cli/refresh", ""},
		{ratelimit.Refresh, "POST", "/oauth/token", "grant_type=refresh_token&refresh_token=x"},
	}
	for i, c := range cases {
		t.Run(c.class.String()+c.path, func(t *testing.T) {
			client := "198.51.100." + strconv.Itoa(i+1) // a fresh address per case
			rate := ratelimit.Defaults[c.class]
			before := e.metric(t, c.class.String())
			for n := range rate.Burst {
				if r := e.do(t, c.method, c.path, client, c.body); r.status != 200 {
					t.Fatalf("request %d of the burst %d: status %d %s", n+1, rate.Burst, r.status, r.body)
				}
			}
			r := e.do(t, c.method, c.path, client, c.body)
			wantSecs := 60 / rate.PerMinute // one token's refill time, rounded up
			if 60%rate.PerMinute != 0 {
				wantSecs++
			}
			if r.status != 429 || r.code != "rate_limited" || r.retryAfter != strconv.Itoa(wantSecs) {
				t.Fatalf("after the burst: %d %q Retry-After %q, want 429 rate_limited Retry-After %d (%s)", r.status, r.code, r.retryAfter, wantSecs, r.body)
			}
			if got := e.metric(t, c.class.String()); got != before+1 {
				t.Errorf("arbor_rate_limited_total{class=%q} went from %d to %d, want +1", c.class, before, got)
			}
			// Another address is not limited.
			if r := e.do(t, c.method, c.path, "198.51.100.200", c.body); r.status != 200 {
				t.Fatalf("another address: status %d", r.status)
			}
			// After Retry-After, one more goes through.
			e.clock.add(time.Duration(wantSecs) * time.Second)
			if r := e.do(t, c.method, c.path, client, c.body); r.status != 200 {
				t.Fatalf("after Retry-After: status %d %s", r.status, r.body)
			}
			// Leave the shared address's buckets full for the next case.
			e.clock.add(time.Hour)
		})
	}
}

func TestHTMLPageGetsTheHTMLErrorPage(t *testing.T) {
	e := newEnv(t, ratelimit.Defaults)
	for range ratelimit.Defaults[ratelimit.SignIn].Burst {
		e.do(t, "GET", "/auth/start/github", "192.0.2.50", "")
	}
	r := e.do(t, "GET", "/auth/start/github", "192.0.2.50", "", "Accept", "text/html,application/xhtml+xml")
	if r.status != 429 || !strings.Contains(r.body, `data-error="rate_limited"`) || r.retryAfter == "" {
		t.Fatalf("browser over the limit: %d Retry-After %q body %s", r.status, r.retryAfter, r.body)
	}
}

func TestIPv6ClientsShareTheir64(t *testing.T) {
	e := newEnv(t, ratelimit.Defaults)
	burst := ratelimit.Defaults[ratelimit.DeviceStart].Burst
	for i := range burst {
		client := "2001:db8:77:1::" + strconv.FormatInt(int64(i+1), 16)
		if r := e.do(t, "POST", "/oauth/device/code", client, "client_id=x"); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	if r := e.do(t, "POST", "/oauth/device/code", "2001:db8:77:1:ffff::9", "client_id=x"); r.status != 429 {
		t.Fatalf("a new address in the same /64: %d, want 429", r.status)
	}
	if r := e.do(t, "POST", "/oauth/device/code", "2001:db8:77:2::1", "client_id=x"); r.status != 200 {
		t.Fatalf("the next /64: %d, want 200", r.status)
	}
}

func TestFailedAuthenticationsAreLimited(t *testing.T) {
	e := newEnv(t, ratelimit.Defaults)
	burst := ratelimit.Defaults[ratelimit.FailedAuth].Burst
	for _, c := range []struct {
		name, path  string
		bad, good   []string
		client, ok2 string
	}{
		{"bearer on an Arbor API route", "/api/me", []string{"Authorization", "Bearer guess"}, []string{"Authorization", goodToken}, "192.0.2.10", "192.0.2.11"},
		{"bearer on a proxied route", "/app/data", []string{"Authorization", "Bearer guess"}, []string{"Authorization", goodToken}, "192.0.2.20", "192.0.2.21"},
		{"worker on a proxied route", "/worker/jobs", []string{"X-Worker-Id", "w1", "X-Worker-Token", "guess"}, []string{"X-Worker-Id", "w1", "X-Worker-Token", "good"}, "192.0.2.30", "192.0.2.31"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.metric(t, "failed_auth")
			for n := range burst {
				if r := e.do(t, "GET", c.path, c.client, "", c.bad...); r.status != 401 {
					t.Fatalf("failure %d: status %d, want 401 while the bucket lasts", n+1, r.status)
				}
			}
			r := e.do(t, "GET", c.path, c.client, "", c.bad...)
			if r.status != 429 || r.code != "rate_limited" || r.retryAfter != "2" {
				t.Fatalf("failure %d: %d %q Retry-After %q, want 429 rate_limited Retry-After 2", burst+1, r.status, r.code, r.retryAfter)
			}
			// The guesser cannot tell a hit: valid credentials from the
			// limited address wait too.
			if r := e.do(t, "GET", c.path, c.client, "", c.good...); r.status != 429 {
				t.Fatalf("valid credentials from the limited address: %d, want 429", r.status)
			}
			// A valid one from another address passes.
			if r := e.do(t, "GET", c.path, c.ok2, "", c.good...); r.status != 200 {
				t.Fatalf("valid credentials from another address: %d %s", r.status, r.body)
			}
			// Requests without credentials from the limited address are
			// not affected.
			if c.path != "/api/me" {
				if r := e.do(t, "GET", c.path, c.client, ""); r.status != 200 {
					t.Fatalf("anonymous request from the limited address: %d", r.status)
				}
			}
			if got := e.metric(t, "failed_auth"); got != before+2 {
				t.Errorf("failed_auth counter went from %d to %d, want +2", before, got)
			}
			e.clock.add(2 * time.Second)
			if r := e.do(t, "GET", c.path, c.client, "", c.good...); r.status != 200 {
				t.Fatalf("valid credentials after Retry-After: %d", r.status)
			}
		})
	}
}

// TestGitFailedAuthenticationsHaveTheirOwnBucket: failures on /git/
// drain git_failed_auth, not failed_auth; its 429 says to check the
// repository credential, in text/plain for a Git client (which shows
// nothing else) and as JSON rate_limited for others, with Retry-After.
func TestGitFailedAuthenticationsHaveTheirOwnBucket(t *testing.T) {
	e := newEnv(t, ratelimit.Defaults)
	const path, client = "/git/github/octocat/hello-world.git/info/refs?service=git-upload-pack", "192.0.2.40"
	bad, good := []string{"Authorization", "Bearer guess"}, []string{"Authorization", goodToken}
	gitUA := []string{"User-Agent", "git/2.39.5"}
	for n := range ratelimit.Defaults[ratelimit.GitFailedAuth].Burst {
		if r := e.do(t, "GET", path, client, "", append(bad, gitUA...)...); r.status != 401 {
			t.Fatalf("failure %d: %d, want 401 while the bucket lasts", n+1, r.status)
		}
	}
	if got := e.metric(t, "failed_auth"); got != 0 {
		t.Fatalf("failed_auth counted %d refusals", got)
	}
	for _, c := range []struct {
		name     string
		headers  []string
		plain    bool
		contains string
	}{
		{"git, wrong token", append(bad, gitUA...), true, "Too many failed Git authentications from your address; check the repository credential"},
		{"git, right token", append(good, gitUA...), true, "(arbor: rate_limited"},
		{"git protocol v2 without a git User-Agent", append(good, "Git-Protocol", "version=2"), true, "(arbor: rate_limited"},
		{"API client", good, false, `"error":"rate_limited"`},
	} {
		r := e.do(t, "GET", path, client, "", c.headers...)
		if r.status != 429 || r.retryAfter != "2" || (r.code == "") == !c.plain || !strings.Contains(r.body, c.contains) {
			t.Errorf("%s: %d Retry-After %q code %q\n%s", c.name, r.status, r.retryAfter, r.code, r.body)
		}
	}
	if got := e.metric(t, "git_failed_auth"); got != 4 {
		t.Errorf("git_failed_auth counted %d refusals, want 4", got)
	}
	// The address's failed_auth bucket is full: a CLI's bearer on
	// Arbor's API is checked, not refused.
	if r := e.do(t, "GET", "/api/me", client, "", bad...); r.status != 401 {
		t.Errorf("a bearer on /api/me from the address: %d, want 401", r.status)
	}
	e.clock.add(2 * time.Second)
	if r := e.do(t, "GET", path, client, "", append(good, gitUA...)...); r.status != 200 {
		t.Errorf("git after Retry-After: %d %s", r.status, r.body)
	}
}

func TestZeroRateIsUnlimited(t *testing.T) {
	var rates [ratelimit.NumClasses]ratelimit.Rate // all off
	e := newEnv(t, rates)
	for n := range 50 {
		if r := e.do(t, "GET", "/auth/start/github", "192.0.2.1", ""); r.status != 200 {
			t.Fatalf("request %d: %d", n, r.status)
		}
		if r := e.do(t, "GET", "/api/me", "192.0.2.1", "", "Authorization", "Bearer guess"); r.status != 401 {
			t.Fatalf("failure %d: %d, want 401 (no failed_auth limit)", n, r.status)
		}
	}
}

func TestNewRejectsBadRates(t *testing.T) {
	for _, r := range []ratelimit.Rate{{PerMinute: -1}, {PerMinute: 5, Burst: 0}} {
		var rates [ratelimit.NumClasses]ratelimit.Rate
		rates[ratelimit.Refresh] = r
		if _, err := ratelimit.New(ratelimit.Options{Rates: rates}); err == nil || !strings.Contains(err.Error(), "refresh") {
			t.Errorf("New(%+v) = %v, want an error naming refresh", r, err)
		}
	}
}

func TestMissingReportsUnregisteredTableRoutes(t *testing.T) {
	l, err := ratelimit.New(ratelimit.Options{Rates: ratelimit.Defaults})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	srv, err := gateway.New(gateway.Options{Logger: quiet, AccessLogger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Mount(gateway.ClassAuth, func(r fiber.Router) {
		g := r.Group("/auth")
		g.Get("/start/:provider", func(c *fiber.Ctx) error { return nil })
	}, gateway.WithRouteHook(l.RouteHandler)); err != nil {
		t.Fatal(err)
	}
	m := l.Missing()
	if len(m) != len(ratelimit.Table)-1 || strings.Contains(strings.Join(m, ","), "/auth/start/") {
		t.Fatalf("Missing = %v; want every table route but GET /auth/start/:provider (registered through a group)", m)
	}
	if err := l.MissingError(); err == nil || !strings.Contains(err.Error(), "POST /oauth/token") {
		t.Fatalf("MissingError = %v", err)
	}
}

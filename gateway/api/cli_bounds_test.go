package api_test

// The bounds on device flows (service/clilogin/limits.go), through the real gateway on
// 127.0.0.1 with a real bbolt store: the global and per-address caps on
// pending requests, approved requests surviving a full cap, polls that
// write nothing, and wrong codes counted in the update that checks them.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/data/etcd"
	"github.com/vintner/arbor/data/etcd/etcdtest"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/api"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/authn/sessiontoken"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/gateway/pages"
	"github.com/vintner/arbor/service/clilogin"
	"github.com/vintner/arbor/service/clilogin/clitoken"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	t      *testing.T
	clock  *fakeClock
	store  data.Store
	svc    *clilogin.Service
	base   string // http://127.0.0.1:port, also the public URL
	cookie string // the signed-in user's session cookie (name=value)
}

// newFixture serves CLI login behind the real gateway, which trusts
// X-Forwarded-For from 127.0.0.1 so that a test can speak from many
// addresses. /test/sign-in starts a real session for user u1.
func newFixture(t *testing.T, maxPending, maxPerAddr int) *fixture {
	t.Helper()
	return newFixtureOn(t, maxPending, maxPerAddr, func(now func() time.Time) data.Store {
		st, err := boltdb.Open(filepath.Join(t.TempDir(), "arbor.db"), boltdb.Options{Now: now, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newFixtureOn is newFixture on the store that open makes.
func newFixtureOn(t *testing.T, maxPending, maxPerAddr int, open func(now func() time.Time) data.Store) *fixture {
	t.Helper()
	clock := &fakeClock{now: time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)}
	st := open(clock.Now)
	key := []byte("0123456789abcdef0123456789abcdef-bounds-test")
	toks, err := clitoken.NewSigner(key, clitoken.Options{Issuer: "bounds-test", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := sessiontoken.NewSigner(key, sessiontoken.Options{Issuer: "bounds-test", Audience: "arbor-session", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.New(st, session.Options{Signer: ss, CSRFKey: key, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sessions.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	svc, cliPages, cliAPI := newCLIParts(t, st, sessions, base, clilogin.Options{Tokens: toks, CodeKey: key, Now: clock.Now, Logger: quiet,
		MaxPendingDevices: maxPending, MaxPendingPerAddress: maxPerAddr,
		DeviceClients: []clilogin.DeviceClient{{ID: "stock-cli", Name: "Stock CLI", Scopes: scope.All}}})
	if err := st.CreateUser(context.Background(), data.User{ID: "u1", Email: "u1@example.test", Login: "u1", CreatedAt: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(599) }))
	t.Cleanup(up.Close)
	srv, err := gateway.New(gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, TrustedProxies: []string{"127.0.0.1"}, Logger: quiet, AccessLogger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	signIn := func(r fiber.Router) {
		r.Get("/test/sign-in", func(c *fiber.Ctx) error {
			if _, err := sessions.Start(c, data.User{ID: "u1", Email: "u1@example.test", Login: "u1"}); err != nil {
				return err
			}
			return c.SendString("signed in")
		})
	}
	for _, m := range []struct {
		class gateway.RouteClass
		fn    func(fiber.Router)
	}{{gateway.ClassAuth, cliPages.Routes}, {gateway.ClassAPI, cliAPI.Routes}, {gateway.ClassAuth, signIn}} {
		if err := srv.Mount(m.class, m.fn); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	f := &fixture{t: t, clock: clock, store: st, svc: svc, base: base}
	res := f.do(http.MethodGet, "/test/sign-in", "", nil, "")
	for _, c := range res.Cookies() {
		if c.Value != "" {
			f.cookie = c.Name + "=" + c.Value
		}
	}
	if res.StatusCode != 200 || f.cookie == "" {
		t.Fatalf("test sign-in: %d, cookies %v", res.StatusCode, res.Cookies())
	}
	return f
}

type resp struct {
	*http.Response
	Body string
}

// do sends a request from client address from ("" for the peer itself),
// with the session cookie when signedIn is set.
func (f *fixture) do(method, path, contentType string, body []byte, from string, hdr ...string) *resp {
	f.t.Helper()
	req, err := http.NewRequest(method, f.base+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if from != "" {
		req.Header.Set("X-Forwarded-For", from)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return &resp{res, string(raw)}
}

func (f *fixture) postJSON(path string, v any, from string) *resp {
	f.t.Helper()
	b, _ := json.Marshal(v)
	return f.do(http.MethodPost, path, "application/json", b, from, "Accept", "application/json")
}

func (f *fixture) postForm(path string, v url.Values, from string, hdr ...string) *resp {
	f.t.Helper()
	return f.do(http.MethodPost, path, "application/x-www-form-urlencoded", []byte(v.Encode()), from, hdr...)
}

// browser sends a signed-in page request.
func (f *fixture) browser(method, path string, form url.Values) *resp {
	f.t.Helper()
	if form == nil {
		return f.do(method, path, "", nil, "", "Cookie", f.cookie, "Accept", "text/html")
	}
	return f.postForm(path, form, "", "Cookie", f.cookie, "Accept", "text/html", "Origin", f.base)
}

func randomCode(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// The three ways to start a device flow; each returns its response and
// the device code.
func (f *fixture) startCLI(from string) (*resp, string) {
	dc := randomCode(f.t)
	return f.postJSON(api.PathCLIStart, map[string]any{"device_code": dc, "client_name": "grape"}, from), dc
}

func (f *fixture) startRFC(from string) (*resp, string) {
	res := f.postForm(api.PathDeviceCode, url.Values{"client_id": {"stock-cli"}}, from, "Accept", "application/json")
	var out struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
	}
	json.Unmarshal([]byte(res.Body), &out)
	return res, out.DeviceCode
}

func (f *fixture) startLink() (*resp, string) {
	dc := randomCode(f.t)
	return f.browser(http.MethodGet, api.PathCLILogin+"?device_code="+dc, nil), dc
}

// approveCLI opens the login page as the signed-in user, approves, and
// returns the verification code.
func (f *fixture) approveCLI(dc string) string {
	f.t.Helper()
	page := f.browser(http.MethodGet, api.PathCLILogin+"?device_code="+dc, nil)
	m := csrfRE.FindStringSubmatch(page.Body)
	if page.StatusCode != 200 || m == nil {
		f.t.Fatalf("login page: %d\n%s", page.StatusCode, page.Body)
	}
	res := f.browser(http.MethodPost, api.PathCLIApprove, url.Values{"csrf": {m[1]}, "device_code": {dc}})
	c := apptest.VerificationCodeRE.FindStringSubmatch(res.Body)
	if res.StatusCode != 200 || c == nil {
		f.t.Fatalf("approve: %d\n%s", res.StatusCode, res.Body)
	}
	return c[1]
}

func (f *fixture) denyCLI(dc string) {
	f.t.Helper()
	page := f.browser(http.MethodGet, api.PathCLILogin+"?device_code="+dc, nil)
	m := csrfRE.FindStringSubmatch(page.Body)
	if page.StatusCode != 200 || m == nil {
		f.t.Fatalf("login page: %d\n%s", page.StatusCode, page.Body)
	}
	if res := f.browser(http.MethodPost, api.PathCLIDeny, url.Values{"csrf": {m[1]}, "device_code": {dc}}); res.StatusCode != 200 {
		f.t.Fatalf("deny: %d\n%s", res.StatusCode, res.Body)
	}
}

func errCode(body string) string {
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal([]byte(body), &e)
	return e.Error
}

// wantBusy checks a 503 busy answer with a sensible Retry-After.
func wantBusy(t *testing.T, what string, res *resp, html bool) {
	t.Helper()
	ra, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if res.StatusCode != 503 || err != nil || ra < 1 || ra > 60 {
		t.Fatalf("%s: %d Retry-After %q, want 503 with Retry-After 1..60\n%s", what, res.StatusCode, res.Header.Get("Retry-After"), res.Body)
	}
	if html {
		if !strings.Contains(res.Body, "Too many login requests") {
			t.Fatalf("%s: not the busy page\n%s", what, res.Body)
		}
	} else if errCode(res.Body) != api.CodeCLIBusy {
		t.Fatalf("%s: body %s, want error %q", what, res.Body, api.CodeCLIBusy)
	}
}

func wantStarted(t *testing.T, what string, res *resp) {
	t.Helper()
	if res.StatusCode != 200 && res.StatusCode != 201 {
		t.Fatalf("%s: %d, want a started request\n%s", what, res.StatusCode, res.Body)
	}
}

func TestDeviceStartsGlobalCap(t *testing.T) {
	f := newFixture(t, 5, 100)
	// Five pending requests, through all three start endpoints, from
	// different addresses.
	res, approved := f.startCLI("10.0.0.1")
	wantStarted(t, "CLI start", res)
	res, _ = f.startCLI("10.0.0.2")
	wantStarted(t, "CLI start", res)
	res, _ = f.startRFC("10.0.0.3")
	wantStarted(t, "RFC 8628 start", res)
	res, _ = f.startRFC("10.0.0.4")
	wantStarted(t, "RFC 8628 start", res)
	res, _ = f.startLink()
	wantStarted(t, "login link", res)

	// Full: every start endpoint answers 503 busy, from any address.
	res, dc := f.startCLI("10.9.9.9")
	wantBusy(t, "CLI start past the cap", res, false)
	if _, err := f.store.GetDeviceCode(context.Background(), dc); err == nil {
		t.Fatal("a refused start was stored")
	}
	res, _ = f.startRFC("10.9.9.8")
	wantBusy(t, "RFC 8628 start past the cap", res, false)
	res, _ = f.startLink()
	wantBusy(t, "login link past the cap", res, true)
	res = f.do(http.MethodGet, api.PathCLILogin+"?device_code="+randomCode(t), "", nil, "", "Cookie", f.cookie, "Accept", "application/json")
	wantBusy(t, "login link past the cap, as JSON", res, false)

	// Approving one gives its slot back, and the approved request still
	// completes while the cap is full again.
	code := f.approveCLI(approved)
	res, _ = f.startRFC("10.0.0.5")
	wantStarted(t, "RFC 8628 start after an approval", res)
	res, _ = f.startCLI("10.0.0.6")
	wantBusy(t, "CLI start, full again", res, false)
	ex := f.postJSON(api.PathCLIExchange, map[string]string{"device_code": approved, "verification_code": code}, "10.0.0.1")
	if ex.StatusCode != 200 || !strings.Contains(ex.Body, "access_token") {
		t.Fatalf("exchange of the approved request while the cap is full: %d %s", ex.StatusCode, ex.Body)
	}

	// Unapproved requests expire after 10 minutes (their record a minute
	// later): then there is room again.
	f.clock.Advance(10*time.Minute + 30*time.Second)
	res, _ = f.startCLI("10.0.0.7")
	wantBusy(t, "CLI start before the records expired", res, false)
	f.clock.Advance(31 * time.Second)
	for i := range 5 {
		res, _ = f.startCLI(fmt.Sprintf("10.0.1.%d", i))
		wantStarted(t, fmt.Sprintf("CLI start %d after expiry", i), res)
	}
	res, _ = f.startCLI("10.0.1.9")
	wantBusy(t, "CLI start, full after expiry", res, false)
}

func TestDeviceStartsPerAddressCap(t *testing.T) {
	f := newFixture(t, 100, 3)
	var codes []string
	for i := range 3 {
		res, dc := f.startCLI("192.0.2.1")
		wantStarted(t, fmt.Sprintf("start %d from 192.0.2.1", i), res)
		codes = append(codes, dc)
	}
	res, _ := f.startRFC("192.0.2.1")
	wantBusy(t, "4th start from one address", res, false)
	res, _ = f.startCLI("192.0.2.1")
	wantBusy(t, "4th start from one address", res, false)
	res, _ = f.startCLI("192.0.2.2")
	wantStarted(t, "start from another address", res)
	// Starting a pending code again is refused and does not free its slot.
	if res := f.postJSON(api.PathCLIStart, map[string]any{"device_code": codes[2]}, "192.0.2.3"); res.StatusCode != 409 {
		t.Fatalf("start of a taken device code: %d %s", res.StatusCode, res.Body)
	}
	res, _ = f.startCLI("192.0.2.1")
	wantBusy(t, "4th start from one address, after a duplicate start", res, false)
	// A denial gives the slot back.
	f.denyCLI(codes[0])
	res, _ = f.startCLI("192.0.2.1")
	wantStarted(t, "start after a denial", res)
	res, _ = f.startCLI("192.0.2.1")
	wantBusy(t, "full again", res, false)
	// A request burned by wrong codes keeps its slot until it expires.
	for range clilogin.DefaultMaxAttempts {
		f.postJSON(api.PathCLIExchange, map[string]string{"device_code": codes[1], "verification_code": "AAAAAA"}, "192.0.2.1")
	}
	if d, err := f.store.GetDeviceCode(context.Background(), codes[1]); err != nil || d.State != data.DeviceBurned {
		t.Fatalf("after 5 wrong codes: %+v %v", d, err)
	}
	res, _ = f.startCLI("192.0.2.1")
	wantBusy(t, "start after burning one", res, false)
	if total, byAddr := f.svc.PendingSlots("192.0.2.1"); total != 4 || byAddr != 3 {
		t.Fatalf("slots: %d in all, %d for 192.0.2.1; want 4 and 3", total, byAddr)
	}
}

// snapshot is the whole bbolt file as of now: any committed write changes
// it (at least the transaction id in its meta page).
func snapshot(t *testing.T, s data.Store) []byte {
	t.Helper()
	st := s.(*boltdb.Store)
	var b bytes.Buffer
	if _, err := st.Backup(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestPollsWriteNothing(t *testing.T) {
	f := newFixture(t, 100, 100)
	res, dc := f.startRFC("198.51.100.7")
	wantStarted(t, "RFC 8628 start", res)
	poll := func() string {
		res := f.postForm(api.PathToken, url.Values{"grant_type": {api.GrantDeviceCode}, "device_code": {dc}, "client_id": {"stock-cli"}}, "198.51.100.7")
		return errCode(res.Body)
	}
	res, cli := f.startCLI("198.51.100.7")
	wantStarted(t, "CLI start", res)
	before := snapshot(t, f.store)

	if got := poll(); got != "authorization_pending" {
		t.Fatalf("first poll: %q", got)
	}
	const n = 50
	for i := range n {
		if got := poll(); got != "slow_down" {
			t.Fatalf("fast poll %d: %q, want slow_down", i, got)
		}
	}
	// Each slow_down added 5 s to the interval: waiting 5 s is not enough.
	f.clock.Advance(6 * time.Second)
	if got := poll(); got != "slow_down" {
		t.Fatalf("poll after 6 s with a grown interval: %q", got)
	}
	// CLI exchange polls without a code: answered, not counted, not written.
	for range n {
		res := f.postJSON(api.PathCLIExchange, map[string]string{"device_code": cli}, "198.51.100.7")
		if res.StatusCode != 400 || errCode(res.Body) != api.CodeCLIInvalidCode {
			t.Fatalf("exchange without a code: %d %s", res.StatusCode, res.Body)
		}
	}
	if !bytes.Equal(before, snapshot(t, f.store)) {
		t.Fatalf("%d polls of /oauth/token and %d of %s wrote to the store", n+2, n, api.PathCLIExchange)
	}
	if d, err := f.store.GetDeviceCode(context.Background(), cli); err != nil || d.FailedAttempts != 0 {
		t.Fatalf("CLI device code after polls: %+v %v", d, err)
	}

	// A client that waits its (grown) interval hears authorization_pending.
	f2 := newFixture(t, 100, 100)
	_, dc = f2.startRFC("198.51.100.8")
	f = f2
	if got := poll(); got != "authorization_pending" {
		t.Fatalf("first poll: %q", got)
	}
	if got := poll(); got != "slow_down" {
		t.Fatalf("second poll at once: %q", got)
	}
	f.clock.Advance(11 * time.Second) // past the interval, grown to 10 s
	if got := poll(); got != "authorization_pending" {
		t.Fatalf("poll after waiting: %q", got)
	}
	f.clock.Advance(11 * time.Second)
	if got := poll(); got != "authorization_pending" {
		t.Fatalf("poll after waiting again: %q", got)
	}
	// Expired: 10 minutes after the start, a poll is told so.
	f.clock.Advance(10 * time.Minute)
	if got := poll(); got != "expired_token" {
		t.Fatalf("poll after 10 minutes: %q", got)
	}
}

// TestExchangeParallelWrongGuesses: many wrong codes at once evaluate no
// more than MaxAttempts of them; the rest are told the code is burned.
func TestExchangeParallelWrongGuesses(t *testing.T) {
	t.Run("bbolt", func(t *testing.T) { parallelWrongGuesses(t, newFixture(t, 100, 100)) })
	t.Run("etcd", func(t *testing.T) {
		cluster := etcdtest.Start(t)
		parallelWrongGuesses(t, newFixtureOn(t, 100, 100, func(now func() time.Time) data.Store {
			st, err := etcd.Open(context.Background(), etcd.Config{Endpoints: cluster.Endpoints(), Root: "/arbor-clilogin/"}, etcd.Options{Now: now, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}))
	})
}

func parallelWrongGuesses(t *testing.T, f *fixture) {
	res, dc := f.startCLI("203.0.113.1")
	wantStarted(t, "CLI start", res)
	right := f.approveCLI(dc)
	const n = 200
	var mu sync.Mutex
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			guess := "AAAAAA"
			if right == guess {
				guess = "BBBBBB"
			}
			b, _ := json.Marshal(map[string]string{"device_code": dc, "verification_code": guess})
			req, _ := http.NewRequest(http.MethodPost, f.base+api.PathCLIExchange, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.1.%d.%d", i/256, i%256))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			mu.Lock()
			outcomes[fmt.Sprintf("%d %s", res.StatusCode, errCode(string(raw)))]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if outcomes["400 invalid_code"] != clilogin.DefaultMaxAttempts || outcomes["400 device_code_burned"] != n-clilogin.DefaultMaxAttempts {
		t.Fatalf("outcomes of %d parallel wrong codes: %v; want exactly %d evaluated (invalid_code), the rest device_code_burned", n, outcomes, clilogin.DefaultMaxAttempts)
	}
	d, err := f.store.GetDeviceCode(context.Background(), dc)
	if err != nil || d.State != data.DeviceBurned || d.FailedAttempts != clilogin.DefaultMaxAttempts || d.VerificationHash != "" {
		t.Fatalf("stored device code: %+v %v; want burned after exactly 5 attempts", d, err)
	}
	ex := f.postJSON(api.PathCLIExchange, map[string]string{"device_code": dc, "verification_code": right}, "203.0.113.1")
	if errCode(ex.Body) != api.CodeCLIBurnedDevice {
		t.Fatalf("the right code after the burn: %d %s", ex.StatusCode, ex.Body)
	}
}

// approveElsewhere approves a pending request the way another replica
// sharing the store does: this process's slots do not hear of it.
func (f *fixture) approveElsewhere(dc string) {
	f.t.Helper()
	now := f.clock.Now().UTC()
	if _, err := f.store.UpdateDeviceCode(context.Background(), dc, func(cur data.DeviceCode) (data.DeviceCode, error) {
		cur.State, cur.UserID, cur.ApprovedAt = data.DeviceApproved, "u1", now
		return cur, nil
	}); err != nil {
		f.t.Fatal(err)
	}
}

// TestSlotsFreedByApprovalElsewhere: before refusing a start, the slots
// in the way are checked against the store, so approvals on other
// replicas free them.
func TestSlotsFreedByApprovalElsewhere(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		f := newFixture(t, 100, 2)
		_, c1 := f.startCLI("192.0.2.1")
		res, _ := f.startRFC("192.0.2.1")
		wantStarted(t, "2nd start", res)
		res, _ = f.startCLI("192.0.2.1")
		wantBusy(t, "3rd start", res, false)
		f.approveElsewhere(c1)
		res, _ = f.startCLI("192.0.2.1")
		wantBusy(t, "3rd start at once after the approval elsewhere: checked less than a second ago", res, false)
		f.clock.Advance(time.Second) // the per-address check runs at most once a second
		res, _ = f.startCLI("192.0.2.1")
		wantStarted(t, "3rd start after the approval elsewhere", res)
		f.clock.Advance(time.Second) // the per-address check runs at most once a second
		res, _ = f.startCLI("192.0.2.1")
		wantBusy(t, "4th start: the others are pending", res, false)
	})
	t.Run("global", func(t *testing.T) {
		f := newFixture(t, 2, 100)
		_, c1 := f.startCLI("192.0.2.1")
		res, _ := f.startCLI("192.0.2.2")
		wantStarted(t, "2nd start", res)
		f.approveElsewhere(c1)
		res, _ = f.startCLI("192.0.2.3")
		wantBusy(t, "start while the approval is not known here", res, false)
		// That refusal started a check of every slot in the background.
		for i := 0; ; i++ {
			if total, _ := f.svc.PendingSlots(""); total == 1 {
				break
			}
			if i == 500 {
				t.Fatal("the background check did not release the approved request's slot")
			}
			time.Sleep(10 * time.Millisecond)
		}
		res, _ = f.startCLI("192.0.2.3")
		wantStarted(t, "start after the check", res)
		res, _ = f.startCLI("192.0.2.4")
		wantBusy(t, "full again", res, false)
	})
}

// newCLIParts builds CLI login as Arbor does (app/webauth.go): the
// service on st, the chain with the session cookie and the service's
// bearer check (authn.CLI), and the pages and the API on them.
func newCLIParts(t testing.TB, st clilogin.Store, sessions *session.Manager, publicURL string, opts clilogin.Options) (*clilogin.Service, *pages.CLI, *api.CLI) {
	t.Helper()
	svc, err := clilogin.New(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := authn.New(authn.Config{Session: sessions.Cookies(), CLI: authn.CLI(svc)})
	if err != nil {
		t.Fatal(err)
	}
	cliPages, err := pages.NewCLI(pages.CLIOptions{Service: svc, Sessions: sessions, Chain: chain, PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	cliAPI, err := api.NewCLI(api.CLIOptions{Service: svc, Chain: chain, PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	return svc, cliPages, cliAPI
}

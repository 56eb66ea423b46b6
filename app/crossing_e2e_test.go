package app_test

// Issue 20, part 3: identities never cross. A whole Arbor (apptest) relays
// anonymous, session-cookie, CLI-bearer and worker requests of two users
// at once, over shared keep-alive client connections, pipelined raw TCP
// connections and WebSocket upgrades, to an upstream of its own pooled
// connections. The upstream records every request's identity headers
// beside the marker the client put in its query (req=<kind>-<n>): each
// request must carry exactly the identity of its kind, or none, and every
// marker must arrive exactly once.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/sdk/client"
)

// The kinds of caller. Each request's kind is in its marker, so that the
// upstream knows what it should see without sharing memory with the
// clients.
const (
	kindAnon       = iota // no credential (and, every other time, forged identity headers)
	kindOctoCookie        // octocat's session cookie
	kindMonaCookie        // monalisa's session cookie
	kindOctoCLI           // octocat's CLI access token
	kindMonaWorker        // a worker monalisa registered
	numKinds
)

var kindNames = [numKinds]string{"anon", "octocat-session", "monalisa-session", "octocat-cli", "monalisa-worker"}

// crossHeaders are the identity headers the upstream records, in the
// order of crossSeen's fields.
var crossHeaders = []string{"X-Arbor-User-Id", "X-Arbor-User-Email", "X-Arbor-User-Login", "X-Arbor-User-Groups", "X-Arbor-Worker-Id"}

// crossSeen is the identity one request reached the upstream with: the
// identity headers (each value list joined, so that a duplicate shows)
// and the assertion's subject.
type crossSeen struct {
	headers [5]string
	sub     string
}

func (s crossSeen) String() string {
	return fmt.Sprintf("%q sub=%q", s.headers, s.sub)
}

// crossUpstream is the recording upstream.
type crossUpstream struct {
	seen []atomic.Int32 // by request number: times it arrived

	mu       sync.Mutex
	expected [numKinds]*crossSeen // calibrated one by one before the load
	bad      []string             // the first few crossings
	nbad     int
	conns    map[string]bool // Arbor's connections, by remote address
}

func identityOf(r *http.Request) crossSeen {
	var s crossSeen
	for i, h := range crossHeaders {
		s.headers[i] = strings.Join(r.Header.Values(h), "|")
	}
	if vs := r.Header.Values("X-Arbor-Assertion"); len(vs) == 1 {
		s.sub = assertionSubject(vs[0])
	} else if len(vs) > 1 {
		s.sub = fmt.Sprintf("%d assertions", len(vs))
	}
	return s
}

// assertionSubject reads the sub claim of a JWT without checking it (the
// assertion's signature is TestIdentityHeaders' business).
func assertionSubject(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "malformed assertion"
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Sub string `json:"sub"`
	}
	if err != nil || json.Unmarshal(b, &c) != nil || c.Sub == "" {
		return "malformed assertion"
	}
	return c.Sub
}

func (u *crossUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	marker := r.URL.Query().Get("req")
	id := identityOf(r)
	i := strings.LastIndexByte(marker, '-')
	kindName, num := marker[:max(i, 0)], marker[i+1:]
	kind := -1
	for k, name := range kindNames {
		if name == kindName {
			kind = k
		}
	}
	u.mu.Lock()
	u.conns[r.RemoteAddr] = true
	switch {
	case kind < 0:
		u.fail("request %s %s without a known marker", r.Method, r.URL)
	case num == "calibrate":
		u.expected[kind] = &id
	default:
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || n >= len(u.seen) {
			u.fail("request %s with marker %q out of range", r.URL, marker)
			break
		}
		if c := u.seen[n].Add(1); c != 1 {
			u.fail("%s arrived %d times", marker, c)
		}
		if want := u.expected[kind]; want == nil || *want != id {
			u.fail("%s reached the upstream as %v, want %v", marker, id, want)
		}
	}
	u.mu.Unlock()
	if strings.HasSuffix(r.URL.Path, "/ws") {
		up := websocket.Upgrader{}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			mt, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if conn.WriteMessage(mt, append([]byte(marker+":"), msg...)) != nil {
				return
			}
		}
	}
	// The marker comes back, so that the client proves responses do not
	// cross either.
	io.WriteString(w, marker)
}

// fail records a crossing; u.mu is held.
func (u *crossUpstream) fail(format string, args ...any) {
	u.nbad++
	if len(u.bad) < 10 {
		u.bad = append(u.bad, fmt.Sprintf(format, args...))
	}
}

// crossCaller is what a request of one kind sends.
type crossCaller struct {
	path   string // prefix; the request adds echo or ws
	header http.Header
}

// parkPause is the test's server.park_idle_after.
const parkPause = 20 * time.Millisecond

func TestIdentitiesNeverCross(t *testing.T) {
	// 100,000 requests without the race detector (about 6 s here on 2
	// cores); under -race, as CI and make test run it, a fifth (about
	// 11 s): the same mix, each request about ten times dearer.
	total := 100_000
	if raceEnabled {
		total = 20_000
	}
	up := &crossUpstream{seen: make([]atomic.Int32, total), conns: map[string]bool{}}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	h := apptest.New(t, apptest.Config(func(c *config.Config) {
		c.Limits.Enabled = false
		c.Upstream.URL = srv.URL
		c.Auth.PublicPaths = []string{"/pub/"}
		c.Workers.Paths = []string{"/api/tendril/"}
		// A groups policy both users pass with different groups, so
		// that the groups header and claim tell them apart too.
		c.Policy = config.Policy{Allow: config.PolicyAllow{Groups: []string{"github:vintner", "github:vintner/platform"}}}
		// One pipelining connection pauses between its batches, so that
		// it is parked and taken up again (gateway/park.go) amid the load.
		c.Server.ParkIdleAfter = parkPause
	}))

	octo := h.Browser()
	octo.MustSignIn("github")
	mona := h.Browser()
	if res := mona.SignIn("github", "", "monalisa"); res.StatusCode != http.StatusFound || mona.Cookie(h.Cookie) == "" {
		t.Fatalf("monalisa's sign-in: %d\n%s", res.StatusCode, res.Body)
	}
	octoID, monaID := h.MustUserID(octo), h.MustUserID(mona)
	cli := apptest.CLILogin(t, octo, h.CLIClient())
	worker, workerToken, err := h.App.Workers().Register(t.Context(), monaID, "crossing")
	if err != nil {
		t.Fatal(err)
	}

	// Forged identity headers: sent by every other request of each kind;
	// Arbor must drop them (anonymous) or replace them.
	forged := http.Header{}
	for _, name := range append(crossHeaders, "X-Arbor-Assertion") {
		forged.Set(name, "forged")
	}
	cookie := func(b *apptest.Browser) http.Header {
		return http.Header{"Cookie": {h.Cookie + "=" + b.Cookie(h.Cookie)}}
	}
	callers := [numKinds]crossCaller{
		kindAnon:       {"/pub/", http.Header{}},
		kindOctoCookie: {"/app/", cookie(octo)},
		kindMonaCookie: {"/pub/", cookie(mona)}, // a public route still gets the identity
		kindOctoCLI:    {"/app/", http.Header{"Authorization": {"Bearer " + cli.AccessToken}}},
		kindMonaWorker: {"/api/tendril/", http.Header{client.HeaderWorkerID: {worker.ID}, client.HeaderWorkerToken: {workerToken}}},
	}
	base := "http://" + h.Addr
	plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// Calibration, one request at a time: what each kind reaches the
	// upstream with, checked here against who it is.
	for k := range numKinds {
		req, _ := http.NewRequest(http.MethodGet, base+callers[k].path+"echo?req="+kindNames[k]+"-calibrate", nil)
		req.Header = callers[k].header.Clone()
		res, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("calibration of %s: %d %v\n%s", kindNames[k], res.StatusCode, res.Header, body)
		}
	}
	up.mu.Lock()
	exp := up.expected
	up.mu.Unlock()
	const octoGroups, monaGroups = "github:vintner,github:vintner/platform", "github:vintner"
	for k, want := range map[int]struct{ user, login, groups, worker string }{
		kindAnon:       {},
		kindOctoCookie: {octoID, "octocat", octoGroups, ""},
		kindMonaCookie: {monaID, "monalisa", monaGroups, ""},
		kindOctoCLI:    {octoID, "octocat", octoGroups, ""},
		kindMonaWorker: {monaID, "", monaGroups, worker.ID}, // the owner's id and groups, not their login or e-mail
	} {
		got := exp[k]
		if got == nil || got.headers[0] != want.user || got.headers[2] != want.login || got.headers[3] != want.groups || got.headers[4] != want.worker ||
			(want.user == "" && *got != crossSeen{}) || (want.user != "" && got.sub != want.user) {
			t.Fatalf("calibration: %s reached the upstream as %v; want user %q, login %q, groups %q, worker %q", kindNames[k], got, want.user, want.login, want.groups, want.worker)
		}
	}
	if octoID == monaID || exp[kindOctoCookie].headers[1] == exp[kindMonaCookie].headers[1] {
		t.Fatalf("octocat and monalisa are not told apart: %v, %v", exp[kindOctoCookie], exp[kindMonaCookie])
	}

	// The load: request numbers [0, total) are shared out between three
	// kinds of client, all at once; request n is of kind n % numKinds
	// (n / numKinds % 2 == 1 adds the forged headers).
	nWS := total / 100
	nPipe := total * 2 / 5
	nKeep := total - nWS - nPipe
	marker := func(n int) string { return kindNames[n%numKinds] + "-" + strconv.Itoa(n) }
	header := func(n int) http.Header {
		hd := callers[n%numKinds].header.Clone()
		if n/numKinds%2 == 1 {
			for k, v := range forged {
				hd[k] = v
			}
		}
		return hd
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}

	// Keep-alive: 8 goroutines share 4 connections, so that one
	// connection carries every kind in turn.
	keep := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 4, MaxIdleConnsPerHost: 4}}
	t.Cleanup(keep.CloseIdleConnections)
	var next atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				n := int(next.Add(1)) - 1
				if n >= nKeep {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, base+callers[n%numKinds].path+"echo?req="+marker(n), nil)
				req.Header = header(n)
				res, err := keep.Do(req)
				if err != nil {
					report(fmt.Errorf("keep-alive %s: %w", marker(n), err))
					return
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK || string(body) != marker(n) {
					report(fmt.Errorf("keep-alive %s: %d %q", marker(n), res.StatusCode, body))
					return
				}
			}
		})
	}

	// Pipelining: 4 raw connections, each writing batches of 10 requests
	// of mixed kinds at once, then reading the 10 answers in order. The
	// first pauses up to three park periods before each batch.
	const batch = 10
	pipeStart := nKeep
	var nextBatch atomic.Int64
	for i := range 4 {
		wg.Go(func() {
			conn, err := net.Dial("tcp", h.Addr)
			if err != nil {
				report(err)
				return
			}
			defer conn.Close()
			br := bufio.NewReader(conn)
			var buf bytes.Buffer
			for {
				first := pipeStart + int(nextBatch.Add(1)-1)*batch
				if first >= pipeStart+nPipe {
					return
				}
				last := min(first+batch, pipeStart+nPipe)
				buf.Reset()
				for n := first; n < last; n++ {
					fmt.Fprintf(&buf, "GET %secho?req=%s HTTP/1.1\r\nHost: %s\r\n", callers[n%numKinds].path, marker(n), h.Addr)
					header(n).Write(&buf)
					buf.WriteString("\r\n")
				}
				if i == 0 {
					time.Sleep(time.Duration(rand.Int64N(int64(3 * parkPause))))
				}
				conn.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := conn.Write(buf.Bytes()); err != nil {
					report(fmt.Errorf("pipelined batch from %s: %w", marker(first), err))
					return
				}
				for n := first; n < last; n++ {
					res, err := http.ReadResponse(br, nil)
					if err != nil {
						report(fmt.Errorf("pipelined %s: %w", marker(n), err))
						return
					}
					body, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK || string(body) != marker(n) || res.Close {
						report(fmt.Errorf("pipelined %s: %d %q (close %v)", marker(n), res.StatusCode, body, res.Close))
						return
					}
				}
			}
		})
	}

	// WebSocket upgrades, each of its kind, one message each way.
	wsStart := nKeep + nPipe
	var nextWS atomic.Int64
	for range 2 {
		wg.Go(func() {
			dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
			for {
				n := wsStart + int(nextWS.Add(1)-1)
				if n >= total {
					return
				}
				conn, res, err := dialer.Dial("ws://"+h.Addr+callers[n%numKinds].path+"ws?req="+marker(n), header(n))
				if err != nil {
					report(fmt.Errorf("WebSocket %s: %w (%v)", marker(n), err, res))
					return
				}
				res.Body.Close()
				err = conn.WriteMessage(websocket.TextMessage, []byte("hi"))
				var msg []byte
				if err == nil {
					_, msg, err = conn.ReadMessage()
				}
				conn.Close()
				if err != nil || string(msg) != marker(n)+":hi" {
					report(fmt.Errorf("WebSocket %s: %q %v", marker(n), msg, err))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	up.mu.Lock()
	defer up.mu.Unlock()
	if up.nbad > 0 {
		t.Errorf("%d identity crossings or duplicates at the upstream; the first:\n%s", up.nbad, strings.Join(up.bad, "\n"))
	}
	missing := 0
	for n := range up.seen {
		if up.seen[n].Load() == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d requests never reached the upstream", missing, total)
	}
	// The upstream connections are shared too: far fewer than requests
	// (each WebSocket holds one of its own).
	if len(up.conns) > total/10 {
		t.Errorf("Arbor opened %d connections to the upstream for %d requests: they are not shared", len(up.conns), total)
	}
	unparked := metricValueOf(metricsText(t, h.App), "arbor_connections_unparked_total")
	if unparked == 0 {
		t.Errorf("no parked connection was taken up again: the pausing connection never parked")
	}
	t.Logf("%d requests (%d keep-alive, %d pipelined, %d WebSocket upgrades) over %d upstream connections, kinds %v in turn, every other one with forged identity headers; %v batches woke a parked connection",
		total, nKeep, nPipe, nWS, len(up.conns), kindNames, unparked)
}

// metricValueOf is the value of the sample line named in a /metrics text,
// 0 if there is none.
func metricValueOf(m, name string) float64 {
	for _, line := range strings.Split(m, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

package main

// Several Arbor replicas on one etcd cluster, as operators run them: real
// `arbor serve` processes (the race-enabled binary of TestMain) with
// store.backend etcd, an embedded etcd cluster on 127.0.0.1 (etcdtest),
// the fake providers, a recording upstream, and a small round-robin load
// balancer in front whose address is the public URL.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data/etcd/etcdtest"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/client"
	"github.com/vintner/arbor/sdk/plugintest"
)

// replica is one `arbor serve` process.
type replica struct {
	name string
	base string // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
	dead atomic.Bool
}

// cluster is everything the replica tests run against.
type cluster struct {
	etcd     *etcdtest.Cluster
	replicas []*replica
	lb       *balancer
	public   string // the balancer's URL, Arbor's public_url
	upstream *httptest.Server
	fakes    *fakes.Set
}

// replicaTimeout is store.request_timeout of the replicas: how long a
// store call may wait for a quorum before answering 503.
const replicaTimeout = 2 * time.Second

func startCluster(t *testing.T, members int) *cluster {
	t.Helper()
	return startClusterEnv(t, members)
}

// startClusterEnv is startCluster with extra environment entries for the
// replicas (KEY=value; a later entry wins over startCluster's).
func startClusterEnv(t *testing.T, members int, extra ...string) *cluster {
	t.Helper()
	c := &cluster{etcd: etcdtest.StartCluster(t, members)}
	c.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"user": r.Header.Get("X-Arbor-User-Id"), "worker": r.Header.Get("X-Arbor-Worker-Id"),
			"token_seen": fmt.Sprint(r.Header.Get("X-Worker-Token") != ""),
		})
	}))
	t.Cleanup(c.upstream.Close)
	c.lb = newBalancer(t)
	c.public = c.lb.url
	set, err := fakes.Start(c.public, fakes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	c.fakes = set

	shared, err := os.MkdirTemp("", "arbrep")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	sessionKey, _ := config.GenerateToken()
	cliKey, _ := config.GenerateToken()
	sealKey, _ := config.GenerateKeyringEntry(time.Now())
	env := append([]string{
		"PATH=" + os.Getenv("PATH"),
		"ARBOR_LOG_LEVEL=debug",
		// Several replicas on one host: each its own metrics port.
		"ARBOR_SERVER_METRICS_LISTEN=127.0.0.1:0",
		// The load under faults signs in and logs in the CLI from one
		// address in a loop; these tests are about replicas, not limits.
		"ARBOR_LIMITS_ENABLED=false",
		"ARBOR_PUBLIC_URL=" + c.public,
		"ARBOR_UPSTREAM_URL=" + c.upstream.URL,
		"ARBOR_AUTH_DEFAULT_ROUTE=api",
		"ARBOR_WORKERS_PATHS=/api/tendril/",
		"ARBOR_STORE_BACKEND=etcd",
		"ARBOR_STORE_ENDPOINTS=" + strings.Join(c.etcd.Endpoints(), ","),
		"ARBOR_STORE_ROOT=/arbor-replicas/",
		"ARBOR_STORE_REQUEST_TIMEOUT=" + replicaTimeout.String(),
		// Every replica shares the secrets and the assertion key, and the
		// compiled plugins (so the second one starts at once).
		config.EnvSessionKey + "=" + sessionKey,
		config.EnvCLIJWTSecret + "=" + cliKey,
		config.EnvEncryptionKeys + "=" + sealKey,
		"ARBOR_SECRETS_ASSERTION_KEY_FILE=" + filepath.Join(shared, "assertion-key.pem"),
		"ARBOR_PLUGINS_CACHE_DIR=" + plugintest.DefaultCacheDir(),
	}, set.Environ()...)
	env = append(env, extra...)
	for _, name := range []string{"a", "b"} {
		r := startReplica(t, name, env)
		c.replicas = append(c.replicas, r)
		c.lb.add(r)
	}
	return c
}

func startReplica(t *testing.T, name string, env []string) *replica {
	t.Helper()
	dir, err := os.MkdirTemp("", "arbr"+name) // short: the admin socket lives here
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	r := &replica{name: name, base: "http://" + addr, logs: &syncBuffer{}, done: make(chan error, 1)}
	r.cmd = exec.Command(arborBin, "serve")
	// Its own metrics port unless env names one (a later entry wins): the
	// default, 127.0.0.1:9180, is shared by every test server on the host.
	r.cmd.Env = append(append([]string{"ARBOR_SERVER_METRICS_LISTEN=127.0.0.1:0"}, env...), "HOME="+dir, "ARBOR_DATA_DIR="+dir, "ARBOR_LISTEN="+addr)
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		if !r.dead.Load() {
			r.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.done:
			case <-time.After(30 * time.Second):
				t.Errorf("replica %s did not stop within 30s of SIGTERM", name)
				r.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			full := filepath.Join(os.TempDir(), "arbor-replica-"+name+".log")
			os.WriteFile(full, []byte(r.logs.String()), 0o600)
			t.Logf("replica %s output (all of it in %s), tail:\n%s", name, full, tail(r.logs.String(), 3000))
		}
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := http.Get(r.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		select {
		case err := <-r.done:
			r.dead.Store(true)
			t.Fatalf("replica %s exited before it was ready: %v\n%s", name, err, tail(r.logs.String(), 6000))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s: /readyz not 200 within 3 minutes\n%s", name, tail(r.logs.String(), 6000))
		}
	}
}

// kill ends the replica with SIGKILL, as a crashed machine would.
func (r *replica) kill(t *testing.T) {
	r.dead.Store(true)
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-r.done
}

// balancer spreads requests over the live replicas round-robin. A
// replica it cannot connect to is skipped (the request was never sent, so
// trying the next one is safe for any method); a request that fails after
// it was sent answers 502.
type balancer struct {
	url       string
	mu        sync.Mutex
	backends  []*replica
	next      int
	transport *http.Transport
}

func newBalancer(t *testing.T) *balancer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{url: "http://" + ln.Addr().String(), transport: &http.Transport{
		// A new connection per request: net/http retries an idempotent
		// request whose reused connection breaks, which would hide from
		// the balancer that a killed replica had already received it.
		DisableKeepAlives: true,
	}}
	srv := &http.Server{Handler: b}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *balancer) add(r *replica) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = append(b.backends, r)
}

func (b *balancer) pick() []*replica {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*replica, 0, len(b.backends))
	for i := range b.backends {
		out = append(out, b.backends[(b.next+i)%len(b.backends)])
	}
	b.next++
	return out
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "balancer: reading the body", http.StatusBadRequest)
		return
	}
	for _, be := range b.pick() {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, be.base+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		req.Host = r.Host // Arbor is reached at the public URL
		resp, err := b.transport.RoundTrip(req)
		var op *net.OpError
		if err != nil && errors.As(err, &op) && op.Op == "dial" {
			continue // not sent: the next replica
		}
		if err != nil {
			w.Header().Set("X-Balancer-Error", "replica failed mid-request")
			http.Error(w, "balancer: "+err.Error(), http.StatusBadGateway)
			return
		}
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.Header().Set("X-Replica", be.name)
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	w.Header().Set("X-Balancer-Error", "no replica")
	http.Error(w, "balancer: no replica answers", http.StatusBadGateway)
}

// agent is one browser-like client: a cookie jar, no redirects followed.
type agent struct {
	t    *testing.T
	http *http.Client
	// observe, if set, hears of every request: its duration and outcome.
	observe func(what string, d time.Duration, status int, err error)
}

func newAgent(t *testing.T, timeout time.Duration) *agent {
	jar, _ := cookiejar.New(nil)
	return &agent{t: t, http: &http.Client{
		Jar: jar, Timeout: timeout,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (a *agent) do(method, u string, body io.Reader, hdr http.Header) (reply, error) {
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return reply{}, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	start := time.Now()
	resp, err := a.http.Do(req)
	if err != nil {
		if a.observe != nil {
			a.observe(method+" "+req.URL.Path, time.Since(start), 0, err)
		}
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if a.observe != nil {
		a.observe(method+" "+req.URL.Path, time.Since(start), resp.StatusCode, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}

func (a *agent) get(u string, hdr http.Header) (reply, error) {
	return a.do(http.MethodGet, u, nil, hdr)
}

func (a *agent) postForm(u string, form url.Values) (reply, error) {
	return a.do(http.MethodPost, u, strings.NewReader(form.Encode()), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
}

func (a *agent) postJSON(u string, v any, hdr http.Header) (reply, error) {
	b, _ := json.Marshal(v)
	h := http.Header{"Content-Type": {"application/json"}}
	for k, vs := range hdr {
		h[k] = vs
	}
	return a.do(http.MethodPost, u, bytes.NewReader(b), h)
}

// registerWorker registers a worker named name through base's workers
// API as user and returns its id and the headers that authenticate it.
func registerWorker(t *testing.T, user *agent, base, name string) (string, http.Header) {
	t.Helper()
	reg, err := expect(user.postJSON(base+"/api/workers", map[string]string{"name": name}, nil))(http.StatusCreated, "register "+name)
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		Worker struct{ ID string } `json:"worker"`
		Token  string              `json:"token"`
	}
	if err := json.Unmarshal([]byte(reg.body), &w); err != nil || w.Worker.ID == "" || w.Token == "" {
		t.Fatalf("register %s: an answer without a worker id and token (%v)", name, err)
	}
	return w.Worker.ID, http.Header{client.HeaderWorkerID: {w.Worker.ID}, client.HeaderWorkerToken: {w.Token}}
}

// expect turns an unexpected status into an error that says what came
// back. It is curried so that a call reads expect(a.get(…))(200, "what").
func expect(r reply, err error) func(status int, what string) (reply, error) {
	return func(status int, what string) (reply, error) {
		if err != nil {
			return r, fmt.Errorf("%s: %w", what, err)
		}
		if r.status != status {
			return r, &statusError{what: what, r: r, want: status}
		}
		return r, nil
	}
}

type statusError struct {
	what string
	r    reply
	want int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: %d (want %d) %s", e.what, e.r.status, e.want, tail(e.r.body, 300))
}

// signIn signs the agent in through the fake GitHub at base (the balancer
// or one replica) and returns the session cookie's value.
func (a *agent) signIn(base string) (string, error) {
	r, err := expect(a.get(base+"/auth/start/github", nil))(http.StatusFound, "start")
	if err != nil {
		return "", err
	}
	r, err = expect(a.get(r.header.Get("Location")+"&fake_auto=approve", nil))(http.StatusFound, "fake authorize")
	if err != nil {
		return "", err
	}
	r, err = expect(a.get(r.header.Get("Location"), nil))(http.StatusFound, "callback")
	if err != nil {
		return "", err
	}
	u, _ := url.Parse(base)
	for _, ck := range a.http.Jar.Cookies(u) {
		if ck.Name == "arbor_session" {
			return ck.Value, nil
		}
	}
	return "", errors.New("callback: no arbor_session cookie")
}

var (
	csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	verifyRE    = regexp.MustCompile(`id="verification-code">([^<]*)<`)
)

// cliLogin runs the CLI login: start at startBase, approve as the
// signed-in agent at approveBase, exchange at exchangeBase. It returns the
// access and refresh tokens.
func (a *agent) cliLogin(startBase, approveBase, exchangeBase string) (access, refresh string, err error) {
	cli := newAgent(a.t, a.http.Timeout)
	cli.observe = a.observe
	var raw [32]byte
	rand.Read(raw[:])
	verifier := base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(verifier))
	rand.Read(raw[:16])
	raw[6] = raw[6]&0x0f | 0x40
	raw[8] = raw[8]&0x3f | 0x80
	dc := fmt.Sprintf("%x-%x-%x-%x-%x", raw[0:4], raw[4:6], raw[6:8], raw[8:10], raw[10:16])
	if _, err := expect(cli.postJSON(startBase+"/api/auth/cli/start", map[string]any{
		"device_code": dc, "code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]), "client_name": "grape",
	}, nil))(http.StatusCreated, "cli start"); err != nil {
		return "", "", err
	}
	page, err := expect(a.get(approveBase+"/cli/login?device_code="+dc, nil))(http.StatusOK, "cli login page")
	if err != nil {
		return "", "", err
	}
	m := csrfFieldRE.FindStringSubmatch(page.body)
	if m == nil {
		return "", "", errors.New("cli login page without a CSRF field")
	}
	done, err := expect(a.postForm(approveBase+"/cli/login/approve", url.Values{"csrf": {m[1]}, "device_code": {dc}}))(http.StatusOK, "cli approve")
	if err != nil {
		return "", "", err
	}
	code := verifyRE.FindStringSubmatch(done.body)
	if code == nil {
		return "", "", errors.New("approval page without a verification code")
	}
	r, err := expect(cli.postJSON(exchangeBase+"/api/auth/cli/exchange", map[string]string{
		"device_code": dc, "verification_code": code[1], "code_verifier": verifier,
	}, nil))(http.StatusOK, "cli exchange")
	if err != nil {
		return "", "", err
	}
	var tk struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if err := json.Unmarshal([]byte(r.body), &tk); err != nil || tk.Access == "" {
		return "", "", fmt.Errorf("cli exchange answered %s", tail(r.body, 200))
	}
	return tk.Access, tk.Refresh, nil
}

// TestReplicas runs two Arbor replicas on a 3-member etcd cluster: first
// what one replica writes the other sees (agreement), then the same setup
// under load while etcd members and a replica fail (faults).
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an etcd cluster and two arbor processes")
	}
	c := startCluster(t, 3)
	t.Run("agree", func(t *testing.T) { replicasAgree(t, c) })
	t.Run("faults", func(t *testing.T) { replicaFaults(t, c) })
}

func replicasAgree(t *testing.T, c *cluster) {
	a, b := c.replicas[0], c.replicas[1]
	user := newAgent(t, 10*time.Second)
	// Signed in through the balancer: the OAuth state written by one
	// replica is consumed by whichever serves the callback.
	cookie, err := user.signIn(c.public)
	if err != nil {
		t.Fatal(err)
	}
	plain := newAgent(t, 10*time.Second)
	withCookie := http.Header{"Cookie": {"arbor_session=" + cookie}}
	for _, r := range c.replicas {
		if _, err := expect(plain.get(r.base+"/auth/whoami", withCookie))(200, "whoami on "+r.name); err != nil {
			t.Fatal(err)
		}
	}

	// 1. A session ended on A is refused on B within a second, though B
	// has it cached: B's cache hears of the end through the etcd watch.
	page, err := expect(user.get(a.base+"/auth/logout", nil))(200, "logout page on a")
	if err != nil {
		t.Fatal(err)
	}
	m := csrfFieldRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("logout page without CSRF")
	}
	if _, err := expect(user.postForm(a.base+"/auth/logout", url.Values{"csrf": {m[1]}}))(http.StatusSeeOther, "logout on a"); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	var refusedAfter time.Duration
	for {
		r, err := plain.get(b.base+"/auth/whoami", withCookie)
		if err != nil {
			t.Fatal(err)
		}
		if r.status == http.StatusUnauthorized {
			refusedAfter = time.Since(ended)
			break
		}
		if time.Since(ended) > 5*time.Second {
			t.Fatalf("replica b still accepts a session ended on a after 5s: %d", r.status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("session ended on a was refused on b after %v", refusedAfter.Round(time.Millisecond))
	if refusedAfter > time.Second {
		t.Errorf("replica b refused the ended session only after %v; want within 1s", refusedAfter)
	}

	// 2. A device code started and approved on A is exchanged on B.
	user = newAgent(t, 10*time.Second)
	if cookie, err = user.signIn(a.base); err != nil {
		t.Fatal(err)
	}
	access, _, err := user.cliLogin(a.base, a.base, b.base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := expect(plain.get(a.base+"/api/auth/me", http.Header{"Authorization": {"Bearer " + access}}))(200, "token from b used on a"); err != nil {
		t.Fatal(err)
	}

	// 3. A worker registered on A works through B, and its revocation on
	// A applies on B at once.
	workerID, creds := registerWorker(t, user, a.base, "replicated")
	if r, err := expect(plain.get(b.base+"/api/tendril/jobs", creds))(200, "worker on b"); err != nil || !strings.Contains(r.body, workerID) {
		t.Fatalf("%v %s", err, r.body)
	}
	if _, err := expect(user.do(http.MethodDelete, a.base+"/api/workers/"+workerID, nil, nil))(http.StatusNoContent, "revoke on a"); err != nil {
		t.Fatal(err)
	}
	// B had the worker cached; the etcd watch on workers drops it.
	revoked := time.Now()
	for {
		r, err := plain.get(b.base+"/api/tendril/jobs", creds)
		if err != nil {
			t.Fatal(err)
		}
		if r.status == http.StatusUnauthorized {
			t.Logf("worker revoked on a was refused on b after %v", time.Since(revoked).Round(time.Millisecond))
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("replica b still accepts a worker revoked on a after 1s: %d", r.status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// faultLoad is the bounded load of replicaFaults and what it saw.
type faultLoad struct {
	mu       sync.Mutex
	requests int
	classes  map[string]int // outcome class → count (ops, not requests)
	bad      []string       // outcomes outside what the faults allow
	slowest  time.Duration
	sessions []string    // acknowledged sign-ins: session cookie values
	cliToks  [][2]string // acknowledged CLI logins: access, refresh
	// windows in which failures are allowed
	noQuorumFrom, quorumBack, killedAt time.Time
	start                              time.Time
}

func (l *faultLoad) observe(what string, d time.Duration, status int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	if d > l.slowest {
		l.slowest = d
	}
	if d > replicaTimeout+3*time.Second {
		l.bad = append(l.bad, fmt.Sprintf("%s took %v (status %d, %v): past the store timeout", what, d.Round(time.Millisecond), status, err))
	}
}

// classify records one operation's outcome: ok, a 503 store_unavailable
// with a JSON body while etcd has no quorum, or a 502 from the balancer
// while a replica is being killed; anything else is a failure.
func (l *faultLoad) classify(op string, err error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	class := "ok"
	var se *statusError
	switch {
	case err == nil:
	case errors.As(err, &se) && se.r.status == http.StatusServiceUnavailable:
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(se.r.body), &body) != nil || body.Error == "" {
			class = "503 without a JSON error body"
			l.bad = append(l.bad, fmt.Sprintf("%s: %v", op, err))
			break
		}
		class = "503 " + body.Error
		inWindow := !l.noQuorumFrom.IsZero() && now.After(l.noQuorumFrom) &&
			(l.quorumBack.IsZero() || now.Before(l.quorumBack.Add(replicaTimeout+2*time.Second)))
		if !inWindow {
			l.bad = append(l.bad, fmt.Sprintf("%s: %v, outside the time without quorum", op, err))
		}
	case errors.As(err, &se) && se.r.status == http.StatusBadGateway && se.r.header.Get("X-Balancer-Error") != "":
		class = "502 replica killed mid-request"
		if l.killedAt.IsZero() || now.After(l.killedAt.Add(3*time.Second)) {
			l.bad = append(l.bad, fmt.Sprintf("%s: %v, but no replica was being killed", op, err))
		}
	case errors.As(err, &se):
		class = fmt.Sprintf("%d", se.r.status)
		l.bad = append(l.bad, fmt.Sprintf("%s: %v", op, err))
	default:
		class = "transport error"
		l.bad = append(l.bad, fmt.Sprintf("%s: %v", op, err))
	}
	l.classes[op+": "+class]++
	if n := len(l.bad); n > 0 && !strings.HasPrefix(l.bad[n-1], "[") {
		l.bad[n-1] = fmt.Sprintf("[at %.2fs] %s", now.Sub(l.start).Seconds(), l.bad[n-1])
	}
}

func (l *faultLoad) mark(at *time.Time) {
	l.mu.Lock()
	*at = time.Now()
	l.mu.Unlock()
}

func replicaFaults(t *testing.T, c *cluster) {
	load := &faultLoad{classes: map[string]int{}}
	user := newAgent(t, 30*time.Second)
	user.observe = load.observe
	if _, err := user.signIn(c.public); err != nil {
		t.Fatal(err)
	}
	// Connect GitHub, so that the load can fetch provider tokens.
	r, err := expect(user.get(c.public+"/integrations/github/connect", nil))(http.StatusFound, "connect")
	if err == nil {
		r, err = expect(user.get(r.header.Get("Location")+"&fake_auto=approve", nil))(http.StatusFound, "fake authorize")
	}
	if err == nil {
		_, err = expect(user.get(r.header.Get("Location"), nil))(http.StatusFound, "connect callback")
	}
	if err != nil {
		t.Fatal(err)
	}
	_, creds := registerWorker(t, user, c.public, "under-load")

	ops := []struct {
		name string
		run  func(a *agent) error
	}{
		{"sign-in", func(a *agent) error {
			fresh := newAgent(t, a.http.Timeout)
			fresh.observe = load.observe
			ck, err := fresh.signIn(c.public)
			if err == nil {
				load.mu.Lock()
				load.sessions = append(load.sessions, ck)
				load.mu.Unlock()
			}
			return err
		}},
		{"cli exchange", func(a *agent) error {
			acc, ref, err := user.cliLogin(c.public, c.public, c.public)
			if err == nil {
				load.mu.Lock()
				load.cliToks = append(load.cliToks, [2]string{acc, ref})
				load.mu.Unlock()
			}
			return err
		}},
		{"provider token", func(a *agent) error {
			_, err := expect(user.get(c.public+"/api/providers/github/token", nil))(200, "provider token")
			return err
		}},
		{"worker request", func(a *agent) error {
			_, err := expect(a.get(c.public+"/api/tendril/jobs", creds))(200, "worker request")
			return err
		}},
	}
	load.start = time.Now() // before the load: no goroutine reads it yet
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := newAgent(t, 30*time.Second)
			a.observe = load.observe
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				op := ops[i%len(ops)]
				load.classify(op.name, op.run(a))
			}
		}()
	}
	// The load is bounded: it stops at the end of this timeline whatever
	// happens, and every request has a client timeout.
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	loadStart := load.start
	time.Sleep(3 * time.Second)
	leader := c.etcd.Leader()
	follower := (leader + 1) % c.etcd.Size()
	t.Logf("%5.1fs  stopping etcd member %s (a follower)", time.Since(loadStart).Seconds(), c.etcd.Member(follower).Name())
	c.etcd.Member(follower).Stop()
	time.Sleep(3 * time.Second)
	leader = c.etcd.Leader()
	if leader < 0 {
		t.Fatal("no etcd leader with two of three members up")
	}
	load.mark(&load.noQuorumFrom)
	t.Logf("%5.1fs  stopping etcd member %s (the leader): no quorum", time.Since(loadStart).Seconds(), c.etcd.Member(leader).Name())
	c.etcd.Member(leader).Stop()
	time.Sleep(4 * time.Second)
	t.Logf("%5.1fs  restarting both members", time.Since(loadStart).Seconds())
	for _, i := range []int{follower, leader} {
		if err := c.etcd.Member(i).Restart(); err != nil {
			t.Fatalf("restarting member %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.etcd.WaitLeader(ctx); err != nil {
		t.Fatalf("no leader after the restart: %v", err)
	}
	load.mark(&load.quorumBack)
	t.Logf("%5.1fs  quorum is back", time.Since(loadStart).Seconds())
	time.Sleep(3 * time.Second)
	load.mark(&load.killedAt)
	t.Logf("%5.1fs  killing replica b (SIGKILL)", time.Since(loadStart).Seconds())
	c.replicas[1].kill(t)
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%5.1fs  load stopped", time.Since(loadStart).Seconds())

	// Everything acknowledged is still there, served by the survivor.
	a := c.replicas[0]
	plain := newAgent(t, 10*time.Second)
	load.mu.Lock()
	sessions, toks := load.sessions, load.cliToks
	load.mu.Unlock()
	var lost []string
	for _, ck := range sessions {
		if r, err := plain.get(a.base+"/auth/whoami", http.Header{"Cookie": {"arbor_session=" + ck}}); err != nil || r.status != 200 {
			lost = append(lost, fmt.Sprintf("session: %d %v", r.status, err))
		}
	}
	for _, tk := range toks {
		if r, err := plain.get(a.base+"/api/auth/me", http.Header{"Authorization": {"Bearer " + tk[0]}}); err != nil || r.status != 200 {
			lost = append(lost, fmt.Sprintf("cli token: %d %v", r.status, err))
		}
	}
	if _, err := expect(plain.get(a.base+"/api/tendril/jobs", creds))(200, "worker after the faults"); err != nil {
		lost = append(lost, err.Error())
	}

	load.mu.Lock()
	defer load.mu.Unlock()
	var report strings.Builder
	fmt.Fprintf(&report, "requests served: %d (slowest %v)\n", load.requests, load.slowest.Round(time.Millisecond))
	for _, k := range sortedKeys(load.classes) {
		fmt.Fprintf(&report, "  %-50s %d\n", k, load.classes[k])
	}
	fmt.Fprintf(&report, "records checked after recovery: %d sessions, %d CLI logins, 1 worker; lost: %d", len(sessions), len(toks), len(lost))
	t.Log("\n" + report.String())
	for _, l := range lost {
		t.Errorf("lost after recovery: %s", l)
	}
	for _, b := range load.bad {
		t.Errorf("not allowed: %s", b)
	}
	if len(sessions) == 0 || len(toks) == 0 {
		t.Errorf("the load acknowledged %d sign-ins and %d CLI logins; it proved nothing", len(sessions), len(toks))
	}
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

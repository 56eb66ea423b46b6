package gitproxy_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/edge/gitproxy"
	"github.com/vintner/arbor/service/connections"
	"github.com/vintner/arbor/service/workers"
)

// noSessions is a session authenticator that finds none: the Git proxy
// asks only for repository credentials.
type noSessions struct{}

func (noSessions) Authenticate(*fiber.Ctx) (authn.Identity, authn.Outcome, error) {
	return authn.Identity{}, authn.None, nil
}
func (noSessions) ClearCookie(*fiber.Ctx) {}

// tokens is a broker that answers one token, or err.
type tokens struct {
	mu    sync.Mutex
	token string
	err   error
	calls int
}

func (t *tokens) ValidProviderToken(_ context.Context, userID, provider string) (connections.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls++
	if t.err != nil {
		return connections.Token{}, t.err
	}
	return connections.Token{AccessToken: t.token}, nil
}

func (t *tokens) set(tok string, err error) {
	t.mu.Lock()
	t.token, t.err = tok, err
	t.mu.Unlock()
}

// env is the Git proxy in a real gateway on 127.0.0.1 with a real bbolt
// store and worker service, in front of host, a Git host the test
// programs.
type env struct {
	base        string
	tokens      *tokens
	auth        string // Basic of a git:write credential
	readAuth    string // Basic of a git:read credential limited to octocat/*
	host        atomic.Pointer[http.HandlerFunc]
	lastRequest atomic.Pointer[http.Request]
}

func newEnv(t *testing.T, cfg gitproxy.Config) *env {
	t.Helper()
	e := &env{tokens: &tokens{token: "gho_provider-token"}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "a.db"), boltdb.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ws := workers.New(st, workers.Options{FlushInterval: time.Hour, Logger: quiet})
	t.Cleanup(ws.Close)
	ctx := context.Background()
	if err := st.CreateUser(ctx, data.User{ID: "alice", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	basic := func(g workers.Grant) string {
		w, tok, err := ws.RegisterWith(ctx, "alice", "c", g)
		if err != nil {
			t.Fatal(err)
		}
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(w.ID+":"+tok))
	}
	e.auth = basic(workers.Grant{Scopes: []string{"git:write"}})
	e.readAuth = basic(workers.Grant{Scopes: []string{"git:read"}, Repos: []string{"octocat/*"}})
	chain, err := authn.New(authn.Config{Session: noSessions{}, Repo: authn.RepoCredentials(ws)})
	if err != nil {
		t.Fatal(err)
	}
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.lastRequest.Store(r)
		(*e.host.Load())(w, r)
	}))
	t.Cleanup(host.Close)
	e.setHost(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "0000") })

	cfg.Chain, cfg.Tokens, cfg.PublicURL = chain, e.tokens, "https://arbor.example"
	cfg.Hosts = gitproxy.HostsFunc(func(p string) (string, string, bool) { return host.URL + "/base", "x-access-token", p == "github" })
	p, err := gitproxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	srv, err := gateway.New(gateway.Options{Logger: quiet, AccessLogger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Mount(gateway.ClassGit, p.Routes, gateway.WithStreamedBody()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	e.base = "http://" + ln.Addr().String()
	return e
}

func (e *env) setHost(h http.HandlerFunc) { e.host.Store(&h) }

// answer is what a client got.
type answer struct {
	status     int
	code       string // the JSON error code, or "text" for a text/plain body
	retryAfter string
	body       string
}

func (e *env) do(t *testing.T, method, path, auth string, hdr http.Header, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), body: string(b)}
	var j struct {
		Error string `json:"error"`
	}
	switch ct := res.Header.Get("Content-Type"); {
	case strings.HasPrefix(ct, "application/json"):
		_ = json.Unmarshal(b, &j)
		a.code = j.Error
	case strings.HasPrefix(ct, "text/plain"):
		a.code = "text"
	}
	return a
}

const refs = "/git/github/octocat/hello.git/info/refs?service=git-upload-pack"

// The Git host's refusals and failures, and the broker's, each become an
// answer that says what happened: never the host's body, never a hang.
func TestFailures(t *testing.T) {
	e := newEnv(t, gitproxy.Config{ResponseHeaderTimeout: 300 * time.Millisecond})
	status := func(code int, hdr ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(hdr); i += 2 {
				w.Header().Set(hdr[i], hdr[i+1])
			}
			w.WriteHeader(code)
			_, _ = io.WriteString(w, "<html>secret account name</html>")
		}
	}
	for _, tc := range []struct {
		name  string
		host  http.HandlerFunc
		token error
		want  answer
	}{
		{"not found", status(404), nil, answer{status: 404, code: gitproxy.CodeRepoNotFound}},
		{"token refused", status(401), nil, answer{status: 403, code: gitproxy.CodeTokenRefused}},
		{"forbidden", status(403), nil, answer{status: 403, code: connections.CodeProviderRefused}},
		{"rate limited", status(429, "Retry-After", "7"), nil, answer{status: 429, code: connections.CodeProviderRateLimited, retryAfter: "7"}},
		{"secondary rate limit", status(403, "Retry-After", "60"), nil, answer{status: 429, code: connections.CodeProviderRateLimited, retryAfter: "60"}},
		{"outage", status(503), nil, answer{status: 502, code: connections.CodeProviderUnavailable}},
		{"redirect", status(301, "Location", "https://elsewhere.example/x.git/info/refs"), nil, answer{status: 502, code: connections.CodeProviderRefused}},
		{"hang", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, nil, answer{status: 504, code: gitproxy.CodeProviderTimeout}},
		{"not connected", nil, &connections.Error{Kind: connections.ErrNotConnected}, answer{status: 403, code: connections.CodeNotConnected}},
		{"needs reconnect", nil, &connections.Error{Kind: connections.ErrReconnectRequired, Reason: "invalid_grant"}, answer{status: 403, code: connections.CodeReconnectRequired}},
		{"refresh rate limited", nil, &connections.Error{Kind: connections.ErrRateLimited, RetryAfter: 30 * time.Second}, answer{status: 503, code: connections.CodeProviderRateLimited, retryAfter: "30"}},
		{"provider down", nil, &connections.Error{Kind: connections.ErrProviderUnavailable}, answer{status: 503, code: connections.CodeProviderUnavailable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.host != nil {
				e.setHost(tc.host)
			}
			e.tokens.set("gho_provider-token", tc.token)
			start := time.Now()
			got := e.do(t, "GET", refs, e.auth, nil, nil)
			if got.status != tc.want.status || got.code != tc.want.code || got.retryAfter != tc.want.retryAfter {
				t.Fatalf("got %d %s Retry-After %q: %s; want %d %s %q", got.status, got.code, got.retryAfter, got.body, tc.want.status, tc.want.code, tc.want.retryAfter)
			}
			if strings.Contains(got.body, "secret account") || strings.Contains(got.body, "gho_") {
				t.Fatalf("the host's body or the token reached the client: %s", got.body)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
			// git gets the same status, and the message as text.
			g := e.do(t, "GET", refs, e.auth, http.Header{"User-Agent": {"git/2.39.5"}}, nil)
			if g.status != tc.want.status || g.code != "text" || !strings.Contains(g.body, "(arbor: "+tc.want.code) {
				t.Fatalf("to git: %d %s %q", g.status, g.code, g.body)
			}
		})
	}
	e.tokens.set("gho_provider-token", nil)

	// A failed upload-pack POST reaches git as an ERR packet it shows.
	e.setHost(status(404))
	g := e.do(t, "POST", "/git/github/octocat/hello.git/git-upload-pack", e.auth,
		http.Header{"User-Agent": {"git/2.39.5"}, "Content-Type": {"application/x-git-upload-pack-request"}}, strings.NewReader("0000"))
	if g.status != 200 || !strings.HasPrefix(g.body[4:], "ERR github has no repository octocat/hello") || fmt.Sprintf("%04x", len(g.body)) != g.body[:4] {
		t.Fatalf("POST to git: %d %q", g.status, g.body)
	}
}

// Only what smart HTTP needs reaches the Git host, with the provider's
// Basic credentials; nothing the client sent besides.
func TestWhatTheHostSees(t *testing.T) {
	e := newEnv(t, gitproxy.Config{})
	hdr := http.Header{
		"Git-Protocol": {"version=2"}, "User-Agent": {"git/2.39.5"}, "Cookie": {"arbor_session=abc"},
		"X-Forwarded-For": {"10.0.0.1"}, "X-Arbor-User-Id": {"mallory"}, "Accept-Encoding": {"gzip"},
	}
	got := e.do(t, "GET", refs, e.auth, hdr, nil)
	if got.status != 200 || got.body != "0000" {
		t.Fatalf("%d %q", got.status, got.body)
	}
	r := e.lastRequest.Load()
	user, pass, _ := r.BasicAuth()
	if r.URL.String() != "/base/octocat/hello.git/info/refs?service=git-upload-pack" || user != "x-access-token" || pass != "gho_provider-token" {
		t.Fatalf("the host got %s as %s:%s", r.URL, user, pass)
	}
	for _, h := range []string{"Cookie", "X-Forwarded-For", "X-Arbor-User-Id"} {
		if r.Header.Get(h) != "" {
			t.Errorf("the host got %s", h)
		}
	}
	if r.Header.Get("Git-Protocol") != "version=2" || r.Header.Get("User-Agent") != "git/2.39.5" || r.Header.Get("Accept-Encoding") != "gzip" {
		t.Errorf("the host got %v", r.Header)
	}
}

// A clone's request and answer bodies go through in constant memory: a
// 64 MiB push and a 256 MiB pack. Run with -v for the figures.
func TestStreamsInConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 320 MiB")
	}
	e := newEnv(t, gitproxy.Config{})
	const pushSize, packSize = 64 << 20, 256 << 20
	var received atomic.Int64
	e.setHost(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		received.Store(n)
		w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
		buf := make([]byte, 64<<10)
		for sent := 0; sent < packSize; sent += len(buf) {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	})
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	req, _ := http.NewRequest("POST", e.base+"/git/github/octocat/hello.git/git-receive-pack", io.LimitReader(zeros{}, pushSize))
	req.Header.Set("Authorization", e.auth)
	req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	d := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil || res.StatusCode != 200 || n != packSize || received.Load() != pushSize {
		t.Fatalf("status %d, %d bytes back (%v), host received %d", res.StatusCode, n, err, received.Load())
	}
	grew := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("pushed %d MiB and fetched %d MiB through the proxy in %v (%.0f MiB/s); heap in use grew by at most %.1f MiB",
		pushSize>>20, packSize>>20, d.Round(time.Millisecond), float64(pushSize+packSize)/(1<<20)/d.Seconds(), float64(grew)/(1<<20))
	if grew > 32<<20 {
		t.Fatalf("the heap grew by %d MiB moving %d MiB: bodies are buffered", grew>>20, (pushSize+packSize)>>20)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// Scopes, patterns and limits are applied before the host is asked.
func TestRefusals(t *testing.T) {
	e := newEnv(t, gitproxy.Config{FetchBodyLimit: 1 << 10})
	for _, tc := range []struct {
		name, method, path, auth string
		body                     string
		want                     answer
	}{
		{"push without git:write", "GET", "/git/github/octocat/hello.git/info/refs?service=git-receive-pack", e.readAuth, "", answer{status: 403, code: gitproxy.CodePushRefused}},
		{"push POST without git:write", "POST", "/git/github/octocat/hello.git/git-receive-pack", e.readAuth, "0000", answer{status: 403, code: gitproxy.CodePushRefused}},
		{"outside the patterns", "GET", "/git/github/other/hello.git/info/refs?service=git-upload-pack", e.readAuth, "", answer{status: 403, code: gitproxy.CodeRepoForbidden}},
		{"inside the patterns", "GET", refs, e.readAuth, "", answer{status: 200}},
		{"chunked body over the limit", "POST", "/git/github/octocat/hello.git/git-upload-pack", e.auth, strings.Repeat("x", 4<<10), answer{status: 413, code: "body_too_large"}},
		{"nested groups", "GET", "/git/github/group/sub/app.git/info/refs?service=git-upload-pack", e.auth, "", answer{status: 200}},
		{"without .git", "GET", "/git/github/octocat/hello/info/refs?service=git-upload-pack", e.auth, "", answer{status: 200}},
		{"other method", "PUT", "/git/github/octocat/hello.git/git-upload-pack", e.auth, "", answer{status: 403, code: gitproxy.CodeNotSmartHTTP}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.setHost(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
				_, _ = io.WriteString(w, "0000")
			})
			var body io.Reader
			if tc.body != "" {
				body = io.MultiReader(strings.NewReader(tc.body)) // no length: chunked
			}
			got := e.do(t, tc.method, tc.path, tc.auth, nil, body)
			if got.status != tc.want.status || got.code != tc.want.code {
				t.Fatalf("%d %s %s, want %d %s", got.status, got.code, got.body, tc.want.status, tc.want.code)
			}
		})
	}
}

// A request refused before its body is read still gets its answer: the
// proxy reads what is left of the body (at most 1 MiB) before answering,
// instead of closing a connection the client is still writing to, which
// the kernel answers with a reset that can take the answer with it.
func TestRefusalReadsTheBodyFirst(t *testing.T) {
	e := newEnv(t, gitproxy.Config{})
	body := strings.Repeat("0032want 0123456789012345678901234567890123456789\n", 16<<10) // ~800 KiB
	for i := range 20 {
		for _, tc := range []struct {
			name, auth string
			status     int
		}{
			{"no credential", "", http.StatusUnauthorized},
			{"read-only push", e.readAuth, http.StatusForbidden},
		} {
			path := "/git/github/octocat/hello.git/git-upload-pack"
			if tc.auth != "" {
				path = "/git/github/octocat/hello.git/git-receive-pack"
			}
			req, err := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s, round %d: %v (the refusal was lost)", tc.name, i, err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("%s, round %d: %d, want %d", tc.name, i, res.StatusCode, tc.status)
			}
		}
	}
}

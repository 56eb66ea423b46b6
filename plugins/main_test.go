package plugins_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/abi/manifest"
)

// The test plugins in testdata/ are real wasip1 modules, built once per test
// binary by TestMain with the standard toolchain (Go's build cache makes
// repeated runs cheap).

var (
	builtDir  string // one directory per build below
	cacheDir  string // shared wazero compilation cache
	buildErrs error
)

type build struct {
	dir     string // output directory name
	src     string // package under testdata
	ldflags string
	version string // manifest version override
}

var builds = []build{
	{dir: "good", src: "good"},
	{dir: "good2", src: "good", ldflags: "-X main.build=v2", version: "2.0.0"},
	{dir: "hostile", src: "hostile"},
	{dir: "abiv2", src: "abiv2"},
	{dir: "missingexport", src: "missingexport"},
}

func TestMain(m *testing.M) {
	flag.Parse()
	tmp, err := os.MkdirTemp("", "arbor-plugins-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builtDir = filepath.Join(tmp, "built")
	// The compilation cache outlives the test binary so that reruns do not
	// compile the plugins again (wazero keys it by module hash and wazero
	// version, so stale entries are never used).
	if dir, err := os.UserCacheDir(); err == nil {
		cacheDir = filepath.Join(dir, "arbor", "plugins-test-wazero")
	} else {
		cacheDir = filepath.Join(tmp, "cache")
	}
	pruneCache(cacheDir, 24)
	start := time.Now()
	if err := buildAll(); err != nil {
		fmt.Fprintln(os.Stderr, "building test plugins:", err)
		os.RemoveAll(tmp)
		os.Exit(1)
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "built %d test plugins in %v\n", len(builds), time.Since(start).Round(time.Millisecond))
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// pruneCache keeps the newest keep entries of the persistent test cache
// (each compiled test plugin takes ~15 MB and every edit of the SDK makes
// new ones).
func pruneCache(dir string, keep int) {
	var files []os.FileInfo
	var paths []string
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			files = append(files, fi)
			paths = append(paths, path)
		}
		return nil
	})
	idx := make([]int, len(files))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return files[b].ModTime().Compare(files[a].ModTime()) })
	for n, i := range idx {
		if n >= keep {
			os.Remove(paths[i])
		}
	}
}

func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

func buildAll() error {
	var wg sync.WaitGroup
	errs := make([]error, len(builds))
	for i, b := range builds {
		wg.Go(func() { errs[i] = buildOne(b) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func buildOne(b build) error {
	out := filepath.Join(builtDir, b.dir)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join("testdata", b.src, manifest.File))
	if err != nil {
		return err
	}
	var man map[string]any
	if err := json.Unmarshal(raw, &man); err != nil {
		return fmt.Errorf("%s: %w", b.src, err)
	}
	wasm := filepath.Join(out, man["name"].(string)+".wasm")
	args := []string{"build", "-buildmode=c-shared", "-trimpath", "-o", wasm}
	if b.ldflags != "" {
		args = append(args, "-ldflags", b.ldflags)
	}
	args = append(args, "./testdata/"+b.src)
	cmd := exec.Command(goTool(), args...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", b.src, err, msg)
	}
	mod, err := os.ReadFile(wasm)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(mod)
	man["sha256"] = hex.EncodeToString(sum[:])
	if b.version != "" {
		man["version"] = b.version
	}
	mb, _ := json.MarshalIndent(man, "", "  ")
	return os.WriteFile(filepath.Join(out, manifest.File), mb, 0o644)
}

// pluginDir returns the directory of a built test plugin.
func pluginDir(name string) string { return filepath.Join(builtDir, name) }

// copyPlugin copies a built plugin into dst (for reload tests).
func copyPlugin(t testing.TB, name, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(pluginDir(name))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(pluginDir(name), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		// Write to a temporary name and rename, as an operator's deploy
		// would, so a concurrent reader never sees half a file.
		tmp := filepath.Join(dst, "."+e.Name()+".tmp")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dst, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newHost returns a host using the shared compilation cache, closed when
// the test ends.
func newHost(t testing.TB, p plugins.Policy) (*plugins.Host, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	h, err := plugins.NewHost(context.Background(), plugins.HostOptions{
		CacheDir: cacheDir,
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Policy:   p,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h, logs
}

func load(t testing.TB, h *plugins.Host, name string, cfg plugins.PluginConfig) *plugins.Plugin {
	t.Helper()
	p, err := h.LoadDir(context.Background(), pluginDir(name), cfg)
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

const (
	clientID     = "client-123"
	clientSecret = "s3cr3t-client-secret"
)

// fake is a small OAuth provider and API on 127.0.0.1, driven by a table of
// routes, recording what it was asked.
type fake struct {
	srv  *httptest.Server
	host string // host:port

	mu    sync.Mutex
	calls []string // "METHOD /path"
	auth  []string // Authorization header per call

	delay      time.Duration
	gate       chan struct{} // when set, handlers wait until it is closed
	repoCount  int
	handlerDur atomic.Int64 // total nanoseconds spent in handlers
	conns      atomic.Int64
}

func newFake(t testing.TB) *fake {
	t.Helper()
	f := &fake{repoCount: 100}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	f.host = strings.TrimPrefix(f.srv.URL, "http://")
	return f
}

// config points a plugin at the fake and allows its loopback address.
func (f *fake) config() plugins.PluginConfig {
	return plugins.PluginConfig{
		ClientID: clientID, ClientSecret: clientSecret,
		Endpoints: abi.Endpoints{
			AuthorizeURL: f.srv.URL + "/oauth/authorize",
			TokenURL:     f.srv.URL + "/oauth/token",
			APIBase:      f.srv.URL + "/api",
			RevokeURL:    f.srv.URL + "/oauth/revoke",
		},
		AllowPrivateHosts: []string{f.host},
	}
}

func (f *fake) record(r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
}

func (f *fake) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { f.handlerDur.Add(int64(time.Since(start))) }()
	f.record(r)
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if f.gate != nil {
		<-f.gate
	}
	switch r.URL.Path {
	case "/oauth/token":
		r.ParseForm()
		switch r.Form.Get("grant_type") {
		case "authorization_code":
			if r.Form.Get("client_id") != clientID || r.Form.Get("client_secret") != clientSecret {
				writeJSON(w, 401, map[string]string{"error": "invalid_client"})
				return
			}
			if r.Form.Get("code") != "good-code" {
				writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "bad code"})
				return
			}
			if r.Form.Get("code_verifier") == "form" {
				w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
				io.WriteString(w, "access_token=at-form&token_type=bearer&scope=repo%2Cuser")
				return
			}
			writeJSON(w, 200, map[string]any{"access_token": "at-1", "refresh_token": "rt-1", "token_type": "bearer", "expires_in": 3600, "scope": "read:user repo"})
		case "refresh_token":
			id, secret, ok := r.BasicAuth()
			if !ok || id != clientID || secret != clientSecret {
				writeJSON(w, 401, map[string]string{"error": "invalid_client"})
				return
			}
			rt := r.Form.Get("refresh_token")
			if rt == "revoked" {
				writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "token revoked"})
				return
			}
			writeJSON(w, 200, map[string]any{"access_token": "at-" + rt, "refresh_token": rt + "-next", "token_type": "bearer", "expires_in": "7200"})
		default:
			writeJSON(w, 400, map[string]string{"error": "unsupported_grant_type"})
		}
	case "/oauth/revoke":
		r.ParseForm()
		if r.Form.Get("token") == "" {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(200)
	case "/api/user":
		if r.Header.Get("Authorization") == "Bearer at-limited" {
			// GitHub's secondary rate limit: 403, quota left, retry-after.
			w.Header().Set("X-RateLimit-Remaining", "4999")
			w.Header().Set("Retry-After", "37")
			writeJSON(w, 403, map[string]string{"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})
			return
		}
		if r.Header.Get("Authorization") != "Bearer at-1" {
			writeJSON(w, 401, map[string]string{"message": "Bad credentials"})
			return
		}
		writeJSON(w, 200, map[string]any{"id": 4242, "login": "octo", "name": "Octo Cat", "email": "octo@example.com"})
	case "/api/user/repos":
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if per <= 0 {
			per = 30
		}
		if page <= 0 {
			page = 1
		}
		var list []map[string]any
		for i := (page - 1) * per; i < page*per && i < f.repoCount; i++ {
			list = append(list, map[string]any{
				"id": 1000 + i, "full_name": fmt.Sprintf("octo/repo-%d", i), "name": fmt.Sprintf("repo-%d", i),
				"description": "A repository used to test listing with a description of typical length.",
				"private":     i%2 == 0, "default_branch": "main",
				"html_url":  fmt.Sprintf("https://github.example/octo/repo-%d", i),
				"clone_url": fmt.Sprintf("https://github.example/octo/repo-%d.git", i),
				"owner":     map[string]any{"login": "octo", "id": 4242, "type": "User"},
				"fork":      false, "archived": false, "stargazers_count": i, "language": "Go",
				"updated_at": "2024-05-01T12:00:00Z",
			})
		}
		if page*per < f.repoCount {
			next := *r.URL
			q := next.Query()
			q.Set("page", strconv.Itoa(page+1))
			next.RawQuery = q.Encode()
			w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, f.srv.URL, next.RequestURI()))
		}
		writeJSON(w, 200, list)
	case "/redirect":
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	case "/big":
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("X-Fake", "big")
		w.Write(make([]byte, n))
	case "/slow":
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
		w.WriteHeader(200)
	case "/hello":
		w.Header().Set("X-Fake", "hello")
		io.WriteString(w, "hello")
	default:
		http.NotFound(w, r)
	}
}

// exchangeCmd runs the hostile plugin's Exchange with a command.
func exchangeCmd(ctx context.Context, p *plugins.Plugin, cmd string) (*abi.Token, error) {
	return p.Exchange(ctx, plugins.ExchangeInput{Code: cmd})
}

// fetchURL builds a hostile "fetch:" command.
func fetchURL(u string) string { return "fetch:" + u }

// rewriteManifest edits the plugin.json in dir.
func rewriteManifest(t testing.TB, dir string, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, manifest.File)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ = json.Marshal(m)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to five seconds (instances are replaced in the
// background).
func waitFor(t testing.TB, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached: %s", describe())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stats(p *plugins.Plugin) string { return fmt.Sprintf("%+v", p.Stats()) }

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

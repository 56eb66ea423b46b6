package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/app"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
)

// gz compresses b with gzip.
func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gzipBombs returns a gzip body that inflates to 512 MiB of zeros (512
// gzip members of 1 MiB each, about 500 KiB) and the same gzipped again
// (a couple of KiB): the two bombs. Members, because compressing
// 512 MiB once takes a minute under the race detector.
func gzipBombs(t testing.TB) (single, double []byte) {
	t.Helper()
	member := gz(t, make([]byte, 1<<20))
	single = bytes.Repeat(member, 512)
	return single, gz(t, single)
}

// multipartBody is a multipart/form-data body with one large field.
func multipartBody(t testing.TB, size int) (ctype string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("client_id", "x.bin")
	if _, err := w.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	_ = mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

// errorCodeOf returns the "error" field of a JSON error body.
func errorCodeOf(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error
}

// TestEveryArborRouteRefusesEncodedBodies builds the gateway with every
// route `arbor serve` mounts (app.New, the real sign-in, device,
// Integrations and worker wiring) and sends each route, whatever
// its method, compressed and multipart bodies: each must answer 415 with
// the stable code in a JSON body before its handler runs. A route added
// later is walked too. The Git proxy's routes relay bodies instead (git
// gzips its own); they must refuse what is not Git's smart HTTP.
func TestEveryArborRouteRefusesEncodedBodies(t *testing.T) {
	te := newTestEnv(t)
	hits := 0
	var mu sync.Mutex
	up := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	})}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(upLn)
	t.Cleanup(func() { up.Close() })
	environ := te.with("ARBOR_UPSTREAM_URL=http://"+upLn.Addr().String(), "ARBOR_SERVER_METRICS_LISTEN=")
	cfg, err := config.Load(config.Source{Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	// The whole of `arbor serve`'s wiring (package app): every route
	// mounted as serve mounts them, behind the rate limits of
	// cfg.Limits. The body rule runs first, so no request of the walk is
	// charged.
	a, err := app.New(t.Context(), cfg, app.Options{Environ: environ, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	srv := a.Server
	// The route list is read before Serve, which adds the proxy fallback.
	routes := srv.App().GetRoutes(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	base := "http://" + ln.Addr().String()

	single, double := gzipBombs(t)
	jsonBody := []byte(`{"device_code":"x"}`)
	mpType, mp := multipartBody(t, 64<<10)
	cases := []struct {
		name, ctype, cenc string
		body              []byte
		code              string
	}{
		{"gzip", "application/json", "gzip", single, reqbody.CodeUnsupportedEncoding},
		{"gzip, gzip", "application/json", "gzip, gzip", double, reqbody.CodeUnsupportedEncoding},
		{"deflate", "application/x-www-form-urlencoded", "deflate", []byte{0x78, 0x9c, 0x03, 0x00}, reqbody.CodeUnsupportedEncoding},
		{"br", "application/json", "br", []byte{0x0b, 0x02, 0x80, 0x7b, 0x7d, 0x03}, reqbody.CodeUnsupportedEncoding},
		{"gzip without a type", "", "gzip", gz(t, jsonBody), reqbody.CodeUnsupportedEncoding},
		{"multipart", mpType, "", mp, httperr.CodeUnsupportedMedia},
		{"gzip'd multipart", mpType, "gzip", gz(t, mp), reqbody.CodeUnsupportedEncoding},
		{"text/plain", "text/plain", "", jsonBody, httperr.CodeUnsupportedMedia},
	}
	client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	walked := map[string]bool{}
	for _, r := range routes {
		path := r.Path
		for _, p := range r.Params {
			path = strings.Replace(path, ":"+p, "x", 1)
		}
		for _, tc := range cases {
			req, _ := http.NewRequest(r.Method, base+path, bytes.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			req.Header.Set("Content-Encoding", tc.cenc)
			if tc.cenc == "" {
				req.Header.Del("Content-Encoding")
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s (%s): %v", r.Method, path, tc.name, err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if strings.HasPrefix(path, "/git/") {
				// The Git proxy relays git's bodies as they arrive
				// (gateway.WithStreamedBody): gzip is git's own encoding
				// of a large negotiation, relayed untouched to the Git
				// host, so the edge body rule does not apply there. A
				// request that is not Git's smart HTTP is still refused
				// before any body is read.
				if res.StatusCode != http.StatusForbidden || (r.Method != http.MethodHead && errorCodeOf(body) != "git_smart_http_only") {
					t.Errorf("%s %s with a %s body: %d %.200s, want 403 git_smart_http_only", r.Method, path, tc.name, res.StatusCode, body)
				}
				continue
			}
			if res.StatusCode != http.StatusUnsupportedMediaType {
				t.Errorf("%s %s with a %s body: %d %.200s, want 415 %s", r.Method, path, tc.name, res.StatusCode, body, tc.code)
				continue
			}
			if r.Method == http.MethodHead {
				continue
			}
			if got := errorCodeOf(body); got != tc.code || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s %s with a %s body: error %q (Content-Type %q), want %q in JSON", r.Method, path, tc.name, got, res.Header.Get("Content-Type"), tc.code)
			}
		}
		walked[r.Method+" "+r.Path] = true
	}
	for _, must := range []string{"POST /api/auth/cli/start", "POST /oauth/device/code", "POST /oauth/token", "POST /device", "POST /workers", "PATCH /api/workers/:id", "DELETE /api/providers/:provider", "POST /auth/logout", "GET /auth/start/:provider", "GET /healthz"} {
		if !walked[must] {
			t.Errorf("the walk did not reach %s; routes walked: %d", must, len(walked))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Errorf("%d requests fell through to the upstream; every route should have answered itself", hits)
	}
}

// vmHWM reads a process's peak resident set size in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the server's peak memory (Linux /proc): %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM line %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}

// TestServeRefusesDecompressionBombs: against a real `arbor serve`, the
// issue's bombs (a 980-byte double gzip and a ~500 KiB gzip, each 512 MiB
// inflated) and a gzip'd multipart body, sent anonymously to the device
// start endpoints, are answered 415 with their code; the process's peak
// memory grows by less than 64 MiB, and it keeps serving.
func TestServeRefusesDecompressionBombs(t *testing.T) {
	te := newTestEnv(t)
	s := startServe(t, te.env)
	base := "http://" + s.addr
	single, double := gzipBombs(t)
	t.Logf("bombs: %d and %d bytes, 512 MiB inflated", len(single), len(double))
	mpType, mp := multipartBody(t, 256<<20/1024) // 256 KiB of zeros; gzip'd it is tiny
	mpGz := gz(t, mp)

	before := vmHWM(t, s.cmd.Process.Pid)
	send := func(path, ctype, cenc string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if cenc != "" {
			req.Header.Set("Content-Encoding", cenc)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, errorCodeOf(b)
	}
	for range 5 {
		for _, tc := range []struct {
			path, ctype, cenc string
			body              []byte
			status            int
			code              string
		}{
			{"/api/auth/cli/start", "application/json", "gzip, gzip", double, 415, reqbody.CodeUnsupportedEncoding},
			{"/api/auth/cli/start", "application/json", "gzip", single, 415, reqbody.CodeUnsupportedEncoding},
			{"/oauth/device/code", "application/x-www-form-urlencoded", "gzip, gzip", double, 415, reqbody.CodeUnsupportedEncoding},
			{"/oauth/device/code", "application/x-www-form-urlencoded", "gzip", single, 415, reqbody.CodeUnsupportedEncoding},
			{"/oauth/device/code", mpType, "gzip", mpGz, 415, reqbody.CodeUnsupportedEncoding},
			{"/oauth/device/code", mpType, "", mp, 415, httperr.CodeUnsupportedMedia},
			{"/api/auth/cli/start", "application/json", "", single, 413, httperr.CodeBodyTooLarge},
		} {
			if status, code := send(tc.path, tc.ctype, tc.cenc, tc.body); status != tc.status || code != tc.code {
				t.Fatalf("POST %s (%s, %s, %d bytes): %d %q, want %d %q", tc.path, tc.ctype, tc.cenc, len(tc.body), status, code, tc.status, tc.code)
			}
		}
	}
	after := vmHWM(t, s.cmd.Process.Pid)
	t.Logf("peak RSS before %d MiB, after %d MiB", before>>20, after>>20)
	if after-before >= 64<<20 {
		t.Errorf("peak RSS grew by %d MiB (from %d to %d MiB); want under 64 MiB", (after-before)>>20, before>>20, after>>20)
	}
	// Still serving, and a plain body still works.
	res, err := http.Get(base + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz after the bombs: %v %v", res, err)
	}
	res.Body.Close()
	status, code := send("/api/auth/cli/start", "application/json", "",
		[]byte(`{"device_code":"dc-edge-test-0123456789abcdef0123456789","code_challenge":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","client_name":"edge test"}`))
	if status == 415 || status == 413 || status >= 500 {
		t.Fatalf("a plain JSON start after the bombs: %d %q", status, code)
	}
}

// nodeURL reads a request target the way Node's new URL(req.url, base)
// does for an http base (WHATWG URL): tabs and newlines are dropped, "\"
// is a path separator, and a target that starts with two or more slashes
// is a network-path reference: what follows them is the host.
func nodeURL(raw string) (*url.URL, error) {
	s := strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, raw)
	end := strings.IndexAny(s, "?#")
	if end < 0 {
		end = len(s)
	}
	s = strings.ReplaceAll(s[:end], "\\", "/") + s[end:]
	if strings.HasPrefix(s, "//") {
		s = "//" + strings.TrimLeft(s, "/")
	}
	ref, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	base, _ := url.Parse("http://app.internal")
	return base.ResolveReference(ref), nil
}

// TestServeOnePathReading puts a real `arbor serve` (default route
// session, public rule /static/) in front of an upstream that reads the
// request target as a URL, as a Node app does, and sends anonymous
// requests with repeated slashes in origin-form and absolute-form. The
// upstream must only ever see the path Arbor classified, under its own
// host, and never a protected path.
func TestServeOnePathReading(t *testing.T) {
	type sighting struct{ target, host, path string }
	seen := make(chan sighting, 64)
	up := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := nodeURL(r.RequestURI)
		if err != nil {
			seen <- sighting{target: r.RequestURI, host: "unparsable"}
			return
		}
		seen <- sighting{r.RequestURI, u.Host, u.EscapedPath()}
		io.WriteString(w, "app")
	})}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(upLn)
	t.Cleanup(func() { up.Close() })

	te := newTestEnv(t)
	s := startServe(t, te.with("ARBOR_UPSTREAM_URL=http://"+upLn.Addr().String(),
		"ARBOR_AUTH_DEFAULT_ROUTE=session", "ARBOR_AUTH_PUBLIC_PATHS=/static/"))
	abs := "http://" + s.addr
	tests := []struct {
		target string
		status int
		path   string // what the upstream must see; "" if nothing
	}{
		{"/static/app.js", 200, "/static/app.js"},
		{"//static/admin", 200, "/static/admin"},
		{"///static/admin", 200, "/static/admin"},
		{"//static//admin", 200, "/static/admin"},
		{"//static/admin?next=http://x/", 200, "/static/admin"},
		{"/static//admin", 200, "/static/admin"},
		{"//admin", 302, ""},
		{"///admin", 302, ""},
		{"//evil.example/admin", 302, ""},
		{"//evil.example/static/x", 302, ""},
		{abs + "//static/admin", 200, "/static/admin"},
		{abs + "///static//admin", 200, "/static/admin"},
		{abs + "//admin", 302, ""},
		{"http://static//admin", 302, ""},
		{"/static/../admin", 400, ""},
		{"/static/%2e%2e/admin", 400, ""},
		{"/\\static/admin", 400, ""},
		{"/static/..%5cadmin", 400, ""},
		{"x://static//admin", 400, ""},
	}
	for _, tc := range tests {
		conn, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", tc.target, s.addr)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.target, err)
		}
		body, _ := io.ReadAll(res.Body)
		conn.Close()
		if res.StatusCode != tc.status {
			t.Errorf("GET %s: %d %.200s, want %d", tc.target, res.StatusCode, body, tc.status)
		}
		if tc.status == 400 {
			if code := errorCodeOf(body); code != httperr.CodeBadPath {
				t.Errorf("GET %s: error %q, want bad_path", tc.target, code)
			}
		}
		var got []sighting
	drain:
		for {
			select {
			case sg := <-seen:
				got = append(got, sg)
			default:
				break drain
			}
		}
		switch {
		case tc.path == "" && len(got) > 0:
			t.Errorf("GET %s: an anonymous request reached the upstream: %+v", tc.target, got)
		case tc.path != "" && (len(got) != 1 || got[0].host != "app.internal" || got[0].path != tc.path):
			t.Errorf("GET %s: the upstream read %+v; want exactly one request for %s on its own host", tc.target, got, tc.path)
		}
		for _, sg := range got {
			if sg.host != "app.internal" || !strings.HasPrefix(sg.path, "/static/") {
				t.Errorf("GET %s: the upstream served host %q path %q to an anonymous visitor", tc.target, sg.host, sg.path)
			}
		}
	}
}

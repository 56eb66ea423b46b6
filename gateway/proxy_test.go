package gateway_test

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
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
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/gateway/httperr"
)

func TestProxyUpstreamDown(t *testing.T) {
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: "http://" + closedPort(t), DialTimeout: time.Second}}, nil)
	for _, accept := range []string{"", "application/json"} {
		resp, body := get(t, g.url+"/x", map[string]string{"Accept": accept})
		wantError(t, resp, body, http.StatusBadGateway, httperr.CodeUpstreamUnavailable)
		if strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), "refused") {
			t.Fatalf("dial error details leaked: %s", body)
		}
	}
	if !strings.Contains(g.logs.String(), "connection refused") {
		t.Errorf("the dial error was not logged:\n%s", g.logs.String())
	}
	_, m := get(t, g.url+"/metrics", nil)
	if !strings.Contains(string(m), `arbor_upstream_errors_total{kind="unavailable"} 2`) {
		t.Errorf("upstream errors not counted:\n%s", m)
	}
}

func TestProxyUpstreamSlow(t *testing.T) {
	var calls sync.WaitGroup
	release := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		defer calls.Done()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	defer close(release)
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL, ResponseHeaderTimeout: 200 * time.Millisecond}}, nil)
	start := time.Now()
	resp, body := get(t, g.url+"/slow", nil)
	wantError(t, resp, body, http.StatusGatewayTimeout, httperr.CodeUpstreamTimeout)
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Fatalf("504 after %v; a 200ms timeout was retried or ignored", el)
	}
}

// TestProxyLongBodyOutlivesHeaderTimeout checks that the response-header
// timeout does not cut a body that keeps coming for longer.
func TestProxyLongBodyOutlivesHeaderTimeout(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		for i := range 5 {
			fmt.Fprintf(w, "part %d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	})
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL, ResponseHeaderTimeout: 150 * time.Millisecond}}, nil)
	resp, body := get(t, g.url+"/long", nil)
	if resp.StatusCode != 200 || strings.Count(string(body), "part") != 5 {
		t.Fatalf("got %d %q, want all 5 parts", resp.StatusCode, body)
	}
}

func TestProxyStripsIdentityHeaders(t *testing.T) {
	up := echoUpstream(t)
	g := startGateway(t, gateway.Options{
		Upstream:        proxy.Upstream{URL: up.URL},
		IdentityHeaders: []string{"X-Forwarded-User", "Remote-User", "X_Email"},
		Director: func(c *fiber.Ctx, req *fasthttp.Request) error {
			req.Header.Set("X-Arbor-User-Id", "u-arbor")
			return nil
		},
	}, nil)
	forged := []string{
		"X-Arbor-User-Id", "x-arbor-user-id", "X-ARBOR-USER-ID", "x_arbor_user_id", "X_ARBOR_USER_ID",
		"X_Arbor-User_Id", "X-Arbor_User-Id", "X-Arbor-Email", "x-arbor-assertion", "X_ARBOR_ROLE",
		"X-Forwarded-User", "x_forwarded_user", "X-FORWARDED_USER", "Remote-User", "REMOTE_USER", "remote-user",
		"X-Email", "x_email", "X_EMAIL",
	}
	var raw strings.Builder
	raw.WriteString("GET /who HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\nX-Keep: yes\r\nX-Arborist: kept\r\n")
	for _, h := range forged {
		raw.WriteString(h + ": forged\r\n")
	}
	raw.WriteString("\r\n")
	resp, body := rawRequest(t, g.addr, raw.String())
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	e := mustEcho(t, body)
	for name, vals := range e.Header {
		for _, v := range vals {
			if strings.Contains(v, "forged") {
				t.Errorf("forged identity header reached the upstream: %s: %s", name, v)
			}
		}
	}
	if got := e.Header.Values("X-Arbor-User-Id"); len(got) != 1 || got[0] != "u-arbor" {
		t.Errorf("X-Arbor-User-Id at upstream = %q, want exactly the Director's [u-arbor]\n%s", got, fmtHeader(e.Header))
	}
	if e.Header.Get("X-Keep") != "yes" || e.Header.Get("X-Arborist") != "kept" {
		t.Errorf("unrelated headers were stripped:\n%s", fmtHeader(e.Header))
	}
}

func TestProxyForwardedHeaders(t *testing.T) {
	up := echoUpstream(t)
	spoof := "GET /f HTTP/1.1\r\nHost: app.example:8443\r\nConnection: close\r\n" +
		"X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\n" +
		"X-Forwarded-Host: evil.example\r\nForwarded: for=203.0.113.9;proto=https\r\nX-Real-Ip: 203.0.113.9\r\n" +
		"X-Forwarded-Prefix: /admin\r\nX_Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\n\r\n"
	tests := []struct {
		name    string
		trusted []string
		want    map[string]string
		absent  []string
		client  string
	}{
		{
			name: "untrusted peer: replaced",
			want: map[string]string{
				"X-Forwarded-For":   "127.0.0.1",
				"X-Forwarded-Proto": "http",
				"X-Forwarded-Host":  "app.example:8443",
			},
			absent: []string{"X-Forwarded-Prefix", "X_forwarded_for", "X_real_ip", "Forwarded", "X-Real-Ip"},
		},
		{
			name:    "trusted peer: extended",
			trusted: []string{"10.0.0.0/8", "127.0.0.1"},
			want: map[string]string{
				"X-Forwarded-For":    "203.0.113.9, 198.51.100.7, 127.0.0.1",
				"X-Forwarded-Proto":  "https",
				"X-Forwarded-Host":   "evil.example",
				"Forwarded":          `for=203.0.113.9;proto=https`,
				"X-Real-Ip":          "203.0.113.9",
				"X-Forwarded-Prefix": "/admin",
			},
			absent: []string{"X_forwarded_for", "X_real_ip"},
			client: "198.51.100.7",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, TrustedProxies: tc.trusted}, nil)
			resp, body := rawRequest(t, g.addr, spoof)
			e := mustEcho(t, body)
			for k, v := range tc.want {
				if got := e.Header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want [%q]", k, got, v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := e.Header[k]; ok {
					t.Errorf("%s reached the upstream: %q", k, e.Header[k])
				}
			}
			if e.Host != "app.example:8443" {
				t.Errorf("upstream Host = %q, want the client's", e.Host)
			}
			l := g.logs.accessLine(t, resp.Header.Get("X-Request-Id"))
			if tc.client != "" && l["client_ip"] != tc.client {
				t.Errorf("access log client_ip = %v, want %s", l["client_ip"], tc.client)
			}
			if tc.client == "" && l["client_ip"] != nil {
				t.Errorf("client_ip logged for an untrusted peer: %v", l["client_ip"])
			}
		})
	}
}

func TestProxyHopByHop(t *testing.T) {
	response := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n" +
		"Connection: keep-alive, X-Resp-Hop\r\nX-Resp-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\n" +
		"Upgrade: h2c\r\nTrailer: X-Sum\r\nX-Resp-Keep: 1\r\n\r\nok"
	addr, heads := rawUpstream(t, response)
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: "http://" + addr}}, nil)
	req := "GET /h HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Req-Hop\r\nX-Req-Hop: 1\r\n" +
		"Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nProxy-Connection: keep-alive\r\n" +
		"Upgrade: h2c\r\nTrailer: X-Sum\r\nX-Req-Keep: 1\r\n\r\n"
	resp, body := rawRequest(t, g.addr, req)
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	var head string
	select {
	case head = <-heads:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream got no request")
	}
	lower := strings.ToLower(head)
	for _, h := range []string{"\r\nconnection:", "x-req-hop", "keep-alive", "\r\nte:", "proxy-authorization", "proxy-connection", "upgrade", "trailer"} {
		if strings.Contains(lower, h) {
			t.Errorf("hop-by-hop %q reached the upstream:\n%s", h, head)
		}
	}
	if !strings.Contains(lower, "x-req-keep: 1") {
		t.Errorf("end-to-end header lost:\n%s", head)
	}
	for _, h := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Authenticate", "Upgrade", "Trailer"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("hop-by-hop response header %s: %s reached the client", h, v)
		}
	}
	if resp.Header.Get("X-Resp-Keep") != "1" {
		t.Errorf("end-to-end response header lost: %v", resp.Header)
	}
	if c := resp.Header.Get("Connection"); strings.Contains(strings.ToLower(c), "x-resp-hop") || strings.Contains(strings.ToLower(c), "keep-alive") {
		t.Errorf("the upstream's Connection header reached the client: %q", c)
	}
}

func TestProxyResponseFidelity(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/nocontenttype":
			w.Header()["Content-Type"] = nil
			_, _ = w.Write([]byte{0x00, 0x01, 0x02})
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/notmodified":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "/redirect":
			http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
			http.SetCookie(w, &http.Cookie{Name: "b", Value: "2"})
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		default:
			w.Header().Set("Content-Type", "text/csv")
			w.Header().Set("Content-Length", "11")
			_, _ = io.WriteString(w, "a,b\n1,2\n3,4")
		}
	})
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}}, nil)

	resp, body := get(t, g.url+"/nocontenttype", nil)
	if _, ok := resp.Header["Content-Type"]; ok || string(body) != "\x00\x01\x02" {
		t.Errorf("/nocontenttype: Content-Type %q body %q; the proxy must not invent a type", resp.Header.Get("Content-Type"), body)
	}
	if len(resp.Header.Values("Date")) != 1 {
		t.Errorf("Date header appears %d times", len(resp.Header.Values("Date")))
	}
	resp, _ = get(t, g.url+"/nocontent", nil)
	if resp.StatusCode != 204 {
		t.Errorf("/nocontent = %d", resp.StatusCode)
	}
	resp, _ = get(t, g.url+"/notmodified", nil)
	if resp.StatusCode != 304 || resp.Header.Get("ETag") != `"v1"` {
		t.Errorf("/notmodified = %d %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	noRedirect := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(g.url + "/redirect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/elsewhere" || len(resp.Cookies()) != 2 {
		t.Errorf("/redirect = %d Location %q cookies %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}
	req, _ := http.NewRequest(http.MethodHead, g.url+"/csv", nil)
	resp, body = do(t, req)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != "11" || len(body) != 0 {
		t.Errorf("HEAD /csv = %d CL %q body %q", resp.StatusCode, resp.Header.Get("Content-Length"), body)
	}
	resp, body = get(t, g.url+"/csv", nil)
	if resp.Header.Get("Content-Type") != "text/csv" || string(body) != "a,b\n1,2\n3,4" {
		t.Errorf("/csv = %q %q", resp.Header.Get("Content-Type"), body)
	}
}

func TestProxyPathsAndHost(t *testing.T) {
	up := echoUpstream(t)
	tests := []struct {
		name     string
		upstream string
		rewrite  bool
		raw      string
		status   int
		uri      string
		host     string
	}{
		{name: "raw path and query kept", upstream: up.URL, raw: "/a%2Fb/c?x=1&y=%20z", status: 200, uri: "/a%2Fb/c?x=1&y=%20z", host: "app.example"},
		{name: "base path", upstream: up.URL + "/base/", raw: "/a/b?q=1", status: 200, uri: "/base/a/b?q=1", host: "app.example"},
		{name: "rewrite host", upstream: up.URL, rewrite: true, raw: "/", status: 200, uri: "/", host: strings.TrimPrefix(up.URL, "http://")},
		{name: "dot segment", upstream: up.URL, raw: "/public/../admin", status: 400},
		{name: "encoded dot segment", upstream: up.URL, raw: "/public/%2e%2E/admin", status: 400},
		{name: "encoded slash dot segment", upstream: up.URL, raw: "/private%2f..%2fpublic", status: 400},
		{name: "dots inside a name are fine", upstream: up.URL, raw: "/file..tar.gz/.well-known/x", status: 200, uri: "/file..tar.gz/.well-known/x", host: "app.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: tc.upstream}, RewriteHost: tc.rewrite}, nil)
			resp, body := rawRequest(t, g.addr, "GET "+tc.raw+" HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n")
			if tc.status == 400 {
				wantError(t, resp, body, 400, httperr.CodeBadPath)
				return
			}
			e := mustEcho(t, body)
			if e.URI != tc.uri || e.Host != tc.host {
				t.Errorf("upstream saw %q host %q, want %q host %q", e.URI, e.Host, tc.uri, tc.host)
			}
			if fh := e.Header.Get("X-Forwarded-Host"); fh != "app.example" {
				t.Errorf("X-Forwarded-Host = %q", fh)
			}
		})
	}
}

// patterned is a deterministic stream of n bytes: a pseudo-random block
// whose size is not a power of two, repeated, so that a lost, duplicated or
// reordered chunk changes the hash.
func patterned(n int64, seed uint64) io.Reader {
	r := rand.New(rand.NewPCG(seed, seed))
	block := make([]byte, 1<<20+7)
	for i := 0; i+8 <= len(block); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			block[i+j] = byte(v >> (8 * j))
		}
	}
	return io.LimitReader(&repeatReader{block: block}, n)
}

type repeatReader struct {
	block []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.block[r.off:])
		n += k
		r.off = (r.off + k) % len(r.block)
	}
	return n, nil
}

func sha(r io.Reader) (string, int64) {
	h := sha256.New()
	n, _ := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n
}

const bigSize = 64 << 20

func TestProxyStreamsLargeUpload(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		sum, n := sha(r.Body)
		fmt.Fprintf(w, "%s %d", sum, n)
	})
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, BodyLimit: 2 * bigSize}, nil)
	want, _ := sha(patterned(bigSize, 1))
	for _, chunked := range []bool{false, true} {
		t.Run("chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPut, g.url+"/upload", patterned(bigSize, 1))
			if !chunked {
				req.ContentLength = bigSize
			}
			resp, body := do(t, req)
			if resp.StatusCode != 200 || string(body) != fmt.Sprintf("%s %d", want, bigSize) {
				t.Fatalf("upstream received %d %q, want %s %d", resp.StatusCode, body, want, bigSize)
			}
		})
	}
}

// TestProxyUploadIsStreamed proves the upload is relayed as it arrives: the
// client sends the rest of its body only after the upstream has received
// the first part. A proxy that buffers the whole body deadlocks here.
func TestProxyUploadIsStreamed(t *testing.T) {
	const part = 1 << 20
	gotFirst := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		var once sync.Once
		buf := make([]byte, 32<<10)
		var n int64
		for {
			k, err := r.Body.Read(buf)
			n += int64(k)
			if n >= part/2 {
				once.Do(func() { close(gotFirst) })
			}
			if err != nil {
				break
			}
		}
		fmt.Fprintf(w, "%d", n)
	})
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}}, nil)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(make([]byte, part))
		select {
		case <-gotFirst:
			_, _ = pw.Write(make([]byte, part))
			_ = pw.Close()
		case <-time.After(5 * time.Second):
			_ = pw.CloseWithError(fmt.Errorf("the upstream never saw the first part: the upload is buffered"))
		}
	}()
	req, _ := http.NewRequest(http.MethodPost, g.url+"/stream-up", pr)
	resp, body := do(t, req)
	if resp.StatusCode != 200 || string(body) != strconv.Itoa(2*part) {
		t.Fatalf("got %d %q, want 200 %d", resp.StatusCode, body, 2*part)
	}
}

func TestProxyStreamsLargeDownload(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("length") == "1" {
			w.Header().Set("Content-Length", strconv.Itoa(bigSize))
		}
		_, _ = io.Copy(w, patterned(bigSize, 2))
	})
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}}, nil)
	want, _ := sha(patterned(bigSize, 2))
	for _, length := range []string{"0", "1"} {
		t.Run("length="+length, func(t *testing.T) {
			resp, err := client.Get(g.url + "/download?length=" + length)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, n := sha(resp.Body)
			if got != want || n != bigSize {
				t.Fatalf("downloaded %d bytes with sha %s, want %d %s", n, got, bigSize, want)
			}
			if l := g.logs.accessLine(t, resp.Header.Get("X-Request-Id")); l["bytes"] != float64(bigSize) {
				t.Errorf("access log bytes = %v, want %d", l["bytes"], bigSize)
			}
		})
	}
}

// TestProxySSE proves an event stream is relayed event by event: the
// upstream sends event 2 only after the client has received event 1
// through Arbor.
func TestProxySSE(t *testing.T) {
	clientGotFirst := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		fmt.Fprint(w, "id: 1\ndata: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-clientGotFirst:
		case <-time.After(5 * time.Second):
			return // the test fails: event 1 never arrived on its own
		}
		fmt.Fprint(w, "id: 2\ndata: second\n\n")
		w.(http.Flusher).Flush()
	})
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}}, nil)
	req, _ := http.NewRequest(http.MethodGet, g.url+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	readEvent := func() string {
		var ev strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading event: %v (got %q)", err, ev.String())
			}
			if line == "\n" {
				return ev.String()
			}
			ev.WriteString(line)
		}
	}
	if ev := readEvent(); ev != "id: 1\ndata: first\n" {
		t.Fatalf("first event = %q", ev)
	}
	close(clientGotFirst)
	if ev := readEvent(); ev != "id: 2\ndata: second\n" {
		t.Fatalf("second event = %q", ev)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("stream did not end after the upstream finished: %v", err)
	}
	l := g.logs.accessLine(t, resp.Header.Get("X-Request-Id"))
	if l["status"] != float64(200) || l["route"] != "proxy" {
		t.Errorf("SSE access line: %v", l)
	}
}

func TestProxyWebSocket(t *testing.T) {
	seen := make(chan http.Header, 4)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		if r.URL.Path == "/ws/deny" {
			http.Error(w, "no socket for you", http.StatusForbidden)
			return
		}
		u := websocket.Upgrader{Subprotocols: []string{"arbor.v1"}}
		conn, err := u.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			mt, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if err := conn.WriteMessage(mt, append([]byte("echo:"), msg...)); err != nil {
				return
			}
		}
	})
	g := startGateway(t, gateway.Options{
		Upstream: proxy.Upstream{URL: up.URL},
		Director: func(c *fiber.Ctx, req *fasthttp.Request) error {
			req.Header.Set("X-Arbor-User-Id", "u-ws")
			return nil
		},
	}, nil)
	wsURL := "ws://" + g.addr
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"arbor.v1"}}

	hdr := http.Header{"X-Arbor-User-Id": {"forged"}, "X_arbor_user_id": {"forged"}}
	conn, resp, err := dialer.Dial(wsURL+"/ws/echo?room=1", hdr)
	if err != nil {
		t.Fatalf("dial through Arbor: %v (resp %v)", err, resp)
	}
	if resp.Header.Get("X-Request-Id") == "" || conn.Subprotocol() != "arbor.v1" {
		t.Errorf("handshake answer lacks X-Request-Id or subprotocol: %v", resp.Header)
	}
	h := <-seen
	if got := h.Values("X-Arbor-User-Id"); len(got) != 1 || got[0] != "u-ws" {
		t.Errorf("upstream saw X-Arbor-User-Id %q, want [u-ws]", got)
	}
	if _, ok := h["X_arbor_user_id"]; ok {
		t.Errorf("underscore identity header reached the upstream")
	}
	for i := range 20 {
		msg := fmt.Sprintf("message %d %s", i, strings.Repeat("x", i*1000))
		mt := websocket.TextMessage
		if i%2 == 1 {
			mt = websocket.BinaryMessage
		}
		if err := conn.WriteMessage(mt, []byte(msg)); err != nil {
			t.Fatalf("write: %v", err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		gotType, got, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if gotType != mt || string(got) != "echo:"+msg {
			t.Fatalf("echo %d: type %d %q", i, gotType, got[:min(len(got), 40)])
		}
	}
	waitFor(t, 2*time.Second, "the tunnel to be counted", func() bool {
		_, m := get(t, g.url+"/metrics", nil)
		return strings.Contains(string(m), "arbor_websocket_tunnels 1")
	})
	// Clean close: the close handshake goes through, then both sides close.
	if err := conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")); err != nil {
		t.Fatalf("write close: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := conn.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("after close: %v, want a normal close from the upstream", err)
	}
	conn.Close()
	waitFor(t, 5*time.Second, "the tunnel to close", func() bool {
		_, m := get(t, g.url+"/metrics", nil)
		return strings.Contains(string(m), "arbor_websocket_tunnels 0")
	})

	// An upstream that refuses the upgrade is relayed as is.
	_, resp, err = dialer.Dial(wsURL+"/ws/deny", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("denied upgrade: err %v resp %v, want 403", err, resp)
	}
	<-seen

	// Shutdown closes open tunnels.
	conn, _, err = dialer.Dial(wsURL+"/ws/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	<-seen
	ctxDone := make(chan struct{})
	go func() {
		defer close(ctxDone)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := conn.ReadMessage()
		if err == nil {
			t.Errorf("tunnel still open after Shutdown")
		}
	}()
	shutdownNow(t, g)
	<-ctxDone
}

func shutdownNow(t *testing.T, g *gw) {
	t.Helper()
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	if err := g.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestProxyTLSUpstream(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls %s %s", r.Host, r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(up.Close)
	pool := x509.NewCertPool()
	pool.AddCert(up.Certificate())
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil)
	resp, body := rawRequest(t, g.addr, "GET /x HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 || string(body) != "tls app.example http" {
		t.Fatalf("through TLS upstream: %d %q", resp.StatusCode, body)
	}
}

// TestProxyUpstreamAbortsBody: an upstream that dies mid-body leaves the
// client with a truncated response, never a silently short "complete" one,
// and is logged and counted.
func TestProxyUpstreamAbortsBody(t *testing.T) {
	addr, _ := rawUpstreamClosing(t, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 20000), true)
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: "http://" + addr}}, nil)
	resp, err := client.Get(g.url + "/big")
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get("X-Request-Id")
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil || n >= 100000 {
		t.Fatalf("read %d bytes, err %v: a truncated body must not look complete", n, err)
	}
	l := g.logs.accessLine(t, id)
	if l["upstream_error"] == nil || l["level"] != "WARN" {
		t.Errorf("aborted relay not logged as such: %v", l)
	}
	_, m := get(t, g.url+"/metrics", nil)
	if !strings.Contains(string(m), `arbor_upstream_errors_total{kind="aborted"} 1`) {
		t.Errorf("aborted relay not counted")
	}
}

// TestProxyRetriesStaleConnection: an upstream that closes idle keep-alive
// connections quickly must not turn the next GET into a 502.
func TestProxyRetriesStaleConnection(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	up.Config.IdleTimeout = 30 * time.Millisecond
	up.Start()
	t.Cleanup(up.Close)
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}}, nil)
	for i := range 3 {
		resp, body := get(t, g.url+"/again", nil)
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d after the upstream closed its idle connection: %d %s", i, resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestProxyShortSmallBody(t *testing.T) {
	addr, _ := rawUpstreamClosing(t, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nSet-Cookie: a=1\r\nContent-Length: 500\r\n\r\nonly a little", true)
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: "http://" + addr}}, nil)
	resp, body := get(t, g.url+"/short", nil)
	wantError(t, resp, body, http.StatusBadGateway, httperr.CodeUpstreamUnavailable)
	if resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("the upstream's headers leaked into the error answer: %v", resp.Header)
	}
}

// TestProxyUpstreamFraming: however the upstream delimits its answer, the
// client gets it whole and correctly framed, and the upstream connection is
// reused exactly when its answer ended where the next can begin. The proxy
// reads a small body of declared length whole and streams any other
// (edge/proxy's transport); both must leave the connection where they found
// the next response.
func TestProxyUpstreamFraming(t *testing.T) {
	large := strings.Repeat("0123456789abcdef", 4096) // 64 KiB, streamed
	tests := []struct {
		name     string
		method   string
		response string // the upstream's answer, on the wire
		closes   bool   // the upstream closes the connection after it
		status   int
		body     string
		conns    int // upstream connections for two requests in a row
	}{
		{"small body of declared length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!", false, 200, "Hello, World!", 1},
		{"large body of declared length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n" + large, false, 200, large, 1},
		{"chunked body", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n8\r\n, World!\r\n0\r\n\r\n", false, 200, "Hello, World!", 1},
		{"body ended by the close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nHello, World!", true, 200, "Hello, World!", 2},
		{"HTTP/1.0 body without length", "GET", "HTTP/1.0 200 OK\r\n\r\nHello, World!", true, 200, "Hello, World!", 2},
		{"interim answers before the response", "GET", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", false, 201, "ok", 1},
		{"HEAD with a length and no body", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n", false, 200, "", 1},
		{"204 with no body", "GET", "HTTP/1.1 204 No Content\r\n\r\n", false, 204, "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, conns := countingRawUpstream(t, tc.response, tc.closes)
			g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: "http://" + addr}}, nil)
			for i := range 2 {
				req, err := http.NewRequest(tc.method, g.url+"/framed", nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, body := do(t, req)
				if resp.StatusCode != tc.status || string(body) != tc.body {
					t.Fatalf("request %d: %d, %d bytes %.40q; want %d, %d bytes %.40q", i, resp.StatusCode, len(body), body, tc.status, len(tc.body), tc.body)
				}
				if resp.Header.Get("Link") != "" {
					t.Errorf("request %d: an interim answer's header reached the client: %v", i, resp.Header)
				}
			}
			if n := int(conns.Load()); n != tc.conns {
				t.Errorf("two requests took %d upstream connections, want %d (reused only when the answer ended cleanly)", n, tc.conns)
			}
		})
	}
}

// countingRawUpstream answers every request with response, closing the
// connection after it if closes, and counts the connections it accepted.
func countingRawUpstream(t *testing.T, response string, closes bool) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				for {
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
					}
					if _, err := io.WriteString(c, response); err != nil || closes {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String(), &n
}

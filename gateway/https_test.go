package gateway_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/edge/https"
	"github.com/vintner/arbor/gateway/edge/https/httpstest"
	"github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/gateway/httperr"
)

const testHSTS = "max-age=31536000; includeSubDomains"

// startTLSGateway serves a gateway from opts on a TLS listener made by
// package edge/https, with a certificate from a fresh test CA.
func startTLSGateway(t *testing.T, opts gateway.Options) (addr string, ca *httpstest.CA, logs *logBuffer) {
	t.Helper()
	ca = httpstest.NewCA(t)
	certFile, keyFile := ca.Issue(t).Files(t, t.TempDir())
	term, err := https.New(https.Options{CertFile: certFile, KeyFile: keyFile, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(term.Close)
	logs = &logBuffer{}
	opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := gateway.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Mount(gateway.ClassAPI, func(r fiber.Router) {
		r.Get("/api/fails", func(*fiber.Ctx) error { return httperr.New(http.StatusConflict, "conflict", "It fails") })
	}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(term.Listener(ln)) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String(), ca, logs
}

// Over TLS every answer carries Options.HSTS: proxied (replacing the
// upstream's own), Arbor's own routes, errors from a route, and errors
// answered before any route (an unsupported method, headers too large).
// The upstream learns the request came over https.
func TestHSTSOnEveryAnswerOverTLS(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=5")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echo{Method: r.Method, URI: r.RequestURI, Header: r.Header})
	})
	addr, ca, logs := startTLSGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, HSTS: testHSTS, MaxHeaderBytes: 4096})
	c := ca.Client()
	fetch := func(method, path string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://"+addr+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := c.Do(req)
		for try := 1; err != nil && hdr != nil && try < 5; try++ {
			// Headers over the limit are refused before they are read
			// whole, and the connection is closed: the client may still be
			// writing them and see a broken pipe instead of the answer.
			// That race is TCP's, not what this test is about; try again.
			req, _ = http.NewRequest(method, "https://"+addr+path, nil)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			res, err = c.Do(req)
		}
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	cases := []struct {
		name, method, path string
		hdr                map[string]string
		status             int
	}{
		{"proxied", http.MethodGet, "/app?x=1", nil, http.StatusOK},
		{"own route", http.MethodGet, "/healthz", nil, http.StatusOK},
		{"error from a route", http.MethodGet, "/api/fails", nil, http.StatusConflict},
		{"unsupported method", "PROPFIND", "/", nil, http.StatusNotImplemented},
		{"headers too large", http.MethodGet, "/", map[string]string{"X-Big": strings.Repeat("b", 8<<10)}, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, body := fetch(tc.method, tc.path, tc.hdr)
			if res.StatusCode != tc.status {
				t.Fatalf("%d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if got := res.Header.Values("Strict-Transport-Security"); len(got) != 1 || got[0] != testHSTS {
				t.Fatalf("Strict-Transport-Security %q; want exactly %q", got, testHSTS)
			}
			if res.TLS == nil || res.TLS.Version < tls.VersionTLS12 || res.TLS.NegotiatedProtocol != "http/1.1" {
				t.Fatalf("TLS state %+v", res.TLS)
			}
		})
	}
	res, body := fetch(http.MethodGet, "/app", nil)
	e := mustEcho(t, body)
	if p := e.Header.Get("X-Forwarded-Proto"); p != "https" || res.StatusCode != http.StatusOK {
		t.Fatalf("upstream saw X-Forwarded-Proto %q (status %d); want https", p, res.StatusCode)
	}

	// Failed handshakes and plain http on the TLS port are not requests:
	// no access-log line, no error line.
	time.Sleep(300 * time.Millisecond) // a relayed answer is logged when its body ends
	before := strings.Count(logs.String(), "\n")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	plain, err := http.ReadResponse(bufio.NewReader(conn), nil)
	conn.Close()
	if err != nil || plain.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain http on the TLS port: %v %v", plain, err)
	}
	if tc, err := tls.Dial("tcp", addr, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11, InsecureSkipVerify: true}); err == nil {
		tc.Close()
		t.Fatal("TLS 1.1 accepted")
	}
	fetch(http.MethodGet, "/healthz", nil) // a request after them, logged
	time.Sleep(300 * time.Millisecond)     // the access log is buffered at most 200 ms
	if lines := strings.Split(strings.TrimSpace(logs.String()), "\n")[before:]; len(lines) != 1 || !strings.Contains(lines[0], `"/healthz"`) {
		t.Fatalf("log lines after the failed connections: want only the /healthz request:\n%s", strings.Join(lines, "\n"))
	}
}

// Plain http never carries HSTS, even with the option set (RFC 6797
// section 7.2).
func TestNoHSTSOverPlainHTTP(t *testing.T) {
	up := echoUpstream(t)
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, HSTS: testHSTS}, nil)
	for _, path := range []string{"/app", "/healthz"} {
		res, _ := get(t, g.url+path, nil)
		if v := res.Header.Get("Strict-Transport-Security"); v != "" || res.StatusCode != http.StatusOK {
			t.Fatalf("%s over plain http: %d, Strict-Transport-Security %q", path, res.StatusCode, v)
		}
	}
	if _, err := gateway.New(gateway.Options{HSTS: "max-age=1\r\nX-Evil: 1"}); err == nil || !strings.Contains(err.Error(), "HSTS") {
		t.Fatalf("HSTS with CRLF: %v", err)
	}
}

package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
)

func TestHealthz(t *testing.T) {
	g := startGateway(t, gateway.Options{Ready: func(context.Context) error { return errors.New("store down") }}, nil)
	resp, body := get(t, g.url+"/healthz", nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Fatalf("/healthz = %d %s, want 200 {\"status\":\"ok\"} even when not ready", resp.StatusCode, body)
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name   string
		ready  func(context.Context) error
		status int
		code   string
	}{
		{name: "no check", ready: nil, status: http.StatusOK},
		{name: "store ok", ready: func(context.Context) error { return nil }, status: http.StatusOK},
		{name: "store error", ready: func(context.Context) error { return errors.New("bolt: database not open") },
			status: http.StatusServiceUnavailable, code: httperr.CodeStoreUnavailable},
		{name: "still starting", ready: func(context.Context) error {
			return fmt.Errorf("plugins: %w", httperr.New(http.StatusServiceUnavailable, httperr.CodeStarting, "Still loading"))
		}, status: http.StatusServiceUnavailable, code: httperr.CodeStarting},
		{name: "store hangs", ready: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			status: http.StatusServiceUnavailable, code: httperr.CodeStoreUnavailable},
		{name: "store ignores deadline", ready: func(context.Context) error { time.Sleep(300 * time.Millisecond); return nil },
			status: http.StatusServiceUnavailable, code: httperr.CodeStoreUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, gateway.Options{Ready: tc.ready, ReadyTimeout: 100 * time.Millisecond}, nil)
			start := time.Now()
			resp, body := get(t, g.url+"/readyz", nil)
			if tc.code == "" {
				if resp.StatusCode != tc.status || strings.TrimSpace(string(body)) != `{"status":"ready"}` {
					t.Fatalf("/readyz = %d %s, want 200 ready", resp.StatusCode, body)
				}
				return
			}
			e := wantError(t, resp, body, tc.status, tc.code)
			if strings.Contains(string(body), "bolt") {
				t.Fatalf("internal error text leaked to the client: %s", body)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Fatalf("/readyz took %v; the ready timeout is 100ms", el)
			}
			if tc.name == "store error" && !strings.Contains(g.logs.String(), "bolt: database not open") {
				t.Fatalf("the cause was not logged for request %s:\n%s", e.RequestID, g.logs.String())
			}
		})
	}
}

func TestMetricsExposure(t *testing.T) {
	reg := prometheus.NewRegistry()
	up := echoUpstream(t)
	g := startGateway(t, gateway.Options{Registry: reg, Upstream: proxy.Upstream{URL: up.URL}}, nil)
	get(t, g.url+"/healthz", nil)
	get(t, g.url+"/some/app/page?x=1", nil)
	g.srv.Metrics().StoreError("get_session")
	g.srv.Metrics().StoreError("get_session")

	resp, body := get(t, g.url+"/metrics", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics status %d", resp.StatusCode)
	}
	text := string(body)
	for _, want := range []string{
		`arbor_http_requests_total{route="health",status_class="2xx"} 1`,
		`arbor_http_requests_total{route="proxy",status_class="2xx"} 1`,
		`arbor_http_request_duration_seconds_bucket{route="proxy",status_class="2xx",le="+Inf"} 1`,
		`arbor_store_errors_total{op="get_session"} 2`,
		`arbor_upstream_errors_total{kind="timeout"} 0`,
		`arbor_http_requests_in_flight 1`, // the /metrics request itself
		`arbor_websocket_tunnels 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, "/some/app/page") {
		t.Errorf("a raw path reached a metric label")
	}
}

func TestRequestIDAndAccessLog(t *testing.T) {
	up := echoUpstream(t)
	tests := []struct {
		name     string
		incoming string
		adopt    bool
	}{
		{name: "generated", incoming: ""},
		{name: "sane incoming id is kept", incoming: "trace-01HX:abc.def_9", adopt: true},
		{name: "too long is replaced", incoming: strings.Repeat("a", 65)},
		{name: "spaces are replaced", incoming: "a b"},
		{name: "quotes are replaced", incoming: `x"},"admin":true`},
	}
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}}, mountRoutes(t, gateway.ClassAPI, func(r fiber.Router) {
				r.Get("/api/whoami", func(c *fiber.Ctx) error {
					gateway.Logger(c).Info("handler says hi")
					return c.SendString(gateway.RequestID(c))
				})
			}))
			hdr := map[string]string{}
			if tc.incoming != "" {
				hdr["X-Request-Id"] = tc.incoming
			}

			// Arbor's own route: the handler sees the same id.
			resp, body := get(t, g.url+"/api/whoami?code=s3cr3t-code", hdr)
			id := resp.Header.Get("X-Request-Id")
			if tc.adopt && id != tc.incoming {
				t.Fatalf("X-Request-Id = %q, want the client's %q", id, tc.incoming)
			}
			if !tc.adopt && !generated.MatchString(id) {
				t.Fatalf("X-Request-Id = %q, want 32 generated hex digits", id)
			}
			if string(body) != id {
				t.Fatalf("RequestID(c) = %q, header says %q", body, id)
			}
			line := g.logs.accessLine(t, id)
			want := map[string]any{"method": "GET", "route": "api", "path": "/api/whoami", "status": float64(200), "remote_ip": "127.0.0.1"}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("access log %s = %v, want %v (line %v)", k, line[k], v, line)
				}
			}
			for _, k := range []string{"duration_us", "bytes", "time", "level"} {
				if _, ok := line[k]; !ok {
					t.Errorf("access log line lacks %q: %v", k, line)
				}
			}
			var handlerLine bool
			for _, l := range g.logs.lines(t) {
				if l["msg"] == "handler says hi" {
					handlerLine = l["request_id"] == id
				}
			}
			if !handlerLine {
				t.Errorf("gateway.Logger(c) line does not carry request_id %s:\n%s", id, g.logs.String())
			}

			// Proxied: the upstream receives the same id.
			if tc.adopt {
				hdr["X-Request-Id"] = tc.incoming + "-2"
			}
			resp, body = get(t, g.url+"/app?token=s3cr3t-code", hdr)
			id = resp.Header.Get("X-Request-Id")
			if got := mustEcho(t, body).Header.Get("X-Request-Id"); got != id {
				t.Fatalf("upstream got X-Request-Id %q, client got %q", got, id)
			}
			if l := g.logs.accessLine(t, id); l["route"] != "proxy" || l["path"] != "/app" {
				t.Fatalf("proxied access line route/path = %v/%v, want proxy//app", l["route"], l["path"])
			}
			if strings.Contains(g.logs.String(), "s3cr3t") {
				t.Fatalf("a query string reached the log:\n%s", g.logs.String())
			}
		})
	}
}

func TestErrorShape(t *testing.T) {
	g := startGateway(t, gateway.Options{}, mountRoutes(t, gateway.ClassAPI, func(r fiber.Router) {
		r.Get("/api/teapot", func(c *fiber.Ctx) error {
			c.Set("Retry-After", "7")
			return httperr.New(http.StatusTooManyRequests, httperr.CodeRateLimited, "Slow <down>")
		})
		r.Get("/api/internal", func(c *fiber.Ctx) error { return errBoom })
		r.Get("/api/wrapped", func(c *fiber.Ctx) error {
			return httperr.Wrap(errBoom, http.StatusBadGateway, "provider_unavailable", "GitHub is not answering")
		})
		r.Get("/api/fiber", func(c *fiber.Ctx) error { return fiber.ErrForbidden })
		r.Get("/api/panic", func(c *fiber.Ctx) error { panic("nil map write hunter2") })
	}))
	tests := []struct {
		path, accept string
		status       int
		code         string
		html         bool
	}{
		{path: "/api/teapot", status: 429, code: httperr.CodeRateLimited},
		{path: "/api/teapot", accept: "application/json", status: 429, code: httperr.CodeRateLimited},
		{path: "/api/teapot", accept: "*/*", status: 429, code: httperr.CodeRateLimited},
		{path: "/api/teapot", accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", status: 429, html: true},
		{path: "/api/internal", status: 500, code: httperr.CodeInternal},
		{path: "/api/internal", accept: "text/html", status: 500, html: true},
		{path: "/api/wrapped", status: 502, code: "provider_unavailable"},
		{path: "/api/fiber", status: 403, code: httperr.CodeForbidden},
		{path: "/api/panic", status: 500, code: httperr.CodeInternal},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.accept, func(t *testing.T) {
			resp, body := get(t, g.url+tc.path, map[string]string{"Accept": tc.accept})
			if strings.Contains(string(body), "hunter2") {
				t.Fatalf("internal error text reached the client: %s", body)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("error response is cacheable")
			}
			id := resp.Header.Get("X-Request-Id")
			if tc.html {
				if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					t.Fatalf("got %d %s, want %d text/html", resp.StatusCode, resp.Header.Get("Content-Type"), tc.status)
				}
				if !strings.Contains(string(body), "<!doctype html>") || !strings.Contains(string(body), id) {
					t.Fatalf("HTML page lacks doctype or request id %s: %s", id, body)
				}
				if strings.Contains(string(body), "<down>") {
					t.Fatalf("message not escaped in HTML: %s", body)
				}
				return
			}
			wantError(t, resp, body, tc.status, tc.code)
			if tc.path == "/api/teapot" && resp.Header.Get("Retry-After") != "7" {
				t.Errorf("a header the handler set was lost")
			}
			if tc.status >= 500 && !strings.Contains(g.logs.String(), "hunter2") {
				t.Errorf("the cause of a 5xx was not logged:\n%s", g.logs.String())
			}
			if l := g.logs.accessLine(t, id); l["error"] != tc.code || l["status"] != float64(tc.status) {
				t.Errorf("access line error/status = %v/%v, want %s/%d", l["error"], l["status"], tc.code, tc.status)
			}
		})
	}
}

func TestNotFoundWithoutUpstream(t *testing.T) {
	g := startGateway(t, gateway.Options{}, nil)
	resp, body := get(t, g.url+"/nowhere", nil)
	wantError(t, resp, body, http.StatusNotFound, httperr.CodeNotFound)
	if strings.Contains(string(body), "nowhere") {
		t.Errorf("404 message echoes the path: %s", body)
	}
	resp, body = get(t, g.url+"/nowhere", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != 404 || !strings.Contains(string(body), "404 Not Found") {
		t.Errorf("HTML 404 = %d %s", resp.StatusCode, body)
	}
}

func TestHeaderTooLarge(t *testing.T) {
	up := echoUpstream(t)
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, MaxHeaderBytes: 4096}, nil)
	big := strings.Repeat("a", 8192)
	resp, body := rawRequest(t, g.addr, "GET / HTTP/1.1\r\nHost: x\r\nCookie: c="+big+"\r\n\r\n")
	e := wantError(t, resp, body, http.StatusRequestHeaderFieldsTooLarge, httperr.CodeHeaderTooLarge)
	if l := g.logs.accessLine(t, e.RequestID); l["route"] != "other" || l["status"] != float64(431) {
		t.Errorf("rejected request not logged as route other/431: %v", l)
	}
	// Just under the limit passes.
	resp, _ = rawRequest(t, g.addr, "GET / HTTP/1.1\r\nHost: x\r\nCookie: c="+big[:3000]+"\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a 3 KB header got %d with a 4 KB limit", resp.StatusCode)
	}
}

func TestMalformedRequest(t *testing.T) {
	g := startGateway(t, gateway.Options{}, nil)
	resp, body := rawRequest(t, g.addr, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
	wantError(t, resp, body, http.StatusBadRequest, httperr.CodeBadRequest)
	resp, body = rawRequest(t, g.addr, "PROPFIND / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	wantError(t, resp, body, http.StatusNotImplemented, httperr.CodeNotImplemented)
}

func TestBodyLimit(t *testing.T) {
	hits := make(chan string, 10)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		hits <- r.URL.Path
		_, _ = io.Copy(io.Discard, r.Body)
	})
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, BodyLimit: 1024, APIBodyLimit: 100},
		mountRoutes(t, gateway.ClassAPI, func(r fiber.Router) {
			r.Post("/api/echo", func(c *fiber.Ctx) error { return c.Send(reqbody.Raw(c)) })
		}))
	tests := []struct {
		name    string
		path    string
		size    int
		chunked bool
		status  int
	}{
		{name: "proxied at limit", path: "/upload", size: 1024, status: 200},
		{name: "proxied over limit", path: "/upload", size: 1025, status: 413},
		{name: "proxied chunked at limit", path: "/upload", size: 1024, chunked: true, status: 200},
		{name: "proxied chunked over limit", path: "/upload", size: 4096, chunked: true, status: 413},
		{name: "api at limit", path: "/api/echo", size: 100, status: 200},
		{name: "api over limit", path: "/api/echo", size: 101, status: 413},
		{name: "api chunked at limit", path: "/api/echo", size: 100, chunked: true, status: 200},
		{name: "api chunked over limit", path: "/api/echo", size: 101, chunked: true, status: 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			payload := strings.Repeat("x", tc.size)
			var rd io.Reader = strings.NewReader(payload)
			if tc.chunked {
				rd = io.MultiReader(rd) // hides the length: Go sends it chunked
			}
			req, _ := http.NewRequest(http.MethodPost, g.url+tc.path, rd)
			req.Header.Set("Content-Type", "application/json")
			resp, body := do(t, req)
			if tc.status == 413 {
				wantError(t, resp, body, 413, httperr.CodeBodyTooLarge)
			} else if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.path == "/api/echo" && tc.status == 200 && string(body) != payload {
				t.Fatalf("API handler read %d bytes, want %d", len(body), len(payload))
			}
			if tc.path == "/upload" && tc.status == 413 && !tc.chunked {
				select {
				case <-hits:
					t.Fatalf("the upstream was contacted for a declared-oversize body")
				case <-time.After(50 * time.Millisecond):
				}
			}
			for len(hits) > 0 {
				<-hits
			}
		})
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts gateway.Options
		want []string
	}{
		{name: "scheme", opts: gateway.Options{Upstream: proxy.Upstream{URL: "ftp://files"}}, want: []string{"Upstream", "http or https"}},
		{name: "credentials", opts: gateway.Options{Upstream: proxy.Upstream{URL: "http://user:hunter2@app:3000"}}, want: []string{"credentials"}},
		{name: "no host", opts: gateway.Options{Upstream: proxy.Upstream{URL: "http:///path"}}, want: []string{"no host"}},
		{name: "cidr", opts: gateway.Options{TrustedProxies: []string{"10.0.0.0/8", "10.0.0.0/33"}}, want: []string{"TrustedProxies[1]", "10.0.0.0/8"}},
		{name: "negative timeout", opts: gateway.Options{Upstream: proxy.Upstream{DialTimeout: -time.Second}}, want: []string{"Upstream.DialTimeout"}},
		{name: "tiny header limit", opts: gateway.Options{MaxHeaderBytes: 100}, want: []string{"MaxHeaderBytes"}},
		{name: "listen", opts: gateway.Options{Listen: "8080"}, want: []string{"Listen", "host:port"}},
		{name: "identity header", opts: gateway.Options{Upstream: proxy.Upstream{URL: "http://a"}, IdentityHeaders: []string{"X User"}}, want: []string{"IdentityHeaders[0]"}},
		{name: "identity host", opts: gateway.Options{Upstream: proxy.Upstream{URL: "http://a"}, IdentityHeaders: []string{"host"}}, want: []string{"cannot be stripped"}},
		{name: "several at once", opts: gateway.Options{Upstream: proxy.Upstream{URL: "gopher://x"}, BodyLimit: -5}, want: []string{"Upstream", "BodyLimit"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gateway.New(tc.opts)
			if err == nil {
				t.Fatalf("New accepted invalid options")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the upstream password: %v", err)
			}
		})
	}
	if _, err := gateway.New(gateway.Options{Upstream: proxy.Upstream{URL: "https://app.internal:8443/base"}, TrustedProxies: []string{"10.1.2.3", "fd00::/8"}}); err != nil {
		t.Fatalf("valid options rejected: %v", err)
	}
}

func TestMountPrecedenceAndOrder(t *testing.T) {
	up := echoUpstream(t)
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}}, mountRoutes(t, gateway.ClassAuth, func(r fiber.Router) {
		r.Get("/auth/login", func(c *fiber.Ctx) error { return c.SendString("arbor login") })
		r.Route("/auth/cli", func(r fiber.Router) {
			r.Get("/start", func(c *fiber.Ctx) error { return c.SendString("cli start") })
		})
	}))
	resp, body := get(t, g.url+"/auth/login", nil)
	if string(body) != "arbor login" {
		t.Fatalf("/auth/login = %d %s, want Arbor's route", resp.StatusCode, body)
	}
	if l := g.logs.accessLine(t, resp.Header.Get("X-Request-Id")); l["route"] != "auth" {
		t.Errorf("mounted route logged as %v, want auth", l["route"])
	}
	if _, body := get(t, g.url+"/auth/cli/start", nil); string(body) != "cli start" {
		t.Fatalf("/auth/cli/start = %s", body)
	}
	// Another method on the same path, and unknown paths, go upstream.
	req, _ := http.NewRequest(http.MethodPost, g.url+"/auth/login", strings.NewReader("x"))
	if _, body := do(t, req); mustEcho(t, body).URI != "/auth/login" {
		t.Fatalf("POST /auth/login was not proxied: %s", body)
	}
	if _, body := get(t, g.url+"/auth/other", nil); mustEcho(t, body).URI != "/auth/other" {
		t.Fatalf("/auth/other was not proxied: %s", body)
	}
	if err := g.srv.Mount(gateway.ClassAPI, func(fiber.Router) {}); !errors.Is(err, gateway.ErrStarted) {
		t.Fatalf("Mount after Serve = %v, want ErrStarted", err)
	}
}

func TestGracefulShutdown(t *testing.T) {
	arrived := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		time.Sleep(700 * time.Millisecond)
		_, _ = io.WriteString(w, "finished")
	})
	s, err := gateway.New(gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	url := "http://" + ln.Addr().String()

	type result struct {
		status int
		body   string
		err    error
		at     time.Time
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := client.Get(url + "/slow")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		inflight <- result{status: resp.StatusCode, body: string(b), err: err, at: time.Now()}
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the request never reached the upstream")
	}

	shut := make(chan error, 1)
	var shutAt time.Time
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := s.Shutdown(ctx)
		shutAt = time.Now()
		shut <- err
	}()

	// New connections are refused once shutdown has begun.
	waitFor(t, 2*time.Second, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 200*time.Millisecond)
		if err != nil {
			return true
		}
		_ = c.Close()
		return false
	})

	r := <-inflight
	if r.err != nil || r.status != http.StatusOK || r.body != "finished" {
		t.Fatalf("in-flight request during shutdown: %d %q %v, want 200 finished", r.status, r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if shutAt.Before(r.at.Add(-50 * time.Millisecond)) {
		t.Fatalf("Shutdown returned at %v, before the in-flight request finished at %v", shutAt, r.at)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after Shutdown = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	if err := s.Serve(ln); !errors.Is(err, gateway.ErrClosed) {
		t.Fatalf("Serve after Shutdown = %v, want ErrClosed", err)
	}
}

func TestClientTimeouts(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		// Longer than ReadTimeout: a request being handled is not cut off.
		time.Sleep(400 * time.Millisecond)
		_, _ = io.WriteString(w, "slow but fine")
	})
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, ReadTimeout: 150 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}, nil)

	closedWithin := func(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(limit))
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("connection still open after %v", limit)
				}
				return time.Since(start)
			}
		}
	}

	t.Run("slow headers are cut off", func(t *testing.T) {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n") // and never the blank line
		if d := closedWithin(t, c, 2*time.Second); d < 100*time.Millisecond {
			t.Fatalf("closed after %v, before the 150ms ReadTimeout", d)
		}
	})
	t.Run("idle keep-alive is closed", func(t *testing.T) {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		buf := make([]byte, 4096)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := c.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "200 OK") {
			t.Fatalf("no response: %v %q", err, buf[:n])
		}
		if d := closedWithin(t, c, 2*time.Second); d < 250*time.Millisecond {
			t.Fatalf("idle connection closed after %v, before the 300ms IdleTimeout", d)
		}
	})
	t.Run("handling is not limited", func(t *testing.T) {
		resp, body := get(t, g.url+"/slow", nil)
		if resp.StatusCode != 200 || string(body) != "slow but fine" {
			t.Fatalf("a 400ms request with a 150ms ReadTimeout: %d %q", resp.StatusCode, body)
		}
	})
}

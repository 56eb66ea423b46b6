package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/client"
)

// hostileGet sends GET url as client (X-Forwarded-For, believed because the
// test runs Arbor with server.trusted_proxies 127.0.0.1) without following
// redirects.
func hostileGet(t *testing.T, url, client string) (status int, code, retryAfter string) {
	t.Helper()
	return hostileDo(t, url, client)
}

// A flood of /auth/start/{provider} from one address gets 429 rate_limited
// after the burst (limits.signin, default 30 a minute, burst 10), while
// another address is still served; the metrics listener counts it.
func TestHostileSignInFloodIsRateLimited(t *testing.T) {
	e := newTestEnv(t)
	set, err := fakes.Start("http://127.0.0.1:1", fakes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	metricsAddr := freeAddr(t)
	srv := startServe(t, e.with(append(set.Environ(),
		"ARBOR_PLUGINS_CACHE_DIR="+pluginCacheDir(t),
		"ARBOR_SERVER_TRUSTED_PROXIES=127.0.0.1",
		"ARBOR_SERVER_METRICS_LISTEN="+metricsAddr)...))
	base := "http://" + srv.addr
	// The providers load in the background; /readyz says when.
	for deadline := time.Now().Add(3 * time.Minute); ; {
		if st, _, _ := hostileGet(t, base+"/readyz", ""); st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("arbor serve never became ready")
		}
		time.Sleep(100 * time.Millisecond)
	}

	const flooder, other = "203.0.113.66", "198.51.100.7"
	start := base + "/auth/start/github?return_to=/"
	for i := range 10 {
		if st, code, _ := hostileGet(t, start, flooder); st != http.StatusFound {
			t.Fatalf("request %d of the burst: %d %s, want 302 to the provider", i+1, st, code)
		}
	}
	limited := 0
	for i := range 200 {
		st, code, ra := hostileGet(t, start, flooder)
		if st != http.StatusTooManyRequests || code != "rate_limited" {
			// At 30 a minute a token may refill during the flood.
			if st == http.StatusFound && i > 0 {
				continue
			}
			t.Fatalf("flood request %d: %d %q, want 429 rate_limited", i+1, st, code)
		}
		if n, err := strconv.Atoi(ra); err != nil || n < 1 || n > 2 {
			t.Fatalf("flood request %d: Retry-After %q, want 1 or 2 seconds", i+1, ra)
		}
		limited++
	}
	if limited < 190 {
		t.Fatalf("only %d of 200 flood requests were limited", limited)
	}
	if st, code, _ := hostileGet(t, start, other); st != http.StatusFound {
		t.Fatalf("another address during the flood: %d %s, want 302", st, code)
	}
	if st, _, _ := hostileGet(t, base+"/healthz", flooder); st != 200 {
		t.Fatalf("/healthz from the flooder: %d", st)
	}

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `arbor_rate_limited_total{class="signin"} ` + strconv.Itoa(limited)
	if !strings.Contains(string(body), want) {
		t.Fatalf("metrics lack %q:\n%s", want, body)
	}
}

// hostileDo is hostileGet with request headers (name, value, …).
func hostileDo(t *testing.T, url, client string, headers ...string) (status int, code, retryAfter string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if client != "" {
		req.Header.Set("X-Forwarded-For", client)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error, resp.Header.Get("Retry-After")
}

// Failed bearer and worker authentications against the real checks (a
// CLI access token that does not verify, worker credentials that match no
// worker) are answered 401 for the burst of limits.failed_auth (default
// 10), then 429 rate_limited; other addresses are still checked, and a
// request without credentials from the limited address is not refused.
func TestHostileFailedAuthIsRateLimited(t *testing.T) {
	e := newTestEnv(t)
	metricsAddr := freeAddr(t)
	srv := startServe(t, e.with(
		"ARBOR_SERVER_TRUSTED_PROXIES=127.0.0.1",
		"ARBOR_WORKERS_PATHS=/api/tendril/",
		"ARBOR_SERVER_METRICS_LISTEN="+metricsAddr))
	base := "http://" + srv.addr
	badBearer := []string{"Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}
	// Well-formed worker credentials of no worker: each is looked up.
	tok, err := client.NewWorkerToken()
	if err != nil {
		t.Fatal(err)
	}
	badWorker := []string{"X-Worker-ID", "0b6f1b6e-3c1a-4b7e-9a51-2f6f3c0e9d11", "X-Worker-Token", tok}
	for _, c := range []struct {
		name, path, client, code string
		creds                    []string
	}{
		{"bearer on Arbor's API", "/api/auth/me", "203.0.113.10", "unauthenticated", badBearer},
		{"worker on a worker route", "/api/tendril/jobs", "203.0.113.20", "worker_unauthorized", badWorker},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i := range 10 {
				if st, code, _ := hostileDo(t, base+c.path, c.client, c.creds...); st != 401 || code != c.code {
					t.Fatalf("failure %d: %d %q, want 401 %s", i+1, st, code, c.code)
				}
			}
			st, code, ra := hostileDo(t, base+c.path, c.client, c.creds...)
			if st != 429 || code != "rate_limited" || (ra != "1" && ra != "2") {
				t.Fatalf("failure 11: %d %q Retry-After %q, want 429 rate_limited after 1-2 s", st, code, ra)
			}
			if st, code, _ := hostileDo(t, base+c.path, "198.51.100.99", c.creds...); st != 401 || code != c.code {
				t.Fatalf("another address: %d %q, want 401 %s (still checked)", st, code, c.code)
			}
			if st, code, _ := hostileDo(t, base+c.path, c.client); st == 429 {
				t.Fatalf("no credentials from the limited address: %d %q, want no 429", st, code)
			}
		})
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `arbor_rate_limited_total{class="failed_auth"} 2`; !strings.Contains(string(body), want) {
		t.Fatalf("metrics lack %q:\n%s", want, body)
	}
}

// server.metrics_listen: /metrics has a listener of its own and is a 404
// on the public one; "public" keeps the old behaviour; the listener stops
// with the server.
func TestServeMetricsListen(t *testing.T) {
	e := newTestEnv(t)
	metricsAddr := freeAddr(t)
	srv := startServe(t, e.with("ARBOR_SERVER_METRICS_LISTEN="+metricsAddr))
	if st, code, _ := hostileGet(t, "http://"+srv.addr+"/metrics", ""); st != http.StatusNotFound || code != "not_found" {
		t.Fatalf("/metrics on the public listener: %d %q, want 404 not_found", st, code)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `arbor_http_requests_total{route="metrics",status_class="4xx"} 1`) ||
		!strings.Contains(string(body), "arbor_rate_limited_total") {
		t.Fatalf("metrics listener: %d\n%s", resp.StatusCode, body)
	}
	if st, _, _ := hostileGet(t, "http://"+metricsAddr+"/", ""); st != http.StatusNotFound {
		t.Fatalf("metrics listener serves / : %d", st)
	}
	if !strings.Contains(srv.logs.String(), `"metrics_listen":"`+metricsAddr+`"`) {
		t.Errorf("no log line names the metrics listener")
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("arbor serve exited with %v after SIGTERM", err)
	}
	if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
		resp.Body.Close()
		t.Fatal("the metrics listener still answers after the server stopped")
	}

	// "public": /metrics on the public listener, as before.
	pub := startServe(t, e.with("ARBOR_SERVER_METRICS_LISTEN=public"))
	if st, _, _ := hostileGet(t, "http://"+pub.addr+"/metrics", ""); st != 200 {
		t.Fatalf("metrics_listen public: /metrics answered %d", st)
	}
	if err := pub.stop(t); err != nil {
		t.Fatal(err)
	}

	// A taken address stops the start with a message saying what to do.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e2 := newTestEnv(t)
	_, errOut, code := runArbor(t, e2.with("ARBOR_LISTEN="+freeAddr(t), "ARBOR_SERVER_METRICS_LISTEN="+ln.Addr().String()), "serve")
	if code == 0 || !strings.Contains(errOut, "server.metrics_listen") {
		t.Fatalf("metrics_listen on a taken address: exit %d\n%s", code, errOut)
	}
}

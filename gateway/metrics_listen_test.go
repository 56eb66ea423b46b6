package gateway_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/edge/proxy"
)

// With NoPublicMetrics, /metrics on the public listener is a 404 of
// Arbor's own (never proxied to the upstream), and MetricsHandler serves
// the same registry on a listener of its own.
func TestNoPublicMetrics(t *testing.T) {
	up := echoUpstream(t)
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}, NoPublicMetrics: true}, nil)
	get(t, g.url+"/healthz", nil)

	resp, body := get(t, g.url+"/metrics", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"error":"not_found"`) {
		t.Fatalf("public /metrics: %d %s, want 404 not_found", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "URI") { // the echo upstream's answer
		t.Fatalf("public /metrics reached the upstream: %s", body)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms := &http.Server{Handler: g.srv.MetricsHandler()}
	go func() { _ = ms.Serve(ln) }()
	defer ms.Close()
	mresp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	text, _ := io.ReadAll(mresp.Body)
	if mresp.StatusCode != 200 || !strings.Contains(string(text), `arbor_http_requests_total{route="health",status_class="2xx"} 1`) ||
		!strings.Contains(string(text), `arbor_http_requests_total{route="metrics",status_class="4xx"} 1`) {
		t.Fatalf("metrics listener: %d\n%s", mresp.StatusCode, text)
	}
}

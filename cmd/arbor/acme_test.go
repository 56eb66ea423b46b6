package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/data/etcd/etcdtest"
	"github.com/vintner/arbor/gateway/edge/acme/acmetest"
)

// acmeServe is an `arbor serve` with tls.acme.* pointed at an in-process
// Pebble whose validation authority connects to Arbor's own listeners.
type acmeServe struct {
	pebble      *acmetest.Pebble
	env         []string
	addr        string // listen
	base        string // https://localhost:port
	metricsAddr string
	client      *http.Client // trusts Pebble's issued certificates only
}

func newACMEServe(t *testing.T, pebbleOpts acmetest.Options) *acmeServe {
	t.Helper()
	e := newTestEnv(t)
	addr, plainAddr, metricsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	pebbleOpts.TLSALPNPort = port(t, addr)
	pebbleOpts.HTTPPort = port(t, plainAddr)
	p := acmetest.Start(t, pebbleOpts)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s over %s", r.URL.Path, r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(up.Close)
	base := fmt.Sprintf("https://%s:%d", acmetest.Domain, port(t, addr))
	return &acmeServe{
		pebble:      p,
		addr:        addr,
		base:        base,
		metricsAddr: metricsAddr,
		client:      pebbleClient(p),
		env: e.with(
			"ARBOR_UPSTREAM_URL="+up.URL, "ARBOR_AUTH_DEFAULT_ROUTE=public",
			"ARBOR_PUBLIC_URL="+base,
			"ARBOR_TLS_ACME_DOMAINS="+acmetest.Domain,
			"ARBOR_TLS_ACME_CA_URL="+p.DirURL,
			"ARBOR_TLS_ACME_CA_ROOT_FILE="+p.WriteAPIRoot(t, t.TempDir()),
			"ARBOR_TLS_HTTP_LISTEN="+plainAddr,
			"ARBOR_SERVER_METRICS_LISTEN="+metricsAddr,
		),
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a.Port
}

func (s *acmeServe) start(t *testing.T) *server {
	t.Helper()
	return startServeTLS(t, s.addr, s.base, s.client, s.env)
}

// get fetches path over https, trusting only Pebble's root.
func (s *acmeServe) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	res, err := s.client.Get(s.base + path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(body)
}

// metrics returns the metrics listener's page.
func (s *acmeServe) metrics(t *testing.T) string {
	t.Helper()
	res, err := http.Get("http://" + s.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return string(body)
}

// `arbor serve` with tls.acme.*: it obtains a certificate from the CA
// (which validates against its listeners), serves the proxy over https
// with HSTS under that certificate, reports it in `arbor tls status` and
// on /metrics, and after a restart on the same data_dir serves the stored
// certificate without a new order.
func TestServeACME(t *testing.T) {
	s := newACMEServe(t, acmetest.Options{})
	srv := s.start(t)

	check := func(run string) {
		t.Helper()
		res, body := s.get(t, "/hello")
		if body != "upstream saw /hello over https" || res.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
			t.Fatalf("%s: proxied over https: %d %q, HSTS %q", run, res.StatusCode, body, res.Header.Get("Strict-Transport-Security"))
		}
		leaf := res.TLS.PeerCertificates[0]
		if !strings.Contains(leaf.Issuer.CommonName, "Pebble") || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != acmetest.Domain {
			t.Fatalf("%s: served certificate %v issued by %q", run, leaf.DNSNames, leaf.Issuer)
		}
		// One certificate asked for, on the first start only. (Orders may
		// be two if a validation failed and was retried: see acmetest.)
		if n := s.pebble.Finalized(); n != 1 {
			t.Fatalf("%s: the CA was asked for %d certificates, want 1", run, n)
		}

		out, errOut, code := runArbor(t, s.env, "tls", "status")
		if code != 0 || !strings.Contains(out, "source: acme ("+s.pebble.DirURL+") for localhost") ||
			!strings.Contains(out, "renewal failures since start: 0") ||
			!strings.Contains(out, leaf.Issuer.String()) || !strings.Contains(out, leaf.NotAfter.UTC().Format(time.RFC3339)) {
			t.Fatalf("%s: arbor tls status: exit %d\n%s%s", run, code, out, errOut)
		}
		m := s.metrics(t)
		for _, want := range []string{
			fmt.Sprintf("arbor_tls_certificate_expiry_timestamp_seconds{name=%q} %s", acmetest.Domain, promFloat(leaf.NotAfter.Unix())),
			"arbor_tls_renewal_failures_total 0",
		} {
			if !strings.Contains(m, want) {
				t.Fatalf("%s: /metrics lacks %q:\n%s", run, want, grepLines(m, "arbor_tls_"))
			}
		}
	}
	check("first start")
	orders := s.pebble.Orders()
	if err := srv.stop(t); err != nil {
		t.Fatalf("arbor serve exit: %v", err)
	}

	srv = s.start(t)
	check("restart")
	if n := s.pebble.Orders(); n != orders {
		t.Fatalf("the restart placed %d new order(s); want the stored certificate", n-orders)
	}
	if !strings.Contains(srv.logs.String(), "acme: managing certificates") {
		t.Fatal("the restart did not manage the certificate with ACME")
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("arbor serve exit: %v", err)
	}
}

// A CA that refuses the order stops `arbor serve` at start-up, with the
// CA's answer in the message.
func TestServeACMERefused(t *testing.T) {
	s := newACMEServe(t, acmetest.Options{Blocked: []string{acmetest.Domain}})
	_, errOut, code := runArbor(t, s.env, "serve")
	if code == 0 || !strings.Contains(errOut, "refused a certificate for localhost") || !strings.Contains(errOut, "rejectedIdentifier") {
		t.Fatalf("arbor serve with a refusing CA: exit %d\n%s", code, tail(errOut, 4000))
	}
}

// promFloat formats a Unix time as the Prometheus text format does.
func promFloat(sec int64) string {
	return strconv.FormatFloat(float64(sec), 'g', -1, 64)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// tcpBalancer passes each connection on its listener to the backends in
// turn, as a TCP load balancer in front of replicas does (TLS passes
// through: the CA's TLS-ALPN-01 handshake reaches a replica).
type tcpBalancer struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint32
}

func newTCPBalancer(t *testing.T, backends ...string) *tcpBalancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &tcpBalancer{ln: ln, backends: backends}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			to := b.backends[int(b.next.Add(1))%len(b.backends)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				u, err := net.DialTimeout("tcp", to, 5*time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				_ = u.SetDeadline(time.Now().Add(30 * time.Second))
				go func() { _, _ = io.Copy(u, c); _ = u.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	return b
}

func (b *tcpBalancer) port(t *testing.T) int { return port(t, b.ln.Addr().String()) }

// Two `arbor serve` replicas on one etcd, started together behind TCP
// balancers that the CA validates through: exactly one certificate is
// ordered (the store's lock), and both replicas serve it.
func TestServeACMEReplicas(t *testing.T) {
	etcd := etcdtest.StartCluster(t, 1)
	e := newTestEnv(t)
	addrs := []string{freeAddr(t), freeAddr(t)}
	plains := []string{freeAddr(t), freeAddr(t)}
	tlsLB, plainLB := newTCPBalancer(t, addrs...), newTCPBalancer(t, plains...)
	p := acmetest.Start(t, acmetest.Options{TLSALPNPort: tlsLB.port(t), HTTPPort: plainLB.port(t)})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s over %s", r.URL.Path, r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(up.Close)
	client := pebbleClient(p)
	env := e.with(
		"ARBOR_UPSTREAM_URL="+up.URL, "ARBOR_AUTH_DEFAULT_ROUTE=public",
		fmt.Sprintf("ARBOR_PUBLIC_URL=https://%s:%d", acmetest.Domain, tlsLB.port(t)),
		"ARBOR_TLS_ACME_DOMAINS="+acmetest.Domain,
		"ARBOR_TLS_ACME_CA_URL="+p.DirURL,
		"ARBOR_TLS_ACME_CA_ROOT_FILE="+p.WriteAPIRoot(t, t.TempDir()),
		"ARBOR_STORE_BACKEND=etcd",
		"ARBOR_STORE_ENDPOINTS="+strings.Join(etcd.Endpoints(), ","),
		"ARBOR_STORE_ROOT=/arbor-acme/",
	)
	var servers []*server
	for i, addr := range addrs {
		dir, err := os.MkdirTemp("", "arba") // short: the admin socket lives here
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		servers = append(servers, launchServe(t, addr, append(append([]string(nil), env...),
			"HOME="+dir, "ARBOR_DATA_DIR="+dir, "ARBOR_TLS_HTTP_LISTEN="+plains[i])))
	}
	var serials []string
	for i, s := range servers {
		base := fmt.Sprintf("https://%s:%d", acmetest.Domain, port(t, addrs[i]))
		s.waitTLS(t, base, client)
		res, err := client.Get(base + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != "upstream saw /hello over https" || res.Header.Get("Strict-Transport-Security") == "" {
			t.Fatalf("replica %d: %d %q, HSTS %q", i, res.StatusCode, body, res.Header.Get("Strict-Transport-Security"))
		}
		serials = append(serials, res.TLS.PeerCertificates[0].SerialNumber.String())
	}
	if serials[0] != serials[1] {
		t.Fatalf("the replicas serve different certificates: serials %v", serials)
	}
	// One certificate: one replica finalized an order; the other waited
	// on the store's lock and loaded it. Orders may be more than one if a
	// validation through the balancers failed and was retried (logged).
	if n := p.Finalized(); n != 1 {
		t.Fatalf("the CA was asked for %d certificates by two replicas, want 1", n)
	}
	if n := p.Orders(); n != 1 {
		t.Logf("the CA received %d orders (a failed validation was retried); see the replicas' logs", n)
	}
	for _, s := range servers {
		if err := s.stop(t); err != nil {
			t.Fatalf("arbor serve exit: %v", err)
		}
	}
}

// pebbleClient is an https client that trusts only the certificates p
// issues and connects to 127.0.0.1 whatever localhost resolves to.
func pebbleClient(p *acmetest.Pebble) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.Roots},
		DialContext: func(ctx context.Context, _, a string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(a)
			var d net.Dialer
			return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
		},
	}}
}

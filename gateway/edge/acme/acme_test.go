package acme

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/vintner/arbor/data/seal"
	"github.com/vintner/arbor/gateway/edge/acme/acmetest"
)

// testTimeout bounds every start-up and wait in these tests.
const testTimeout = 90 * time.Second

type testManager struct {
	*Manager
	logs *lockedBuffer
}

// newManager builds a Manager for testDomain on st, with the CA p and the
// challenge ports of e as set by mod (both challenges by default).
func newManager(t *testing.T, p *acmetest.Pebble, e *edge, st Store, mod func(*Options)) testManager {
	t.Helper()
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager's log:\n%s", logs)
		}
	})
	o := Options{
		Domains:      []string{testDomain},
		Email:        "ops@example.com",
		Store:        st,
		Sealer:       testSealer(t),
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ListenHost:   "127.0.0.1",
		StartTimeout: testTimeout,
	}
	if p != nil {
		o.CAURL, o.CARoots = p.DirURL, p.APIRoot
	}
	if e != nil {
		o.HTTPPort, o.TLSALPNPort = e.httpPort, e.tlsPort
	}
	if mod != nil {
		mod(&o)
	}
	m, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return testManager{Manager: m, logs: logs}
}

var (
	sealerOnce sync.Once
	sealerKR   *seal.Keyring
)

// testSealer is a real keyring with a random key (the same for every test
// in the binary, as a deployment's replicas share theirs).
func testSealer(t *testing.T) Sealer {
	sealerOnce.Do(func() {
		secret := make([]byte, seal.KeySize)
		_, _ = rand.Read(secret)
		kr, err := seal.NewKeyring(seal.Key{ID: "k1", Secret: secret})
		if err != nil {
			panic(err)
		}
		sealerKR = kr
	})
	return SealWith(sealerKR)
}

func start(t *testing.T, m testManager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

// TestObtainsWithHTTP01 obtains a certificate through a real HTTP-01
// validation: Pebble fetches the key authorization from the plain
// listener, which asks HTTPChallenge; then a client trusting Pebble's root
// gets the certificate over https.
func TestObtainsWithHTTP01(t *testing.T) {
	e := newEdge(t)
	p := acmetest.Start(t, acmetest.Options{HTTPPort: e.httpPort})
	m := newManager(t, p, e, newTestStore(t), func(o *Options) { o.TLSALPNPort = 0 })
	if got := m.NextProtos(); len(got) != 0 {
		t.Errorf("NextProtos with TLS-ALPN-01 off = %q, want none", got)
	}
	e.use(m.Manager)
	start(t, m)

	if n := e.httpChallenges.Load(); n == 0 {
		t.Error("the plain listener answered no HTTP-01 request: the certificate was not validated through HTTPChallenge")
	}
	// One certificate issued (a challenge that fails once is retried
	// with the other type, which is a second order: docs/acme.md).
	if n := p.Finalized(); n != 1 {
		t.Errorf("certificates issued by the CA = %d, want 1", n)
	}
	cert := served(t, e, p.Roots)
	if !slices.Equal(cert.DNSNames, []string{testDomain}) {
		t.Errorf("served certificate names = %q, want [%s]", cert.DNSNames, testDomain)
	}
	if got := m.Certificates(); len(got) != 1 || !got[0].NotAfter.Equal(cert.NotAfter) {
		t.Errorf("Certificates() = %+v, want the served one (expires %v)", got, cert.NotAfter)
	}
	if n := m.Failures(); n != 0 {
		t.Errorf("Failures() = %d after a clean order, want 0", n)
	}

	// A client that sends no server name (an IP address) gets the first
	// domain's certificate.
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", e.tlsAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake without SNI: %v", err)
	}
	noSNI := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if noSNI.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Errorf("without SNI the client got %v, want the certificate of %s", noSNI.DNSNames, testDomain)
	}

	// Anything else on the plain listener is not a challenge.
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/", "/.well-known/acme-challenge/not-a-token"} {
		resp, err := client.Get("http://" + e.httpAddr + path + "?q=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPermanentRedirect {
			t.Errorf("GET %s on the plain listener = %d, want 308 (HTTPChallenge must not claim it)", path, resp.StatusCode)
		}
	}
}

// TestObtainsWithTLSALPN01 obtains a certificate through a real
// TLS-ALPN-01 validation: Pebble handshakes with the https listener
// offering acme-tls/1, and GetCertificate answers with the challenge
// certificate.
func TestObtainsWithTLSALPN01(t *testing.T) {
	e := newEdge(t)
	p := acmetest.Start(t, acmetest.Options{TLSALPNPort: e.tlsPort})
	m := newManager(t, p, e, newTestStore(t), func(o *Options) { o.HTTPPort = 0 })
	if got := m.NextProtos(); !slices.Equal(got, []string{"acme-tls/1"}) {
		t.Errorf("NextProtos = %q, want [acme-tls/1]", got)
	}
	e.use(m.Manager)
	start(t, m)

	if n := e.alpnHellos.Load(); n == 0 {
		t.Error("no handshake offered acme-tls/1: the certificate was not validated through TLS-ALPN-01")
	}
	if n := e.httpChallenges.Load(); n != 0 {
		t.Errorf("HTTP-01 requests answered = %d with HTTP-01 off, want 0", n)
	}
	// One certificate issued (a challenge that fails once is retried
	// with the other type, which is a second order: docs/acme.md).
	if n := p.Finalized(); n != 1 {
		t.Errorf("certificates issued by the CA = %d, want 1", n)
	}
	cert := served(t, e, p.Roots)
	if !slices.Equal(cert.DNSNames, []string{testDomain}) {
		t.Errorf("served certificate names = %q, want [%s]", cert.DNSNames, testDomain)
	}
}

// TestRestartLoadsFromStore: a Manager started on a store that already
// holds the certificate (a restart, or a replica that starts later) serves
// it without ordering again, and the private keys in the store are sealed.
func TestRestartLoadsFromStore(t *testing.T) {
	e := newEdge(t)
	p := acmetest.Start(t, acmetest.Options{HTTPPort: e.httpPort, TLSALPNPort: e.tlsPort})
	st := newTestStore(t)
	first := newManager(t, p, e, st, nil)
	e.use(first.Manager)
	start(t, first)
	before := served(t, e, p.Roots)
	ordersBefore := p.Orders()
	_ = first.Close()

	second := newManager(t, p, e, st, nil)
	e.use(second.Manager)
	start(t, second)
	after := served(t, e, p.Roots)
	if n := p.Orders(); n != ordersBefore {
		t.Errorf("orders at the CA after a restart = %d, want still %d (the stored certificate should be loaded)", n, ordersBefore)
	}
	if before.SerialNumber.Cmp(after.SerialNumber) != 0 {
		t.Errorf("after a restart the served certificate is %v, want the stored %v", after.SerialNumber, before.SerialNumber)
	}

	// What the store holds: keys sealed (bound to their key), certificates
	// in the clear.
	var keys, certs int
	for k, v := range raw(t, st) {
		switch {
		case strings.HasSuffix(k, ".key"):
			keys++
			if strings.Contains(string(v), "PRIVATE KEY") {
				t.Errorf("%s is stored as a PEM private key, want it sealed", k)
			}
			plain, err := testSealer(t).Open(k, v)
			if err != nil || !strings.Contains(string(plain), "PRIVATE KEY") {
				t.Errorf("%s does not open to a PEM private key: %v", k, err)
			}
		case strings.HasSuffix(k, ".crt"):
			certs++
			if !strings.Contains(string(v), "BEGIN CERTIFICATE") {
				t.Errorf("%s is not a PEM certificate", k)
			}
		}
	}
	if keys < 2 || certs < 1 {
		t.Errorf("store holds %d keys and %d certificates, want the account and certificate keys and a certificate", keys, certs)
	}
}

// TestReplicasOrderOnce: two Managers (replicas) on one store start at
// once, behind one address that sends each request to them in turn; the
// store's lock makes exactly one of them order, and both serve the same
// certificate.
func TestReplicasOrderOnce(t *testing.T) {
	e := newEdge(t)
	p := acmetest.Start(t, acmetest.Options{HTTPPort: e.httpPort, TLSALPNPort: e.tlsPort})
	st := newTestStore(t)
	a := newManager(t, p, e, st, nil)
	b := newManager(t, p, e, st, nil)
	e.use(a.Manager, b.Manager)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, m := range []testManager{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			errs[i] = m.Start(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: Start: %v", i, err)
		}
	}
	if n := p.Finalized(); n != 1 {
		t.Errorf("certificates issued to two replicas = %d, want exactly 1", n)
	}
	// e sends each handshake to the next replica: two in a row reach both.
	one, two := served(t, e, p.Roots), served(t, e, p.Roots)
	if one.SerialNumber.Cmp(two.SerialNumber) != 0 {
		t.Errorf("the replicas serve different certificates: %v and %v", one.SerialNumber, two.SerialNumber)
	}
}

// TestRenewsBeforeExpiry: with certificates that live 40 seconds, the
// Manager renews in the background and serves the new certificate while
// the first is still valid.
func TestRenewsBeforeExpiry(t *testing.T) {
	e := newEdge(t)
	p := acmetest.Start(t, acmetest.Options{HTTPPort: e.httpPort, TLSALPNPort: e.tlsPort, Validity: 40})
	m := newManager(t, p, e, newTestStore(t), func(o *Options) { o.RenewCheckInterval = time.Second })
	e.use(m.Manager)
	start(t, m)
	first := served(t, e, p.Roots)

	deadline := time.Now().Add(testTimeout)
	for {
		cert, err := tryServed(e, p.Roots)
		if err != nil {
			t.Fatalf("https handshake while renewing: %v", err)
		}
		if cert.SerialNumber.Cmp(first.SerialNumber) != 0 {
			if !time.Now().Before(first.NotAfter) {
				t.Errorf("renewed certificate served at %v, after the first expired (%v)", time.Now(), first.NotAfter)
			}
			if !cert.NotAfter.After(first.NotAfter) {
				t.Errorf("renewed certificate expires %v, not after the first (%v)", cert.NotAfter, first.NotAfter)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no renewed certificate within %v (first expires %v)", testTimeout, first.NotAfter)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if n := p.Orders(); n < 2 {
		t.Errorf("orders at the CA = %d, want at least 2 (the renewal)", n)
	}
}

// TestStartErrors: when a domain has no certificate and the CA cannot be
// reached, refuses the order, or never answers, Start fails with a message
// that says what failed and what to check, and the CA's problem document
// is in the message and the log.
func TestStartErrors(t *testing.T) {
	closed := func(t *testing.T) string { // an address nobody listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	silent := func(t *testing.T) string { // accepts connections, never answers
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var conns []net.Conn
		t.Cleanup(func() {
			ln.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
		return ln.Addr().String()
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, e *edge, o *Options)
		wantErr []string
		wantLog []string
	}{
		{
			name: "unreachable CA",
			setup: func(t *testing.T, e *edge, o *Options) {
				o.CAURL = "https://" + closed(t) + "/dir"
			},
			wantErr: []string{"could not obtain a certificate for localhost from https://127.0.0.1:", "check tls.acme.ca_url", "connection refused"},
			wantLog: []string{"obtaining or renewing a certificate failed", "connection refused"},
		},
		{
			name: "CA refuses the order",
			setup: func(t *testing.T, e *edge, o *Options) {
				p := acmetest.Start(t, acmetest.Options{HTTPPort: e.httpPort, TLSALPNPort: e.tlsPort, Blocked: []string{testDomain}})
				o.CAURL, o.CARoots = p.DirURL, p.APIRoot
			},
			wantErr: []string{"the CA https://127.0.0.1:", "refused a certificate for localhost", "urn:ietf:params:acme:error:rejectedIdentifier", "forbidden by policy"},
			wantLog: []string{"urn:ietf:params:acme:error:rejectedIdentifier", "forbidden by policy"},
		},
		{
			name: "CA never answers",
			setup: func(t *testing.T, e *edge, o *Options) {
				o.CAURL = "https://" + silent(t) + "/dir"
				o.StartTimeout = 3 * time.Second
			},
			wantErr: []string{"no certificate for localhost from https://127.0.0.1:", "after 3s", "did not complete the order in time"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEdge(t)
			m := newManager(t, nil, e, newTestStore(t), func(o *Options) { tc.setup(t, e, o) })
			e.use(m.Manager)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			err := m.Start(ctx)
			if err == nil {
				t.Fatal("Start succeeded, want an error")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Start error %q\ndoes not say %q", err, want)
				}
			}
			if len(tc.wantLog) > 0 && m.Failures() == 0 {
				t.Error("Failures() = 0 after a failed order")
			}
			logs := m.logs.String()
			for _, want := range tc.wantLog {
				if !strings.Contains(logs, want) {
					t.Errorf("log does not say %q:\n%s", want, logs)
				}
			}
		})
	}
}

// TestKeepsServingWhenCAFails: a replica whose store holds a valid
// certificate starts and serves it even though its CA cannot be reached.
func TestKeepsServingWhenCAFails(t *testing.T) {
	e := newEdge(t)
	p := acmetest.Start(t, acmetest.Options{HTTPPort: e.httpPort, TLSALPNPort: e.tlsPort})
	st := newTestStore(t)
	first := newManager(t, p, e, st, nil)
	e.use(first.Manager)
	start(t, first)
	want := served(t, e, p.Roots)
	_ = first.Close()

	// The same CA (certificates are stored per CA), now down.
	p.Stop()
	second := newManager(t, p, e, st, nil)
	e.use(second.Manager)
	start(t, second)
	got := served(t, e, p.Roots)
	if got.SerialNumber.Cmp(want.SerialNumber) != 0 {
		t.Errorf("served %v, want the stored certificate %v", got.SerialNumber, want.SerialNumber)
	}
}

func TestNewRefusesOptions(t *testing.T) {
	st := newTestStore(t)
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no domains", Options{Store: st, HTTPPort: 80}, "no domains"},
		{"no store", Options{Domains: []string{"a.example"}, HTTPPort: 80}, "no store"},
		{"no challenge port", Options{Domains: []string{"a.example"}, Store: st}, "no listener can answer"},
		{"plain CA URL", Options{Domains: []string{"a.example"}, Store: st, HTTPPort: 80, CAURL: "http://ca.example/dir"}, "want the https URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(context.Background(), tc.o)
			if err == nil {
				_ = m.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New error %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestStaplesOCSP: when the CA's certificates name an OCSP responder, the
// Manager fetches a response, staples it to the handshake and keeps it in
// the store. Pebble has no responder of its own: the test runs one that
// signs with Pebble's intermediate key.
func TestStaplesOCSP(t *testing.T) {
	var authority atomic.Pointer[acmetest.Pebble]
	var queries atomic.Int32
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var der []byte
		var err error
		if r.Method == http.MethodPost {
			der, err = io.ReadAll(io.LimitReader(r.Body, 64<<10))
		} else {
			var path string
			path, err = url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/"))
			if err == nil {
				der, err = base64.StdEncoding.DecodeString(path)
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req, err := ocsp.ParseRequest(der)
		p := authority.Load()
		if err != nil || p == nil {
			http.Error(w, "bad OCSP request", http.StatusBadRequest)
			return
		}
		queries.Add(1)
		issuer := p.CA.GetIntermediateCert(0).Cert
		now := time.Now()
		resp, err := ocsp.CreateResponse(issuer, issuer, ocsp.Response{
			Status:       ocsp.Good,
			SerialNumber: req.SerialNumber,
			ThisUpdate:   now.Add(-time.Minute),
			NextUpdate:   now.Add(time.Hour),
		}, p.CA.GetIntermediateKey(0))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(responder.Close)

	e := newEdge(t)
	p := acmetest.Start(t, acmetest.Options{HTTPPort: e.httpPort, TLSALPNPort: e.tlsPort, OCSPURL: responder.URL, KeyAlg: "rsa"})
	authority.Store(p)
	st := newTestStore(t)
	m := newManager(t, p, e, st, nil)
	e.use(m.Manager)
	start(t, m)

	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", e.tlsAddr, &tls.Config{ServerName: testDomain, RootCAs: p.Roots})
	if err != nil {
		t.Fatal(err)
	}
	state := conn.ConnectionState()
	conn.Close()
	if len(state.OCSPResponse) == 0 {
		t.Fatalf("no OCSP staple in the handshake (responder queried %d times)", queries.Load())
	}
	resp, err := ocsp.ParseResponseForCert(state.OCSPResponse, state.PeerCertificates[0], p.CA.GetIntermediateCert(0).Cert)
	if err != nil {
		t.Fatalf("stapled OCSP response: %v", err)
	}
	if resp.Status != ocsp.Good {
		t.Errorf("stapled status = %d, want good", resp.Status)
	}
	var stored bool
	for k := range raw(t, st) {
		stored = stored || strings.HasPrefix(k, keyPrefix+"ocsp/")
	}
	if !stored {
		t.Error("the OCSP staple is not kept in the store")
	}
}

// TestCloseStopsBackgroundWork: after Close no goroutine of certmagic's is
// left (maintenance, renewal jobs, retries), also when Start gave up on a
// CA that never answered and an order was still in flight. The exception
// is certmagic's rate limiter of orders, one idle goroutine per CA and
// account e-mail kept for the life of the process (its package-level
// rateLimiters), shared by every Manager with that CA and e-mail.
func TestCloseStopsBackgroundWork(t *testing.T) {
	e := newEdge(t)
	p := acmetest.Start(t, acmetest.Options{HTTPPort: e.httpPort, TLSALPNPort: e.tlsPort})
	served := newManager(t, p, e, newTestStore(t), nil)
	e.use(served.Manager)
	start(t, served)

	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	waiting := newManager(t, nil, e, newTestStore(t), func(o *Options) {
		o.CAURL = "https://" + hung.Addr().String() + "/dir"
		o.StartTimeout = time.Second
	})
	if err := waiting.Start(context.Background()); err == nil {
		t.Fatal("Start against a CA that never answers succeeded")
	}

	_ = served.Close()
	_ = waiting.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		var left []string
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "caddyserver/certmagic") && !strings.Contains(g, "certmagic.(*RingBufferRateLimiter)") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d certmagic goroutine(s) left after Close:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

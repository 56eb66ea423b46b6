package acme

// The test CA: Pebble (github.com/letsencrypt/pebble/v2), Let's Encrypt's
// ACME test server, wired inside the test binary the way its
// cmd/pebble/main.go wires it (db, ca, va, wfe), with its ACME API on an
// httptest TLS server on 127.0.0.1 and its validation authority pointed at
// the test's own listeners (va.New's httpPort and tlsPort). Validation is
// real: Pebble connects to those listeners and checks the key
// authorization (HTTP-01) or the acmeValidation certificate (TLS-ALPN-01).

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/vintner/arbor/data/boltdb"
)

// testDomain resolves to 127.0.0.1 for Pebble's validation authority
// (which uses the system resolver: /etc/hosts).
const testDomain = "localhost"

type pebbleOptions struct {
	httpPort, tlsPort int      // where the VA validates HTTP-01 and TLS-ALPN-01
	validity          uint64   // certificate lifetime in seconds; 0 is Pebble's default (90 days)
	blocked           []string // names the CA refuses to issue for
	ocspURL           string   // OCSP responder URL put in certificates
	keyAlg            string   // the CA's keys: "ecdsa" (default) or "rsa"
}

type pebble struct {
	dirURL  string         // the ACME directory
	apiRoot *x509.CertPool // trusts the ACME API's https (Options.CARoots)
	roots   *x509.CertPool // trusts the certificates Pebble issues
	ca      *ca.CAImpl
	srv     *httptest.Server
	orders  atomic.Int32 // new-order requests
}

// stop takes the CA down: its URL then refuses connections.
func (p *pebble) stop() { p.srv.Close() }

// lockedBuffer collects a log written by goroutines that may outlive the
// test (Pebble's VA, certmagic's jobs), so never t.Log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startPebble(t *testing.T, o pebbleOptions) *pebble {
	t.Helper()
	// Pebble reads these when its parts are made (va.New, wfe.New).
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // validate at once, not after a random sleep
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no deliberately rejected nonces
	t.Setenv("PEBBLE_AUTHZREUSE", "0")      // every order validates anew

	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble's log:\n%s", logs)
		}
	})
	logger := log.New(logs, "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	profiles := map[string]ca.Profile{"default": {Description: "test", ValidityPeriod: o.validity}}
	if o.keyAlg == "" {
		o.keyAlg = "ecdsa"
	}
	authority := ca.New(logger, store, o.ocspURL, o.keyAlg, 0, 1, profiles)
	validator := va.New(logger, o.httpPort, o.tlsPort, false, "", store)
	for _, name := range o.blocked {
		if err := store.AddBlockedDomain(name); err != nil {
			t.Fatal(err)
		}
	}
	frontEnd := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	api := frontEnd.Handler()

	p := &pebble{ca: authority}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			p.orders.Add(1)
		}
		api.ServeHTTP(w, r)
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.srv = srv

	p.dirURL = srv.URL + wfe.DirectoryPath
	p.apiRoot = x509.NewCertPool()
	p.apiRoot.AddCert(srv.Certificate())
	p.roots = x509.NewCertPool()
	p.roots.AddCert(authority.GetRootCert(0).Cert)
	return p
}

// edge stands for Arbor's two listeners on 127.0.0.1: a plain one that
// passes ACME HTTP-01 requests to a Manager and redirects the rest, and an
// https one whose certificates come from a Manager. With several Managers
// (replicas behind one address), requests go to each in turn.
type edge struct {
	httpAddr, tlsAddr string
	httpPort, tlsPort int

	managers       atomic.Pointer[[]*Manager]
	next           atomic.Uint32
	httpChallenges atomic.Int32 // requests a Manager answered as HTTP-01
	alpnHellos     atomic.Int32 // handshakes offering acme-tls/1
}

func newEdge(t *testing.T) *edge {
	t.Helper()
	e := &edge{}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	secure, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.httpAddr, e.tlsAddr = plain.Addr().String(), secure.Addr().String()
	e.httpPort, e.tlsPort = plain.Addr().(*net.TCPAddr).Port, secure.Addr().(*net.TCPAddr).Port

	plainSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := e.pick(); m != nil && m.HTTPChallenge(w, r) {
			e.httpChallenges.Add(1)
			return
		}
		http.Redirect(w, r, "https://"+r.Host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	}), ReadHeaderTimeout: 5 * time.Second, ErrorLog: quiet}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1", "acme-tls/1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if slices.Contains(hello.SupportedProtos, "acme-tls/1") {
				e.alpnHellos.Add(1)
			}
			m := e.pick()
			if m == nil {
				return nil, errNoManager
			}
			return m.GetCertificate(hello)
		},
	}
	secureSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("hello over https"))
	}), ReadHeaderTimeout: 5 * time.Second, ErrorLog: quiet}
	go func() { _ = plainSrv.Serve(plain) }()
	go func() { _ = secureSrv.Serve(tls.NewListener(secure, cfg)) }()
	t.Cleanup(func() {
		_ = plainSrv.Close()
		_ = secureSrv.Close()
	})
	return e
}

// quiet drops net/http's server log (handshakes the CA's validation
// authority cuts short).
var quiet = log.New(io.Discard, "", 0)

var errNoManager = errors.New("edge: no Manager serves yet")

// use makes ms answer the listeners' requests from now on.
func (e *edge) use(ms ...*Manager) { e.managers.Store(&ms) }

func (e *edge) pick() *Manager {
	ms := e.managers.Load()
	if ms == nil || len(*ms) == 0 {
		return nil
	}
	return (*ms)[int(e.next.Add(1))%len(*ms)]
}

// served connects to the https listener as a client trusting roots and
// returns the certificate it was given for testDomain.
func served(t *testing.T, e *edge, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	cert, err := tryServed(e, roots)
	if err != nil {
		t.Fatalf("https handshake for %s: %v", testDomain, err)
	}
	return cert
}

func tryServed(e *edge, roots *x509.CertPool) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", e.tlsAddr, &tls.Config{
		ServerName: testDomain,
		RootCAs:    roots,
		NextProtos: []string{"http/1.1"},
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// newTestStore is Arbor's store as the Manager sees it: a real bbolt file
// (its blobs and its locks).
func newTestStore(t *testing.T) *boltdb.Store {
	t.Helper()
	bolt, err := boltdb.Open(filepath.Join(t.TempDir(), "arbor.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() })
	return bolt
}

// raw returns every stored value, as the store holds it, by key.
func raw(t *testing.T, st Blobs) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	infos, err := st.ListBlobs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, in := range infos {
		b, err := st.GetBlob(ctx, in.Key)
		if err != nil {
			t.Fatal(err)
		}
		out[in.Key] = b.Value
	}
	return out
}

// Package acmetest runs a test ACME CA inside a test binary: Pebble
// (github.com/letsencrypt/pebble/v2), Let's Encrypt's ACME test server,
// wired the way its cmd/pebble/main.go wires it (db, ca, va, wfe), with its
// ACME API on an httptest TLS server on 127.0.0.1 and its validation
// authority pointed at the ports under test (va.New's httpPort and
// tlsPort). Validation is real: Pebble connects to those ports on the
// address the domain resolves to ("localhost" resolves to 127.0.0.1
// through /etc/hosts) and checks the key authorization (HTTP-01) or the
// acmeValidation certificate (TLS-ALPN-01).
//
// It serves package acme's tests and Arbor's end-to-end tests of
// `arbor serve` with tls.acme.* (cmd/arbor).
package acmetest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// Domain resolves to 127.0.0.1 for Pebble's validation authority (which
// uses the system resolver: /etc/hosts).
const Domain = "localhost"

// Options configure Start.
type Options struct {
	// HTTPPort and TLSALPNPort are where the validation authority connects
	// for HTTP-01 and TLS-ALPN-01 (Arbor's tls.http_listen and listen).
	HTTPPort, TLSALPNPort int
	// Validity is the certificates' lifetime in seconds; 0 is Pebble's
	// default (90 days).
	Validity uint64
	// Blocked are names the CA refuses to issue for.
	Blocked []string
	// OCSPURL is the OCSP responder URL put in certificates.
	OCSPURL string
	// KeyAlg is the CA's key type: "ecdsa" (default) or "rsa".
	KeyAlg string
}

// Pebble is a running test CA. Start stops it when the test ends.
type Pebble struct {
	// DirURL is the ACME directory (tls.acme.ca_url).
	DirURL string
	// APIRoot trusts the ACME API's https (acme.Options.CARoots); its PEM
	// is APIRootPEM (tls.acme.ca_root_file).
	APIRoot *x509.CertPool
	// Roots trusts the certificates Pebble issues (a client of Arbor's
	// https); its PEM is RootPEM.
	Roots *x509.CertPool
	// CA is Pebble's certificate authority (its intermediates, for an OCSP
	// responder of the test's own).
	CA *ca.CAImpl

	srv       *httptest.Server
	orders    atomic.Int32
	finalized atomic.Int32
}

// Start starts Pebble. It sets Pebble's environment switches with
// t.Setenv (validate at once, no rejected nonces, no reuse of
// authorizations), so t must not be parallel.
func Start(t testing.TB, o Options) *Pebble {
	t.Helper()
	// Pebble reads these when its parts are made (va.New, wfe.New).
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // validate at once, not after a random sleep
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no deliberately rejected nonces
	t.Setenv("PEBBLE_AUTHZREUSE", "0")      // every order validates anew

	logs := &LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble's log:\n%s", logs)
		}
	})
	logger := log.New(logs, "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	profiles := map[string]ca.Profile{"default": {Description: "test", ValidityPeriod: o.Validity}}
	if o.KeyAlg == "" {
		o.KeyAlg = "ecdsa"
	}
	authority := ca.New(logger, store, o.OCSPURL, o.KeyAlg, 0, 1, profiles)
	validator := va.New(logger, o.HTTPPort, o.TLSALPNPort, false, "", store)
	for _, name := range o.Blocked {
		if err := store.AddBlockedDomain(name); err != nil {
			t.Fatal(err)
		}
	}
	frontEnd := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	api := frontEnd.Handler()

	p := &Pebble{CA: authority}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			p.orders.Add(1)
		}
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/finalize-order/") {
			p.finalized.Add(1)
		}
		api.ServeHTTP(w, r)
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.srv = srv

	p.DirURL = srv.URL + wfe.DirectoryPath
	p.APIRoot = x509.NewCertPool()
	p.APIRoot.AddCert(srv.Certificate())
	p.Roots = x509.NewCertPool()
	p.Roots.AddCert(authority.GetRootCert(0).Cert)
	return p
}

// Stop takes the CA down: its URL then refuses connections.
func (p *Pebble) Stop() { p.srv.Close() }

// Orders counts the new-order requests the CA received. A client retries
// an order whose challenge failed (acmez tries the other challenge type),
// so a failed validation adds one.
func (p *Pebble) Orders() int { return int(p.orders.Load()) }

// Finalized counts the finalize requests the CA received: the
// certificates asked for (an order is finalized once its challenges
// passed).
func (p *Pebble) Finalized() int { return int(p.finalized.Load()) }

// APIRootPEM is the certificate of the ACME API's https, as PEM.
func (p *Pebble) APIRootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
}

// RootPEM is the root of the certificates Pebble issues, as PEM.
func (p *Pebble) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.CA.GetRootCert(0).Cert.Raw})
}

// WriteAPIRoot writes APIRootPEM to a file in dir and returns its path
// (tls.acme.ca_root_file).
func (p *Pebble) WriteAPIRoot(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "pebble-api-root.pem")
	if err := os.WriteFile(path, p.APIRootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// LogBuffer collects a log written by goroutines that may outlive the test
// (Pebble's VA, certmagic's jobs), which therefore must not write to t.Log.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

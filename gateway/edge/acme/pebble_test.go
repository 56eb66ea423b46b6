package acme

// The test CA is Pebble, run in-process by package acmetest with its
// validation authority pointed at the edge's listeners below.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/edge/acme/acmetest"
)

// testDomain resolves to 127.0.0.1 for Pebble's validation authority.
const testDomain = acmetest.Domain

type lockedBuffer = acmetest.LogBuffer

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

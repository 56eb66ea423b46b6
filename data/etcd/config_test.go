package etcd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the error; "" for none
	}{
		{"no endpoints", Config{}, "set Endpoints"},
		{"empty endpoint", Config{Endpoints: []string{""}}, "endpoint is empty"},
		{"bad scheme", Config{Endpoints: []string{"ftp://x:1"}}, "use http://"},
		{"negative request timeout", Config{Endpoints: []string{"127.0.0.1:2379"}, RequestTimeout: -1}, "RequestTimeout"},
		{"negative dial timeout", Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: -1}, "DialTimeout"},
		{"user without password", Config{Endpoints: []string{"127.0.0.1:2379"}, Username: "arbor"}, "set both"},
		{"cert without key", Config{Endpoints: []string{"https://127.0.0.1:2379"}, TLS: TLSConfig{CertFile: "c.pem"}}, "KeyFile"},
		{"tls on http", Config{Endpoints: []string{"http://127.0.0.1:2379"}, TLS: TLSConfig{CAFile: "ca.pem"}}, "https://"},
		{"root with NUL", Config{Endpoints: []string{"127.0.0.1:2379"}, Root: "a\x00"}, "NUL"},
		{"plain", Config{Endpoints: []string{"127.0.0.1:2379"}}, ""},
		{"https", Config{Endpoints: []string{"https://etcd.example:2379"}, TLS: TLSConfig{CAFile: "ca.pem"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cfg.withDefaults()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.Root != DefaultRoot || got.RequestTimeout != DefaultRequestTimeout || got.DialTimeout != DefaultDialTimeout {
					t.Fatalf("defaults not applied: %+v", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one that mentions %q", err, tc.want)
			}
		})
	}
	c, err := Config{Endpoints: []string{"127.0.0.1:2379"}, Root: "/team"}.withDefaults()
	if err != nil || c.Root != "/team/" {
		t.Fatalf("Root /team became %q (%v), want /team/", c.Root, err)
	}
}

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeTestPKI(t, dir)

	plain, err := Config{Endpoints: []string{"http://127.0.0.1:2379"}}.tlsConfig()
	if err != nil || plain != nil {
		t.Fatalf("plain endpoints: TLS config %v, %v; want none", plain, err)
	}
	system, err := Config{Endpoints: []string{"https://127.0.0.1:2379"}}.tlsConfig()
	if err != nil || system == nil || system.RootCAs != nil || system.InsecureSkipVerify {
		t.Fatalf("https without files: %+v, %v; want the system roots, verified", system, err)
	}

	cfg := Config{Endpoints: []string{"https://127.0.0.1:2379"}, TLS: TLSConfig{
		CAFile: caFile, CertFile: certFile, KeyFile: keyFile, ServerName: "etcd.internal",
	}}
	tc, err := cfg.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	if tc.InsecureSkipVerify {
		t.Fatal("TLS config skips verification")
	}
	if tc.ServerName != "etcd.internal" {
		t.Errorf("ServerName %q", tc.ServerName)
	}
	if tc.RootCAs == nil {
		t.Error("CAFile not loaded")
	}
	if tc.MinVersion < tls.VersionTLS12 {
		t.Errorf("MinVersion %x", tc.MinVersion)
	}
	if tc.GetClientCertificate == nil && len(tc.Certificates) == 0 {
		t.Error("client certificate not loaded")
	}

	missing := cfg
	missing.TLS.CAFile = filepath.Join(dir, "missing.pem")
	if _, err := missing.tlsConfig(); err == nil || !strings.Contains(err.Error(), "CAFile") {
		t.Fatalf("missing CA file: %v, want an error naming CAFile", err)
	}
}

// writeTestPKI writes a CA and a client certificate signed by it.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, clientKey := key(), key()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	client := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "arbor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	clientDER, err := x509.CreateCertificate(rand.Reader, client, ca, &clientKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("client.pem", "CERTIFICATE", clientDER), write("client-key.pem", "EC PRIVATE KEY", keyDER)
}

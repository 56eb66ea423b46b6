package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vintner/arbor/gateway/edge/https/httpstest"
)

// startServeHTTPS starts `arbor serve` serving https on addr and waits,
// trusting ca, until /healthz answers 200 over TLS.
func startServeHTTPS(t *testing.T, addr string, ca *httpstest.CA, env []string) *server {
	t.Helper()
	return startServeTLS(t, addr, "https://"+addr, ca.Client(), env)
}

// startServeTLS starts `arbor serve` listening on addr and waits until
// base+"/healthz" answers 200 through client.
func startServeTLS(t *testing.T, addr, base string, client *http.Client, env []string) *server {
	t.Helper()
	s := launchServe(t, addr, env)
	s.waitTLS(t, base, client)
	return s
}

// launchServe starts `arbor serve` listening on addr without waiting.
func launchServe(t *testing.T, addr string, env []string) *server {
	t.Helper()
	cmd := exec.Command(arborBin, "serve")
	cmd.Env = append(append([]string{"ARBOR_SERVER_METRICS_LISTEN=127.0.0.1:0"}, env...), "ARBOR_LISTEN="+addr)
	s := &server{cmd: cmd, addr: addr, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("arbor serve log:\n%s", tail(s.logs.String(), 20000))
		}
	})
	return s
}

// waitTLS waits until base+"/healthz" answers 200 through client.
func (s *server) waitTLS(t *testing.T, base string, client *http.Client) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			t.Fatalf("arbor serve exited early: %v\n%s", err, s.logs.String())
		default:
		}
		if res, err := client.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("arbor serve: https /healthz did not answer 200\n%s", s.logs.String())
}

// `arbor serve` with certificate files: https trusting the test CA, HSTS,
// the plain listener's redirect, and new certificate files taken on
// SIGHUP without a restart.
func TestServeHTTPS(t *testing.T) {
	e := newTestEnv(t)
	ca := httpstest.NewCA(t)
	certFile, keyFile := ca.Issue(t).Files(t, t.TempDir())
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s over %s", r.URL.Path, r.Header.Get("X-Forwarded-Proto"))
	}))
	defer up.Close()
	addr, plainAddr, metricsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	env := e.with(
		"ARBOR_UPSTREAM_URL="+up.URL, "ARBOR_AUTH_DEFAULT_ROUTE=public",
		"ARBOR_PUBLIC_URL=https://"+addr,
		"ARBOR_TLS_CERT_FILE="+certFile, "ARBOR_TLS_KEY_FILE="+keyFile,
		"ARBOR_TLS_HTTP_LISTEN="+plainAddr,
		"ARBOR_SERVER_METRICS_LISTEN="+metricsAddr,
	)
	srv := startServeHTTPS(t, addr, ca, env)
	client := ca.Client()

	res, err := client.Get("https://" + addr + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "upstream saw /hello over https" || res.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Fatalf("proxied over https: %d %q, HSTS %q", res.StatusCode, body, res.Header.Get("Strict-Transport-Security"))
	}
	if res.TLS == nil || res.TLS.NegotiatedProtocol != "http/1.1" || res.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("TLS state %+v", res.TLS)
	}

	// The certificate file's figures: arbor tls status and /metrics.
	leaf := res.TLS.PeerCertificates[0]
	out, errOut, code := runArbor(t, env, "tls", "status")
	if code != 0 || !strings.Contains(out, "source: files") || !strings.Contains(out, leaf.Issuer.String()) ||
		!strings.Contains(out, leaf.NotAfter.UTC().Format(time.RFC3339)) || strings.Contains(out, "renewal failures") {
		t.Fatalf("arbor tls status: exit %d\n%s%s", code, out, errOut)
	}
	mres, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mres.Body)
	mres.Body.Close()
	for _, name := range leaf.DNSNames {
		want := fmt.Sprintf("arbor_tls_certificate_expiry_timestamp_seconds{name=%q} %s", name, promFloat(leaf.NotAfter.Unix()))
		if !strings.Contains(string(metrics), want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, grepLines(string(metrics), "arbor_tls_"))
		}
	}
	if strings.Contains(string(metrics), "arbor_tls_renewal_failures_total") {
		t.Fatal("/metrics reports ACME renewal failures for certificate files")
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+plainAddr+"/page?x=1", nil)
	req.Host = "evil.example"
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != "https://"+addr+"/page?x=1" {
		t.Fatalf("plain listener: %d Location %q", res.StatusCode, res.Header.Get("Location"))
	}

	// A renewal: new files, then SIGHUP (the file watch may be first;
	// either way no restart).
	next := ca.Issue(t)
	next.Write(t, certFile, keyFile)
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	want := next.Leaf.SerialNumber.String()
	for i := 0; ; i++ {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		got := c.ConnectionState().PeerCertificates[0].SerialNumber.String()
		c.Close()
		if got == want {
			break
		}
		if i == 300 { // 30 s
			t.Fatalf("still serving %s after SIGHUP, not %s", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 0; !strings.Contains(srv.logs.String(), `"trigger":"reload"`); i++ {
		if i == 300 {
			t.Fatal("SIGHUP did not reload the certificate files")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("arbor serve exit: %v", err)
	}
}

// Bad https settings stop `arbor serve` with a message that says what to
// change.
func TestServeHTTPSRefusesBadStart(t *testing.T) {
	e := newTestEnv(t)
	ca := httpstest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.Issue(t).Files(t, dir)
	openKey := dir + "/open.key"
	other := ca.Issue(t)
	httpstest.WriteFile(t, openKey, other.KeyPEM, 0o644)
	otherKey := dir + "/other.key"
	httpstest.WriteFile(t, otherKey, other.KeyPEM, 0o600)
	addr := freeAddr(t)
	for _, c := range []struct {
		name string
		env  []string
		want []string
	}{
		{"key readable by others", []string{"ARBOR_PUBLIC_URL=https://" + addr, "ARBOR_TLS_CERT_FILE=" + certFile, "ARBOR_TLS_KEY_FILE=" + openKey},
			[]string{"tls.key_file", "mode 0644", "chmod 600"}},
		{"key of another certificate", []string{"ARBOR_PUBLIC_URL=https://" + addr, "ARBOR_TLS_CERT_FILE=" + certFile, "ARBOR_TLS_KEY_FILE=" + otherKey},
			[]string{"tls.key_file", "is not the private key of the certificate"}},
		{"missing certificate", []string{"ARBOR_PUBLIC_URL=https://" + addr, "ARBOR_TLS_CERT_FILE=" + dir + "/nope.pem", "ARBOR_TLS_KEY_FILE=" + keyFile},
			[]string{"tls.cert_file", "nope.pem", "check the path"}},
		{"public_url http", []string{"ARBOR_PUBLIC_URL=http://auth.example.com", "ARBOR_TLS_CERT_FILE=" + certFile, "ARBOR_TLS_KEY_FILE=" + keyFile},
			[]string{"public_url", "set public_url to https://auth.example.com"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, code := runArbor(t, append(e.with(c.env...), "ARBOR_LISTEN="+addr), "serve")
			if code != 2 {
				t.Fatalf("serve exited %d, want 2; stderr:\n%s", code, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not say %q:\n%s", w, errOut)
				}
			}
		})
	}
	_ = os.Remove(openKey)
}

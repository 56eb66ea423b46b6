package app_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vintner/arbor/app"
	"github.com/vintner/arbor/config"
)

// acmeEnviron is tlsEnviron with ACME instead of certificate files, and
// edit applied (KEY=VALUE entries replace those of the same key).
func acmeEnviron(t *testing.T, edit ...string) []string {
	t.Helper()
	base, _ := tlsEnviron(t, 0o600)
	set := map[string]string{
		"ARBOR_LISTEN":                "127.0.0.1:8443",
		"ARBOR_TLS_HTTP_LISTEN":       "127.0.0.1:8080",
		"ARBOR_TLS_ACME_DOMAINS":      "localhost",
		"ARBOR_TLS_ACME_CA_URL":       "https://127.0.0.1:14000/dir",
		"ARBOR_TLS_ACME_CA_ROOT_FILE": "",
	}
	for _, kv := range edit {
		k, v, _ := strings.Cut(kv, "=")
		set[k] = v
	}
	var out []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if k == "ARBOR_TLS_CERT_FILE" || k == "ARBOR_TLS_KEY_FILE" {
			continue
		}
		if _, ok := set[k]; !ok {
			out = append(out, kv)
		}
	}
	for k, v := range set {
		out = append(out, k+"="+v)
	}
	return out
}

// ACME settings that cannot work stop start-up with a configuration error
// that names the key, before anything asks the CA.
func TestACMERefusesBadSettings(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit []string
		want []string
	}{
		{"listen without a fixed port", []string{"ARBOR_LISTEN=127.0.0.1:0"}, []string{"listen", "needs a fixed port", "443"}},
		{"http_listen without a fixed port", []string{"ARBOR_TLS_HTTP_LISTEN=127.0.0.1:0"}, []string{"tls.http_listen", "needs a fixed port", "80"}},
		{"missing root file", []string{"ARBOR_TLS_ACME_CA_ROOT_FILE=/nonexistent/root.pem"}, []string{"tls.acme.ca_root_file", "no such file"}},
		{"root file not PEM", []string{"ARBOR_TLS_ACME_CA_ROOT_FILE=" + notPEM}, []string{"tls.acme.ca_root_file", "no PEM certificate"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			environ := acmeEnviron(t, tc.edit...)
			cfg, err := config.Load(config.Source{Environ: environ})
			if err != nil {
				t.Fatal(err)
			}
			a, err := app.New(t.Context(), cfg, app.Options{Environ: environ, Stderr: io.Discard})
			if _, ok := errors.AsType[*app.ConfigError](err); !ok || a != nil {
				t.Fatalf("New = %v, %v; want a *ConfigError", a, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// With ACME configured, New builds without asking the CA (nothing listens
// on its URL): https is on, and the status says ACME with no certificate
// yet and no failure.
func TestACMEBuildsWithoutNetwork(t *testing.T) {
	environ := acmeEnviron(t)
	cfg, err := config.Load(config.Source{Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(t.Context(), cfg, app.Options{Environ: environ, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	st := a.TLSStatus()
	if !a.HTTPS() || st.Source != "acme" || len(st.Certificates) != 0 || st.RenewalFailures != 0 || st.CA != "https://127.0.0.1:14000/dir" {
		t.Fatalf("HTTPS %v, status %+v", a.HTTPS(), st)
	}
	if m := metricsText(t, a); !strings.Contains(m, "\narbor_tls_renewal_failures_total 0\n") {
		t.Fatalf("no arbor_tls_renewal_failures_total 0 in\n%s", m)
	}
}

// With certificate files, the status and the expiry metric describe the
// file's certificate; there is no renewal-failure metric.
func TestTLSStatusAndMetricsForFiles(t *testing.T) {
	environ, _ := tlsEnviron(t, 0o600)
	cfg, err := config.Load(config.Source{Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(t.Context(), cfg, app.Options{Environ: environ, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	st := a.TLSStatus()
	if st.Source != "files" || len(st.Certificates) != 1 || strings.Join(st.Certificates[0].Names, ",") != "localhost" ||
		!strings.Contains(st.Certificates[0].Issuer, "CN=") || st.Certificates[0].NotAfter.IsZero() {
		t.Fatalf("status %+v", st)
	}
	m := metricsText(t, a)
	want := fmt.Sprintf("\narbor_tls_certificate_expiry_timestamp_seconds{name=\"localhost\"} %s\n",
		strconv.FormatFloat(float64(st.Certificates[0].NotAfter.Unix()), 'g', -1, 64))
	if !strings.Contains(m, want) || strings.Count(m, "\narbor_tls_certificate_expiry_timestamp_seconds{") != 1 {
		t.Fatalf("want %q once in\n%s", want, m)
	}
	if strings.Contains(m, "arbor_tls_renewal_failures_total") {
		t.Fatalf("renewal failures reported for certificate files:\n%s", m)
	}
}

// metricsText is the gateway's registry in the Prometheus text format.
func metricsText(t *testing.T, a *app.App) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(a.Server.Registry(), promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

package config

import (
	"strings"
	"testing"
	"time"
)

// TestTLSKeys: the tls section from the environment (ARBOR_TLS_*), the
// https default public_url, and a clear message for each mistake.
func TestTLSKeys(t *testing.T) {
	cfg, err := Load(Source{Environ: []string{
		"ARBOR_TLS_CERT_FILE=/etc/arbor/cert.pem", "ARBOR_TLS_KEY_FILE=/etc/arbor/key.pem",
		"ARBOR_TLS_HTTP_LISTEN=:80", "ARBOR_LISTEN=:443",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.TLS.Enabled() || cfg.TLS.HTTPListen != ":80" || cfg.TLS.HSTSMaxAge != 365*24*time.Hour || cfg.PublicURL != "https://:443" {
		t.Errorf("tls = %+v, public_url %q", cfg.TLS, cfg.PublicURL)
	}
	cfg, err = Load(Source{Environ: []string{"ARBOR_TLS_ACME_DOMAINS=arbor.example.com,www.example.com", "ARBOR_PUBLIC_URL=https://arbor.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.TLS.ACME; len(got.Domains) != 2 || got.CAURL != DefaultACMECAURL {
		t.Errorf("acme = %+v", got)
	}
	if cfg, err := Load(Source{}); err != nil || cfg.TLS.Enabled() || !strings.HasPrefix(cfg.PublicURL, "http://") {
		t.Errorf("defaults: TLS on (%+v) or public_url %q, err %v", cfg.TLS, cfg.PublicURL, err)
	}

	for _, tc := range []struct {
		name    string
		env     []string
		wantKey string
		says    string
	}{
		{"cert without key", []string{"ARBOR_TLS_CERT_FILE=/c.pem"}, "tls.cert_file", "set both"},
		{"two sources", []string{"ARBOR_TLS_CERT_FILE=/c.pem", "ARBOR_TLS_KEY_FILE=/k.pem", "ARBOR_TLS_ACME_DOMAINS=a.example"}, "tls.acme.domains", "choose one certificate source"},
		{"plain public_url", []string{"ARBOR_TLS_CERT_FILE=/c.pem", "ARBOR_TLS_KEY_FILE=/k.pem", "ARBOR_PUBLIC_URL=http://arbor.example.com"}, "public_url", "set public_url to https://arbor.example.com"},
		{"redirect without TLS", []string{"ARBOR_TLS_HTTP_LISTEN=:80"}, "tls.http_listen", "set tls.cert_file"},
		{"preload without subdomains", []string{"ARBOR_TLS_CERT_FILE=/c.pem", "ARBOR_TLS_KEY_FILE=/k.pem", "ARBOR_TLS_HSTS_PRELOAD=true"}, "tls.hsts_preload", "hsts_include_subdomains"},
		{"negative max-age", []string{"ARBOR_TLS_CERT_FILE=/c.pem", "ARBOR_TLS_KEY_FILE=/k.pem", "ARBOR_TLS_HSTS_MAX_AGE=-1s"}, "tls.hsts_max_age", "want 0"},
		{"bad domain", []string{"ARBOR_TLS_ACME_DOMAINS=https://a.example/"}, "tls.acme.domains", "not a host name"},
		{"plain CA", []string{"ARBOR_TLS_ACME_DOMAINS=a.example", "ARBOR_TLS_ACME_CA_URL=http://ca.example/dir"}, "tls.acme.ca_url", "https URL of an ACME directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(Source{Environ: tc.env})
			if err == nil || !strings.Contains(err.Error(), tc.wantKey) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("err = %v, want one naming %s and saying %q", err, tc.wantKey, tc.says)
			}
		})
	}
}

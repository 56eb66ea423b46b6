package config

import (
	"net/url"
	"strings"
	"time"
)

// TLS configures Arbor's own https (docs/tls.md). Off unless a certificate
// source is set: either cert_file and key_file, or acme.domains.
type TLS struct {
	// CertFile and KeyFile are a PEM certificate chain and its private key
	// (the key file readable by its owner only: mode 0600 or stricter).
	// Reloaded on SIGHUP and when the files change. Default none.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// HTTPListen is a plain-http listener (e.g. ":80") that answers ACME
	// HTTP-01 challenges and redirects everything else to https (308, path
	// and query kept). Default none.
	HTTPListen string `yaml:"http_listen"`
	// HSTSMaxAge is Strict-Transport-Security's max-age on every https
	// answer; 0 sends no header. Default one year.
	HSTSMaxAge time.Duration `yaml:"hsts_max_age"`
	// HSTSIncludeSubdomains and HSTSPreload add includeSubDomains and
	// preload. Opt-in: both bind every subdomain, and preload is hard to
	// undo. Default false.
	HSTSIncludeSubdomains bool `yaml:"hsts_include_subdomains"`
	HSTSPreload           bool `yaml:"hsts_preload"`
	ACME                  ACME `yaml:"acme"`
}

// ACME configures certificates obtained and renewed by Arbor itself.
type ACME struct {
	// Domains are the names to obtain a certificate for; setting them
	// turns ACME on. Default none.
	Domains []string `yaml:"domains"`
	// Email is the ACME account's contact (expiry warnings). Default none.
	Email string `yaml:"email"`
	// CAURL is the ACME directory. Default Let's Encrypt production.
	CAURL string `yaml:"ca_url"`
	// CARootFile is a PEM file of roots to trust for a private ACME
	// server (Pebble, step-ca). Default: the system roots.
	CARootFile string `yaml:"ca_root_file"`
}

// DefaultACMECAURL is Let's Encrypt's production directory.
const DefaultACMECAURL = "https://acme-v02.api.letsencrypt.org/directory"

func defaultTLS() TLS {
	return TLS{HSTSMaxAge: 365 * 24 * time.Hour, ACME: ACME{Domains: []string{}, CAURL: DefaultACMECAURL}}
}

// Enabled reports whether Arbor serves https itself.
func (t TLS) Enabled() bool {
	return t.CertFile != "" || t.KeyFile != "" || len(t.ACME.Domains) > 0
}

// validateTLS checks the tls section and that public_url agrees with it.
func (c Config) validateTLS(bad func(key, format string, args ...any)) {
	t := c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("tls.cert_file", "set both tls.cert_file and tls.key_file, or neither")
	}
	if t.CertFile != "" && len(t.ACME.Domains) > 0 {
		bad("tls.acme.domains", "choose one certificate source: certificate files (tls.cert_file) or ACME (tls.acme.domains)")
	}
	if t.HSTSMaxAge < 0 {
		bad("tls.hsts_max_age", "%v: want 0 (no header) or more", t.HSTSMaxAge)
	}
	if t.HSTSPreload && (t.HSTSMaxAge < 365*24*time.Hour || !t.HSTSIncludeSubdomains) {
		bad("tls.hsts_preload", "preload lists require tls.hsts_max_age of at least a year and tls.hsts_include_subdomains")
	}
	for _, d := range t.ACME.Domains {
		if d == "" || strings.ContainsAny(d, "/:* ") {
			bad("tls.acme.domains", "%q is not a host name", d)
		}
	}
	if len(t.ACME.Domains) > 0 {
		if u, err := url.Parse(t.ACME.CAURL); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("tls.acme.ca_url", "%q: want the https URL of an ACME directory", t.ACME.CAURL)
		}
	}
	if t.Enabled() && c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "https://") {
		bad("public_url", "%q: Arbor serves https (tls.* is set), so browsers reach it at https://…; set public_url to %s", c.PublicURL, "https://"+strings.TrimPrefix(c.PublicURL, "http://"))
	}
	if t.HTTPListen != "" && !t.Enabled() {
		bad("tls.http_listen", "a plain listener redirects to https: set tls.cert_file and tls.key_file, or tls.acme.domains, first")
	}
}

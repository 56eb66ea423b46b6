package app

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vintner/arbor/admin"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/edge/acme"
)

// newACME builds the ACME Manager of tls.acme.* (docs/acme.md): its
// account, certificates and keys in the store, the keys sealed with the
// keyring; TLS-ALPN-01 answered on listen, HTTP-01 on tls.http_listen
// when set. The CA connects to the ports it validates on (443 and 80 for
// a public CA), so those must be the ports of listen and tls.http_listen,
// or forwarded to them.
func (a *App) newACME(cfg config.TLS, log *slog.Logger) (*acme.Manager, error) {
	host, tlsPort, err := fixedPort("listen", a.cfg.Listen)
	if err != nil {
		return nil, usageErr(err)
	}
	var httpPort int
	if cfg.HTTPListen != "" {
		if _, httpPort, err = fixedPort("tls.http_listen", cfg.HTTPListen); err != nil {
			return nil, usageErr(err)
		}
	}
	var roots *x509.CertPool
	if cfg.ACME.CARootFile != "" {
		pem, err := os.ReadFile(cfg.ACME.CARootFile)
		if err != nil {
			return nil, usageErr(fmt.Errorf("tls.acme.ca_root_file: %w", err))
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, usageErr(fmt.Errorf("tls.acme.ca_root_file %s: no PEM certificate in it: want the CA's root certificate(s) in PEM", cfg.ACME.CARootFile))
		}
	}
	m, err := acme.New(context.Background(), acme.Options{
		Domains:     cfg.ACME.Domains,
		Email:       cfg.ACME.Email,
		CAURL:       cfg.ACME.CAURL,
		CARoots:     roots,
		Store:       a.store.Store,
		Sealer:      acme.SealWith(a.keyring),
		Logger:      log,
		ListenHost:  host,
		HTTPPort:    httpPort,
		TLSALPNPort: tlsPort,
	})
	if err != nil {
		return nil, usageErr(err)
	}
	return m, nil
}

// fixedPort splits a listen address whose port the CA can be told in
// advance.
func fixedPort(key, addr string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err == nil {
		port, err = strconv.Atoi(p)
	}
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("%s %q: ACME (tls.acme.domains) needs a fixed port here, the one the CA validates on (443 for listen, 80 for tls.http_listen, or ports forwarded from them)", key, addr)
	}
	return host, port, nil
}

// StartCertificates obtains the ACME certificates, or loads them from the
// store, within acme.DefaultStartTimeout (acme.Manager.Start). Call it
// once Serve and ListenRedirect serve: the CA validates against them. Its
// error (the CA's problem document, or what to check) should stop
// start-up. Without ACME it does nothing.
func (a *App) StartCertificates(ctx context.Context) error {
	if a.tls == nil || a.tls.acme == nil {
		return nil
	}
	return a.tls.acme.Start(ctx)
}

// TLSStatus describes the certificates served (`arbor tls status`, the
// metrics).
func (a *App) TLSStatus() admin.TLSStatus {
	var st admin.TLSStatus
	switch {
	case a.tls == nil:
	case a.tls.acme != nil:
		st.Source, st.Domains, st.CA = "acme", a.cfg.TLS.ACME.Domains, a.cfg.TLS.ACME.CAURL
		for _, c := range a.tls.acme.Certificates() {
			st.Certificates = append(st.Certificates, admin.TLSCertificate{Names: c.Names, Issuer: c.Issuer, NotAfter: c.NotAfter})
		}
		st.RenewalFailures = a.tls.acme.Failures()
	default:
		st.Source = "files"
		if c := a.tls.term.Certificate(); c != nil && c.Leaf != nil {
			st.Certificates = append(st.Certificates, admin.TLSCertificate{Names: certNames(c.Leaf), Issuer: c.Leaf.Issuer.String(), NotAfter: c.Leaf.NotAfter})
		}
	}
	return st
}

// certNames are a certificate's DNS names, or its common name without.
func certNames(c *x509.Certificate) []string {
	if len(c.DNSNames) > 0 {
		return c.DNSNames
	}
	if c.Subject.CommonName != "" {
		return []string{c.Subject.CommonName}
	}
	return nil
}

// tlsCollector reports the certificates on /metrics, read at each scrape:
// arbor_tls_certificate_expiry_timestamp_seconds{name} (files or ACME) and
// arbor_tls_renewal_failures_total (ACME).
type tlsCollector struct{ a *App }

var (
	tlsExpiryDesc = prometheus.NewDesc("arbor_tls_certificate_expiry_timestamp_seconds",
		"When the certificate served for name expires (Unix seconds): certificate files or ACME.", []string{"name"}, nil)
	tlsFailuresDesc = prometheus.NewDesc("arbor_tls_renewal_failures_total",
		"Failed attempts to obtain or renew an ACME certificate since start (each is logged with the CA's answer).", nil, nil)
)

func (c tlsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tlsExpiryDesc
	ch <- tlsFailuresDesc
}

func (c tlsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.TLSStatus()
	seen := map[string]bool{}
	for _, cert := range st.Certificates {
		for _, name := range cert.Names {
			if seen[name] {
				continue
			}
			seen[name] = true
			ch <- prometheus.MustNewConstMetric(tlsExpiryDesc, prometheus.GaugeValue, float64(cert.NotAfter.Unix()), name)
		}
	}
	if st.Source == "acme" {
		ch <- prometheus.MustNewConstMetric(tlsFailuresDesc, prometheus.CounterValue, float64(st.RenewalFailures))
	}
}

// registerTLSMetrics adds the certificates' figures to the gateway's
// registry; without TLS there are none.
func (a *App) registerTLSMetrics(reg prometheus.Registerer) error {
	if a.tls == nil {
		return nil
	}
	if err := reg.Register(tlsCollector{a}); err != nil {
		return fmt.Errorf("registering the tls metrics: %w", err)
	}
	return nil
}

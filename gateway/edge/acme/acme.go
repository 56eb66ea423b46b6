package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	acmeproto "github.com/mholt/acmez/v3/acme"
)

// DefaultCAURL is Let's Encrypt's production directory, the CA used when
// Options.CAURL is empty (config.DefaultACMECAURL is the same URL).
const DefaultCAURL = certmagic.LetsEncryptProductionCA

// DefaultStartTimeout bounds Start when Options.StartTimeout is zero.
const DefaultStartTimeout = 3 * time.Minute

// Options configure a Manager. Domains and Store are required.
type Options struct {
	// Domains are the names to obtain and renew a certificate for, one
	// certificate per name (tls.acme.domains).
	Domains []string
	// Email is the ACME account's contact, to which the CA sends expiry
	// warnings (tls.acme.email). Default none: the account has no contact.
	Email string
	// CAURL is the ACME directory (tls.acme.ca_url). Default DefaultCAURL.
	CAURL string
	// CARoots are the roots trusted for the CA's own https, for a private
	// ACME server (from tls.acme.ca_root_file). Default nil: the system
	// roots.
	CARoots *x509.CertPool

	// Store keeps the ACME account, the certificates and their keys, and
	// provides the locks that make one replica order a certificate while
	// the others wait and then load it. Required.
	Store Store
	// Sealer seals every private key (certificate and account keys) before
	// it reaches the store; see SealWith. Default nil: keys are stored as
	// PEM in the clear, which only a test should accept.
	Sealer Sealer
	// Logger receives certmagic's log and the Manager's (component=acme).
	// Default slog.Default().
	Logger *slog.Logger

	// ListenHost is the host part of Arbor's listeners ("" for every
	// interface). HTTPPort is the port of the plain listener
	// (tls.http_listen) that passes requests to HTTPChallenge; 0 turns the
	// HTTP-01 challenge off. TLSALPNPort is the port of the https listener
	// that uses GetCertificate and NextProtos; 0 turns the TLS-ALPN-01
	// challenge off. At least one of them must be set. The CA connects to
	// the standard ports (80, 443); other ports are for tests and for
	// deployments that forward those to Arbor.
	ListenHost  string
	HTTPPort    int
	TLSALPNPort int

	// StartTimeout bounds how long Start waits for the certificates.
	// Default DefaultStartTimeout.
	StartTimeout time.Duration
	// RenewCheckInterval is how often the certificates are checked for
	// renewal (and for a newer certificate another replica stored).
	// Default certmagic's (10 minutes); tests with short-lived
	// certificates lower it.
	RenewCheckInterval time.Duration
}

// Manager obtains, renews and serves certificates for Options.Domains.
// Its methods are safe for concurrent use.
type Manager struct {
	cfg     *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	cache   *certmagic.Cache
	log     *slog.Logger
	domains []string
	caURL   string
	alpn    bool
	timeout time.Duration

	ctx    context.Context // the Manager's life: ends at Close
	cancel context.CancelFunc
	once   sync.Once

	changed  chan struct{} // a certificate was cached or an attempt failed
	failures atomic.Uint64 // failed attempts to obtain or renew
	mu       sync.Mutex
	failure  error // the latest failed attempt
}

// New builds a Manager. It does no network I/O: the listeners that answer
// the CA's challenges use the Manager (GetCertificate, NextProtos,
// HTTPChallenge), so they must serve before Start asks the CA for anything.
//
// # Errors
//
// An Options value that cannot work: no domains, no store, no port to
// answer a challenge on, a CA URL that is not https.
func New(ctx context.Context, o Options) (*Manager, error) {
	if len(o.Domains) == 0 {
		return nil, errors.New("acme: no domains: set tls.acme.domains")
	}
	if o.Store == nil {
		return nil, errors.New("acme: no store to keep certificates in")
	}
	if o.HTTPPort == 0 && o.TLSALPNPort == 0 {
		return nil, errors.New("acme: no listener can answer the CA's challenges: give the https listener's port (TLS-ALPN-01) or the plain listener's (tls.http_listen, HTTP-01)")
	}
	if o.CAURL == "" {
		o.CAURL = DefaultCAURL
	}
	if !strings.HasPrefix(o.CAURL, "https://") {
		return nil, fmt.Errorf("acme: tls.acme.ca_url %q: want the https URL of an ACME directory", o.CAURL)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	log := o.Logger.With("component", "acme")
	zl := zapToSlog(log)

	m := &Manager{
		log:     log,
		domains: append([]string(nil), o.Domains...),
		caURL:   o.CAURL,
		alpn:    o.TLSALPNPort != 0,
		timeout: o.StartTimeout,
		changed: make(chan struct{}, 1),
	}
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))

	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.cfg, nil },
		RenewCheckInterval: o.RenewCheckInterval,
		Logger:             zl,
	})
	m.cfg = certmagic.New(m.cache, certmagic.Config{
		Storage:           newStorage(o.Store, o.Sealer),
		Logger:            zl,
		OnEvent:           m.onEvent,
		DefaultServerName: o.Domains[0],
	})
	m.issuer = certmagic.NewACMEIssuer(m.cfg, certmagic.ACMEIssuer{
		CA:    o.CAURL,
		Email: o.Email,
		// Setting tls.acme.domains accepts the CA's subscriber agreement
		// (certmagic would otherwise ask on the terminal).
		Agreed: true,
		// TestCA is left to certmagic: with Let's Encrypt production it
		// retries a failed order against Let's Encrypt staging first, so
		// that failures do not use up production's rate limits.
		TrustedRoots:            o.CARoots,
		ListenHost:              o.ListenHost,
		AltHTTPPort:             o.HTTPPort,
		AltTLSALPNPort:          o.TLSALPNPort,
		DisableHTTPChallenge:    o.HTTPPort == 0,
		DisableTLSALPNChallenge: o.TLSALPNPort == 0,
		Logger:                  zl,
	})
	m.cfg.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

// Start manages the certificates: each is loaded from the store or, if
// the store has none, obtained from the CA (under the store's lock, so one
// replica orders it and the others load it), then renewed in the
// background before it expires. Start returns once every domain has a
// certificate to serve.
//
// A certificate already in the store is served even if renewing it fails:
// the failure is logged with the CA's problem document and retried with
// backoff (certmagic's: 1 minute, growing to 6 hours, for 30 days).
//
// # Errors
//
// When a domain has no certificate and the first attempt to obtain one
// fails (the CA cannot be reached, or refuses: its problem document is in
// the message), or none arrives within Options.StartTimeout. The caller
// should then stop starting and Close the Manager.
func (m *Manager) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	m.log.Info("acme: managing certificates", "domains", m.domains, "ca", m.caURL)
	if err := m.cfg.ManageAsync(m.ctx, m.domains); err != nil {
		return fmt.Errorf("acme: managing %s: %w", strings.Join(m.domains, ", "), err)
	}
	for {
		missing := m.missing()
		if missing == "" {
			return nil
		}
		m.mu.Lock()
		failure := m.failure
		m.mu.Unlock()
		if failure != nil {
			return m.startError(missing, failure)
		}
		select {
		case <-m.changed:
		case <-ctx.Done():
			return fmt.Errorf("acme: no certificate for %s from %s after %v: the CA did not complete the order in time (is tls.acme.ca_url reachable from Arbor, and can the CA reach Arbor's listeners for its challenges? see the log)", missing, m.caURL, m.timeout)
		}
	}
}

// startError says what failed and what to check.
func (m *Manager) startError(domain string, err error) error {
	var problem acmeproto.Problem
	if errors.As(err, &problem) {
		return fmt.Errorf("acme: the CA %s refused a certificate for %s (fix what its problem document says, then restart): %w", m.caURL, domain, err)
	}
	return fmt.Errorf("acme: could not obtain a certificate for %s from %s (check tls.acme.ca_url, tls.acme.ca_root_file and the network path to the CA): %w", domain, m.caURL, err)
}

// missing returns a domain with no certificate to serve yet, or "".
func (m *Manager) missing() string {
	for _, d := range m.domains {
		if len(m.cache.AllMatchingCertificates(d)) == 0 {
			return d
		}
	}
	return ""
}

// onEvent follows certmagic's events (it calls it synchronously, during
// handshakes too: keep it short).
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cached_managed_cert":
		m.signal()
	case "cert_obtained":
		m.log.Info("acme: certificate obtained", "identifier", data["identifier"], "renewal", data["renewal"])
	case "cert_failed":
		err, _ := data["error"].(error)
		if err == nil {
			err = fmt.Errorf("%v", data["error"])
		}
		attrs := []any{"identifier", data["identifier"], "renewal", data["renewal"], "ca", m.caURL, "err", err}
		var problem acmeproto.Problem
		if errors.As(err, &problem) {
			attrs = append(attrs, "problem", problem)
		}
		m.log.Error("acme: obtaining or renewing a certificate failed; retrying with backoff", attrs...)
		m.failures.Add(1)
		m.mu.Lock()
		m.failure = err
		m.mu.Unlock()
		m.signal()
	}
	return nil
}

func (m *Manager) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// GetCertificate answers a TLS handshake: the certificate for the
// ClientHello's server name (Options.Domains[0] when the client sends
// none), or the TLS-ALPN-01 challenge certificate when the CA asks for
// acme-tls/1. Use it as tls.Config.GetCertificate (https.CertSource).
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cfg.GetCertificate(hello)
}

// NextProtos are the ALPN protocols the https listener must offer besides
// its own: "acme-tls/1" for the TLS-ALPN-01 challenge, or none when that
// challenge is off (Options.TLSALPNPort 0).
func (m *Manager) NextProtos() []string {
	if !m.alpn {
		return nil
	}
	return []string{acmez.ACMETLS1Protocol}
}

// HTTPChallenge answers the CA's HTTP-01 request (GET
// /.well-known/acme-challenge/<token>) on the plain listener, for an order
// of this replica or of any other sharing the store, and reports whether
// it did. It returns false, writing nothing, for any other request (which
// the plain listener then redirects to https) and when HTTP-01 is off.
func (m *Manager) HTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return m.issuer.HandleHTTPChallenge(w, r)
}

// Certificate describes a managed certificate (for arbor tls status and
// the metrics).
type Certificate struct {
	Names    []string
	Issuer   string
	NotAfter time.Time
}

// Certificates lists the certificates served now, one per domain that has
// one.
func (m *Manager) Certificates() []Certificate {
	var out []Certificate
	for _, d := range m.domains {
		for _, c := range m.cache.AllMatchingCertificates(d) {
			if c.Leaf == nil {
				continue
			}
			out = append(out, Certificate{Names: c.Names, Issuer: c.Leaf.Issuer.String(), NotAfter: c.Leaf.NotAfter})
			break
		}
	}
	return out
}

// Failures counts the attempts to obtain or renew a certificate that
// failed since New (for the metrics); each is logged with the CA's problem
// document.
func (m *Manager) Failures() uint64 { return m.failures.Load() }

// Close stops renewals and retries and the cache's maintenance. The
// certificates stay in the store. Close may be called more than once.
func (m *Manager) Close() error {
	m.once.Do(func() {
		m.cancel()
		m.cache.Stop()
	})
	return nil
}

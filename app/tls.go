package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/edge/acme"
	"github.com/vintner/arbor/gateway/edge/https"
)

// tlsParts is Arbor's https (docs/tls.md), when tls.* is set.
type tlsParts struct {
	term *https.Terminator
	// acme obtains and renews the certificates when tls.acme.domains is
	// set (acme.go); nil with certificate files.
	acme *acme.Manager
	// challenge answers ACME HTTP-01 on the plain listener; nil without
	// ACME.
	challenge func(w http.ResponseWriter, r *http.Request) bool
}

// setupTLS builds the Terminator from tls.*: certificate files, or ACME
// (tls.acme.domains: acme.go) plugged in as the CertSource, its ALPN
// protocol (https.Options.NextProtos) and its HTTP-01 handler
// (tlsParts.challenge). The ACME Manager asks the CA for nothing yet:
// StartCertificates does, once the listeners serve.
func (a *App) setupTLS(cfg config.TLS, log *slog.Logger) error {
	if !cfg.Enabled() {
		return nil
	}
	parts := &tlsParts{}
	opts := https.Options{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, Logger: log, Now: a.opts.Now}
	// Session tickets resume on every replica sharing the store (docs/tls.md).
	opts.TicketKeys, opts.TicketSealer = a.store.Store, acme.SealWith(a.keyring)
	if len(cfg.ACME.Domains) > 0 {
		m, err := a.newACME(cfg, log)
		if err != nil {
			return err
		}
		a.onClose("acme", func() { _ = m.Close() })
		parts.acme, parts.challenge = m, m.HTTPChallenge
		opts.Certificates, opts.NextProtos = m, m.NextProtos()
	}
	t, err := https.New(opts)
	if err != nil {
		return usageErr(err)
	}
	parts.term = t
	a.tls = parts
	a.onClose("tls", t.Close)
	return nil
}

// hsts is the Strict-Transport-Security value of the https server, "" for
// plain http.
func (a *App) hsts() string {
	if a.tls == nil {
		return ""
	}
	t := a.cfg.TLS
	return https.HSTS(t.HSTSMaxAge, t.HSTSIncludeSubdomains, t.HSTSPreload)
}

// Serve serves the gateway on ln until Shutdown: https when tls.* is set,
// plain http otherwise. ln is closed when Serve returns.
func (a *App) Serve(ln net.Listener) error {
	if a.tls != nil {
		ln = a.tls.term.Listener(ln)
	}
	return a.Server.Serve(ln)
}

// HTTPS reports whether Serve serves https.
func (a *App) HTTPS() bool { return a.tls != nil }

// ReloadCertificates reads the certificate files again (SIGHUP); a
// failure is logged and the certificate being served stays. Without TLS
// it does nothing.
func (a *App) ReloadCertificates() {
	if a.tls != nil {
		_ = a.tls.term.Reload()
	}
}

// ListenRedirect starts the plain listener on tls.http_listen: ACME
// HTTP-01 challenges, and a 308 to public_url for everything else
// (https.RedirectHandler). It returns the address it listens on; without
// tls.http_listen, "" and a stop that does nothing. Call stop after the
// Server's Shutdown.
func (a *App) ListenRedirect() (addr string, stop func(context.Context), err error) {
	var none *metricsListener
	if a.cfg.TLS.HTTPListen == "" || a.tls == nil {
		return "", none.stop, nil
	}
	h, err := https.RedirectHandler(a.cfg.PublicURL, a.tls.challenge)
	if err != nil {
		return "", nil, usageErr(err)
	}
	ln, err := net.Listen("tcp", a.cfg.TLS.HTTPListen)
	if err != nil {
		return "", nil, fmt.Errorf("tls.http_listen: listening on %s: %w (is another web server using it? set tls.http_listen / ARBOR_TLS_HTTP_LISTEN to a free address, or \"\" for no plain listener)", a.cfg.TLS.HTTPListen, err)
	}
	// The metrics listener's shape: an http.Server and its end.
	m := &metricsListener{srv: https.PlainServer(h, a.Log), done: make(chan struct{})}
	a.Log.Info("redirecting plain http to https", "http_listen", ln.Addr().String(), "to", a.cfg.PublicURL)
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Log.Error("plain listener stopped", "err", err)
		}
	}()
	return ln.Addr().String(), m.stop, nil
}

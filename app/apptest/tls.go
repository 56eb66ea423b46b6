package apptest

import (
	"net/http"
	"time"

	"github.com/vintner/arbor/gateway/edge/https/httpstest"
)

// TLS makes Arbor serve https itself (tls.cert_file and tls.key_file) with
// a certificate for 127.0.0.1 from a test CA (Harness.CA), which the
// Browser trusts; the public URL is https://, so cookies are Secure and
// the session cookie is __Host-arbor_session.
func TLS() Option { return func(s *setup) { s.tls = true } }

// serveTLS makes the CA and the certificate files and returns the
// environment that points Arbor at them.
func (h *Harness) serveTLS() []string {
	h.CA = httpstest.NewCA(h.T)
	certFile, keyFile := h.CA.Issue(h.T).Files(h.T, h.T.TempDir())
	return []string{"ARBOR_TLS_CERT_FILE=" + certFile, "ARBOR_TLS_KEY_FILE=" + keyFile}
}

// base is the URL of Arbor's listener: https:// with the TLS option.
func (h *Harness) base() string {
	if h.CA != nil {
		return "https://" + h.Addr
	}
	return "http://" + h.Addr
}

// client is an HTTP client for Arbor's listener (trusting the CA with the
// TLS option) that follows no redirects.
func (h *Harness) client() *http.Client {
	if h.CA != nil {
		return h.CA.Client()
	}
	return &http.Client{
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

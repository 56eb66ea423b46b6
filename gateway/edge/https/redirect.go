package https

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ACMEChallengePrefix is the path of ACME HTTP-01 challenges (RFC 8555
// section 8.3).
const ACMEChallengePrefix = "/.well-known/acme-challenge/"

// RedirectHandler is the plain-http listener's handler (tls.http_listen):
// a request under ACMEChallengePrefix goes to challenge first (nil: no
// ACME), which returns true if it answered; everything else gets 308
// Permanent Redirect to the same path and query on publicURL's scheme and
// host. The request's Host header is never used, so the listener cannot
// be made to redirect anywhere else (no open redirect). 308 keeps the
// method and body (RFC 9110 section 15.4.9): a form posted to http:// is
// posted again to https://. No HSTS header: it must not be sent over
// plain http (RFC 6797 section 7.2).
func RedirectHandler(publicURL string, challenge func(w http.ResponseWriter, r *http.Request) bool) (http.Handler, error) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("https: public_url %q: the plain listener redirects to it, so it must be an https:// URL", publicURL)
	}
	base := "https://" + u.Host
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if challenge != nil && strings.HasPrefix(r.URL.Path, ACMEChallengePrefix) && challenge(w, r) {
			return
		}
		path := r.URL.EscapedPath()
		if !strings.HasPrefix(path, "/") {
			path = "/" // "*" (OPTIONS *) or an empty path
		}
		target := base + path
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		h := w.Header()
		h.Set("Location", target)
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Connection", "close")
		w.WriteHeader(http.StatusPermanentRedirect)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte("This site is served over https: " + target + "\n"))
		}
	}), nil
}

// Plain listener bounds: requests are tiny and answered at once.
const (
	plainMaxHeaderBytes = 8 << 10
	plainTimeout        = 10 * time.Second
)

// PlainServer is the http.Server for h on the plain listener: headers at
// most 8 KiB, every phase bounded by 10 s, no keep-alive (a redirected
// client moves to https anyway), errors to log at warn.
func PlainServer(h http.Handler, log *slog.Logger) *http.Server {
	s := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: plainTimeout,
		ReadTimeout:       plainTimeout,
		WriteTimeout:      plainTimeout,
		IdleTimeout:       plainTimeout,
		MaxHeaderBytes:    plainMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.SetKeepAlivesEnabled(false)
	return s
}

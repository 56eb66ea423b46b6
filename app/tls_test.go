package app_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/app"
	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/edge/https/httpstest"
)

// Arbor serving https itself: a browser signs in over TLS, gets the
// __Host- cookie, and its proxied request reaches the upstream with the
// identity headers and a verifiable assertion, as over plain http; every
// answer, an error included, carries HSTS.
func TestHTTPSSignInAndProxy(t *testing.T) {
	h := apptest.New(t, apptest.TLS())
	if h.Cookie != session.SecureCookieName {
		t.Fatalf("session cookie %q over https; want %q", h.Cookie, session.SecureCookieName)
	}
	b := h.Browser()
	b.MustSignIn("github")
	id := h.UserID(b)

	res := b.Get("/dashboard?tab=1")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("proxied GET: %d %s", res.StatusCode, res.Body)
	}
	if res.TLS == nil || res.TLS.Version < tls.VersionTLS12 || res.TLS.NegotiatedProtocol != "http/1.1" {
		t.Fatalf("TLS state of the answer: %+v", res.TLS)
	}
	hdr, path, _ := h.Upstream.Last()
	if path != "/dashboard?tab=1" || hdr.Get(h.Config.Identity.UserIDHeader) != id || hdr.Get("X-Forwarded-Proto") != "https" {
		t.Fatalf("upstream got %s with user %q, X-Forwarded-Proto %q; want /dashboard?tab=1, %q, https",
			path, hdr.Get(h.Config.Identity.UserIDHeader), hdr.Get("X-Forwarded-Proto"), id)
	}
	if claims := apptest.VerifyAssertion(t, b, hdr.Get(h.Config.Identity.AssertionHeader)); claims["sub"] != id {
		t.Fatalf("assertion sub %v; want %s", claims["sub"], id)
	}

	anon := h.Browser()
	anon.Header.Set("Accept", "application/json")
	denied := anon.Get("/auth/whoami")
	for _, r := range []*apptest.Response{res, denied} {
		if v := r.Header.Get("Strict-Transport-Security"); v != "max-age=31536000" {
			t.Fatalf("%d answer: Strict-Transport-Security %q; want max-age=31536000", r.StatusCode, v)
		}
	}
	if denied.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous whoami: %d", denied.StatusCode)
	}
}

// tlsEnviron is a test environment with https from certificate files.
func tlsEnviron(t *testing.T, keyMode os.FileMode) (environ []string, ca *httpstest.CA) {
	t.Helper()
	ca = httpstest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.Issue(t).Files(t, dir)
	if err := os.Chmod(keyFile, keyMode); err != nil {
		t.Fatal(err)
	}
	dataDir, err := os.MkdirTemp("", "arb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dataDir) })
	sessionKey, _ := config.GenerateToken()
	cli, _ := config.GenerateToken()
	key, _ := config.GenerateKeyringEntry(time.Now())
	return []string{
		"ARBOR_DATA_DIR=" + dataDir,
		"ARBOR_LISTEN=127.0.0.1:0",
		"ARBOR_PUBLIC_URL=https://127.0.0.1:8443",
		"ARBOR_UPSTREAM_URL=http://127.0.0.1:9",
		"ARBOR_SERVER_METRICS_LISTEN=",
		"ARBOR_TLS_CERT_FILE=" + certFile,
		"ARBOR_TLS_KEY_FILE=" + keyFile,
		"ARBOR_TLS_HTTP_LISTEN=127.0.0.1:0",
		config.EnvSessionKey + "=" + sessionKey,
		config.EnvCLIJWTSecret + "=" + cli,
		config.EnvEncryptionKeys + "=" + key,
	}, ca
}

// A key file others can read stops start-up with a configuration error
// that says what to change.
func TestHTTPSRefusesAnOpenKeyFile(t *testing.T) {
	environ, _ := tlsEnviron(t, 0o644)
	cfg, err := config.Load(config.Source{Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(t.Context(), cfg, app.Options{Environ: environ, Stderr: io.Discard})
	if _, ok := errors.AsType[*app.ConfigError](err); !ok || a != nil {
		t.Fatalf("New = %v, %v; want a *ConfigError", a, err)
	}
	for _, w := range []string{"tls.key_file", "mode 0644", "chmod 600"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// The plain listener (tls.http_listen) redirects to public_url, and
// the request's Host header plays no part.
func TestHTTPSRedirectListener(t *testing.T) {
	environ, ca := tlsEnviron(t, 0o600)
	cfg, err := config.Load(config.Source{Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(t.Context(), cfg, app.Options{Environ: environ, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !a.HTTPS() {
		t.Fatal("HTTPS() = false with certificate files")
	}
	addr, stop, err := a.ListenRedirect()
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/some/page?q=1", nil)
	req.Host = "evil.example"
	res, err := ca.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != "https://127.0.0.1:8443/some/page?q=1" {
		t.Fatalf("plain listener: %d Location %q", res.StatusCode, res.Header.Get("Location"))
	}
}

// public_url must be https when Arbor serves https: the configuration
// says so and what to write.
func TestHTTPSNeedsHTTPSPublicURL(t *testing.T) {
	environ, _ := tlsEnviron(t, 0o600)
	environ = append(environ, "ARBOR_PUBLIC_URL=http://auth.example.com")
	_, err := config.Load(config.Source{Environ: environ})
	if err == nil || !strings.Contains(err.Error(), "set public_url to https://auth.example.com") {
		t.Fatalf("config.Load = %v; want it to ask for https://auth.example.com", err)
	}
}

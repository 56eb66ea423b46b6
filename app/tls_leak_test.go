package app

import (
	"errors"
	"strings"
	"testing"

	"github.com/vintner/arbor/gateway/edge/https/httpstest"
)

// With https from certificate files, a start-up that fails after the
// certificates were read leaves no certificate watch running.
func TestTLSStartFailureLeavesNothingRunning(t *testing.T) {
	certFile, keyFile := httpstest.NewCA(t).Issue(t).Files(t, t.TempDir())
	environ := append(testEnviron(t), "ARBOR_TLS_CERT_FILE="+certFile, "ARBOR_TLS_KEY_FILE="+keyFile, "ARBOR_PUBLIC_URL=https://127.0.0.1:8443")
	cfg := testConfig(t, environ)
	running := noArborGoroutines(t, "before the test", nil)
	a, err := New(t.Context(), cfg, Options{Environ: environ, Stderr: &strings.Builder{}, FailAt: "plugins"})
	if !errors.Is(err, ErrInjected) || a != nil {
		t.Fatalf("New with FailAt plugins = %v, %v; want ErrInjected", a, err)
	}
	noArborGoroutines(t, "start-up failed after the certificates were read", running)
}

package app

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// certmagicGoroutines counts goroutines running certmagic's code (its
// cache maintenance), which arborGoroutines does not see.
func certmagicGoroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	c := 0
	for _, g := range bytes.Split(buf[:n], []byte("\n\n")) {
		if bytes.Contains(g, []byte("caddyserver/certmagic")) {
			c++
		}
	}
	return c
}

// With ACME, a start-up that fails after the Manager was built closes it:
// no goroutine of certmagic's or Arbor's is left.
func TestACMEStartFailureLeavesNothingRunning(t *testing.T) {
	environ := append(testEnviron(t), "ARBOR_PUBLIC_URL=https://localhost:8443", "ARBOR_LISTEN=127.0.0.1:8443",
		"ARBOR_TLS_ACME_DOMAINS=localhost", "ARBOR_TLS_ACME_CA_URL=https://127.0.0.1:14000/dir")
	cfg := testConfig(t, environ)
	running := noArborGoroutines(t, "before the test", nil)
	before := certmagicGoroutines()
	a, err := New(t.Context(), cfg, Options{Environ: environ, Stderr: &strings.Builder{}, FailAt: "plugins"})
	if !errors.Is(err, ErrInjected) || a != nil {
		t.Fatalf("New with FailAt plugins = %v, %v; want ErrInjected", a, err)
	}
	noArborGoroutines(t, "start-up failed after the ACME manager was built", running)
	for i := 0; certmagicGoroutines() > before; i++ {
		if i == 600 { // 30 s
			t.Fatalf("%d certmagic goroutine(s) left after a failed start-up (was %d)", certmagicGoroutines(), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

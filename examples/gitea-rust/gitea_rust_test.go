// Package gitearust tests the Rust Gitea plugin in this directory: it is
// built from source with Debian's Rust toolchain (/usr/bin/rustc, target
// wasm32-wasi), passes the conformance kit that the Go Gitea example
// passes, and loads and serves a sign-in in a running `arbor serve`.
//
// Without the toolchain the tests skip, saying what to install; with CI
// set they fail instead, so CI cannot pass without having run them.
package gitearust

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// rustc is Debian's compiler, called by path: a rustup toolchain earlier
// on PATH may lack the wasm32-wasi standard library and cannot fetch it.
// TestMissingRustFailsInCI points it elsewhere through rustcEnv.
var rustc = cmp.Or(os.Getenv(rustcEnv), "/usr/bin/rustc")

// rustcEnv overrides the compiler's path, for TestMissingRustFailsInCI.
const rustcEnv = "ARBOR_TEST_RUSTC"

// RustcArgs are the flags of the build, after which come -o and the
// source. cdylib makes a reactor-style module: no _start, every
// #[no_mangle] extern "C" function exported, no _initialize needed.
// panic=abort turns a panic into a trap (the host reports "internal"),
// strip=symbols drops the names section and debug information.
var rustcArgs = []string{
	"--edition", "2021", "--target", "wasm32-wasi", "--crate-type", "cdylib",
	"-C", "opt-level=s", "-C", "panic=abort", "-C", "strip=symbols",
}

const installHint = "apt-get install --no-install-recommends rustc libstd-rust-dev-wasm32 lld-14"

// requireRust skips the test, or fails it when CI is set, unless Debian's
// Rust compiler, its wasm32-wasi standard library and its linker (rust-lld,
// from lld-14) are installed.
func requireRust(t testing.TB) {
	t.Helper()
	var missing string
	if _, err := os.Stat(rustc); err != nil {
		missing = "no " + rustc
	} else if out, err := exec.Command(rustc, "--print", "sysroot").Output(); err != nil {
		missing = rustc + " --print sysroot failed: " + err.Error()
	} else if _, err := os.Stat(filepath.Join(strings.TrimSpace(string(out)), "lib", "rustlib", "wasm32-wasi", "lib")); err != nil {
		missing = "no wasm32-wasi standard library for " + rustc
	} else if p, err := exec.LookPath("rust-lld"); err != nil {
		missing = "no rust-lld on PATH (the linker of " + rustc + " for wasm32-wasi)"
	} else if _, err := os.Stat(p); err != nil { // a dangling link to lld-14
		missing = p + " points to nothing (lld-14 is not installed)"
	}
	if missing == "" {
		return
	}
	msg := missing + ": the Rust plugin cannot be built (" + installHint + ")"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI is set, so this test must not be skipped")
	}
	t.Skip(msg)
}

// buildRust compiles the plugin into a temporary directory, with
// plugin.json's sha256 filled in, and returns that directory.
func buildRust(t testing.TB) string {
	t.Helper()
	requireRust(t)
	src, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	mod := filepath.Join(out, "gitea.wasm")
	args := append(append([]string(nil), rustcArgs...), "--remap-path-prefix", src+"=.", "-o", mod, "src/lib.rs")
	cmd := exec.CommandContext(context.Background(), rustc, args...)
	cmd.Dir = src
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", rustc, strings.Join(args, " "), err, msg)
	}
	b, err := os.ReadFile(mod)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	raw, err := os.ReadFile("plugin.json")
	if err != nil {
		t.Fatal(err)
	}
	sha := regexp.MustCompile(`"sha256"\s*:\s*"[^"]*"`)
	if !sha.Match(raw) {
		t.Fatal(errors.New(`plugin.json has no "sha256" key to fill in`))
	}
	man := sha.ReplaceAll(raw, []byte(`"sha256": "`+hex.EncodeToString(sum[:])+`"`))
	if err := os.WriteFile(filepath.Join(out, "plugin.json"), man, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// The Rust plugin passes the conformance kit as the Go example
// (examples/gitea) does: against the generic fake, whose zero Config
// follows Gitea's paths and answers, and against the same fake issuing
// and rotating refresh tokens, with client credentials in the form body.
// One more fake has users whose repositories take several pages and whose
// only address is unverified: the default user's three repositories fit
// on one page and its address is verified, so without them a plugin that
// ignored the Link header or called every address verified would pass.
func TestConformance(t *testing.T) {
	dir := buildRust(t)
	for name, fake := range map[string]fakeprovider.Config{
		"plain":          {},
		"refresh":        {IssueRefreshTokens: true},
		"refresh_rotate": {IssueRefreshTokens: true, RotateRefreshTokens: true},
		"users":          {IssueRefreshTokens: true, Users: fakeUsers},
	} {
		t.Run(name, func(t *testing.T) {
			plugintest.Run(t, plugintest.Suite{Plugin: os.DirFS(dir), Fake: fake, ExpectClientAuth: fakeprovider.ClientAuthBody})
		})
	}
}

// The Rust sources' own unit tests (#[cfg(test)] in src/*.rs), built for
// this machine with rustc --test and run in this directory: the JSON
// reader's escapes, nulls and errors, the wire codec against the bytes of
// sdk/abi's golden messages (what the Go encoder writes), the token, status
// and rate-limit rules, times, links and forms.
func TestRustUnitTests(t *testing.T) {
	requireRust(t)
	if _, err := exec.LookPath("cc"); err != nil {
		msg := "no cc on PATH: rustc needs it to link the native unit tests (apt-get install gcc)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI is set, so this test must not be skipped")
		}
		t.Skip(msg)
	}
	bin := filepath.Join(t.TempDir(), "units")
	cmd := exec.Command(rustc, "--edition", "2021", "--test", "-o", bin, "src/lib.rs")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rustc --test: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "--test-threads", "1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "test result: ok") {
		t.Fatalf("the Rust unit tests failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// fakeUsers: one with repositories on several pages (the kit asks for 25
// and for 100 a page; Gitea serves at most 50) and a verified primary
// address, one with a secondary verified address besides an unverified
// primary one, and one whose only address is unverified.
var fakeUsers = []fakeprovider.User{
	{ID: 4242, Login: "ferris", Name: "Ferris Crab", Repos: 120, Emails: []fakeprovider.Email{
		{Address: "ferris@example.org", Primary: true, Verified: true}}},
	{ID: 4243, Login: "corro", Name: "Corro the Unsafe", Repos: 3, Emails: []fakeprovider.Email{
		{Address: "corro@example.net", Primary: true}, {Address: "corro@example.org", Verified: true}}},
	{ID: 4244, Login: "sam", Repos: 0, Emails: []fakeprovider.Email{
		{Address: "sam@example.net", Primary: true}}},
}

// Without Rust the tests skip, saying what to install, unless CI is set:
// then they fail, so CI cannot pass without building the plugin. The test
// binary runs itself with the compiler's path pointing at nothing.
func TestMissingRustFailsInCI(t *testing.T) {
	if os.Getenv(rustcEnv) != "" {
		t.Skip("running inside TestMissingRustFailsInCI")
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestConformance$", "-test.v")
		cmd.Env = append(os.Environ(), rustcEnv+"=/nonexistent/rustc", "CI="+ci)
		out, err := cmd.CombinedOutput()
		switch {
		case ci == "" && (err != nil || !strings.Contains(string(out), "--- SKIP: TestConformance")):
			t.Errorf("without CI: %v, want a skip\n%s", err, out)
		case ci != "" && (err == nil || !strings.Contains(string(out), "CI is set, so this test must not be skipped")):
			t.Errorf("with CI set: %v, want a failure\n%s", err, out)
		}
		if !strings.Contains(string(out), "no /nonexistent/rustc: the Rust plugin cannot be built ("+installHint+")") {
			t.Errorf("CI=%q: the message does not say what is missing and what to install:\n%s", ci, out)
		}
	}
}

// Package gittest holds what tests of the Git proxy share and the binary
// must not link: the check that git is there.
package gittest

import (
	"os"
	"os/exec"
	"testing"
)

// NeedGit stops a test that needs the git client (and its http-backend)
// when git is not installed: a skip that says what to install on a
// developer's machine, a failure in CI (CI set), where .ci/run installs git
// and a missing one must not pass unnoticed.
func NeedGit(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git"); err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("git is not installed, and CI is set: .ci/run installs it (apt-get install git)")
	}
	t.Skip("git is not installed: install it (Debian: apt-get install git) to run the Git proxy's tests")
}

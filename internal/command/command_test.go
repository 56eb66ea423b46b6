package command

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestError: the status survives wrapping, the message and the cause are
// Err's.
func TestError(t *testing.T) {
	cause := errors.New("bad flag")
	for _, tc := range []struct {
		err  error
		code int
	}{
		{Usage(cause), 2},
		{ExitError{Code: 130, Err: cause}, 130},
		{fmt.Errorf("running: %w", ExitError{1, cause}), 1},
	} {
		var e ExitError
		if !errors.As(tc.err, &e) || e.Code != tc.code {
			t.Errorf("%v: code %d (found %v), want %d", tc.err, e.Code, errors.As(tc.err, &e), tc.code)
		}
		if !errors.Is(tc.err, cause) {
			t.Errorf("%v does not wrap its cause", tc.err)
		}
	}
	if got := Usage(cause).Error(); got != "bad flag" {
		t.Errorf("Usage(err).Error() = %q, want the cause's message", got)
	}
}

// TestVersion: `version` prints the program's name and version, and takes
// no arguments.
func TestVersion(t *testing.T) {
	cmd := Version("grape", "1.2.3")
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil || out.String() != "grape 1.2.3\n" {
		t.Errorf("version: %q, %v; want \"grape 1.2.3\\n\"", out.String(), err)
	}
	cmd.SetArgs([]string{"extra"})
	if err := cmd.Execute(); err == nil {
		t.Error("version with an argument: no error")
	}
}

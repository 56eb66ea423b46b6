package exitcode

import (
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
		{Error{Code: 130, Err: cause}, 130},
		{fmt.Errorf("running: %w", Error{1, cause}), 1},
	} {
		var e Error
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

package plugins_test

import (
	"testing"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
)

func TestErrorNamesThePluginOnce(t *testing.T) {
	for _, c := range []struct {
		msg, err, text string
	}{
		{"GET /user: status 401", "plugin github: user: invalid_token: GET /user: status 401", "github: GET /user: status 401"},
		{"", "plugin github: user: invalid_token", ""},
	} {
		e := &plugins.Error{Plugin: "github", Op: abi.OpUser, Code: abi.CodeInvalidToken, Message: c.msg}
		if got := e.Error(); got != c.err {
			t.Errorf("message %q: Error() = %q, want %q", c.msg, got, c.err)
		}
		if got := e.Text(); got != c.text {
			t.Errorf("message %q: Text() = %q, want %q", c.msg, got, c.text)
		}
	}
}

package builtin_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
)

// TestErrorsNameThePluginOnce: the host puts the plugin's name in front of
// what a plugin says, so the built-in plugins' own messages do not carry
// it and Error() names the plugin exactly once.
func TestErrorsNameThePluginOnce(t *testing.T) {
	for _, name := range []string{"github", "gitlab", "bitbucket", "google"} {
		t.Run(name, func(t *testing.T) {
			e := env(t, name)
			_, err := e.Plugin.User(t.Context(), "not-an-access-token")
			var pe *plugins.Error
			if !errors.As(err, &pe) || pe.Code != abi.CodeInvalidToken {
				t.Fatalf("user with an unknown token: %v, want invalid_token", err)
			}
			if pe.Plugin != name || pe.Message == "" || strings.HasPrefix(pe.Message, name+":") {
				t.Errorf("plugin %q, message %q: want the plugin %q and a message without its name", pe.Plugin, pe.Message, name)
			}
			if msg := err.Error(); strings.Count(msg, name+":") != 1 || !strings.HasPrefix(msg, "plugin "+name+": user: invalid_token: ") {
				t.Errorf("Error() = %q: want the plugin's name once, in front", msg)
			}
			if got, want := pe.Text(), name+": "+pe.Message; got != want {
				t.Errorf("Text() = %q, want %q", got, want)
			}
		})
	}
}

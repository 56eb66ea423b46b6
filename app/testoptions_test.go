package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/gateway/httperr"
)

// With TestOptions.PluginsLoading the first plugin load never starts:
// Arbor serves, /readyz says it is starting and no provider can be used,
// until the test ends (Close must not wait for a load that never began).
func TestPluginsLoadingOption(t *testing.T) {
	h := apptest.New(t, apptest.PluginsLoading())
	b := h.Browser()
	b.Header.Set("Accept", "application/json")
	if res := b.Get("/readyz"); res.StatusCode != http.StatusServiceUnavailable || apptest.ErrorCode(res.Body) != httperr.CodeStarting {
		t.Fatalf("/readyz while plugins load: %d %s", res.StatusCode, res.Body)
	}
	if res := b.Get("/auth/start/github"); res.StatusCode != http.StatusNotFound || apptest.ErrorCode(res.Body) != "unknown_provider" {
		t.Fatalf("start while plugins load: %d %s", res.StatusCode, res.Body)
	}
	// No load ran, not even one still under way at Close.
	if err := h.App.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	h.App.Close()
	for _, line := range []string{"plugins loaded", "abandoning the load", "plugins closed"} {
		if strings.Contains(h.Logs.String(), line) {
			t.Fatalf("the log says %q: a plugin load ran\n%s", line, h.Logs.String())
		}
	}
}

package app

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/vintner/arbor/gateway/httperr"
)

// While the first load runs, /readyz says the gateway is starting, not that
// its store is unreachable; afterwards it is ready.
func TestPluginsReadyWhileLoading(t *testing.T) {
	rt := &pluginRuntime{done: make(chan struct{})}
	err := rt.ready(context.Background())
	if he, ok := errors.AsType[*httperr.Error](err); !ok || he.Code != httperr.CodeStarting || he.Status != http.StatusServiceUnavailable {
		t.Fatalf("ready while loading = %v, want 503 %s", err, httperr.CodeStarting)
	}
	close(rt.done)
	if err := rt.ready(context.Background()); err == nil || !strings.Contains(err.Error(), "registry could not be created") {
		t.Fatalf("ready after a load without a registry = %v, want that error", err)
	}
}

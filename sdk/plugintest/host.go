package plugintest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/vintner/arbor/plugins"
)

// MainWithHost is a TestMain for packages whose tests load plugins many
// times: it starts one plugin host, shared by every test through *host
// (compiled modules cached in DefaultCacheDir, pools of 4), runs the tests
// and closes the host. It does not return.
//
//	var host *plugins.Host
//
//	func TestMain(m *testing.M) { plugintest.MainWithHost(m, &host) }
func MainWithHost(m *testing.M, host **plugins.Host) {
	h, err := plugins.NewHost(context.Background(), plugins.HostOptions{
		CacheDir: DefaultCacheDir(),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Policy:   plugins.Policy{PoolSize: 4},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugintest: starting the plugin host:", err)
		os.Exit(1)
	}
	*host = h
	code := m.Run()
	h.Close(context.Background())
	os.Exit(code)
}

package admin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func shortDir(t *testing.T) string {
	t.Helper()
	// Unix socket paths are limited to 108 bytes; t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "adm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestReloadPlugins(t *testing.T) {
	dir := shortDir(t)
	calls := 0
	want := PluginReload{
		Plugins: []PluginInfo{{Name: "github", Version: "1.0.0", Kind: "both", SHA256: "ab"}},
		Errors:  []string{`plugins: plugin "broken": bad manifest`},
	}
	srv, err := Listen(SocketPath(dir), Handlers{ReloadPlugins: func(context.Context) PluginReload {
		calls++
		return want
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	got, err := NewClient(srv.Path()).ReloadPlugins(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || !reflect.DeepEqual(got, want) {
		t.Fatalf("reload = %+v (calls %d), want %+v", got, calls, want)
	}
}

func TestReloadPluginsNotSupportedAndNotRunning(t *testing.T) {
	dir := shortDir(t)
	srv, err := Listen(SocketPath(dir), Handlers{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(srv.Path()).ReloadPlugins(context.Background()); err == nil {
		t.Fatal("reload without a handler succeeded")
	}
	srv.Close(context.Background())
	_, err = NewClient(filepath.Join(dir, SocketName)).ReloadPlugins(context.Background())
	if !errors.Is(err, ErrNotRunning) {
		t.Fatalf("no server: err = %v, want ErrNotRunning", err)
	}
}

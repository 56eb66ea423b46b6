// Command mkbuiltin rebuilds Arbor's built-in provider plugins into
// plugins/builtin, where they are committed and embedded in the binary.
// `make plugins` runs it from the repository root:
//
//	go run ./plugins/builtin/internal/mkbuiltin
//
// Every directory plugins/<name> with a plugin.json (except builtin and
// testdata) is a built-in plugin. Each is compiled with plugintest.Compile
// (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath
// -buildvcs=false, GOFLAGS cleared) and copied with its manifest, the
// module's sha256 filled in, to plugins/builtin/<name>/. The Go release
// used is written to plugins/builtin/GOVERSION: the module embeds it, so
// only the same release rebuilds the same bytes, which the test in
// plugins/builtin checks.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vintner/arbor/sdk/abi/manifest"
	"github.com/vintner/arbor/sdk/plugintest"
)

func main() {
	root := flag.String("root", ".", "the repository root")
	flag.Parse()
	if err := run(context.Background(), *root); err != nil {
		fmt.Fprintln(os.Stderr, "mkbuiltin:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, root string) error {
	pluginsDir := filepath.Join(root, "plugins")
	outRoot := filepath.Join(pluginsDir, "builtin")
	srcs, err := Sources(pluginsDir)
	if err != nil {
		return err
	}
	if len(srcs) == 0 {
		return fmt.Errorf("no plugin sources under %s", pluginsDir)
	}
	tmp, err := os.MkdirTemp("", "mkbuiltin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var goVersion string
	for _, name := range srcs {
		b, err := plugintest.Compile(ctx, filepath.Join(pluginsDir, name), filepath.Join(tmp, name))
		if err != nil {
			return err
		}
		if b.Manifest.Name != name {
			return fmt.Errorf("plugins/%s/plugin.json names the plugin %q: the directory and the name must agree", name, b.Manifest.Name)
		}
		goVersion = b.GoVersion
		out := filepath.Join(outRoot, name)
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		changed := false
		for _, f := range []string{manifest.File, b.Manifest.Module} {
			data, err := os.ReadFile(filepath.Join(b.Dir, f))
			if err != nil {
				return err
			}
			c, err := writeIfChanged(filepath.Join(out, f), data)
			if err != nil {
				return err
			}
			changed = changed || c
		}
		// Leave nothing else behind (a renamed module, say).
		entries, err := os.ReadDir(out)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Name() != manifest.File && e.Name() != b.Manifest.Module {
				if err := os.RemoveAll(filepath.Join(out, e.Name())); err != nil {
					return err
				}
				changed = true
			}
		}
		state := "unchanged"
		if changed {
			state = "UPDATED"
		}
		fi, _ := os.Stat(b.Module)
		fmt.Printf("%-10s %-9s %8d bytes  sha256 %s\n", name, state, fi.Size(), b.SHA256)
	}

	// Remove built plugins whose source is gone.
	entries, err := os.ReadDir(outRoot)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "internal" || slices.Contains(srcs, e.Name()) {
			continue
		}
		if _, err := os.Stat(filepath.Join(outRoot, e.Name(), manifest.File)); err == nil {
			fmt.Printf("%-10s REMOVED (no source)\n", e.Name())
			if err := os.RemoveAll(filepath.Join(outRoot, e.Name())); err != nil {
				return err
			}
		}
	}
	if _, err := writeIfChanged(filepath.Join(outRoot, "GOVERSION"), []byte(goVersion+"\n")); err != nil {
		return err
	}
	fmt.Printf("built with %s; commit plugins/builtin\n", goVersion)
	return nil
}

// Sources returns the names of the directories under pluginsDir that hold
// a built-in plugin's source.
func Sources(pluginsDir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(pluginsDir, "*", manifest.File))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range matches {
		name := filepath.Base(filepath.Dir(m))
		if name == "builtin" || name == "testdata" || strings.HasPrefix(name, ".") {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

func writeIfChanged(path string, data []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return false, err
	}
	return true, os.Rename(tmp, path)
}

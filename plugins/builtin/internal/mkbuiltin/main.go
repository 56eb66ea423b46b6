// Command mkbuiltin rebuilds Arbor's built-in provider plugins into
// plugins/builtin, where they are committed and embedded in the binary.
// `make plugins` runs it from the repository root:
//
//	go run ./plugins/builtin/internal/mkbuiltin
//
// Every directory plugins/<name> with a plugin.json (except builtin and
// testdata) is a built-in plugin, a package that registers its provider
// with plugin.RegisterAs. mkbuiltin writes the bundle's main package
// (plugins/builtin/internal/bundle/main.go, importing them all), compiles
// it into one module with plugintest.CompileModule (GOOS=wasip1
// GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false,
// GOFLAGS cleared), and writes plugins/builtin/builtin.wasm and each
// plugin's manifest, its sha256 filled in, to plugins/builtin/<name>/
// (package plugins/builtin/internal/build says why one module). The Go
// release used is written to plugins/builtin/GOVERSION: the module embeds
// it, so only the same release rebuilds the same bytes, which the test in
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

	"github.com/vintner/arbor/plugins/builtin/internal/build"
	"github.com/vintner/arbor/sdk/abi/manifest"
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
	srcs, err := build.Sources(pluginsDir)
	if err != nil {
		return err
	}
	mainGo := filepath.Join(pluginsDir, filepath.FromSlash(build.BundleDir), "main.go")
	if err := os.MkdirAll(filepath.Dir(mainGo), 0o755); err != nil {
		return err
	}
	if c, err := writeIfChanged(mainGo, build.Main(srcs)); err != nil {
		return err
	} else if c {
		fmt.Printf("%s UPDATED\n", mainGo)
	}
	r, err := build.Compile(ctx, pluginsDir)
	if err != nil {
		return err
	}
	state := func(c bool) string {
		if c {
			return "UPDATED"
		}
		return "unchanged"
	}
	c, err := writeIfChanged(filepath.Join(outRoot, build.Module), r.Files[build.Module])
	if err != nil {
		return err
	}
	fmt.Printf("%-12s %-9s %8d bytes  sha256 %s\n", build.Module, state(c), len(r.Files[build.Module]), r.SHA256)
	for _, name := range r.Names {
		out := filepath.Join(outRoot, name)
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		changed, err := writeIfChanged(filepath.Join(out, manifest.File), r.Files[name+"/"+manifest.File])
		if err != nil {
			return err
		}
		// Leave nothing else behind (a module of its own, from before the
		// plugins shared one).
		entries, err := os.ReadDir(out)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Name() != manifest.File {
				if err := os.RemoveAll(filepath.Join(out, e.Name())); err != nil {
					return err
				}
				changed = true
			}
		}
		fmt.Printf("%-12s %s\n", name, state(changed))
	}

	// Remove built plugins whose source is gone.
	entries, err := os.ReadDir(outRoot)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "internal" || slices.Contains(r.Names, e.Name()) {
			continue
		}
		if _, err := os.Stat(filepath.Join(outRoot, e.Name(), manifest.File)); err == nil {
			fmt.Printf("%-12s REMOVED (no source)\n", e.Name())
			if err := os.RemoveAll(filepath.Join(outRoot, e.Name())); err != nil {
				return err
			}
		}
	}
	if _, err := writeIfChanged(filepath.Join(outRoot, "GOVERSION"), []byte(r.GoVersion+"\n")); err != nil {
		return err
	}
	fmt.Printf("built with %s; commit plugins/builtin\n", r.GoVersion)
	return nil
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

// Package builtin embeds Arbor's built-in provider plugins — GitHub, GitLab,
// Bitbucket and Google — so that the arbor binary serves them without a
// plugins directory.
//
// The plugins are built from plugins/<name> by `make plugins` into one
// module, committed as plugins/builtin/builtin.wasm, with each plugin's
// manifest under plugins/builtin/<name>/ (plugin.json, the module's sha256
// filled in, "module": "builtin.wasm"). One module is compiled once and its
// machine code shared by the four (package internal/build says why); each
// plugin still runs in instances of its own, the host naming the plugin in
// every instance's environment. A test in this package rebuilds the module
// from source and fails if it differs from the committed one, so the
// embedded bytes are always what the sources say; docs/provider-plugins.md
// explains why this package commits the build instead of generating it
// during go build.
//
// Use FS as the first source of a registry, so that an operator's plugin
// of the same name replaces a built-in one:
//
//	reg, err := plugins.NewRegistry(ctx, host, plugins.RegistryOptions{
//		Sources: []fs.FS{builtin.FS(), os.DirFS(pluginsDir)},
//		Config:  configFor,
//	})
package builtin

import (
	"embed"
	"io/fs"
	"path"
	"slices"
	"strings"
)

//go:embed */plugin.json builtin.wasm
var files embed.FS

// module is the file every built-in manifest names.
const module = "builtin.wasm"

// FS returns the built-in plugins: one directory per plugin, named after
// it, holding plugin.json and its module (each directory's builtin.wasm is
// the one shared module).
func FS() fs.FS { return bundleFS{} }

// bundleFS is the embedded tree with <name>/builtin.wasm read from the
// shared module. Its contents never change while the process runs
// (Unchanging), so the plugin host may read a module again instead of
// keeping a copy.
type bundleFS struct{}

func (bundleFS) Open(name string) (fs.File, error) { return files.Open(resolve(name)) }

func (bundleFS) ReadFile(name string) ([]byte, error) { return files.ReadFile(resolve(name)) }

func (bundleFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := files.ReadDir(name)
	if err != nil || name == "." {
		return entries, err
	}
	// A plugin's directory lists the module it names.
	if m, err := fs.Stat(files, module); err == nil && fs.ValidPath(name) {
		entries = append(entries, fs.FileInfoToDirEntry(m))
	}
	return entries, nil
}

func (bundleFS) Unchanging() {}

// resolve maps <name>/builtin.wasm to the shared module.
func resolve(name string) string {
	if dir, file := path.Split(name); file == module && dir != "" && !strings.Contains(dir[:len(dir)-1], "/") {
		return module
	}
	return name
}

// Names returns the names of the built-in plugins, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// Plugin returns the named built-in plugin's directory (for plugins.Host.Load
// or sdk/plugintest), or false if there is none.
func Plugin(name string) (fs.FS, bool) {
	if _, err := fs.Stat(files, name+"/plugin.json"); err != nil {
		return nil, false
	}
	return pluginFS{name}, true
}

// pluginFS is one plugin's directory of bundleFS, Unchanging like it.
type pluginFS struct{ dir string }

func (p pluginFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	return bundleFS{}.Open(path.Join(p.dir, name))
}

func (p pluginFS) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrInvalid}
	}
	return bundleFS{}.ReadFile(path.Join(p.dir, name))
}

func (p pluginFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	return bundleFS{}.ReadDir(path.Join(p.dir, name))
}

func (pluginFS) Unchanging() {}

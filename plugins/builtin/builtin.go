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

// bundleFS is the embedded tree, or one plugin's directory of it (dir),
// with <name>/builtin.wasm read from the shared module. Its contents never
// change while the process runs (Unchanging), so the plugin host may read
// a module again instead of keeping a copy.
type bundleFS struct{ dir string }

// path maps name, relative to the FS, to the embedded file it reads.
func (f bundleFS) path(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	p := path.Join(f.dir, name)
	if dir, file := path.Split(p); file == module && dir != "" && !strings.Contains(dir[:len(dir)-1], "/") {
		return module, nil
	}
	return p, nil
}

func (f bundleFS) Open(name string) (fs.File, error) {
	p, err := f.path("open", name)
	if err != nil {
		return nil, err
	}
	return files.Open(p)
}

func (f bundleFS) ReadFile(name string) ([]byte, error) {
	p, err := f.path("read", name)
	if err != nil {
		return nil, err
	}
	return files.ReadFile(p)
}

func (f bundleFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := f.path("readdir", name)
	if err != nil {
		return nil, err
	}
	entries, err := files.ReadDir(p)
	if err != nil || p == "." {
		return entries, err
	}
	// A plugin's directory lists the module it names.
	if m, err := fs.Stat(files, module); err == nil {
		entries = append(entries, fs.FileInfoToDirEntry(m))
	}
	return entries, nil
}

func (bundleFS) Unchanging() {}

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
	return bundleFS{dir: name}, true
}

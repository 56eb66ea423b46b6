// Package builtin embeds Arbor's built-in provider plugins — GitHub, GitLab,
// Bitbucket and Google — so that the arbor binary serves them without a
// plugins directory.
//
// The modules are built from plugins/<name> by `make plugins` and committed
// under plugins/builtin/<name>/ (plugin.json with the module's sha256, and
// <name>.wasm). A test in this package rebuilds each one from source and
// fails if it differs from the committed one, so the embedded bytes are
// always what the sources say; docs/provider-plugins.md explains why this
// package commits the build instead of generating it during go build.
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
	"slices"
)

//go:embed */plugin.json */*.wasm
var files embed.FS

// FS returns the built-in plugins: one directory per plugin, named after
// it, holding plugin.json and the module.
func FS() fs.FS { return files }

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
	sub, err := fs.Sub(files, name)
	return sub, err == nil
}

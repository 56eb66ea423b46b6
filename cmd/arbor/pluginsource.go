package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vintner/arbor/sdk/plugintest"
)

// pluginFromSource returns the directory to load the plugin at dir from.
// A directory with Go files is a plugin's source (its main package beside
// its plugin.json, as examples/gitee): it is built as `arbor plugin build`
// does into a temporary directory, which done removes, so that `arbor
// plugin test examples/gitee` tests what the source says and not a module
// left over from an earlier build. Any other directory (a built plugin, or
// one whose language has its own build) is used as it is.
func pluginFromSource(ctx context.Context, dir string) (built string, done func(), err error) {
	if src, _ := filepath.Glob(filepath.Join(dir, "*.go")); len(src) == 0 {
		return dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "arbor-plugin-")
	if err != nil {
		return "", nil, fmt.Errorf("plugin: building %s: %w", dir, err)
	}
	if _, err := plugintest.Compile(ctx, dir, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", nil, fmt.Errorf("plugin: %s holds Go source, built before it is loaded: %w", dir, err)
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

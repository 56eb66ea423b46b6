// Command generic is a correct plugin for the generic fake (the kit's own
// tests).
package main

import (
	"github.com/vintner/arbor/sdk/plugin"
	"github.com/vintner/arbor/sdk/plugintest/testdata/lib"
)

func init() { plugin.Register(lib.Provider{}) }

func main() {}

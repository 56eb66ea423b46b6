// Command sloppy is the generic plugin with the bugs lib.Provider.Sloppy
// turns on (the kit's own tests).
package main

import (
	"github.com/vintner/arbor/sdk/plugin"
	"github.com/vintner/arbor/sdk/plugintest/testdata/lib"
)

func init() { plugin.Register(lib.Provider{Sloppy: true}) }

func main() {}

//go:build !wasip1

package plugin

import (
	"fmt"
	"os"

	"github.com/vintner/arbor/sdk/abi"
)

// errNoHost is what Do returns outside WebAssembly.
var errNoHost = NewError(abi.CodeUnavailable,
	"plugin.Do works only inside the Arbor host: build the plugin with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared")

func roundTrip([]byte) ([]byte, error) { return nil, errNoHost }

func hostWrite(level Level, msg string) { fmt.Fprintf(os.Stderr, "plugin %s: %s\n", level, msg) }

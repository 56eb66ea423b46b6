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

// hostForTest, when a test sets it, stands in for the host: it gets the
// encoded abi.HTTPRequest and returns the encoded abi.HTTPResponse.
var hostForTest func(req []byte) ([]byte, error)

func roundTrip(req []byte) ([]byte, error) {
	if hostForTest != nil {
		return hostForTest(req)
	}
	return nil, errNoHost
}

func hostWrite(level Level, msg string) { fmt.Fprintf(os.Stderr, "plugin %s: %s\n", level, msg) }

package plugins_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/vintner/arbor/plugins/internal/wasmbin"
)

// TestWasmbinMatchesWazero checks the pre-compile parser against wazero's
// own view of every test module, and that it survives corrupted input.
func TestWasmbinMatchesWazero(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter()) // decoding only
	defer rt.Close(ctx)
	for _, name := range []string{"good", "hostile", "abiv2", "missingexport"} {
		t.Run(name, func(t *testing.T) {
			matches, _ := filepath.Glob(filepath.Join(pluginDir(name), "*.wasm"))
			b, err := os.ReadFile(matches[0])
			if err != nil {
				t.Fatal(err)
			}
			got, err := wasmbin.Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			c, err := rt.CompileModule(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			exports := c.ExportedFunctions()
			if len(exports) != len(got.Funcs) {
				t.Errorf("%d exported functions, wazero sees %d", len(got.Funcs), len(exports))
			}
			for n, f := range exports {
				ft, ok := got.Funcs[n]
				if !ok || !ft.Equal(vals(f.ParamTypes()), vals(f.ResultTypes())) {
					t.Errorf("export %s: %v, wazero: %v %v", n, ft, f.ParamTypes(), f.ResultTypes())
				}
			}
			imports := c.ImportedFunctions()
			var fimports []wasmbin.Import
			for _, im := range got.Imports {
				if im.Kind == wasmbin.KindFunc {
					fimports = append(fimports, im)
				}
			}
			if len(imports) != len(fimports) {
				t.Fatalf("%d imported functions, wazero sees %d", len(fimports), len(imports))
			}
			for i, f := range imports {
				mod, n, _ := f.Import()
				if fimports[i].Module != mod || fimports[i].Name != n || !fimports[i].Type.Equal(vals(f.ParamTypes()), vals(f.ResultTypes())) {
					t.Errorf("import %d: %+v, wazero: %s.%s", i, fimports[i], mod, n)
				}
			}
			if got.Memories["memory"] != c.ExportedMemories()["memory"].Min() {
				t.Errorf("memory min %d, wazero %d", got.Memories["memory"], c.ExportedMemories()["memory"].Min())
			}

			r := rand.New(rand.NewPCG(5, 6))
			for range 200 {
				bad := append([]byte(nil), b[:r.IntN(len(b))]...)
				if len(bad) > 8 {
					bad[8+r.IntN(len(bad)-8)] ^= byte(1 + r.IntN(255))
				}
				wasmbin.Parse(bad) // must not panic
			}
		})
	}
}

func vals[T ~byte](ts []T) []wasmbin.ValType {
	out := make([]wasmbin.ValType, len(ts))
	for i, t := range ts {
		out[i] = wasmbin.ValType(t)
	}
	return out
}

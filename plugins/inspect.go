package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/vintner/arbor/plugins/internal/wasmbin"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/abi/manifest"
)

// Inspection describes a plugin on disk without running it: what
// `arbor plugin inspect` prints.
type Inspection struct {
	// Manifest is the parsed plugin.json.
	Manifest *manifest.Manifest
	// SHA256 is the module's actual hex SHA-256 (compare Manifest.SHA256).
	SHA256 string
	// ModuleBytes is the module's size.
	ModuleBytes int
	// ABIVersions are the ABI versions the module's marker exports and
	// host imports name (normally just [1]).
	ABIVersions []int
	// Exports are the exported functions, sorted by name.
	Exports []Symbol
	// Imports are the imported functions in module order.
	Imports []Symbol
	// MemoryPages is the initial size of the exported memory, in pages.
	MemoryPages uint32
	// Problem is why the host (with the default policy) would refuse the
	// plugin at load, or nil if its shape is right: a hash mismatch, a
	// missing export, another ABI version.
	Problem error
}

// Symbol is one exported or imported function.
type Symbol struct {
	Module    string // imports only
	Name      string
	Signature string // "(i32, i32) -> i64"
}

// Inspect reads the plugin whose plugin.json is in dir of fsys and checks
// its module the way the host does before compiling it. The error is for a
// plugin that cannot be read at all (no manifest, invalid manifest, no
// module); problems the host would refuse it for are in Inspection.Problem.
func Inspect(fsys fs.FS, dir string) (*Inspection, error) {
	m, src, err := readSource(fsys, dir, dir)
	if m == nil {
		return nil, err
	}
	if src.module == nil {
		return nil, err
	}
	sum := sha256.Sum256(src.module)
	in := &Inspection{Manifest: m, SHA256: hex.EncodeToString(sum[:]), ModuleBytes: len(src.module)}
	var problems []error
	if err != nil {
		problems = append(problems, err)
	}
	bin, perr := wasmbin.Parse(src.module)
	if perr != nil {
		in.Problem = errors.Join(append(problems, fmt.Errorf("module %s is not a valid WebAssembly module: %w", m.Module, perr))...)
		return in, nil
	}
	versions := map[int]bool{}
	for name, ft := range bin.Funcs {
		in.Exports = append(in.Exports, Symbol{Name: name, Signature: ft.String()})
		if v, ok := abi.ParseMarker(name); ok {
			versions[v] = true
		}
	}
	sort.Slice(in.Exports, func(i, j int) bool { return in.Exports[i].Name < in.Exports[j].Name })
	for _, im := range bin.Imports {
		if v, ok := abi.ParseHostModule(im.Module); ok {
			versions[v] = true
		}
		if im.Kind == wasmbin.KindFunc {
			in.Imports = append(in.Imports, Symbol{Module: im.Module, Name: im.Name, Signature: im.Type.String()})
		}
	}
	for v := range versions {
		in.ABIVersions = append(in.ABIVersions, v)
	}
	sort.Ints(in.ABIVersions)
	in.MemoryPages = bin.Memories[abi.ExportMemory]
	if cerr := checkModule(bin, m, clampLimits(Policy{}.withDefaults(), m.Limits).memPages); cerr != nil {
		problems = append(problems, cerr)
	}
	in.Problem = errors.Join(problems...)
	return in, nil
}

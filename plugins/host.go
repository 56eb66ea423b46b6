package plugins

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/vintner/arbor/plugins/internal/wasmbin"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/abi/manifest"
)

// HostOptions configure a Host. The zero value is usable: no on-disk
// compilation cache, slog.Default, the default Policy.
type HostOptions struct {
	// CacheDir holds wazero's compilation cache so that a restart loads a
	// plugin in tens of milliseconds instead of compiling it again (about
	// 1.3 s for a 4 MB plugin). The gateway uses <data_dir>/plugin-cache.
	// Default "": compiled code is cached in memory only.
	CacheDir string
	// Logger receives plugin log lines and host events. Default
	// slog.Default().
	Logger *slog.Logger
	// Policy is the operator's limits. Zero fields take their defaults.
	Policy Policy
}

// Policy is what the operator allows plugins. A manifest's limits are
// requests that Policy clamps.
type Policy struct {
	// MaxMemoryPages is the most linear memory an instance may have, in
	// 64 KiB pages; it is also the limit of a plugin whose manifest does
	// not ask for one. Default 512 (32 MiB).
	MaxMemoryPages uint32
	// HighWaterPercent: an instance whose memory has grown past this share
	// of its limit is closed and replaced after its call, because guest
	// memory never shrinks. Default 75.
	HighWaterPercent int
	// DefaultTimeout is the deadline of one call (guest CPU and HTTP
	// together) when the manifest does not ask for one. Default 10s.
	DefaultTimeout time.Duration
	// MaxTimeout caps the manifest's timeout. Default 30s.
	MaxTimeout time.Duration
	// DefaultResponseBytes caps one HTTP response body when the manifest
	// does not ask for a cap. Default 2 MiB.
	DefaultResponseBytes int64
	// MaxResponseBytes caps the manifest's response cap. Default 16 MiB.
	MaxResponseBytes int64
	// PoolSize is the most instances one plugin runs at once; more
	// concurrent calls wait. Each instance costs about 5.5 MB. Default 4.
	PoolSize int
	// Prewarm is how many instances are created when a plugin loads. The
	// first of them also checks the module's operations against the
	// manifest, so at least one is always created. Default 1.
	Prewarm int
	// KeepWarm is how many instances a plugin keeps at rest: the pool
	// shrinks back to it when idle. 0, the default, keeps none: a call
	// after a quiet period instantiates the module first (6-9 ms), and an
	// idle plugin costs no instance memory (about 3.5 MB resident each;
	// docs/benchmarks.md, "Issue 20: memory at rest").
	KeepWarm int
	// IdleTimeout: instances beyond KeepWarm that no call needed for this
	// long are closed, so that neither the load's nor a burst's instances
	// stay resident. Default 1 minute.
	IdleTimeout time.Duration
	// CodeIdleTimeout: a plugin that has had no instance for this long
	// also releases its compiled machine code (about 11 MB for a built-in
	// plugin); the next call compiles the module again, which takes it
	// from the on-disk compilation cache (HostOptions.CacheDir) in about
	// 40 ms, or compiles it from scratch without one (about 1 s).
	// Default 5 minutes; negative keeps the code loaded for as long as the
	// plugin is.
	CodeIdleTimeout time.Duration
	// MaxCallsPerInstance: an instance is replaced after this many calls.
	// Default 1000.
	MaxCallsPerInstance int
	// AcquireTimeout bounds the wait for a free instance; the call's own
	// deadline starts once it has one. Default 5s.
	AcquireTimeout time.Duration
}

func (p Policy) withDefaults() Policy {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if p.MaxMemoryPages == 0 {
		p.MaxMemoryPages = 512
	}
	if p.MaxMemoryPages > 65536 {
		p.MaxMemoryPages = 65536
	}
	def(&p.HighWaterPercent, 75)
	if p.HighWaterPercent > 100 {
		p.HighWaterPercent = 100
	}
	if p.DefaultTimeout <= 0 {
		p.DefaultTimeout = 10 * time.Second
	}
	if p.MaxTimeout <= 0 {
		p.MaxTimeout = 30 * time.Second
	}
	if p.DefaultResponseBytes <= 0 {
		p.DefaultResponseBytes = 2 << 20
	}
	if p.MaxResponseBytes <= 0 {
		p.MaxResponseBytes = 16 << 20
	}
	def(&p.PoolSize, 4)
	def(&p.Prewarm, 1)
	if p.Prewarm > p.PoolSize {
		p.Prewarm = p.PoolSize
	}
	p.KeepWarm = min(max(p.KeepWarm, 0), p.PoolSize)
	def(&p.MaxCallsPerInstance, 1000)
	if p.IdleTimeout <= 0 {
		p.IdleTimeout = time.Minute
	}
	if p.CodeIdleTimeout == 0 {
		p.CodeIdleTimeout = 5 * time.Minute
	}
	if p.AcquireTimeout <= 0 {
		p.AcquireTimeout = 5 * time.Second
	}
	return p
}

// Host runs plugins. It owns the process's single wazero runtime: compiled
// code, the compilation cache and the host functions are shared by every
// plugin. A Host is safe for concurrent use.
type Host struct {
	rt     wazero.Runtime
	cache  wazero.CompilationCache
	modCfg wazero.ModuleConfig
	policy Policy
	log    *slog.Logger

	mu     sync.Mutex
	closed bool

	// codes shares compiled code between versions of the same bytes: the
	// built-in plugins are one module (plugins/builtin), compiled once for
	// the four of them, and a reload of an unchanged plugin compiles
	// nothing. codesMu is held while compiling, so that plugins loading at
	// once wait for the one compile instead of repeating it.
	codesMu sync.Mutex
	codes   map[[sha256.Size]byte]*sharedCode

	freeing sync.Mutex // held while freeMemory runs
}

// sharedCode is a compiled module and the versions holding it.
type sharedCode struct {
	compiled wazero.CompiledModule
	refs     int
}

// compile returns the compiled code of module b, compiling it only if no
// version holds it already; releaseCompiled gives the reference back.
func (h *Host) compile(ctx context.Context, b []byte) ([sha256.Size]byte, wazero.CompiledModule, error) {
	key := sha256.Sum256(b)
	h.codesMu.Lock()
	defer h.codesMu.Unlock()
	if c := h.codes[key]; c != nil {
		c.refs++
		return key, c.compiled, nil
	}
	// Use every core for the compilation itself.
	cctx := experimental.WithCompilationWorkers(ctx, runtime.GOMAXPROCS(0))
	compiled, err := h.rt.CompileModule(cctx, b)
	if err != nil {
		return key, nil, err
	}
	if h.codes == nil {
		h.codes = map[[sha256.Size]byte]*sharedCode{}
	}
	h.codes[key] = &sharedCode{compiled: compiled, refs: 1}
	return key, compiled, nil
}

// CompiledModules reports how many compiled modules the host holds: one
// for the four built-in plugins, which share their module.
func (h *Host) CompiledModules() int {
	h.codesMu.Lock()
	defer h.codesMu.Unlock()
	return len(h.codes)
}

// releaseCompiled drops a version's reference to compiled code; the last one
// closes it.
func (h *Host) releaseCompiled(key [sha256.Size]byte) {
	h.codesMu.Lock()
	defer h.codesMu.Unlock()
	c := h.codes[key]
	if c == nil {
		return
	}
	if c.refs--; c.refs == 0 {
		delete(h.codes, key)
		c.compiled.Close(context.Background())
	}
}

// freeMemory returns freed memory to the OS after idle instances were
// closed (a forced GC). Pools that reap at the same moment share one run.
func (h *Host) freeMemory() {
	if !h.freeing.TryLock() {
		return
	}
	defer h.freeing.Unlock()
	debug.FreeOSMemory()
}

// maxModuleBytes bounds what Load reads for a module.
const maxModuleBytes = 64 << 20

// NewHost creates the runtime (compiler mode where wazero supports it, as
// on amd64 and arm64), opens the compilation cache and installs the WASI
// and arbor_v1 host modules.
//
// # Notes
//
//   - WithCloseOnContextDone is always on: it is the only way a deadline
//     stops a runaway plugin. It makes guest code slower, which is one
//     reason the ABI avoids reflection-based encoding (docs/plugin-abi.md).
//   - Plugins get the real wall clock and crypto/rand (wazero's defaults
//     are fake and deterministic), no file system, no environment but
//     abi.EnvPlugin (the plugin's name), no arguments and no sockets;
//     their stderr is kept, truncated, for crash reports.
func NewHost(ctx context.Context, opts HostOptions) (*Host, error) {
	h := &Host{policy: opts.Policy.withDefaults(), log: opts.Logger}
	if h.log == nil {
		h.log = slog.Default()
	}
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(h.policy.MaxMemoryPages)
	if opts.CacheDir != "" {
		if err := os.MkdirAll(opts.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("plugins: creating the compilation cache directory: %w", err)
		}
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("plugins: opening the compilation cache in %s: %w", opts.CacheDir, err)
		}
		h.cache = c
		cfg = cfg.WithCompilationCache(c)
	}
	h.rt = wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, h.rt); err != nil {
		h.Close(ctx)
		return nil, fmt.Errorf("plugins: installing WASI: %w", err)
	}
	i32 := api.ValueTypeI32
	_, err := h.rt.NewHostModuleBuilder(abi.HostModule).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostHTTPDo), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("req_ptr", "req_len", "buf_ptr", "buf_cap").Export(abi.ImportHTTPDo).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostHTTPTake), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("buf_ptr", "buf_cap").Export(abi.ImportHTTPTake).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostLog), []api.ValueType{i32, i32, i32}, nil).
		WithParameterNames("level", "ptr", "len").Export(abi.ImportLog).
		Instantiate(ctx)
	if err != nil {
		h.Close(ctx)
		return nil, fmt.Errorf("plugins: installing the %s host module: %w", abi.HostModule, err)
	}
	h.modCfg = wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(abi.ExportInitialize).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	return h, nil
}

// Close closes the runtime, every instance of every plugin and the cache.
// Plugins loaded by this host fail their calls afterwards.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	var errs []error
	if h.rt != nil {
		errs = append(errs, h.rt.Close(ctx))
	}
	if h.cache != nil {
		errs = append(errs, h.cache.Close(ctx))
	}
	return errors.Join(errs...)
}

// Policy returns the effective policy (defaults filled in).
func (h *Host) Policy() Policy { return h.policy }

// LoadDir loads the plugin in dir (plugin.json and its module).
func (h *Host) LoadDir(ctx context.Context, dir string, cfg PluginConfig) (*Plugin, error) {
	v, err := h.loadVersion(ctx, os.DirFS(dir), ".", dir, cfg)
	if err != nil {
		return nil, err
	}
	return newPlugin(v), nil
}

// Load loads the plugin in directory dir of fsys: it parses and validates
// plugin.json, verifies the module's SHA-256, compiles it (or takes it from
// the compilation cache), checks its imports and exports against ABI v1,
// applies cfg and the policy, creates the pre-warmed instances and checks
// that the operations the module implements match the manifest.
//
// # Errors
//
// Every error names the plugin and says what to fix: a manifest problem,
// "built for ABI vN" (wrapping abi.ErrABIVersion), a hash mismatch, a
// missing or mistyped export, an unknown import, or a failure of the
// module's initialisation (with its stderr).
func (h *Host) Load(ctx context.Context, fsys fs.FS, dir string, cfg PluginConfig) (*Plugin, error) {
	v, err := h.loadVersion(ctx, fsys, dir, dir, cfg)
	if err != nil {
		return nil, err
	}
	return newPlugin(v), nil
}

// unchanging reports whether fsys cannot change while the process runs:
// an embed.FS, or a file system that says so with an Unchanging method
// (plugins/builtin's, which serves its one module under every plugin's
// directory).
func unchanging(fsys fs.FS) bool {
	switch fsys.(type) {
	case embed.FS, interface{ Unchanging() }:
		return true
	}
	return false
}

// source is what a version was loaded from, for change detection.
type source struct {
	manifest []byte
	module   []byte
	// reread reads the module again, for a version that released its
	// compiled code. It is set only for a source that cannot change under
	// the running process (see unchanging: the built-in plugins); a version
	// from any other source keeps its module's bytes instead, so that a
	// file replaced on disk before the next Reload never changes what runs.
	reread func() ([]byte, error)
}

// readSource reads and checks the manifest and module in dir of fsys;
// label names dir in messages. The manifest is returned whenever it parsed,
// even if the module then failed.
func readSource(fsys fs.FS, dir, label string) (*manifest.Manifest, source, error) {
	var src source
	mpath := path.Join(dir, manifest.File)
	mlabel := filepath.Join(label, manifest.File)
	b, err := fs.ReadFile(fsys, mpath)
	if err != nil {
		return nil, src, fmt.Errorf("plugins: reading %s: %w", mlabel, err)
	}
	src.manifest = b
	m, err := manifest.Parse(b)
	if err != nil {
		return nil, src, fmt.Errorf("plugins: %s: %w", mlabel, err)
	}
	modPath := path.Join(dir, m.Module)
	modLabel := filepath.Join(label, m.Module)
	f, err := fsys.Open(modPath)
	if err != nil {
		return m, src, fmt.Errorf("plugins: plugin %q: opening its module: %w", m.Name, err)
	}
	defer f.Close()
	mod, err := io.ReadAll(io.LimitReader(f, maxModuleBytes+1))
	if err != nil {
		return m, src, fmt.Errorf("plugins: plugin %q: reading %s: %w", m.Name, modLabel, err)
	}
	if len(mod) > maxModuleBytes {
		return m, src, fmt.Errorf("plugins: plugin %q: module %s is larger than %d MiB", m.Name, modLabel, maxModuleBytes>>20)
	}
	src.module = mod
	if err := m.VerifyModule(mod); err != nil {
		return m, src, fmt.Errorf("plugins: %w", err)
	}
	if unchanging(fsys) {
		src.reread = func() ([]byte, error) { return fs.ReadFile(fsys, modPath) }
	}
	return m, src, nil
}

func (h *Host) loadVersion(ctx context.Context, fsys fs.FS, dir, label string, cfg PluginConfig) (*version, error) {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return nil, errors.New("plugins: the host is closed")
	}
	m, src, err := readSource(fsys, dir, label)
	if err != nil {
		return nil, err
	}
	return h.build(ctx, m, src, cfg)
}

func (h *Host) build(ctx context.Context, m *manifest.Manifest, src source, cfg PluginConfig) (*version, error) {
	fail := func(err error) error {
		if errors.Is(err, abi.ErrABIVersion) {
			return fmt.Errorf("plugins: %w", err) // already names the plugin
		}
		return fmt.Errorf("plugins: plugin %q: %w", m.Name, err)
	}
	if err := cfg.validate(); err != nil {
		return nil, fail(fmt.Errorf("configuration: %w", err))
	}
	// Check the module's shape before compiling it: a cold compile of a 4 MB
	// module takes over a second, a refusal should not.
	bin, err := wasmbin.Parse(src.module)
	if err != nil {
		return nil, fail(fmt.Errorf("module %s is not a valid WebAssembly module: %w", m.Module, err))
	}
	if err := checkModule(bin, m, clampLimits(h.policy, m.Limits).memPages); err != nil {
		return nil, fail(err)
	}
	key, compiled, err := h.compile(ctx, src.module)
	if err != nil {
		return nil, fail(fmt.Errorf("module %s is not a valid WebAssembly module: %w", m.Module, err))
	}
	v, err := newVersion(h, m, cfg, compiled, key, src)
	if err != nil {
		h.releaseCompiled(key)
		return nil, fail(err)
	}
	if err := v.start(ctx); err != nil {
		v.close()
		return nil, fail(err)
	}
	return v, nil
}

// checkModule verifies a module's shape against ABI v1 and the manifest
// before it is compiled, and names everything that is wrong.
func checkModule(bin *wasmbin.Module, m *manifest.Manifest, limitPages uint32) error {
	i32, i64 := wasmbin.I32, wasmbin.I64

	// Another ABI version shows in the imports or the marker.
	for _, im := range bin.Imports {
		if v, ok := abi.ParseHostModule(im.Module); ok && v != abi.Version {
			return abi.VersionError(m.Name, "the module was built for", v)
		}
	}
	if _, ok := bin.Funcs[abi.ExportMarker]; !ok {
		for name := range bin.Funcs {
			if v, ok := abi.ParseMarker(name); ok && v != abi.Version {
				return abi.VersionError(m.Name, "the module was built for", v)
			}
		}
	}
	for _, im := range bin.Imports {
		switch im.Module {
		case abi.HostModule:
			if err := checkImport(im); err != nil {
				return err
			}
		case wasi_snapshot_preview1.ModuleName:
		default:
			return fmt.Errorf("the module imports %s.%s, but the host provides only %s and %s: "+
				"build it with GOOS=wasip1 GOARCH=wasm and the Arbor SDK (Go) or for the wasm32-wasi target (Rust and others)",
				im.Module, im.Name, abi.HostModule, wasi_snapshot_preview1.ModuleName)
		}
	}

	type want struct {
		name           string
		params, result []wasmbin.ValType
		why            string
	}
	wants := []want{
		{abi.ExportMarker, nil, []wasmbin.ValType{i32}, "ABI v1 marker (import the Arbor SDK, sdk/plugin)"},
		{abi.ExportAlloc, []wasmbin.ValType{i32}, []wasmbin.ValType{i32}, "input buffer allocator"},
	}
	ops, _ := m.OpSet()
	for _, o := range abi.Ops {
		if ops.Has(o) {
			wants = append(wants, want{o.Export(), []wasmbin.ValType{i32, i32}, []wasmbin.ValType{i64},
				fmt.Sprintf("operation %q, listed in the manifest", o)})
		}
	}
	var problems []string
	problems = append(problems, checkReactor(bin)...)
	for _, w := range wants {
		ft := wasmbin.FuncType{Params: w.params, Results: w.result}
		got, ok := bin.Funcs[w.name]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing export %s %s, the %s", w.name, ft, w.why))
			continue
		}
		if !got.Equal(w.params, w.result) {
			problems = append(problems, fmt.Sprintf("export %s has signature %s, want %s (%s)", w.name, got, ft, w.why))
		}
	}
	if min, ok := bin.Memories[abi.ExportMemory]; !ok {
		problems = append(problems, "missing export memory (the linear memory)")
	} else if min > limitPages {
		problems = append(problems, fmt.Sprintf("the module needs %d pages of memory to start but its limit is %d pages: "+
			"raise limits.memory_pages in the manifest or the operator's max_memory_pages", min, limitPages))
	}
	if len(problems) > 0 {
		return fmt.Errorf("module %s cannot run as an ABI v%d plugin: %s", m.Module, abi.Version, strings.Join(problems, "; "))
	}
	return nil
}

// exportCommandStart is the entry point of a WASI command module (main,
// then exit).
const exportCommandStart = "_start"

// checkReactor checks that the module is a reactor, whose exports may be
// called any number of times. The initialiser _initialize is optional: the
// host runs it once per instance when it is there (Go's -buildmode=c-shared
// emits it, and without it every export of a Go module traps), and a module
// whose language needs no initialisation (a Rust cdylib) has none. A module
// that exports _start but no _initialize is a command: its start function
// would run main and exit, so it is refused with a message that says how to
// build a reactor.
func checkReactor(bin *wasmbin.Module) []string {
	if got, ok := bin.Funcs[abi.ExportInitialize]; ok {
		if !got.Equal(nil, nil) {
			return []string{fmt.Sprintf("export %s has signature %s, want %s (the reactor initialiser)",
				abi.ExportInitialize, got, wasmbin.FuncType{})}
		}
		return nil
	}
	if _, ok := bin.Funcs[exportCommandStart]; ok {
		return []string{fmt.Sprintf("the module is a command (it exports %s but no %s), not a reactor: "+
			"build it as a reactor (Go: -buildmode=c-shared; Rust: --crate-type cdylib; C: -mexec-model=reactor)",
			exportCommandStart, abi.ExportInitialize)}
	}
	return nil
}

func checkImport(im wasmbin.Import) error {
	i32 := wasmbin.I32
	if im.Kind != wasmbin.KindFunc {
		return fmt.Errorf("the module imports %s.%s as a non-function", im.Module, im.Name)
	}
	var p, r []wasmbin.ValType
	switch im.Name {
	case abi.ImportHTTPDo:
		p, r = []wasmbin.ValType{i32, i32, i32, i32}, []wasmbin.ValType{i32}
	case abi.ImportHTTPTake:
		p, r = []wasmbin.ValType{i32, i32}, []wasmbin.ValType{i32}
	case abi.ImportLog:
		p = []wasmbin.ValType{i32, i32, i32}
	default:
		return fmt.Errorf("the module imports %s.%s, which ABI v%d does not have (it has %s, %s and %s)",
			abi.HostModule, im.Name, abi.Version, abi.ImportHTTPDo, abi.ImportHTTPTake, abi.ImportLog)
	}
	if !im.Type.Equal(p, r) {
		return fmt.Errorf("the module imports %s.%s as %s, but ABI v%d defines it as %s",
			abi.HostModule, im.Name, im.Type, abi.Version, wasmbin.FuncType{Params: p, Results: r})
	}
	return nil
}

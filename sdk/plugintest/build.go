package plugintest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/abi/manifest"
)

// Built describes a plugin compiled by Compile.
type Built struct {
	// Dir holds plugin.json (with the module's SHA-256 filled in) and the
	// module.
	Dir string
	// Manifest is the written manifest.
	Manifest *manifest.Manifest
	// Module is the module's path.
	Module string
	// SHA256 is the module's hex SHA-256.
	SHA256 string
	// GoVersion is the toolchain that built it ("go1.26.8"). The module
	// embeds it, so another Go release builds other bytes.
	GoVersion string
}

// buildFlags are the fixed flags of every plugin build. With the same
// source, the same Go release and these flags, the module is the same byte
// for byte: -trimpath removes file system paths, -buildvcs=false keeps the
// repository's commit and "modified" flag out of the module.
var buildFlags = []string{"-buildmode=c-shared", "-trimpath", "-buildvcs=false"}

// BuildFlags returns the flags Compile passes to go build, after
// GOOS=wasip1 GOARCH=wasm (for documentation and for tools that print the
// command).
func BuildFlags() []string { return append([]string(nil), buildFlags...) }

// Compile builds the plugin whose main package and plugin.json are in
// srcDir into outDir, with the standard toolchain:
//
//	GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -buildmode=c-shared -trimpath -buildvcs=false
//
// and writes outDir/plugin.json: srcDir's manifest, byte for byte, except
// that its "sha256" value is the new module's hash. The environment's
// GOFLAGS, GOWASM and GOEXPERIMENT are cleared so that the build is
// reproducible whoever runs it. Compile is what `make plugins` runs for the
// built-in plugins and what Build runs for a test.
//
// # Errors
//
// The compiler's output is included when the build fails; a manifest
// without a "sha256" key, or one that is invalid once the hash is filled
// in, is an error naming the problem.
func Compile(ctx context.Context, srcDir, outDir string) (*Built, error) {
	src, err := filepath.Abs(srcDir)
	if err != nil {
		return nil, err
	}
	out, err := filepath.Abs(outDir)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(src, manifest.File))
	if err != nil {
		return nil, fmt.Errorf("plugintest: %w", err)
	}
	var head struct {
		Name   string `json:"name"`
		Module string `json:"module"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("plugintest: %s: %w", filepath.Join(srcDir, manifest.File), err)
	}
	if head.Module == "" {
		head.Module = head.Name + ".wasm"
	}
	if head.Name == "" || strings.ContainsAny(head.Module, `/\`) || !strings.HasSuffix(head.Module, ".wasm") {
		return nil, fmt.Errorf("plugintest: %s: the manifest needs a name and a module file name ending in .wasm", filepath.Join(srcDir, manifest.File))
	}
	if !shaField.Match(raw) {
		return nil, fmt.Errorf("plugintest: %s has no \"sha256\" key to fill in (add \"sha256\": \"\")", filepath.Join(srcDir, manifest.File))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("plugintest: %w", err)
	}
	modPath := filepath.Join(out, head.Module)
	goVersion, err := CompileModule(ctx, src, modPath)
	if err != nil {
		return nil, err
	}
	mod, err := os.ReadFile(modPath)
	if err != nil {
		return nil, fmt.Errorf("plugintest: %w", err)
	}
	sum := sha256.Sum256(mod)
	hash := hex.EncodeToString(sum[:])
	man := shaField.ReplaceAll(raw, []byte(`"sha256": "`+hash+`"`))
	m, err := manifest.Parse(man)
	if err != nil {
		return nil, fmt.Errorf("plugintest: %s: %w", filepath.Join(srcDir, manifest.File), err)
	}
	if err := writeFileAtomic(filepath.Join(out, manifest.File), man); err != nil {
		return nil, fmt.Errorf("plugintest: %w", err)
	}
	return &Built{Dir: out, Manifest: m, Module: modPath, SHA256: hash, GoVersion: goVersion}, nil
}

// CompileModule builds the main package in srcDir into the module modPath
// as Compile does (same toolchain, flags and cleared environment), without
// a manifest, and returns the Go release that built it. Arbor's built-in
// plugins are one such module, built from a main package that imports
// them all (plugins/builtin).
func CompileModule(ctx context.Context, srcDir, modPath string) (goVersion string, err error) {
	src, err := filepath.Abs(srcDir)
	if err != nil {
		return "", err
	}
	goBin := goTool()
	env := buildEnv()
	tmp := modPath + ".tmp"
	args := append([]string{"build"}, buildFlags...)
	args = append(args, "-o", tmp, ".")
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir, cmd.Env = src, env
	if msg, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("plugintest: GOOS=wasip1 GOARCH=wasm go %s (in %s): %v\n%s", strings.Join(args, " "), srcDir, err, msg)
	}
	if err := os.Rename(tmp, modPath); err != nil {
		return "", fmt.Errorf("plugintest: %w", err)
	}
	cmd = exec.CommandContext(ctx, goBin, "env", "GOVERSION")
	cmd.Dir, cmd.Env = src, env
	ver, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("plugintest: go env GOVERSION: %w", err)
	}
	return strings.TrimSpace(string(ver)), nil
}

// shaField matches the manifest's "sha256" member, whatever its value.
var shaField = regexp.MustCompile(`"sha256"\s*:\s*"[^"]*"`)

// Build compiles the plugin in dir (a directory with its main package and
// plugin.json) with Compile into a temporary directory and returns that
// directory for Suite.Plugin. Go's build cache makes repeated builds
// cheap. It fails the test if the build fails.
func Build(t testing.TB, dir string) fs.FS {
	t.Helper()
	b, err := Compile(t.Context(), dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return os.DirFS(b.Dir)
}

// Dir returns the plugin at path for Suite.Plugin: a directory holding
// plugin.json and the module, or the module's path (its directory is
// used).
func Dir(path string) fs.FS {
	if strings.HasSuffix(path, ".wasm") {
		path = filepath.Dir(path)
	}
	return os.DirFS(path)
}

// goTool returns the go command of the toolchain running this program when
// it can find it (go test and go run put it first on PATH), else "go".
func goTool() string {
	if root := runtime.GOROOT(); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// buildEnv is the environment of plugin builds: the caller's, with the
// target set and the settings that change the output cleared.
func buildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOOS", "GOARCH", "CGO_ENABLED", "GOFLAGS", "GOWASM", "GOEXPERIMENT":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=", "GOWASM=", "GOEXPERIMENT=")
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return nil
}

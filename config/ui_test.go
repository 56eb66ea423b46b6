package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoProductNamesInGatewayCode: the product names (the ui.* defaults)
// are written only in ui.go. Every other string in gateway/'s Go code, and
// every page template and asset, gets them from the config, so that an
// operator's ui.app_name reaches every page and message.
func TestNoProductNamesInGatewayCode(t *testing.T) {
	names := []string{DefaultAppName, DefaultWorkerName, DefaultCLIName}
	root := filepath.Join("..", "gateway")
	self, err := filepath.Abs("ui.go")
	if err != nil {
		t.Fatal(err)
	}
	var checked int
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if abs, _ := filepath.Abs(path); abs == self || strings.HasSuffix(path, "_test.go") || strings.Contains(path, string(filepath.Separator)+"testdata"+string(filepath.Separator)) {
			return nil
		}
		find := func(where, text string) {
			for _, n := range names {
				if strings.Contains(text, n) {
					t.Errorf("%s: %q is written here; take it from the config (ui.*) instead", where, n)
				}
			}
		}
		switch ext := filepath.Ext(path); ext {
		case ".go":
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			checked++
			ast.Inspect(f, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						s = lit.Value
					}
					find(fset.Position(lit.Pos()).String(), s)
				}
				return true
			})
		case ".html", ".css", ".js", ".txt", ".tmpl", ".json":
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			checked++
			find(path, string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d files under %s", checked, root)
	}
}

func TestUIDefaultsAndOverrides(t *testing.T) {
	cfg, err := Load(Source{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UI != (UI{AppName: "Trellis", WorkerName: "Tendril", CLIName: "Grape"}) {
		t.Errorf("defaults: %+v", cfg.UI)
	}
	cfg, err = Load(Source{File: writeFile(t, "ui:\n  app_name: Acme Cloud\n"), Environ: []string{"ARBOR_UI_WORKER_NAME=Runner", "ARBOR_UI_CLI_NAME=acmectl"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UI != (UI{AppName: "Acme Cloud", WorkerName: "Runner", CLIName: "acmectl"}) {
		t.Errorf("from YAML and the environment: %+v", cfg.UI)
	}
	for _, tc := range []struct{ env, want string }{
		{"ARBOR_UI_APP_NAME=", "ui.app_name (ARBOR_UI_APP_NAME): must not be empty"},
		{"ARBOR_UI_WORKER_NAME=" + strings.Repeat("x", 65), "ui.worker_name (ARBOR_UI_WORKER_NAME): \"" + strings.Repeat("x", 65) + "\" is longer than 64 bytes"},
		{"ARBOR_UI_CLI_NAME=a\tb", "ui.cli_name (ARBOR_UI_CLI_NAME): \"a\\tb\" has a character that cannot be shown"},
	} {
		if _, err := Load(Source{Environ: []string{tc.env}}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.env, err, tc.want)
		}
	}
	if _, err := Load(Source{File: writeFile(t, "ui:\n  app_nam: x\n")}); err == nil || !strings.Contains(err.Error(), `unknown key "ui.app_nam"`) {
		t.Errorf("a misspelt ui key: %v", err)
	}
}

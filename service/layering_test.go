package service_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The services know nothing of serving HTTP: this fails if a file under
// service/ (tests aside) imports Fiber, fasthttp or the HTTP layer
// (gateway/...), or net/http outside the packages that are HTTP clients of
// someone else (webhook delivers events to a URL).
func TestServicesSpeakNoHTTP(t *testing.T) {
	clients := map[string]bool{"webhook": true}
	pkgs := map[string]int{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		dir := filepath.Dir(path)
		pkgs[dir]++
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, im := range f.Imports {
			imp, _ := strconv.Unquote(im.Path.Value)
			switch {
			case imp == "github.com/gofiber/fiber/v2", imp == "github.com/valyala/fasthttp",
				imp == "github.com/vintner/arbor/gateway", strings.HasPrefix(imp, "github.com/vintner/arbor/gateway/"):
				t.Errorf("%s imports %s: a service returns its own errors; the HTTP layer maps them", path, imp)
			case imp == "net/http" && !clients[filepath.Base(dir)]:
				t.Errorf("%s imports net/http: only packages that call out over HTTP may (%v)", path, clients)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"connections", "workers", "webhook", "providers", "clilogin"} {
		if pkgs[want] == 0 {
			t.Errorf("no Go files read in service/%s: is the test running in service/?", want)
		}
	}
}

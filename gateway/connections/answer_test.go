package connections_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vintner/arbor/gateway/connections"
	"github.com/vintner/arbor/gateway/integrations"
)

func init() { connections.SetAnswer(integrations.Answer) }

// The broker is a service: it returns its own errors and knows nothing of
// HTTP. This fails if a file of the package (tests aside) imports net/http,
// Fiber or the HTTP error package.
func TestNoHTTPImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]bool{
		"net/http":                                 true,
		"github.com/gofiber/fiber/v2":              true,
		"github.com/valyala/fasthttp":              true,
		"github.com/vintner/arbor/gateway/httperr": true,
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		n++
		for _, im := range af.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			if forbidden[path] {
				t.Errorf("%s imports %s: the broker returns its own errors (errors.go); integrations.Answer maps them to HTTP", f, path)
			}
		}
	}
	if n < 3 {
		t.Fatalf("checked %d files; is the test running in gateway/connections?", n)
	}
}

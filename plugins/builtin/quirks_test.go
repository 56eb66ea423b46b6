package builtin_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/plugintest"
)

// matrixFile is where the quirk matrix lives, relative to this package.
const matrixFile = "../../docs/provider-plugins.md"

// quirkRow is one row of the quirk matrix.
type quirkRow struct {
	line                                           int
	provider, behaviour, docs, plugin, fake, tests string
}

// readQuirkMatrix returns the rows of the table under the "Quirk matrix"
// heading of docs/provider-plugins.md.
func readQuirkMatrix(t *testing.T) []quirkRow {
	t.Helper()
	f, err := os.Open(matrixFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []quirkRow
	in, header := false, 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.HasPrefix(line, "## Quirk matrix")
			continue
		}
		if !in || !strings.HasPrefix(line, "|") {
			continue
		}
		if header < 2 { // the header row and the |---| row
			header++
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 6 {
			t.Errorf("%s:%d: %d cells, want 6 (provider, behaviour, documentation, plugin, fake, tests)", matrixFile, n, len(cells))
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, quirkRow{n, cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

var testRef = regexp.MustCompile("`([a-z0-9_/.-]+):(Test[A-Za-z0-9_]+)(/[^`]*)?`")

// TestQuirkMatrix checks the quirk matrix of docs/provider-plugins.md:
// every row cites the provider's documentation (or says it is not
// confirmed), says what the plugin and the fake do, and names tests that
// exist ("`dir:TestName`", the directory relative to the repository root).
func TestQuirkMatrix(t *testing.T) {
	rows := readQuirkMatrix(t)
	perProvider := map[string]int{}
	for _, r := range rows {
		perProvider[r.provider]++
		where := matrixFile + ":" + strconv.Itoa(r.line)
		if !strings.Contains(r.docs, "https://") && !strings.Contains(strings.ToLower(r.docs), "not confirmed") {
			t.Errorf("%s: %s / %s: no documentation link and not marked \"not confirmed\"", where, r.provider, r.behaviour)
		}
		if r.plugin == "" || r.fake == "" {
			t.Errorf("%s: %s / %s: the plugin or fake column is empty", where, r.provider, r.behaviour)
		}
		refs := testRef.FindAllStringSubmatch(r.tests, -1)
		if len(refs) == 0 {
			t.Errorf("%s: %s / %s: names no test (write `dir:TestName`)", where, r.provider, r.behaviour)
		}
		for _, m := range refs {
			if !testExists(t, m[1], m[2]) {
				t.Errorf("%s: %s / %s: no func %s in %s/*_test.go", where, r.provider, r.behaviour, m[2], m[1])
			}
			// The kit's cases run as TestConformance/<plugin>/<case>.
			if m[2] == "TestConformance" && m[3] != "" {
				parts := strings.Split(strings.Trim(m[3], "/"), "/")
				if len(parts) != 2 || !slices.Contains(plugintest.CaseNames(), parts[1]) {
					t.Errorf("%s: %s / %s: %s%s is not a conformance case (have %v)", where, r.provider, r.behaviour, m[2], m[3], plugintest.CaseNames())
				}
			}
		}
	}
	for _, p := range []string{"GitHub", "GitLab", "Bitbucket", "Google"} {
		if perProvider[p] < 3 {
			t.Errorf("the quirk matrix has %d rows for %s, want the provider's behaviours Arbor relies on", perProvider[p], p)
		}
	}
}

var testFuncCache = map[string]string{}

// testExists reports whether a _test.go file in dir (relative to the
// repository root) declares func name.
func testExists(t *testing.T, dir, name string) bool {
	t.Helper()
	src, ok := testFuncCache[dir]
	if !ok {
		files, _ := filepath.Glob(filepath.Join("../..", dir, "*_test.go"))
		var b strings.Builder
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(raw)
		}
		src = b.String()
		testFuncCache[dir] = src
	}
	return regexp.MustCompile(`(?m)^func ` + name + `\(t \*testing\.T\)`).MatchString(src)
}

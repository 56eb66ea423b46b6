// Package golden keeps the bytes a wire or storage format wrote in
// testdata, so that a test fails when a change would make those bytes
// read differently or be written differently: plugins built before a
// change must still load, and stores written before it must still read.
//
// A golden file is testdata/golden/NAME.hex, the bytes in hex. Run the
// test with -update to write the files from the current code, once, when
// a format is first pinned or deliberately extended; review the diff.
package golden

import (
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.hex from the current code")

// Bytes returns the bytes of the golden file name. With -update it first
// writes current, what the code writes today, to the file.
func Bytes(t testing.TB, name string, current []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".hex")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(current)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file: %v (a new record or message needs one: run the test with -update)", err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("golden file %s: %v", path, err)
	}
	return b
}

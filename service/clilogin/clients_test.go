package clilogin

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/internal/scopeset"
	"github.com/vintner/arbor/service/clilogin/clitoken"
)

var testKey = []byte("0123456789abcdef0123456789abcdef-clilogin-test")

// testStore opens a bbolt store in t's directory and a token signer.
func testStore(t *testing.T) (Store, *clitoken.Signer) {
	t.Helper()
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "arbor.db"), boltdb.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	toks, err := clitoken.NewSigner(testKey, clitoken.Options{Issuer: "clilogin-test"})
	if err != nil {
		t.Fatal(err)
	}
	return st, toks
}

// New refuses a registry that config validation would have refused.
func TestDeviceClientRegistryChecks(t *testing.T) {
	st, toks := testStore(t)
	for _, bad := range [][]DeviceClient{
		{{ID: "a", Name: "A"}},
		{{ID: "", Name: "A", Scopes: scopeset.Proxy}},
		{{ID: "a", Name: "", Scopes: scopeset.Proxy}},
		{{ID: GrapeClientID, Name: "G", Scopes: scopeset.Proxy}},
		{{ID: "a", Name: "A", Scopes: scopeset.Proxy}, {ID: "a", Name: "B", Scopes: scopeset.Proxy}},
		{{ID: "a", Name: "A", Scopes: 1 << 7}},
	} {
		if _, err := New(st, Options{Tokens: toks, CodeKey: testKey, DeviceClients: bad}); err == nil {
			t.Errorf("New accepted %+v", bad)
		}
	}
	ok := []DeviceClient{{ID: "a", Name: "A", Scopes: scopeset.Proxy}, {ID: "b", Name: "B", Scopes: scopeset.All}}
	if _, err := New(st, Options{Tokens: toks, CodeKey: testKey, DeviceClients: ok}); err != nil {
		t.Errorf("New refused the valid registry %+v: %v", ok, err)
	}
}

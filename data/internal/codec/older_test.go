package codec

import (
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
)

// TestRecordsBeforeIssue19Decode: users and identities stored before issue
// 19 added their fields (testdata/golden/*-v1-before-19.hex, the golden
// records as that encoder wrote them) still decode, to the same record
// with the new fields zero: not disabled, no memberships, no grant.
func TestRecordsBeforeIssue19Decode(t *testing.T) {
	var u data.User
	fill(t, rand.New(rand.NewPCG(1, 17)), reflect.ValueOf(&u)) // goldenCases' seed for user
	u.Disabled, u.DisabledAt, u.DisabledBy, u.DisabledReason = false, time.Time{}, "", ""
	u.Memberships = data.Memberships{}
	olderDecodes(t, "user-v1-before-19", User, u)

	var id data.Identity
	fill(t, rand.New(rand.NewPCG(2, 17)), reflect.ValueOf(&id))
	id.Grant, id.GrantExpiresAt = nil, time.Time{}
	olderDecodes(t, "identity-v1-before-19", Identity, id)
}

func olderDecodes[T any](t *testing.T, name string, c Codec[T], want T) {
	t.Helper()
	// Read directly, not through goldenfile.Bytes: -update must not
	// rewrite what an older encoder wrote.
	h, err := os.ReadFile(filepath.Join("testdata", "golden", name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(h)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var got T
	if err := c.Decode(raw, &got); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s decodes as\n%+v\nwant %+v", name, got, want)
	}
}

// TestWorkersBeforeIssue22Decode: workers stored before issue 22 added
// Scopes and Repos (testdata/golden/worker-v1-before-22.hex) still decode,
// as Tendril workers: no scopes, no repository patterns.
func TestWorkersBeforeIssue22Decode(t *testing.T) {
	var w data.Worker
	fill(t, rand.New(rand.NewPCG(7, 17)), reflect.ValueOf(&w)) // goldenCases' seed for worker
	w.Scopes, w.Repos = nil, nil
	olderDecodes(t, "worker-v1-before-22", Worker, w)
}

package codec

import (
	"bufio"
	"encoding/hex"
	"flag"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt from the current encoder")

// goldenCase is one record kind in testdata/golden.txt: a filled record
// and the zero record, as the format-V1 encoder wrote them.
type goldenCase interface {
	name() string
	// check encodes the records and decodes the golden bytes of each.
	check(t *testing.T, golden map[string][]byte)
	write(t *testing.T, b *strings.Builder)
}

type golden[T any] struct {
	kind string
	c    Codec[T]
	seed uint64
}

func (g golden[T]) name() string { return g.kind }

func (g golden[T]) records(t *testing.T) map[string]*T {
	var filled, zero T
	fill(t, rand.New(rand.NewPCG(g.seed, 17)), reflect.ValueOf(&filled))
	return map[string]*T{g.kind: &filled, g.kind + "-zero": &zero}
}

func (g golden[T]) write(t *testing.T, b *strings.Builder) {
	recs := g.records(t)
	for _, name := range []string{g.kind, g.kind + "-zero"} {
		b.WriteString(name + " " + hex.EncodeToString(g.c.Encode(recs[name])) + "\n")
	}
}

func (g golden[T]) check(t *testing.T, golden map[string][]byte) {
	for name, rec := range g.records(t) {
		want, ok := golden[name]
		if !ok {
			t.Errorf("%s: not in golden.txt", name)
			continue
		}
		if got := g.c.Encode(rec); string(got) != string(want) {
			t.Errorf("%s: encoding changed\n got %x\nwant %x", name, got, want)
		}
		var out T
		if err := g.c.Decode(want, &out); err != nil {
			t.Errorf("%s: decoding the stored bytes: %v", name, err)
		} else if !reflect.DeepEqual(&out, rec) {
			t.Errorf("%s: stored bytes decode as\n%+v\nwant %+v", name, out, *rec)
		}
	}
}

var goldenCases = []goldenCase{
	golden[data.User]{"user", User, 1},
	golden[data.Identity]{"identity", Identity, 2},
	golden[data.Session]{"session", Session, 3},
	golden[data.OAuthState]{"oauth-state", OAuthState, 4},
	golden[data.DeviceCode]{"device-code", DeviceCode, 5},
	golden[data.RefreshFamily]{"refresh-family", RefreshFamily, 6},
	golden[data.Worker]{"worker", Worker, 7},
	golden[data.Connection]{"connection", Connection, 8},
	golden[data.AuditEvent]{"audit-event", AuditEvent, 9},
}

// TestGoldenRecords: existing stores must still read. testdata/golden.txt
// holds records as the format-V1 encoder wrote them into bbolt files and
// etcd; each must decode to the record it was written from, and encoding
// that record must give the same bytes.
func TestGoldenRecords(t *testing.T) {
	if *update {
		var b strings.Builder
		for _, c := range goldenCases {
			c.write(t, &b)
		}
		if err := os.WriteFile("testdata/golden.txt", []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open("testdata/golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	golden := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, h, _ := strings.Cut(sc.Text(), " ")
		if golden[name], err = hex.DecodeString(h); err != nil {
			t.Fatalf("golden %s: %v", name, err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(golden) != 2*len(goldenCases) {
		t.Fatalf("golden.txt has %d records, the test %d", len(golden), 2*len(goldenCases))
	}
	for _, c := range goldenCases {
		t.Run(c.name(), func(t *testing.T) { c.check(t, golden) })
	}
}

func BenchmarkEncodeSession(b *testing.B) {
	now := time.Now()
	s := data.Session{ID: "0123456789abcdef0123456789abcdef", UserID: "5f0c2a8e-8f1e-4b7b-9e1a-2c3d4e5f6a7b", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", IP: "203.0.113.9"}
	b.ReportAllocs()
	for b.Loop() {
		_ = Session.Encode(&s)
	}
}

func BenchmarkDecodeDeviceCode(b *testing.B) {
	now := time.Now()
	d := data.DeviceCode{Code: "0123456789abcdef0123456789abcdef", Kind: "cli", UserCode: "BCDF-GHJK", ClientID: "grape",
		ClientInfo: map[string]string{"name": "Grape", "version": "1.4.2"}, Scope: "repos workers", State: data.DeviceApproved,
		UserID: "5f0c2a8e-8f1e-4b7b-9e1a-2c3d4e5f6a7b", Interval: 5, LastPolledAt: now, ApprovedAt: now, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	raw := DeviceCode.Encode(&d)
	b.ReportAllocs()
	var out data.DeviceCode
	for b.Loop() {
		if err := DeviceCode.Decode(raw, &out); err != nil {
			b.Fatal(err)
		}
	}
}

package codec

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
)

// fill sets every field of v (a pointer to struct) to a random non-zero
// value, so that a field the codec forgets cannot round-trip by luck.
func fill(t *testing.T, r *rand.Rand, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		fill(t, r, v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Unix(r.Int64N(4e9)-1e9, r.Int64N(1e9)+1).UTC()))
			return
		}
		for i := range v.NumField() {
			fill(t, r, v.Field(i))
		}
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d\x00é", r.Uint32()))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(r.Int64N(1<<40) - 1<<39 | 1)
	case reflect.Uint64:
		v.SetUint(r.Uint64() | 1)
	case reflect.Slice:
		n := 1 + r.IntN(4)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(t, r, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 1 + r.IntN(4) {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(t, r, k)
			fill(t, r, e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Uint8:
		v.SetUint(uint64(r.IntN(255) + 1))
	default:
		t.Fatalf("fill: unsupported kind %s: teach the codec and this test", v.Kind())
	}
}

func roundTrip[T any](t *testing.T, c Codec[T]) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		var in T
		fill(t, r, reflect.ValueOf(&in))
		var out T
		if err := c.Decode(c.Encode(&in), &out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round %d: %T does not round-trip:\n in %+v\nout %+v", i, in, in, out)
		}
	}
	// The zero value round-trips too (nil slices and maps stay nil).
	var zero, out T
	if err := c.Decode(c.Encode(&zero), &out); err != nil || !reflect.DeepEqual(zero, out) {
		t.Fatalf("zero %T: %+v %v", zero, out, err)
	}
}

func TestEveryFieldRoundTrips(t *testing.T) {
	t.Run("User", func(t *testing.T) { roundTrip(t, User) })
	t.Run("Identity", func(t *testing.T) { roundTrip(t, Identity) })
	t.Run("Session", func(t *testing.T) { roundTrip(t, Session) })
	t.Run("OAuthState", func(t *testing.T) { roundTrip(t, OAuthState) })
	t.Run("DeviceCode", func(t *testing.T) { roundTrip(t, DeviceCode) })
	t.Run("RefreshFamily", func(t *testing.T) { roundTrip(t, RefreshFamily) })
	t.Run("Worker", func(t *testing.T) { roundTrip(t, Worker) })
	t.Run("Connection", func(t *testing.T) { roundTrip(t, Connection) })
	t.Run("AuditEvent", func(t *testing.T) { roundTrip(t, AuditEvent) })
	t.Run("Blob", func(t *testing.T) { roundTrip(t, Blob) })
}

func TestEmptySliceStaysEmpty(t *testing.T) {
	in := data.Connection{Scopes: []string{}, Sealed: []byte{}}
	var out data.Connection
	if err := Connection.Decode(Connection.Encode(&in), &out); err != nil {
		t.Fatal(err)
	}
	if out.Scopes == nil || out.Sealed == nil || len(out.Scopes)+len(out.Sealed) != 0 {
		t.Fatalf("empty became %#v %#v", out.Scopes, out.Sealed)
	}
}

func TestCorruptInput(t *testing.T) {
	s := data.Session{ID: "abc", UserID: "u", ExpiresAt: time.Now(), UserAgent: "curl"}
	good := Session.Encode(&s)
	var out data.Session
	cases := map[string][]byte{
		"empty":          nil,
		"json":           []byte(`{"id":"abc"}`),
		"truncated len":  good[:3],
		"length too big": append([]byte{formatV1, 0xff, 0xff, 0xff, 0x0f}, 'a'),
		"bad varint":     append([]byte{formatV1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		"bad nanos":      {formatV1, 0, 0, 1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, b := range cases {
		if err := Session.Decode(b, &out); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// Random garbage never panics.
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		b := make([]byte, r.IntN(64))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if len(b) > 0 {
			b[0] = formatV1
		}
		var dc data.DeviceCode
		_ = DeviceCode.Decode(b, &dc)
	}
}

// An older record, shorter than today's, decodes with the new fields zero.
func TestShorterRecordDecodes(t *testing.T) {
	s := data.Session{ID: "abc", UserID: "u1", IP: "10.0.0.1"}
	b := Session.Encode(&s)
	b = b[:len(b)-len("10.0.0.1")-1] // drop the last field
	var out data.Session
	if err := Session.Decode(b, &out); err != nil || out.ID != "abc" || out.IP != "" {
		t.Fatalf("%+v %v", out, err)
	}
}

func BenchmarkDecodeSession(b *testing.B) {
	now := time.Now()
	s := data.Session{ID: "0123456789abcdef0123456789abcdef", UserID: "5f0c2a8e-8f1e-4b7b-9e1a-2c3d4e5f6a7b", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", IP: "203.0.113.9"}
	raw := Session.Encode(&s)
	b.ReportAllocs()
	var out data.Session
	for b.Loop() {
		if err := Session.Decode(raw, &out); err != nil {
			b.Fatal(err)
		}
	}
}

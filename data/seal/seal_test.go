package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func mustKey(t testing.TB, id string) Key {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return Key{ID: id, Secret: k}
}

func mustRing(t testing.TB, keys ...Key) *Keyring {
	t.Helper()
	kr, err := NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestSealOpenRoundTrip(t *testing.T) {
	kr := mustRing(t, mustKey(t, "k1"))
	for _, pt := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("token"), 1000)} {
		env, err := kr.Seal(pt, []byte("user-1/github"))
		if err != nil {
			t.Fatal(err)
		}
		if len(pt) > 4 && bytes.Contains(env, pt[:5]) {
			t.Fatalf("envelope contains plaintext")
		}
		got, err := kr.Open(env, []byte("user-1/github"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("round trip: got %q want %q", got, pt)
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	kr := mustRing(t, mustKey(t, "k1"))
	a, _ := kr.Seal([]byte("same"), nil)
	b, _ := kr.Seal([]byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical: nonce reuse")
	}
}

// Every single-bit flip anywhere in the envelope must fail to open, with an
// error, never with garbage.
func TestEveryBitFlipFails(t *testing.T) {
	kr := mustRing(t, mustKey(t, "k1"), mustKey(t, "k2"))
	aad := []byte("user-1/gitlab")
	env, err := kr.Seal([]byte("glpat-secret-access-token"), aad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range env {
		for bit := 0; bit < 8; bit++ {
			mut := bytes.Clone(env)
			mut[i] ^= 1 << bit
			pt, err := kr.Open(mut, aad)
			if err == nil {
				t.Fatalf("flip byte %d bit %d: opened to %q", i, bit, pt)
			}
			if pt != nil {
				t.Fatalf("flip byte %d bit %d: returned plaintext with error", i, bit)
			}
			if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("flip byte %d bit %d: unexpected error %v", i, bit, err)
			}
		}
	}
}

func TestAADBindsRow(t *testing.T) {
	kr := mustRing(t, mustKey(t, "k1"))
	env, _ := kr.Seal([]byte("tok"), []byte("alice/github"))
	for _, aad := range []string{"bob/github", "alice/gitlab", "", "alice/github "} {
		if _, err := kr.Open(env, []byte(aad)); !errors.Is(err, ErrTampered) {
			t.Errorf("aad %q: err = %v, want ErrTampered", aad, err)
		}
	}
}

func TestRotation(t *testing.T) {
	k1, k2 := mustKey(t, "k1"), mustKey(t, "k2")
	old := mustRing(t, k1)
	env1, _ := old.Seal([]byte("tok"), []byte("a"))

	both := mustRing(t, k1, k2)
	if both.NewestID() != "k2" {
		t.Fatalf("newest = %q", both.NewestID())
	}
	if !both.NeedsReseal(env1) {
		t.Fatal("envelope under k1 should need reseal")
	}
	if got, err := both.Open(env1, []byte("a")); err != nil || string(got) != "tok" {
		t.Fatalf("old key no longer opens: %q %v", got, err)
	}
	env2, err := both.Reseal(env1, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := KeyID(env2); id != "k2" {
		t.Fatalf("resealed under %q", id)
	}
	if both.NeedsReseal(env2) {
		t.Fatal("resealed envelope still needs reseal")
	}
	onlyNew := mustRing(t, k2)
	if _, err := onlyNew.Open(env1, []byte("a")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("open with removed key: %v, want ErrUnknownKey", err)
	}
	if got, err := onlyNew.Open(env2, []byte("a")); err != nil || string(got) != "tok" {
		t.Fatalf("new ring: %q %v", got, err)
	}
}

func TestNewKeyringErrors(t *testing.T) {
	good := mustKey(t, "k1")
	cases := []struct {
		name string
		keys []Key
		want string
	}{
		{"none", nil, "arbor keys generate"},
		{"short", []Key{{ID: "k1", Secret: make([]byte, 16)}}, "16 bytes, want 32"},
		{"bad id", []Key{{ID: "k 1", Secret: good.Secret}}, "key id"},
		{"empty id", []Key{{ID: "", Secret: good.Secret}}, "key id"},
		{"duplicate", []Key{good, good}, "appears twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewKeyring(c.keys...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseKeys(t *testing.T) {
	k := mustKey(t, "x")
	enc := EncodeSecret(k.Secret)
	keys, err := ParseKeys("old:" + enc + ", new:" + enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != "old" || keys[1].ID != "new" || !bytes.Equal(keys[1].Secret, k.Secret) {
		t.Fatalf("parsed %+v", keys)
	}
	for _, bad := range []string{"", "nocolon", "k1:!!!notbase64!!!"} {
		_, err := ParseKeys(bad)
		if err == nil {
			t.Errorf("ParseKeys(%q) succeeded", bad)
			continue
		}
		if bad != "" && strings.Contains(err.Error(), "notbase64") {
			t.Errorf("error echoes the secret: %v", err)
		}
	}
}

func TestMalformed(t *testing.T) {
	kr := mustRing(t, mustKey(t, "k1"))
	for _, env := range [][]byte{nil, {1}, {2, 2, 'k', '1'}, {1, 0}, {1, 70, 'k'}, {1, 2, 'k', '1', 0, 0}} {
		if _, err := kr.Open(env, nil); err == nil {
			t.Errorf("Open(%v) succeeded", env)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	kr := mustRing(b, mustKey(b, "k1"))
	pt := bytes.Repeat([]byte("a"), 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Seal(pt, []byte("user/provider")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	kr := mustRing(b, mustKey(b, "k1"))
	env, _ := kr.Seal(bytes.Repeat([]byte("a"), 256), []byte("user/provider"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Open(env, []byte("user/provider")); err != nil {
			b.Fatal(err)
		}
	}
}

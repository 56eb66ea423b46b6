package data_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/seal"
)

func keyring(t *testing.T, ids ...string) (*seal.Keyring, []seal.Key) {
	t.Helper()
	var keys []seal.Key
	for _, id := range ids {
		secret, err := seal.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, seal.Key{ID: id, Secret: secret})
	}
	kr, err := seal.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr, keys
}

const (
	acmeAccountKey = "acme/acme-v02.api.letsencrypt.org-directory/users/ops@example.com/ops.key"
	siteKey        = "certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.key"
	siteCert       = "certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.crt"
)

var pemKey = []byte("-----BEGIN EC PRIVATE KEY-----\nnot-a-real-key\n-----END EC PRIVATE KEY-----\n")

func TestSealBlobRoundTrip(t *testing.T) {
	kr, _ := keyring(t, "k1")
	v, err := data.SealBlob(kr, siteKey, pemKey)
	if err != nil {
		t.Fatal(err)
	}
	if !data.IsSealedBlob(v) || !bytes.HasPrefix(v, []byte(data.SealedBlobHeader)) {
		t.Fatalf("sealed value %q lacks the header", v)
	}
	if bytes.Contains(v, []byte("not-a-real-key")) {
		t.Fatal("the sealed value holds the plaintext")
	}
	got, err := data.OpenBlob(kr, siteKey, v)
	if err != nil || !bytes.Equal(got, pemKey) {
		t.Fatalf("OpenBlob: %q, %v; want the plaintext", got, err)
	}
}

func TestOpenBlobRefuses(t *testing.T) {
	kr, _ := keyring(t, "k1")
	other, _ := keyring(t, "k1") // same id, another secret
	v, err := data.SealBlob(kr, siteKey, pemKey)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(v)
	flipped[len(flipped)-1] ^= 1
	for _, c := range []struct {
		name  string
		s     data.Sealer
		key   string
		value []byte
		want  error
	}{
		{"under another key", kr, "certificates/acme-v02.api.letsencrypt.org-directory/other.example/other.example.key", v, seal.ErrTampered},
		{"changed", kr, siteKey, flipped, seal.ErrTampered},
		{"another keyring", other, siteKey, v, seal.ErrTampered},
		{"PEM", kr, siteKey, pemKey, data.ErrNotSealed},
		{"JSON", kr, siteKey, []byte(`{"sans":["example.com"]}`), data.ErrNotSealed},
		{"DER", kr, siteKey, []byte{0x30, 0x82, 0x01, 0x0a}, data.ErrNotSealed},
		{"bare envelope", kr, siteKey, v[len(data.SealedBlobHeader):], data.ErrNotSealed},
		{"empty", kr, siteKey, nil, data.ErrNotSealed},
	} {
		t.Run(c.name, func(t *testing.T) {
			pt, err := data.OpenBlob(c.s, c.key, c.value)
			if !errors.Is(err, c.want) || pt != nil {
				t.Fatalf("OpenBlob: %q, %v; want %v", pt, err, c.want)
			}
			if c.want == data.ErrNotSealed && data.IsSealedBlob(c.value) {
				t.Fatal("IsSealedBlob says it is sealed")
			}
		})
	}
}

func TestSealBlobSizeLimit(t *testing.T) {
	kr, _ := keyring(t, strings.Repeat("k", 64)) // the longest key id
	v, err := data.SealBlob(kr, siteKey, make([]byte, data.MaxSealedBlobPlaintext))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) > data.MaxBlobSize {
		t.Fatalf("the largest sealed plaintext makes a value of %d bytes, more than MaxBlobSize %d", len(v), data.MaxBlobSize)
	}
	// It fits in the store.
	s := openStore(t)
	if err := s.PutBlob(context.Background(), siteKey, v); err != nil {
		t.Fatal(err)
	}
	if _, err := data.SealBlob(kr, siteKey, make([]byte, data.MaxSealedBlobPlaintext+1)); !errors.Is(err, data.ErrInvalid) {
		t.Fatalf("SealBlob of one byte more: %v, want ErrInvalid", err)
	}
}

// TestResealBlobs rotates keys over a store holding a connection and
// blobs: the sealed blobs (and the connection) end up under the newest
// key and still open, the others are left untouched.
func TestResealBlobs(t *testing.T) {
	ctx := context.Background()
	old, keys := keyring(t, "k1")
	s := openStore(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateUser(ctx, data.User{ID: "u1"}))
	tok, err := old.Seal([]byte("gho_token"), data.ConnectionAAD("u1", "github"))
	must(err)
	must(s.CreateConnection(ctx, data.Connection{UserID: "u1", Provider: "github", Sealed: tok, Status: data.ConnectionActive}))
	for _, k := range []string{acmeAccountKey, siteKey} {
		v, err := data.SealBlob(old, k, []byte("secret of "+k))
		must(err)
		must(s.PutBlob(ctx, k, v))
	}
	cert := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	must(s.PutBlob(ctx, siteCert, cert))
	certBefore, err := s.GetBlob(ctx, siteCert)
	must(err)

	secret, err := seal.GenerateKey()
	must(err)
	newKey := seal.Key{ID: "k2", Secret: secret}
	both, err := seal.NewKeyring(keys[0], newKey)
	must(err)
	// One blob is already under the newest key.
	current, err := data.SealBlob(both, "certificates/x/current.key", []byte("current"))
	must(err)
	must(s.PutBlob(ctx, "certificates/x/current.key", current))

	st, err := data.Reseal(ctx, s, both)
	must(err)
	if want := (data.ResealStats{Total: 4, Resealed: 3, Current: 1}); st != want {
		t.Fatalf("Reseal: %+v, want %+v", st, want)
	}
	onlyNew, err := seal.NewKeyring(newKey)
	must(err)
	for _, k := range []string{acmeAccountKey, siteKey} {
		b, err := s.GetBlob(ctx, k)
		must(err)
		pt, err := data.OpenBlob(onlyNew, k, b.Value)
		if err != nil || string(pt) != "secret of "+k {
			t.Errorf("%s after Reseal opens with the new key alone to %q, %v", k, pt, err)
		}
	}
	if b, err := s.GetBlob(ctx, "certificates/x/current.key"); err != nil || !bytes.Equal(b.Value, current) {
		t.Errorf("a blob already under the newest key was rewritten: %v", err)
	}
	if b, err := s.GetBlob(ctx, siteCert); err != nil || !bytes.Equal(b.Value, cert) || !b.Modified.Equal(certBefore.Modified) {
		t.Errorf("an unsealed blob was changed by Reseal: %+v, %v", b, err)
	}
	c, err := s.GetConnection(ctx, "u1", "github")
	must(err)
	if pt, err := onlyNew.Open(c.Sealed, data.ConnectionAAD("u1", "github")); err != nil || string(pt) != "gho_token" {
		t.Errorf("connection after Reseal: %q, %v", pt, err)
	}

	// Again: nothing left to do.
	st, err = data.Reseal(ctx, s, both)
	must(err)
	if want := (data.ResealStats{Total: 4, Current: 4}); st != want {
		t.Fatalf("second Reseal: %+v, want %+v", st, want)
	}
}

// TestResealStopsAtBlobThatDoesNotOpen: a sealed blob moved under another
// key (or sealed with a key no longer configured) stops the rotation with
// an error naming it, and is left as it was.
func TestResealStopsAtBlobThatDoesNotOpen(t *testing.T) {
	ctx := context.Background()
	old, keys := keyring(t, "k1")
	s := openStore(t)
	v, err := data.SealBlob(old, siteKey, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	moved := "certificates/acme-v02.api.letsencrypt.org-directory/evil.example/evil.example.key"
	if err := s.PutBlob(ctx, moved, v); err != nil {
		t.Fatal(err)
	}
	secret, _ := seal.GenerateKey()
	both, err := seal.NewKeyring(keys[0], seal.Key{ID: "k2", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	_, err = data.Reseal(ctx, s, both)
	if !errors.Is(err, seal.ErrTampered) || !strings.Contains(err.Error(), moved) {
		t.Fatalf("Reseal over a moved blob: %v, want ErrTampered naming %s", err, moved)
	}
	b, err := s.GetBlob(ctx, moved)
	if err != nil || !bytes.Equal(b.Value, v) {
		t.Fatalf("the blob that failed to open was changed: %v", err)
	}
}

// TestResealBlobRenewedMeanwhile: a blob rewritten between Reseal's read
// and its update is re-checked, not overwritten with the old value.
func TestResealBlobRenewedMeanwhile(t *testing.T) {
	ctx := context.Background()
	old, keys := keyring(t, "k1")
	s := openStore(t)
	v, err := data.SealBlob(old, siteKey, []byte("old certificate key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, siteKey, v); err != nil {
		t.Fatal(err)
	}
	secret, _ := seal.GenerateKey()
	both, err := seal.NewKeyring(keys[0], seal.Key{ID: "k2", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := data.SealBlob(both, siteKey, []byte("renewed key"))
	if err != nil {
		t.Fatal(err)
	}
	// The renewal lands after Reseal read the blob: through a Resealer
	// that writes it on its first NeedsReseal.
	r := &renewingResealer{Keyring: both, renew: func() {
		if err := s.PutBlob(ctx, siteKey, renewed); err != nil {
			t.Error(err)
		}
	}}
	st, err := data.Reseal(ctx, s, r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.GetBlob(ctx, siteKey)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := data.OpenBlob(both, siteKey, b.Value)
	if err != nil || string(pt) != "renewed key" {
		t.Fatalf("after Reseal the blob opens to %q, %v; want the renewed key", pt, err)
	}
	if st.Current != 1 || st.Resealed != 0 {
		t.Fatalf("Reseal: %+v, want the renewed blob counted as current", st)
	}
}

// renewingResealer is the real keyring, with renew run once, the first
// time Reseal asks whether an envelope needs resealing.
type renewingResealer struct {
	*seal.Keyring
	renew func()
	done  bool
}

func (r *renewingResealer) NeedsReseal(env []byte) bool {
	if !r.done {
		r.done = true
		r.renew()
	}
	return r.Keyring.NeedsReseal(env)
}

package flowstate

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	key      = []byte("0123456789abcdef0123456789abcdef")
	otherKey = []byte("another key of thirty-two bytes!!")
	t0       = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	binding  = "OcG2mUu1sXh0k3bq3aYq8oWb1T3cXl3c9cS3v3Ck0aE"
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

func sample() State {
	return State{
		Provider: "github", Purpose: "link", UserID: "usr_abcdefghijklmnopqrstuvwxyz",
		Verifier: verifier, RedirectURI: "https://arbor.example/auth/callback/github",
		ReturnTo: "/projects/7?tab=files", ExpiresAt: t0.Add(10 * time.Minute),
	}
}

func mustNew(t *testing.T, k []byte) *Sealer {
	t.Helper()
	s, err := New(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func seal(t *testing.T, s *Sealer, st State) string {
	t.Helper()
	v, err := s.Seal(st, binding)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRoundTrip(t *testing.T) {
	s := mustNew(t, key)
	in := sample()
	v := seal(t, s, in)
	got, err := s.Open(v, "github", binding, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ID) != 22 {
		t.Fatalf("ID %q: want 22 base64url characters (128 bits)", got.ID)
	}
	in.ID = got.ID
	if got != in {
		t.Fatalf("Open returned\n%+v\nwant\n%+v", got, in)
	}
	// Each seal is a new sign-in: another ID, another ciphertext.
	v2 := seal(t, s, in)
	got2, err := s.Open(v2, "github", binding, t0)
	if err != nil {
		t.Fatal(err)
	}
	if v2 == v || got2.ID == got.ID {
		t.Fatal("two seals of the same state gave the same value or ID")
	}
	// Nothing of the state is readable in the sealed value.
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	for _, secret := range []string{verifier, in.UserID, in.ReturnTo, "github", binding} {
		if bytes.Contains(raw, []byte(secret)) || strings.Contains(v, secret) {
			t.Fatalf("the sealed value shows %q", secret)
		}
	}
	// A typical state stays short; the longest return path signin
	// carries (512 bytes) still fits.
	t.Logf("a typical sealed state: %d characters", len(v))
	if len(v) > 400 {
		t.Fatalf("a typical state is %d characters", len(v))
	}
	long := in
	long.ReturnTo = "/" + strings.Repeat("a", 511)
	if _, err := s.Seal(long, binding); err != nil {
		t.Fatalf("a 512-byte return path: %v", err)
	}
	long.ReturnTo = strings.Repeat("a", MaxLen)
	if _, err := s.Seal(long, binding); !errors.Is(err, ErrTooLong) {
		t.Fatalf("a %d-byte return path: %v, want ErrTooLong", MaxLen, err)
	}
}

func TestOpenRefuses(t *testing.T) {
	s := mustNew(t, key)
	good := seal(t, s, sample())
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	withExtra := func(extra State) string {
		st := sample()
		if extra.Provider != "" {
			st.Provider = extra.Provider
		}
		if !extra.ExpiresAt.IsZero() {
			st.ExpiresAt = extra.ExpiresAt
		}
		return seal(t, s, st)
	}

	for _, tc := range []struct {
		name     string
		sealed   string
		opener   *Sealer
		provider string
		binding  string
		now      time.Time
		want     error
	}{
		{"the genuine state", good, s, "github", binding, t0, nil},
		{"one second before expiry", good, s, "github", binding, t0.Add(10*time.Minute - time.Second), nil},

		{"empty", "", s, "github", binding, t0, ErrInvalid},
		{"not base64url", good[:len(good)-1] + "!", s, "github", binding, t0, ErrInvalid},
		{"padded base64", base64.URLEncoding.EncodeToString(raw), s, "github", binding, t0, ErrInvalid},
		{"another spelling of the same bytes", respell(good), s, "github", binding, t0, ErrInvalid},
		{"truncated by one character", good[:len(good)-1], s, "github", binding, t0, ErrInvalid},
		{"truncated to half", good[:len(good)/2], s, "github", binding, t0, ErrInvalid},
		{"version byte only", good[:2], s, "github", binding, t0, ErrInvalid},
		{"one extra byte", base64.RawURLEncoding.EncodeToString(append(bytes.Clone(raw), 0)), s, "github", binding, t0, ErrInvalid},
		{"tampered version", flip(0), s, "github", binding, t0, ErrInvalid},
		{"tampered nonce", flip(5), s, "github", binding, t0, ErrInvalid},
		{"tampered ciphertext", flip(20), s, "github", binding, t0, ErrInvalid},
		{"tampered tag", flip(len(raw) - 1), s, "github", binding, t0, ErrInvalid},
		{"longer than MaxLen", strings.Repeat("A", MaxLen+1), s, "github", binding, t0, ErrInvalid},
		{"a random value", base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 80)), s, "github", binding, t0, ErrInvalid},
		{"wrong key", good, mustNew(t, otherKey), "github", binding, t0, ErrInvalid},

		{"expired", good, s, "github", binding, t0.Add(10 * time.Minute), ErrExpired},
		{"long expired", good, s, "github", binding, t0.Add(48 * time.Hour), ErrExpired},
		{"sealed already expired", withExtra(State{ExpiresAt: t0.Add(-time.Second)}), s, "github", binding, t0, ErrExpired},

		{"wrong provider", good, s, "gitlab", binding, t0, ErrProvider},
		{"provider differs in case", good, s, "GitHub", binding, t0, ErrProvider},
		{"made for gitlab, at github", withExtra(State{Provider: "gitlab"}), s, "github", binding, t0, ErrProvider},

		{"wrong binding", good, s, "github", "AcG2mUu1sXh0k3bq3aYq8oWb1T3cXl3c9cS3v3Ck0aE", t0, ErrBinding},
		{"no binding", good, s, "github", "", t0, ErrBinding},
		{"binding with a suffix", good, s, "github", binding + "A", t0, ErrBinding},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.opener.Open(tc.sealed, tc.provider, tc.binding, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
			if err != nil && got != (State{}) {
				t.Fatalf("Open failed yet returned %+v", got)
			}
		})
	}
}

func TestNewNeedsAKey(t *testing.T) {
	if _, err := New(key[:31]); err == nil {
		t.Fatal("New accepted a 31-byte key")
	}
}

// respell changes the unused low bits of the last base64 character, so
// that a lax decoder reads the same bytes.
func respell(v string) string {
	if len(v)%4 == 0 {
		panic("the sealed value has no partial last group")
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, v[len(v)-1])
	return v[:len(v)-1] + string(alphabet[i^1])
}

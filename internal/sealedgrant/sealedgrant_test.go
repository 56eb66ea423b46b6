package sealedgrant_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/seal"
	"github.com/vintner/arbor/internal/sealedgrant"
	"github.com/vintner/arbor/sdk/abi"
)

func TestFrom(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	prev := sealedgrant.Grant{AccessToken: "old", RefreshToken: "r-old", TokenType: "bearer", ExpiresAt: 1, RefreshExpiresAt: 99}
	for _, tc := range []struct {
		name string
		tok  abi.Token
		prev sealedgrant.Grant
		want sealedgrant.Grant
	}{
		{"new, never expires", abi.Token{AccessToken: "a", TokenType: "bearer"}, sealedgrant.Grant{},
			sealedgrant.Grant{AccessToken: "a", TokenType: "bearer"}},
		{"new, expiring", abi.Token{AccessToken: "a", RefreshToken: "r", ExpiresIn: 60, RefreshExpiresIn: 120}, sealedgrant.Grant{},
			sealedgrant.Grant{AccessToken: "a", RefreshToken: "r", ExpiresAt: now.Unix() + 60, RefreshExpiresAt: now.Unix() + 120}},
		{"refresh that rotates", abi.Token{AccessToken: "b", RefreshToken: "r-new", ExpiresIn: 60}, prev,
			sealedgrant.Grant{AccessToken: "b", RefreshToken: "r-new", TokenType: "bearer", ExpiresAt: now.Unix() + 60, RefreshExpiresAt: 99}},
		{"refresh that does not rotate", abi.Token{AccessToken: "b"}, prev,
			sealedgrant.Grant{AccessToken: "b", RefreshToken: "r-old", TokenType: "bearer", RefreshExpiresAt: 99}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sealedgrant.From(&tc.tok, now, tc.prev); got != tc.want {
				t.Errorf("From = %+v, want %+v", got, tc.want)
			}
		})
	}
	if e := (sealedgrant.Grant{}).Expiry(); !e.IsZero() {
		t.Errorf("a grant without ExpiresAt expires at %v", e)
	}
}

func TestSealBindsTheRow(t *testing.T) {
	keys, err := seal.NewKeyring(seal.Key{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	g := sealedgrant.Grant{AccessToken: "gho_secret", RefreshToken: "ghr_secret", ExpiresAt: 5}
	env, err := sealedgrant.Seal(keys, g, data.IdentityAAD("github", "1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(env, []byte("gho_secret")) {
		t.Fatal("the envelope holds the token in clear")
	}
	if got, err := sealedgrant.Open(keys, env, data.IdentityAAD("github", "1")); err != nil || got != g {
		t.Fatalf("Open = %+v, %v", got, err)
	}
	if _, err := sealedgrant.Open(keys, env, data.IdentityAAD("github", "2")); err == nil {
		t.Fatal("an envelope moved to another row opened")
	}
	if _, err := sealedgrant.Open(keys, env, data.ConnectionAAD("1", "github")); err == nil {
		t.Fatal("an identity's envelope opened as a connection's")
	}
}

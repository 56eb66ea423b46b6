package data_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/seal"
)

// TestResealIdentityGrants rotates keys over a store holding identities
// with and without a login grant, beside a connection: every grant ends up
// under the newest key, still bound to its identity, and the identities
// without one are left alone.
func TestResealIdentityGrants(t *testing.T) {
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
	must(s.CreateUser(ctx, data.User{ID: "u2"}))
	tok, err := old.Seal([]byte("gho_conn"), data.ConnectionAAD("u1", "github"))
	must(err)
	must(s.CreateConnection(ctx, data.Connection{UserID: "u1", Provider: "github", Sealed: tok, Status: data.ConnectionActive}))
	grants := map[[2]string]string{{"github", "101"}: "github grant", {"gitlab", "7"}: "gitlab grant"}
	expires := time.Date(2031, 3, 14, 16, 0, 0, 0, time.UTC)
	for k, p := range grants {
		g, err := old.Seal([]byte(p), data.IdentityAAD(k[0], k[1]))
		must(err)
		must(s.CreateIdentity(ctx, data.Identity{Provider: k[0], Subject: k[1], UserID: "u1", Grant: g, GrantExpiresAt: expires}))
	}
	must(s.CreateIdentity(ctx, data.Identity{Provider: "google", Subject: "g-1", UserID: "u2"})) // no grant kept
	before, err := s.GetIdentity(ctx, "google", "g-1")
	must(err)

	secret, err := seal.GenerateKey()
	must(err)
	newKey := seal.Key{ID: "k2", Secret: secret}
	both, err := seal.NewKeyring(keys[0], newKey)
	must(err)
	st, err := data.Reseal(ctx, s, both)
	must(err)
	if want := (data.ResealStats{Total: 3, Resealed: 3}); st != want {
		t.Fatalf("Reseal: %+v, want %+v (a connection and two grants)", st, want)
	}
	onlyNew, err := seal.NewKeyring(newKey)
	must(err)
	for k, p := range grants {
		id, err := s.GetIdentity(ctx, k[0], k[1])
		must(err)
		if pt, err := onlyNew.Open(id.Grant, data.IdentityAAD(k[0], k[1])); err != nil || string(pt) != p {
			t.Errorf("grant of %s/%s after Reseal opens with the new key alone to %q, %v", k[0], k[1], pt, err)
		}
		if !id.GrantExpiresAt.Equal(expires) || id.UserID != "u1" {
			t.Errorf("Reseal changed more than the grant of %s/%s: %+v", k[0], k[1], id)
		}
	}
	if after, err := s.GetIdentity(ctx, "google", "g-1"); err != nil || after.Grant != nil || !after.CreatedAt.Equal(before.CreatedAt) {
		t.Errorf("an identity without a grant after Reseal: %+v, %v", after, err)
	}

	st, err = data.Reseal(ctx, s, both)
	must(err)
	if want := (data.ResealStats{Total: 3, Current: 3}); st != want {
		t.Fatalf("second Reseal: %+v, want %+v", st, want)
	}
}

// TestResealStopsAtGrantThatDoesNotOpen: a grant copied onto another
// identity's row (its AAD names the first) stops the rotation with an
// error naming the identity, and is left as it was.
func TestResealStopsAtGrantThatDoesNotOpen(t *testing.T) {
	ctx := context.Background()
	old, keys := keyring(t, "k1")
	s := openStore(t)
	if err := s.CreateUser(ctx, data.User{ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	g, err := old.Seal([]byte("grant of 101"), data.IdentityAAD("github", "101"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateIdentity(ctx, data.Identity{Provider: "github", Subject: "202", UserID: "u1", Grant: g}); err != nil {
		t.Fatal(err)
	}
	secret, _ := seal.GenerateKey()
	both, err := seal.NewKeyring(keys[0], seal.Key{ID: "k2", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	_, err = data.Reseal(ctx, s, both)
	if !errors.Is(err, seal.ErrTampered) || !strings.Contains(err.Error(), "github/202") {
		t.Fatalf("Reseal over a moved grant: %v, want ErrTampered naming github/202", err)
	}
	id, err := s.GetIdentity(ctx, "github", "202")
	if err != nil || !bytes.Equal(id.Grant, g) {
		t.Fatalf("the grant that failed to open was changed: %v", err)
	}
}

package etcd_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
)

// TestCopyAndBackupKeepAccessFields: a user's operator controls and
// memberships and an identity's sealed login grant survive a copy from
// bbolt to etcd and back (arbor store copy) and a bbolt backup (arbor
// backup), field for field; the grant still opens under its identity.
func TestCopyAndBackupKeepAccessFields(t *testing.T) {
	ctx := context.Background()
	kr := copyKeyring(t)
	dir := t.TempDir()
	src := openBolt(t, filepath.Join(dir, "src.db"))
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := data.User{ID: "u1", Email: "ada@example.com", CreatedAt: now, UpdatedAt: now,
		Disabled: true, DisabledAt: now, DisabledBy: "operator", DisabledReason: "left",
		Memberships: data.Memberships{Groups: []string{"github:vintner", "github:vintner/platform"}, Restricted: []string{"github:secretive"},
			CheckedAt: now.Add(-time.Minute), FailingSince: now, LastError: "github: 502"}}
	grant, err := kr.Seal([]byte(`{"access_token":"gho_x","refresh_token":"ghr_y"}`), data.IdentityAAD("github", "101"))
	if err != nil {
		t.Fatal(err)
	}
	id := data.Identity{Provider: "github", Subject: "101", UserID: "u1", Login: "ada", CreatedAt: now, Grant: grant, GrantExpiresAt: now.Add(8 * time.Hour)}
	if err := src.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := src.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}

	check := func(where string, s data.Store) {
		t.Helper()
		gotU, err := s.GetUser(ctx, "u1")
		if err != nil || !reflect.DeepEqual(gotU, u) {
			t.Errorf("%s: user\n got %+v, %v\nwant %+v", where, gotU, err, u)
		}
		gotI, err := s.GetIdentity(ctx, "github", "101")
		if err != nil || !reflect.DeepEqual(gotI, id) {
			t.Errorf("%s: identity\n got %+v, %v\nwant %+v", where, gotI, err, id)
			return
		}
		if _, err := kr.Open(gotI.Grant, data.IdentityAAD("github", "101")); err != nil {
			t.Errorf("%s: the copied grant does not open: %v", where, err)
		}
	}

	mid := newStore(t, nil)
	if rep, err := data.Copy(ctx, src, mid, data.CopyOptions{}); err != nil {
		t.Fatalf("bbolt -> etcd: %v (report %+v)", err, rep)
	}
	check("etcd copy", mid)
	back := openBolt(t, filepath.Join(dir, "back.db"))
	if rep, err := data.Copy(ctx, mid, back, data.CopyOptions{}); err != nil {
		t.Fatalf("etcd -> bbolt: %v (report %+v)", err, rep)
	}
	check("bbolt copy of the etcd copy", back)

	f, err := os.OpenFile(filepath.Join(dir, "backup.db"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := back.Backup(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	check("bbolt backup", openBolt(t, f.Name()))
}

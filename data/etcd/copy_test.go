package etcd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/data/seal"
)

// data.Copy is tested here because this package's tests can import both
// backends and already run an embedded etcd.

func copyKeyring(t *testing.T) *seal.Keyring {
	t.Helper()
	secret, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.NewKeyring(seal.Key{ID: "k1", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func openBolt(t *testing.T, path string) *boltdb.Store {
	t.Helper()
	s, err := boltdb.Open(path, boltdb.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// copySeed is what fillForCopy wrote that the test checks afterwards.
type copySeed struct {
	sealed  []byte // u1's github connection
	token   string // its plaintext
	session string // a session id (a secret: must not appear in reports)
	blobs   []data.Blob
	// sealedBlobs maps the keys of sealed blobs to their plaintext.
	sealedBlobs map[string]string
}

// Blob keys fillForCopy writes, as certmagic would.
const (
	copyAccountKey = "acme/acme-v02.api.letsencrypt.org-directory/users/ops@example.com/ops.key"
	copySiteKey    = "certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.key"
	copySiteCert   = "certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.crt"
)

// fillForCopy writes records of every kind into s: three users, and for
// them identities, sessions (one expired), refresh families, workers,
// connections (one sealed, updated to Version 3), audit events, an OAuth
// state and device codes (one consumed).
func fillForCopy(t *testing.T, s data.Store, kr *seal.Keyring) copySeed {
	t.Helper()
	ctx := context.Background()
	ok := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A zone other than UTC: the stores normalise, the copy must match.
	zone := time.FixedZone("CEST", 2*3600)
	now := time.Now().In(zone).Truncate(time.Microsecond)
	for i, id := range []string{"u1", "u2", "u3"} {
		ok(s.CreateUser(ctx, data.User{ID: id, Email: id + "@example.com", Name: "User " + id, Login: id,
			CreatedAt: now.Add(-time.Duration(i) * time.Hour), UpdatedAt: now}))
	}
	ok(s.CreateIdentity(ctx, data.Identity{Provider: "github", Subject: "101", UserID: "u1", Login: "ada", Email: "u1@example.com", EmailVerified: true, CreatedAt: now, LastLoginAt: now}))
	ok(s.CreateIdentity(ctx, data.Identity{Provider: "google", Subject: "g-1", UserID: "u1", CreatedAt: now}))
	ok(s.CreateIdentity(ctx, data.Identity{Provider: "gitlab", Subject: "7", UserID: "u2", CreatedAt: now}))

	ok(s.CreateSession(ctx, data.Session{ID: "sess-secret-1", UserID: "u1", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(24 * time.Hour), UserAgent: "Firefox", IP: "192.0.2.1"}))
	ok(s.CreateSession(ctx, data.Session{ID: "sess-secret-2", UserID: "u1", CreatedAt: now.Add(time.Second), LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}))
	ok(s.CreateSession(ctx, data.Session{ID: "sess-secret-3", UserID: "u2", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}))
	ok(s.CreateSession(ctx, data.Session{ID: "sess-expired", UserID: "u2", CreatedAt: now.Add(-2 * time.Hour), LastSeenAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}))

	ok(s.CreateRefreshFamily(ctx, data.RefreshFamily{ID: "fam-1", UserID: "u1", ClientID: "grape", ClientInfo: map[string]string{"host": "laptop", "os": "linux"},
		CurrentJTI: "j2", PreviousJTI: "j1", RotatedAt: now, Generation: 2, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour)}))
	ok(s.CreateRefreshFamily(ctx, data.RefreshFamily{ID: "fam-2", UserID: "u3", CurrentJTI: "j9", RevokedAt: now, RevokeReason: "reuse", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))

	ok(s.CreateWorker(ctx, data.Worker{ID: "w1", UserID: "u1", Name: "builder", TokenHash: bytes.Repeat([]byte{0xab}, 32), CreatedAt: now, LastAddr: "198.51.100.7"}))
	ok(s.CreateWorker(ctx, data.Worker{ID: "w2", UserID: "u3", Name: "ci", TokenHash: bytes.Repeat([]byte{0x01}, 32), CreatedAt: now, RotatedAt: now}))

	token := "gho_not-a-real-token"
	sealed, err := kr.Seal([]byte(token), data.ConnectionAAD("u1", "github"))
	ok(err)
	ok(s.CreateConnection(ctx, data.Connection{UserID: "u1", Provider: "github", AccountID: "101", AccountLogin: "ada", Scopes: []string{"repo", "read:user"},
		Sealed: []byte("placeholder"), Status: data.ConnectionActive, CreatedAt: now, UpdatedAt: now}))
	for _, env := range [][]byte{[]byte("placeholder-2"), sealed} { // Version 1 -> 3
		_, err := s.UpdateConnection(ctx, "u1", "github", func(c data.Connection) (data.Connection, error) {
			c.Sealed, c.LastRefreshAt, c.TokenExpiresAt = env, now, now.Add(8*time.Hour)
			return c, nil
		})
		ok(err)
	}
	other, err := kr.Seal([]byte("glpat-other"), data.ConnectionAAD("u2", "gitlab"))
	ok(err)
	ok(s.CreateConnection(ctx, data.Connection{UserID: "u2", Provider: "gitlab", Sealed: other, Status: data.ConnectionNeedsReconnect, StatusReason: "revoked", CreatedAt: now, UpdatedAt: now}))

	for i := range 5 {
		_, err := s.AppendAudit(ctx, data.AuditEvent{Time: now.Add(time.Duration(i) * time.Second), Action: fmt.Sprintf("action.%d", i),
			Actor: "system", UserID: []string{"u1", "", "u2", "gone-user", "u1"}[i], Target: "t", Outcome: "ok", RequestID: "r", IP: "192.0.2.9",
			Details: map[string]string{"i": fmt.Sprint(i)}})
		ok(err)
	}

	ok(s.CreateOAuthState(ctx, data.OAuthState{ID: "state-1", Provider: "github", Purpose: "connect", UserID: "u1", Binding: "b", PKCEVerifier: "v", RedirectURI: "https://arbor.example/cb", ReturnTo: "/", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}))
	ok(s.CreateDeviceCode(ctx, data.DeviceCode{Code: "dev-1", Kind: data.DeviceKindRFC8628, UserCode: "WXYZ-1234", ClientID: "grape", ClientInfo: map[string]string{"host": "h"}, Scope: "openid", State: data.DevicePending, Interval: 5, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}))
	ok(s.CreateDeviceCode(ctx, data.DeviceCode{Code: "dev-2", Kind: data.DeviceKindCLI, CodeChallenge: "c", State: data.DeviceApproved, UserID: "u2", VerificationHash: "vh", ApprovedAt: now, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}))
	_, err = s.ConsumeDeviceCode(ctx, "dev-2", func(data.DeviceCode) error { return nil })
	ok(err)

	// ACME: an account key and a site key, sealed, and a certificate.
	sealedBlobs := map[string]string{copyAccountKey: "account private key", copySiteKey: "site private key"}
	for k, p := range sealedBlobs {
		v, err := data.SealBlob(kr, k, []byte(p))
		ok(err)
		ok(s.PutBlob(ctx, k, v))
	}
	ok(s.PutBlob(ctx, copySiteCert, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")))
	var blobs []data.Blob
	infos, err := s.ListBlobs(ctx, "")
	ok(err)
	for _, i := range infos {
		b, err := s.GetBlob(ctx, i.Key)
		ok(err)
		blobs = append(blobs, b)
	}
	return copySeed{sealed: sealed, token: token, session: "sess-secret-1", blobs: blobs, sealedBlobs: sealedBlobs}
}

// wantCounts are the records fillForCopy leaves live, by kind.
var wantCounts = map[string]int{
	data.KindUsers: 3, data.KindIdentities: 3, data.KindSessions: 3, data.KindRefreshFamilies: 2,
	data.KindWorkers: 2, data.KindConnections: 2, data.KindAudit: 5, data.KindOAuthStates: 1, data.KindDeviceCodes: 2,
	data.KindBlobs: 3,
}

func checkReport(t *testing.T, rep data.CopyReport) {
	t.Helper()
	if len(rep.Mismatches) != 0 {
		t.Errorf("mismatches: %v", rep.Mismatches)
	}
	var kinds []string
	for _, k := range rep.Kinds {
		kinds = append(kinds, k.Kind)
		want := wantCounts[k.Kind]
		if k.Copied != want || k.Source != want || k.Destination != want {
			t.Errorf("%s: copied %d, source %d, destination %d; want %d each", k.Kind, k.Copied, k.Source, k.Destination, want)
		}
	}
	if len(kinds) != len(wantCounts) {
		t.Errorf("report has kinds %q, want %d kinds", kinds, len(wantCounts))
	}
}

// checkCopied checks what a plain comparison cannot: the sealed envelope
// is byte for byte the original and opens with the original keyring, the
// indexes of the destination work, and its audit sequence continues.
func checkCopied(t *testing.T, s data.Store, kr *seal.Keyring, seed copySeed) {
	t.Helper()
	ctx := context.Background()
	c, err := s.GetConnection(ctx, "u1", "github")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.Sealed, seed.sealed) {
		t.Errorf("sealed bytes changed in the copy")
	}
	if c.Version != 3 {
		t.Errorf("connection version %d, want 3 (kept from the source)", c.Version)
	}
	plain, err := kr.Open(c.Sealed, data.ConnectionAAD("u1", "github"))
	if err != nil || string(plain) != seed.token {
		t.Errorf("copied envelope opens to %q, %v; want the original token", plain, err)
	}
	if _, err := s.GetSession(ctx, seed.session); err != nil {
		t.Errorf("GetSession on the copy: %v", err)
	}
	if _, err := s.GetSession(ctx, "sess-expired"); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("expired session: %v, want ErrNotFound (not copied)", err)
	}
	if _, err := s.GetIdentity(ctx, "gitlab", "7"); err != nil {
		t.Errorf("GetIdentity on the copy: %v", err)
	}
	if d, err := s.GetDeviceCodeByUserCode(ctx, "WXYZ-1234"); err != nil || d.Code != "dev-1" {
		t.Errorf("GetDeviceCodeByUserCode on the copy: %+v, %v", d, err)
	}
	if _, err := s.ConsumeDeviceCode(ctx, "dev-2", func(data.DeviceCode) error { return nil }); !errors.Is(err, data.ErrConsumed) {
		t.Errorf("consumed device code on the copy: %v, want ErrConsumed", err)
	}
	evs, err := s.ListAudit(ctx, data.AuditQuery{UserID: "u1"})
	if err != nil || len(evs) != 2 || evs[0].Seq != 1 || evs[1].Seq != 5 {
		t.Errorf("u1's audit trail on the copy: %+v, %v; want seqs 1 and 5", evs, err)
	}
	// The blobs are there byte for byte with their Modified, and the
	// sealed ones open with the original keyring.
	for _, want := range seed.blobs {
		b, err := s.GetBlob(ctx, want.Key)
		if err != nil || !bytes.Equal(b.Value, want.Value) || !b.Modified.Equal(want.Modified) {
			t.Errorf("blob %s on the copy: %+v, %v; want %+v", want.Key, b, err, want)
		}
	}
	for k, p := range seed.sealedBlobs {
		b, err := s.GetBlob(ctx, k)
		if err != nil {
			t.Errorf("GetBlob %s on the copy: %v", k, err)
			continue
		}
		if pt, err := data.OpenBlob(kr, k, b.Value); err != nil || string(pt) != p {
			t.Errorf("sealed blob %s on the copy opens to %q, %v", k, pt, err)
		}
	}
}

func TestCopyBoltToEtcdAndBack(t *testing.T) {
	ctx := context.Background()
	kr := copyKeyring(t)
	dir := t.TempDir()
	src := openBolt(t, filepath.Join(dir, "a.db"))
	seed := fillForCopy(t, src, kr)

	mid := newStore(t, nil)
	rep, err := data.Copy(ctx, src, mid, data.CopyOptions{})
	if err != nil {
		t.Fatalf("bbolt -> etcd: %v (report %+v)", err, rep)
	}
	checkReport(t, rep)
	checkCopied(t, mid, kr, seed)

	back := openBolt(t, filepath.Join(dir, "b.db"))
	rep, err = data.Copy(ctx, mid, back, data.CopyOptions{Concurrency: 1})
	if err != nil {
		t.Fatalf("etcd -> bbolt: %v (report %+v)", err, rep)
	}
	checkReport(t, rep)
	checkCopied(t, back, kr, seed)
	if _, err := data.Verify(ctx, src, back, data.CopyOptions{}); err != nil {
		t.Errorf("the round trip changed the store: %v", err)
	}

	// Consuming a copied OAuth state works, and new audit events follow
	// the imported ones on both backends.
	for name, s := range map[string]data.Store{"etcd": mid, "bbolt": back} {
		if st, err := s.ConsumeOAuthState(ctx, "state-1"); err != nil || st.Purpose != "connect" {
			t.Errorf("%s: ConsumeOAuthState on the copy: %+v, %v", name, st, err)
		}
		ev, err := s.AppendAudit(ctx, data.AuditEvent{Action: "after.copy"})
		if err != nil || ev.Seq != 6 {
			t.Errorf("%s: AppendAudit after the copy: seq %d, %v; want 6", name, ev.Seq, err)
		}
	}
}

func TestCopyRefusesNonEmptyDestination(t *testing.T) {
	ctx := context.Background()
	src := openBolt(t, filepath.Join(t.TempDir(), "a.db"))
	fillForCopy(t, src, copyKeyring(t))
	now := time.Now()

	for _, tc := range []struct {
		name string
		fill func(s data.Store) error
	}{
		{"a user", func(s data.Store) error { return s.CreateUser(ctx, data.User{ID: "someone"}) }},
		{"an OAuth state", func(s data.Store) error {
			return s.CreateOAuthState(ctx, data.OAuthState{ID: "st", Provider: "github", Purpose: "login", CreatedAt: now, ExpiresAt: now.Add(time.Minute)})
		}},
		{"an audit event", func(s data.Store) error {
			_, err := s.AppendAudit(ctx, data.AuditEvent{Action: "x"})
			return err
		}},
		{"a blob", func(s data.Store) error { return s.PutBlob(ctx, copySiteCert, []byte("pem")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := newStore(t, nil)
			if err := tc.fill(dst); err != nil {
				t.Fatal(err)
			}
			before, err := data.Verify(ctx, dst, dst, data.CopyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = data.Copy(ctx, src, dst, data.CopyOptions{})
			if !errors.Is(err, data.ErrNotEmpty) || !strings.Contains(err.Error(), "nothing was written") {
				t.Fatalf("Copy into a non-empty store: %v, want ErrNotEmpty saying nothing was written", err)
			}
			after, err := data.Verify(ctx, dst, dst, data.CopyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(before.Kinds) != fmt.Sprint(after.Kinds) {
				t.Errorf("the refused copy wrote: counts before %v, after %v", before.Kinds, after.Kinds)
			}
		})
	}
}

func TestCopyVerifierFindsCorruption(t *testing.T) {
	ctx := context.Background()
	kr := copyKeyring(t)
	src := openBolt(t, filepath.Join(t.TempDir(), "a.db"))
	seed := fillForCopy(t, src, kr)
	dst := newStore(t, nil)
	if _, err := data.Copy(ctx, src, dst, data.CopyOptions{}); err != nil {
		t.Fatal(err)
	}

	// Change the destination after the copy: one changed field, one
	// sealed byte, one record gone, one extra.
	must(t, func() error {
		_, err := dst.UpdateUser(ctx, "u2", func(u data.User) (data.User, error) { u.Email = "mallory@example.com"; return u, nil })
		return err
	}())
	must(t, func() error {
		_, err := dst.UpdateConnection(ctx, "u1", "github", func(c data.Connection) (data.Connection, error) {
			c.Sealed = bytes.Clone(c.Sealed)
			c.Sealed[len(c.Sealed)-1] ^= 1
			return c, nil
		})
		return err
	}())
	must(t, dst.DeleteSession(ctx, seed.session))
	must(t, dst.CreateWorker(ctx, data.Worker{ID: "w-extra", UserID: "u1", Name: "intruder", CreatedAt: time.Now()}))
	// A sealed blob's last byte flipped, in place (Modified moves too); one
	// blob gone, one extra.
	must(t, func() error {
		_, err := dst.UpdateBlob(ctx, copySiteKey, func(b data.Blob) ([]byte, error) {
			v := bytes.Clone(b.Value)
			v[len(v)-1] ^= 1
			return v, nil
		})
		return err
	}())
	must(t, dst.DeleteBlob(ctx, copySiteCert))
	must(t, dst.PutBlob(ctx, "certificates/x/evil.example.crt", []byte("pem")))

	rep, err := data.Verify(ctx, src, dst, data.CopyOptions{})
	if !errors.Is(err, data.ErrMismatch) {
		t.Fatalf("Verify of a changed copy: %v, want ErrMismatch", err)
	}
	var got []string
	for _, m := range rep.Mismatches {
		got = append(got, m.String())
	}
	slices.Sort(got)
	want := []string{
		"connections u1/github: fields differ: Sealed, Version",
		"sessions " + fingerprintOf(t, rep, seed.session) + ": missing from the destination",
		"users u2: fields differ: Email",
		"workers w-extra: only in the destination",
		"blobs " + copySiteKey + ": fields differ: Value, Modified",
		"blobs " + copySiteCert + ": missing from the destination",
		"blobs certificates/x/evil.example.crt: only in the destination",
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("mismatches:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if strings.Contains(err.Error()+fmt.Sprint(rep), seed.session) {
		t.Errorf("the report names a session id, a secret: %v", err)
	}
	for _, k := range rep.Kinds {
		if k.Kind == data.KindSessions && (k.Source != 3 || k.Destination != 2) {
			t.Errorf("session counts %+v, want source 3, destination 2", k)
		}
	}
}

// fingerprintOf finds the session mismatch's key and checks that it is a
// fingerprint, not the id.
func fingerprintOf(t *testing.T, rep data.CopyReport, id string) string {
	t.Helper()
	for _, m := range rep.Mismatches {
		if m.Kind == data.KindSessions {
			if !strings.HasPrefix(m.Key, "sha256:") || m.Key == id {
				t.Errorf("session key shown as %q, want a sha256: fingerprint", m.Key)
			}
			return m.Key
		}
	}
	return "(no session mismatch)"
}

// TestCopyManyAuditEvents copies more audit events than one page of the
// copier and one transaction of the etcd importer hold, with gaps in Seq.
func TestCopyManyAuditEvents(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := openBolt(t, filepath.Join(dir, "a.db"))
	must(t, src.CreateUser(ctx, data.User{ID: "u1"}))
	var events []data.AuditEvent
	start := time.Now().UTC()
	for i := range 1234 {
		events = append(events, data.AuditEvent{Seq: uint64(2*i + 1), Time: start.Add(time.Duration(i) * time.Millisecond),
			Action: "a", UserID: []string{"", "u1"}[i%2]})
	}
	must(t, src.ImportAudit(ctx, events))
	last := events[len(events)-1].Seq

	mid := newStore(t, nil)
	back := openBolt(t, filepath.Join(dir, "b.db"))
	for _, hop := range []struct{ from, to data.Store }{{src, mid}, {mid, back}} {
		rep, err := data.Copy(ctx, hop.from, hop.to, data.CopyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range rep.Kinds {
			if k.Kind == data.KindAudit && (k.Copied != len(events) || k.Destination != len(events)) {
				t.Errorf("audit counts %+v, want %d", k, len(events))
			}
		}
		if err := hop.to.(data.Importer).ImportAudit(ctx, events[600:601]); !errors.Is(err, data.ErrAlreadyExists) {
			t.Errorf("importing a stored seq again: %v, want ErrAlreadyExists", err)
		}
		mine, err := hop.to.ListAudit(ctx, data.AuditQuery{UserID: "u1", Limit: 5000})
		if err != nil || len(mine) != len(events)/2 {
			t.Errorf("u1's events on the copy: %d, %v; want %d", len(mine), err, len(events)/2)
		}
	}
	for name, s := range map[string]data.Store{"etcd": mid, "bbolt": back} {
		ev, err := s.AppendAudit(ctx, data.AuditEvent{Action: "next"})
		if err != nil || ev.Seq != last+1 {
			t.Errorf("%s: AppendAudit after the copy: seq %d, %v; want %d", name, ev.Seq, err, last+1)
		}
	}
}

// ImportBlob keeps Modified, refuses a blob without one, and refuses a key
// that holds a value.
func TestImportBlob(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	when := time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	must(t, s.ImportBlob(ctx, data.Blob{Key: "k", Value: []byte("v"), Modified: when}))
	b, err := s.GetBlob(ctx, "k")
	if err != nil || !b.Modified.Equal(when) || b.Modified.Location() != time.UTC || string(b.Value) != "v" {
		t.Fatalf("imported blob reads %+v, %v; want Modified %v in UTC", b, err, when)
	}
	if err := s.ImportBlob(ctx, data.Blob{Key: "k", Value: []byte("w"), Modified: when}); !errors.Is(err, data.ErrAlreadyExists) {
		t.Errorf("ImportBlob over a stored key: %v, want ErrAlreadyExists", err)
	}
	for name, b := range map[string]data.Blob{
		"no Modified": {Key: "k2", Value: []byte("v")},
		"bad key":     {Key: "a/../b", Modified: when},
		"too large":   {Key: "k3", Value: make([]byte, data.MaxBlobSize+1), Modified: when},
	} {
		if err := s.ImportBlob(ctx, b); !errors.Is(err, data.ErrInvalid) {
			t.Errorf("ImportBlob with %s: %v, want ErrInvalid", name, err)
		}
	}
}

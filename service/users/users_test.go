package users_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/service/users"
)

// fixture is a bbolt store with one user who holds two browser sessions,
// two CLI logins (one revoked before), a worker, a connection and a
// GitHub identity with a kept grant, and a second user who holds a
// session of their own.
type fixture struct {
	store data.Store
	svc   *users.Service
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "arbor.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx, now := context.Background(), time.Now().UTC().Truncate(time.Second)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []data.User{
		{ID: "usr_octo", Login: "octocat", Email: "octocat@example.com", CreatedAt: now, UpdatedAt: now,
			Memberships: data.Memberships{Groups: []string{"github:vintner", "github:vintner/platform"}, CheckedAt: now}},
		{ID: "usr_hubot", Login: "hubot", Email: "hubot@example.com", CreatedAt: now, UpdatedAt: now},
	} {
		must(st.CreateUser(ctx, u))
	}
	must(st.CreateIdentity(ctx, data.Identity{Provider: "github", Subject: "1", UserID: "usr_octo", Login: "octocat",
		Email: "octo@work.example", EmailVerified: true, CreatedAt: now, LastLoginAt: now, Grant: []byte("sealed-grant"), GrantExpiresAt: now.Add(time.Hour)}))
	must(st.CreateIdentity(ctx, data.Identity{Provider: "gitlab", Subject: "9", UserID: "usr_octo", Email: "unverified@example.org", CreatedAt: now, LastLoginAt: now.Add(-time.Hour)}))
	for _, s := range []data.Session{
		{ID: "s1", UserID: "usr_octo", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), IP: "127.0.0.1"},
		{ID: "s2", UserID: "usr_octo", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)},
		{ID: "s3", UserID: "usr_hubot", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)},
	} {
		must(st.CreateSession(ctx, s))
	}
	must(st.CreateRefreshFamily(ctx, data.RefreshFamily{ID: "f1", UserID: "usr_octo", CurrentJTI: "j1", CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		ClientInfo: map[string]string{"hostname": "laptop"}}))
	must(st.CreateRefreshFamily(ctx, data.RefreshFamily{ID: "f0", UserID: "usr_octo", CurrentJTI: "j0", CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		RevokedAt: now.Add(-time.Minute), RevokeReason: "logout"}))
	must(st.CreateWorker(ctx, data.Worker{ID: "w1", UserID: "usr_octo", Name: "builder", TokenHash: []byte("0123456789abcdef0123456789abcdef"), CreatedAt: now}))
	must(st.CreateConnection(ctx, data.Connection{UserID: "usr_octo", Provider: "github", AccountLogin: "octocat", Sealed: []byte("sealed-token"),
		Status: data.ConnectionActive, CreatedAt: now, UpdatedAt: now}))
	return &fixture{store: st, svc: users.New(users.Options{Store: st, Now: func() time.Time { return now }}), now: now}
}

func (f *fixture) events(t *testing.T, userID string) []data.AuditEvent {
	t.Helper()
	evs, err := f.store.ListAudit(context.Background(), data.AuditQuery{UserID: userID})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestDisableEndsSessionsAndCLILogins(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var mu sync.Mutex
	signalled := map[string]bool{}
	stop := f.store.WatchSessions(func(id string) { mu.Lock(); signalled[id] = true; mu.Unlock() })
	defer stop()

	ch, err := f.svc.Disable(ctx, "operator:uid=1000", "usr_octo", "left the company")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Already || ch.Ended != (users.Ended{Sessions: 2, Logins: 1, Workers: 1}) {
		t.Errorf("change = already %v, ended %+v; want 2 sessions, 1 login (f0 was revoked before), 1 worker", ch.Already, ch.Ended)
	}
	u, err := f.store.GetUser(ctx, "usr_octo")
	if err != nil {
		t.Fatal(err)
	}
	if !u.Disabled || !u.DisabledAt.Equal(f.now) || u.DisabledBy != "operator:uid=1000" || u.DisabledReason != "left the company" {
		t.Errorf("user after disable: %+v", u)
	}
	for _, id := range []string{"s1", "s2"} {
		if _, err := f.store.GetSession(ctx, id); !errors.Is(err, data.ErrNotFound) {
			t.Errorf("session %s after disable: %v, want ErrNotFound", id, err)
		}
		mu.Lock()
		if !signalled[id] {
			t.Errorf("WatchSessions was not told of %s: other replicas' caches would keep it", id)
		}
		mu.Unlock()
	}
	if _, err := f.store.GetSession(ctx, "s3"); err != nil {
		t.Errorf("another user's session: %v", err)
	}
	fam, err := f.store.GetRefreshFamily(ctx, "f1")
	if err != nil || fam.RevokedAt.IsZero() || fam.RevokeReason != users.ReasonDisabled {
		t.Errorf("CLI login after disable: %+v, %v; want revoked, reason naming the disable", fam, err)
	}
	if old, _ := f.store.GetRefreshFamily(ctx, "f0"); old.RevokeReason != "logout" {
		t.Errorf("a login revoked before got reason %q; want its own kept", old.RevokeReason)
	}
	if _, err := f.store.GetWorker(ctx, "w1"); err != nil {
		t.Errorf("the worker record: %v; want it kept (the chain refuses it)", err)
	}
	evs := f.events(t, "usr_octo")
	if len(evs) != 1 || evs[0].Action != users.ActionDisabled || evs[0].Actor != "operator:uid=1000" ||
		evs[0].Details["reason"] != "left the company" || evs[0].Details["sessions"] != "2" || evs[0].Details["cli_logins"] != "1" {
		t.Fatalf("audit after disable: %+v", evs)
	}
	if ch.Event.Seq != evs[0].Seq {
		t.Errorf("Change.Event.Seq = %d, stored %d", ch.Event.Seq, evs[0].Seq)
	}

	// Twice: already disabled, nothing more recorded, the first reason kept.
	ch, err = f.svc.Disable(ctx, "operator", "usr_octo", "again")
	if err != nil || !ch.Already || ch.Ended.Sessions != 0 || ch.Ended.Logins != 0 {
		t.Errorf("second disable: %+v, %v; want Already and nothing ended", ch, err)
	}
	if u, _ := f.store.GetUser(ctx, "usr_octo"); u.DisabledReason != "left the company" || u.DisabledBy != "operator:uid=1000" {
		t.Errorf("second disable changed the record: %+v", u)
	}
	if n := len(f.events(t, "usr_octo")); n != 1 {
		t.Errorf("second disable appended an event: %d events", n)
	}

	// Enable: the user may come back; what was ended stays ended.
	ch, err = f.svc.Enable(ctx, "operator", "usr_octo")
	if err != nil || ch.Already || ch.User.Disabled || ch.User.DisabledReason != "" || !ch.User.DisabledAt.IsZero() {
		t.Fatalf("enable: %+v, %v", ch, err)
	}
	if ch, err := f.svc.Enable(ctx, "operator", "usr_octo"); err != nil || !ch.Already {
		t.Errorf("second enable: %+v, %v; want Already", ch, err)
	}
	evs = f.events(t, "usr_octo")
	if len(evs) != 2 || evs[1].Action != users.ActionEnabled || evs[1].Details["disabled_by"] != "operator:uid=1000" {
		t.Errorf("audit after enable: %+v", evs)
	}
	if fam, _ := f.store.GetRefreshFamily(ctx, "f1"); fam.RevokedAt.IsZero() {
		t.Error("enable brought a revoked CLI login back")
	}
}

func TestUnknownUserAndBadReason(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"disable": func() error { _, err := f.svc.Disable(ctx, "operator", "usr_nobody", ""); return err },
		"enable":  func() error { _, err := f.svc.Enable(ctx, "operator", "usr_nobody"); return err },
		"delete":  func() error { _, err := f.svc.Delete(ctx, "operator", "usr_nobody"); return err },
		"revoke":  func() error { _, err := f.svc.RevokeSessions(ctx, "operator", "usr_nobody"); return err },
		"show":    func() error { _, err := f.svc.Show(ctx, "usr_nobody"); return err },
		"email":   func() error { _, err := f.svc.Show(ctx, "nobody@example.com"); return err },
		"empty":   func() error { _, err := f.svc.Disable(ctx, "operator", "", ""); return err },
	} {
		err := call()
		if !errors.Is(err, users.ErrNoUser) || !strings.Contains(err.Error(), "`arbor users list` shows them") {
			t.Errorf("%s of an unknown user: %v; want ErrNoUser saying where to look", name, err)
		}
	}
	for _, reason := range []string{strings.Repeat("x", users.MaxReason+1), "line\nbreak"} {
		if _, err := f.svc.Disable(ctx, "operator", "usr_octo", reason); !errors.Is(err, users.ErrBadReason) {
			t.Errorf("reason %.20q: %v, want ErrBadReason", reason, err)
		}
	}
	if u, _ := f.store.GetUser(ctx, "usr_octo"); u.Disabled {
		t.Error("a refused disable disabled the user")
	}
	if n := len(f.events(t, "")); n != 0 {
		t.Errorf("refused calls appended %d audit events", n)
	}
}

func TestRevokeSessions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ch, err := f.svc.RevokeSessions(ctx, "operator", "usr_octo")
	if err != nil || ch.Already || ch.Ended.Sessions != 2 || ch.Ended.Logins != 1 {
		t.Fatalf("revoke: %+v, %v", ch, err)
	}
	if ss, _ := f.store.ListSessions(ctx, "usr_octo"); len(ss) != 0 {
		t.Errorf("sessions left: %d", len(ss))
	}
	if u, _ := f.store.GetUser(ctx, "usr_octo"); u.Disabled {
		t.Error("revoking sessions disabled the user")
	}
	evs := f.events(t, "usr_octo")
	if len(evs) != 1 || evs[0].Action != users.ActionSessionsRevoked || evs[0].Details["sessions"] != "2" {
		t.Errorf("audit: %+v", evs)
	}
	if ch, err := f.svc.RevokeSessions(ctx, "operator", "usr_octo"); err != nil || !ch.Already {
		t.Errorf("second revoke: %+v, %v; want Already", ch, err)
	}
	if n := len(f.events(t, "usr_octo")); n != 1 {
		t.Errorf("a revoke that ended nothing appended an event (%d)", n)
	}
}

func TestDeleteCascades(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ch, err := f.svc.Delete(ctx, "operator", "usr_octo")
	if err != nil || ch.Already || ch.Ended != (users.Ended{Sessions: 2, Logins: 1, Workers: 1}) {
		t.Fatalf("delete: %+v, %v", ch, err)
	}
	if _, err := f.store.GetUser(ctx, "usr_octo"); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("user after delete: %v", err)
	}
	if _, err := f.store.GetIdentity(ctx, "github", "1"); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("identity after delete: %v", err)
	}
	if _, err := f.store.GetSession(ctx, "s1"); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("session after delete: %v", err)
	}
	if _, err := f.store.GetWorker(ctx, "w1"); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("worker after delete: %v", err)
	}
	if _, err := f.store.GetConnection(ctx, "usr_octo", "github"); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("connection after delete: %v", err)
	}
	if _, err := f.store.GetSession(ctx, "s3"); err != nil {
		t.Errorf("the other user's session: %v", err)
	}
	evs := f.events(t, "usr_octo")
	if len(evs) != 1 || evs[0].Action != users.ActionDeleted || evs[0].Details["login"] != "octocat" || evs[0].Details["email"] != "octocat@example.com" {
		t.Errorf("audit: %+v", evs)
	}
}

func TestListAndShow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	list, err := f.svc.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	hubot, octo := list[0], list[1]
	if octo.ID != "usr_octo" || strings.Join(octo.Providers, ",") != "github,gitlab" || octo.Groups != 2 || !octo.LastSignIn.Equal(f.now) {
		t.Errorf("octocat's summary: %+v", octo)
	}
	if hubot.ID != "usr_hubot" || len(hubot.Providers) != 0 || !hubot.LastSignIn.IsZero() {
		t.Errorf("hubot's summary: %+v", hubot)
	}

	for _, name := range []string{"usr_octo", "octocat@example.com", "OCTO@work.example"} {
		d, err := f.svc.Show(ctx, name)
		if err != nil {
			t.Fatalf("show %s: %v", name, err)
		}
		if d.User.ID != "usr_octo" || len(d.Identities) != 2 || len(d.Sessions) != 2 || len(d.Logins) != 2 || len(d.Workers) != 1 || len(d.Connections) != 1 {
			t.Errorf("show %s: %+v", name, d)
		}
		if !d.Identities[0].Grant || d.Identities[0].Provider != "github" || d.Logins[0].Host != "laptop" && d.Logins[1].Host != "laptop" {
			t.Errorf("show %s: identities %+v, logins %+v", name, d.Identities, d.Logins)
		}
	}
	// An unverified identity address does not name the user.
	if _, err := f.svc.Show(ctx, "unverified@example.org"); !errors.Is(err, users.ErrNoUser) {
		t.Errorf("show by an unverified address: %v", err)
	}
	// Two users with one address: ambiguous, with both ids.
	if _, err := f.store.UpdateUser(ctx, "usr_hubot", func(u data.User) (data.User, error) { u.Email = "octocat@example.com"; return u, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Show(ctx, "octocat@example.com"); !errors.Is(err, users.ErrAmbiguous) || !strings.Contains(err.Error(), "usr_hubot, usr_octo") {
		t.Errorf("show by a shared address: %v", err)
	}
}

// With Options.EndAccess (the server passes service/membership's), Disable
// and RevokeSessions hand the ending over and report what was there.
func TestEndAccessHook(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var calls []string
	svc := users.New(users.Options{Store: f.store, EndAccess: func(ctx context.Context, userID, actor, reason string) error {
		calls = append(calls, userID+" "+actor+" "+reason)
		if userID != "usr_octo" {
			return nil
		}
		return f.store.DeleteSession(ctx, "s1")
	}})
	ch, err := svc.Disable(ctx, "operator", "usr_octo", "")
	if err != nil || ch.Ended != (users.Ended{Sessions: 2, Logins: 1, Workers: 1}) {
		t.Fatalf("disable: %+v, %v", ch, err)
	}
	if _, err := f.store.GetSession(ctx, "s2"); err != nil {
		t.Errorf("the built-in EndAccess ran besides the hook: %v", err)
	}
	if _, err := svc.RevokeSessions(ctx, "operator", "usr_hubot"); err != nil {
		t.Fatal(err)
	}
	want := []string{"usr_octo operator " + users.ReasonDisabled, "usr_hubot operator " + users.ReasonRevoked}
	if !slices.Equal(calls, want) {
		t.Errorf("hook calls %q, want %q", calls, want)
	}
	failing := users.New(users.Options{Store: f.store, EndAccess: func(context.Context, string, string, string) error {
		return data.ErrUnavailable
	}})
	if _, err := failing.RevokeSessions(ctx, "operator", "usr_octo"); !errors.Is(err, data.ErrUnavailable) || !strings.Contains(err.Error(), "run the command again") {
		t.Errorf("a failing hook: %v", err)
	}
}

// A disable whose ending fails still stands and is recorded, and says to
// run it again.
func TestDisableWhenEndingFails(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	svc := users.New(users.Options{Store: f.store, EndAccess: func(context.Context, string, string, string) error {
		return data.ErrUnavailable
	}})
	_, err := svc.Disable(ctx, "operator", "usr_octo", "")
	if !errors.Is(err, data.ErrUnavailable) || !strings.Contains(err.Error(), "run `arbor users disable usr_octo` again") {
		t.Fatalf("disable: %v", err)
	}
	if u, _ := f.store.GetUser(ctx, "usr_octo"); !u.Disabled {
		t.Error("the user is not disabled")
	}
	evs := f.events(t, "usr_octo")
	if len(evs) != 1 || evs[0].Action != users.ActionDisabled || evs[0].Details["error"] == "" {
		t.Errorf("audit: %+v", evs)
	}
}

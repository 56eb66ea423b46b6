package membership_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/service/membership"
)

var teamRule = rule{emails: []string{"boss@example.com"}, groups: []string{"github:vintner/platform"}}

// A cached Member is served without allocating, and is the same Member
// every time until the user changes.
func TestMemberCacheHitAllocatesNothing(t *testing.T) {
	e := newEnv(t, membership.Options{Judge: teamRule}, nil)
	e.user("u1", "boss@example.com", data.Memberships{Groups: []string{"github:vintner"}})
	ctx := context.Background()
	first := e.member("u1")
	if !first.Verdict.Admitted() || first.VisibleHeader != "github:vintner" || !first.HasEmail("boss@example.com") {
		t.Fatalf("member: %+v", first)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		m, err := e.svc.Member(ctx, "u1")
		if err != nil || m != first {
			t.Fatalf("cache hit: %p %v, want %p", m, err, first)
		}
	})
	if allocs != 0 {
		t.Fatalf("a cache hit allocates %v times", allocs)
	}
}

// A write to the user, by anyone (here the store directly, as another
// replica or an operator's command would), drops the cached Member at
// once through WatchUsers.
func TestMemberFollowsTheStore(t *testing.T) {
	e := newEnv(t, membership.Options{Judge: teamRule}, nil)
	e.user("u1", "", data.Memberships{Groups: []string{"github:vintner/platform"}})
	ctx := context.Background()
	if m := e.member("u1"); !m.Verdict.Admitted() {
		t.Fatalf("in the team: %+v", m.Verdict)
	}
	for _, step := range []struct {
		name string
		edit func(*data.User)
		want string
	}{
		{"removed from the team", func(u *data.User) { u.Memberships.Groups = []string{"github:vintner"} }, membership.CodeNotAllowed},
		{"back in the team", func(u *data.User) { u.Memberships.Groups = []string{"github:vintner/platform"} }, ""},
		{"disabled", func(u *data.User) { u.Disabled = true }, membership.CodeAccountDisabled},
		{"enabled", func(u *data.User) { u.Disabled = false }, ""},
	} {
		if _, err := e.store.UpdateUser(ctx, "u1", func(u data.User) (data.User, error) { step.edit(&u); return u, nil }); err != nil {
			t.Fatal(err)
		}
		if got := e.member("u1").Verdict.Code; got != step.want {
			t.Fatalf("%s: verdict %q, want %q", step.name, got, step.want)
		}
	}
	// Deleted: unknown, and refused by the chain.
	if err := e.store.DeleteUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Member(ctx, "u1"); !errors.Is(err, membership.ErrUnknownUser) || !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("deleted user: %v", err)
	}
}

// A read that began before a write and ends after it is not cached: the
// next lookup sees the write (the generation guard).
func TestMemberStaleReadIsNotCached(t *testing.T) {
	e := newEnv(t, membership.Options{Judge: teamRule}, nil)
	e.user("u1", "", data.Memberships{Groups: []string{"github:vintner/platform"}})
	ctx := context.Background()
	remove := func() {
		if _, err := e.store.UpdateUser(ctx, "u1", func(u data.User) (data.User, error) {
			u.Memberships.Groups = nil
			return u, nil
		}); err != nil {
			t.Error(err)
		}
	}
	e.store.afterGetUser.Store(&remove)
	// This lookup read the user before the removal: it may answer what it
	// read, but must not keep it.
	if m := e.member("u1"); !m.Verdict.Admitted() {
		t.Fatalf("the racing read built %+v", m.Verdict)
	}
	if m := e.member("u1"); m.Verdict.Code != membership.CodeNotAllowed {
		t.Fatalf("after the racing write: %+v (a stale Member was cached)", m.Verdict)
	}
}

// Unknown users are not cached: a user created after a lookup is found at
// once.
func TestUnknownUserIsNotCached(t *testing.T) {
	e := newEnv(t, membership.Options{Judge: teamRule}, nil)
	ctx := context.Background()
	for i := range 3 {
		if _, err := e.svc.Member(ctx, "later"); !errors.Is(err, membership.ErrUnknownUser) {
			t.Fatalf("lookup %d of an unknown user: %v", i, err)
		}
	}
	e.user("later", "boss@example.com", data.Memberships{})
	if m := e.member("later"); !m.Verdict.Admitted() {
		t.Fatalf("created after the lookups: %+v", m.Verdict)
	}
}

// Group names a provider could use to inject header syntax never reach
// the groups header.
func TestVisibleHeaderKeepsOnlySafeNames(t *testing.T) {
	e := newEnv(t, membership.Options{Judge: teamRule}, nil)
	e.user("u1", "", data.Memberships{Groups: []string{
		"github:vintner/platform", "github:a,b", "github:x\r\nSet-Cookie: y", "github:with space", `github:q"uote`, "google:example.com",
	}})
	m := e.member("u1")
	if want := "github:vintner/platform,google:example.com"; m.VisibleHeader != want {
		t.Fatalf("VisibleHeader %q, want %q", m.VisibleHeader, want)
	}
}

// The last known groups stand for the grace period after the providers
// began to fail, and then the member is Unavailable, without any write
// (the cached Member ages out when the grace ends).
func TestGraceEndsWithoutAWrite(t *testing.T) {
	e := newEnv(t, membership.Options{Judge: teamRule, GracePeriod: time.Hour, GroupProviders: []string{"github"}}, nil)
	e.user("u1", "", data.Memberships{Groups: []string{"github:vintner/platform"}, FailingSince: e.clock.Now().Add(-50 * time.Minute)})
	if m := e.member("u1"); !m.Verdict.Admitted() || m.Unavailable {
		t.Fatalf("within the grace period: %+v", m)
	}
	e.clock.Advance(11 * time.Minute)
	if m := e.member("u1"); m.Verdict.Code != membership.CodeMembershipsUnavailable || !m.Unavailable {
		t.Fatalf("after the grace period: %+v", m)
	}
	// A policy that no longer reads groups ignores a failure left behind.
	other, err := membership.New(membership.Options{Store: e.store, Judge: teamRule, GracePeriod: time.Hour, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if m, err := other.Member(context.Background(), "u1"); err != nil || m.Unavailable || !m.Verdict.Admitted() {
		t.Fatalf("without group providers: %+v %v", m, err)
	}
}

// EndAccess deletes the sessions, revokes the CLI logins with the reason,
// and audits; it leaves other users alone.
func TestEndAccess(t *testing.T) {
	e := newEnv(t, membership.Options{Judge: teamRule}, nil)
	e.user("u1", "", data.Memberships{})
	e.user("u2", "", data.Memberships{})
	e.sessionAndLogin("u1")
	e.sessionAndLogin("u2")
	if err := e.svc.EndAccess(context.Background(), "u1", "operator", membership.CodeAccountDisabled); err != nil {
		t.Fatal(err)
	}
	if s, l := e.accessLeft("u1"); s != 0 || l != 0 {
		t.Fatalf("after EndAccess: %d sessions, %d CLI logins", s, l)
	}
	f, err := e.store.GetRefreshFamily(context.Background(), "f-u1")
	if err != nil || f.RevokeReason != membership.CodeAccountDisabled {
		t.Fatalf("revoked family: %+v %v", f, err)
	}
	if s, l := e.accessLeft("u2"); s != 1 || l != 1 {
		t.Fatalf("another user: %d sessions, %d CLI logins", s, l)
	}
	ev := e.audits("u1", "policy.access_ended")
	if len(ev) != 1 || ev[0].Actor != "operator" || ev[0].Details["reason"] != membership.CodeAccountDisabled ||
		ev[0].Details["sessions"] != "1" || ev[0].Details["cli_logins"] != "1" {
		t.Fatalf("audit: %+v", ev)
	}
	// Again: nothing left, no error.
	if err := e.svc.EndAccess(context.Background(), "nobody", "operator", "x"); err != nil {
		t.Fatal(err)
	}
}

// Users that all became due at once are spread over ticks: no tick takes
// more than its batch, and every user is reached within the interval.
func TestRecheckSpreadIsBounded(t *testing.T) {
	const users, interval = 60, 10 * time.Minute
	e := newEnv(t, membership.Options{Judge: teamRule, GroupProviders: []string{"github"}, RecheckInterval: interval}, nil)
	for i := range users {
		e.user(fmt.Sprintf("u%02d", i), "", data.Memberships{})
	}
	e.clock.Advance(interval)
	ctx := context.Background()
	batch := (2*users + 9) / 10
	total := 0
	for tick := 0; tick < 10; tick++ {
		n := e.svc.RecheckDue(ctx)
		if n > batch {
			t.Fatalf("tick %d re-checked %d users, more than a batch of %d", tick, n, batch)
		}
		total += n
		e.clock.Advance(interval / 10)
	}
	if total < users {
		t.Fatalf("%d of %d users were re-checked within an interval", total, users)
	}
}

package users_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/service/users"
)

// Audit pages newest first, filters by user, action (exact or prefix)
// and time, and names the next page until the last.
func TestAuditPagesNewestFirst(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Older events from elsewhere, an hour ago.
	for _, a := range []string{"session.sign_in", "cli.login"} {
		if _, err := f.store.AppendAudit(ctx, data.AuditEvent{Action: a, UserID: "usr_octo", Time: f.now.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.svc.Disable(ctx, "operator", "usr_octo", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Enable(ctx, "operator", "usr_octo"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RevokeSessions(ctx, "operator", "usr_hubot"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Delete(ctx, "operator", "usr_hubot"); err != nil {
		t.Fatal(err)
	}
	actions := func(p users.AuditPage) (out []string) {
		for _, e := range p.Events {
			out = append(out, e.Action)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    users.AuditQuery
		want []string
		next bool
	}{
		{"all", users.AuditQuery{}, []string{"user.deleted", "sessions.revoked", "user.enabled", "user.disabled", "cli.login", "session.sign_in"}, false},
		{"one user", users.AuditQuery{UserID: "usr_octo"}, []string{"user.enabled", "user.disabled", "cli.login", "session.sign_in"}, false},
		{"exact action", users.AuditQuery{Action: "user.enabled"}, []string{"user.enabled"}, false},
		{"prefix", users.AuditQuery{Action: "user."}, []string{"user.deleted", "user.enabled", "user.disabled"}, false},
		{"since", users.AuditQuery{Since: f.now.Add(-time.Minute)}, []string{"user.deleted", "sessions.revoked", "user.enabled", "user.disabled"}, false},
		{"a page", users.AuditQuery{Limit: 2}, []string{"user.deleted", "sessions.revoked"}, true},
	} {
		p, err := f.svc.Audit(ctx, tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := actions(p); !slices.Equal(got, tc.want) || (p.Next != 0) != tc.next {
			t.Errorf("%s: %v next %d; want %v, next page %v", tc.name, got, p.Next, tc.want, tc.next)
		}
	}

	// Page by page, the whole trail once, newest first.
	var seen []uint64
	q := users.AuditQuery{Limit: 4}
	for range 10 {
		p, err := f.svc.Audit(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			seen = append(seen, e.Seq)
		}
		if p.Next == 0 {
			break
		}
		q.Before = p.Next
	}
	if len(seen) != 6 {
		t.Fatalf("paged through %d events, want 6: %v", len(seen), seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Fatalf("pages not newest first: %v", seen)
		}
	}

	for _, limit := range []int{-1, users.MaxAuditLimit + 1} {
		if _, err := f.svc.Audit(ctx, users.AuditQuery{Limit: limit}); !errors.Is(err, users.ErrBadQuery) {
			t.Errorf("limit %d: %v, want ErrBadQuery", limit, err)
		}
	}

	// A second delete finds the first in the trail.
	ch, err := f.svc.Delete(ctx, "operator:uid=7", "usr_hubot")
	if err != nil || !ch.Already || ch.Event.Action != users.ActionDeleted || ch.Event.Actor != "operator" {
		t.Errorf("second delete: %+v, %v; want Already with the first deletion's event", ch, err)
	}
}

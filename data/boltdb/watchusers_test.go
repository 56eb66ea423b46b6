package boltdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
)

// The bbolt store calls user watchers before UpdateUser and DeleteUser
// return, on the writer's goroutine: a disabled user's cached sessions are
// dropped before the operator's command answers.
func TestWatchUsersIsSynchronous(t *testing.T) {
	now := time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)
	s := openTemp(t, Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	users, sessions := &recorder{}, &recorder{}
	t.Cleanup(s.WatchUsers(users.add))
	t.Cleanup(s.WatchSessions(sessions.add))
	for _, id := range []string{"u1", "u2"} {
		if err := s.CreateUser(ctx, data.User{ID: id, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, data.Session{ID: "s1", UserID: "u2", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, users, "CreateUser")

	disable := func(u data.User) (data.User, error) { u.Disabled, u.DisabledAt = true, now; return u, nil }
	if _, err := s.UpdateUser(ctx, "u1", disable); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, users, "UpdateUser", "u1")
	if err := s.DeleteUser(ctx, "u2"); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, users, "DeleteUser", "u2")
	expectCalls(t, sessions, "DeleteUser (sessions)", "s1")

	// Refused writes do not call.
	boom := errors.New("refused")
	if _, err := s.UpdateUser(ctx, "u1", func(u data.User) (data.User, error) { return u, boom }); !errors.Is(err, boom) {
		t.Fatalf("UpdateUser whose function fails: %v", err)
	}
	if _, err := s.UpdateUser(ctx, "u2", disable); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("UpdateUser of a deleted user: %v", err)
	}
	if err := s.DeleteUser(ctx, "u2"); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("DeleteUser of a deleted user: %v", err)
	}
	expectCalls(t, users, "refused writes")
}

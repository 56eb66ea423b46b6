package records

import (
	"errors"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
)

func TestShowAndNotFound(t *testing.T) {
	check := func(kind string, secret bool, key, want string) {
		t.Helper()
		if got := Show(kind, secret, key); got != want {
			t.Errorf("Show(%q, %v, %q) = %q, want %q", kind, secret, key, got, want)
		}
		err := NotFound(kind, secret, key)
		if !errors.Is(err, data.ErrNotFound) || err.Error() != want+": "+data.ErrNotFound.Error() {
			t.Errorf("NotFound(%q, %v, %q) = %v", kind, secret, key, err)
		}
	}
	check("user", false, "u1", `user "u1"`)
	check("identity", false, "github\x00583231", `identity "github/583231"`) // a composite key
	check("session", true, "secret-session-id", "session")                   // the key stays out
}

func TestLive(t *testing.T) {
	now := time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)
	expires := func(s *data.Session) time.Time { return s.ExpiresAt }
	live := func(expiresAt time.Time) bool { return Live(expires, &data.Session{ExpiresAt: expiresAt}, now) }
	if !live(now.Add(time.Nanosecond)) || live(now) || live(now.Add(-time.Second)) {
		t.Errorf("a session is live until, and not at, its ExpiresAt: %v %v %v",
			live(now.Add(time.Nanosecond)), live(now), live(now.Add(-time.Second)))
	}
	if !Live[data.User](nil, &data.User{}, now) {
		t.Error("a kind without a lifetime is not live")
	}
}

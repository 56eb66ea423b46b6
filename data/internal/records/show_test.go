package records

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
)

func TestShowAndNotFound(t *testing.T) {
	for _, c := range []struct {
		kind   string
		secret bool
		key    string
		want   string
	}{
		{"user", false, "u1", `user "u1"`},
		{"identity", false, "github\x00583231", `identity "github/583231"`},
		{"session", true, "secret-session-id", "session"},
	} {
		if got := Show(c.kind, c.secret, c.key); got != c.want {
			t.Errorf("Show(%q, %v, %q) = %q, want %q", c.kind, c.secret, c.key, got, c.want)
		}
		err := NotFound(c.kind, c.secret, c.key)
		if !errors.Is(err, data.ErrNotFound) || !strings.HasPrefix(err.Error(), c.want+": ") {
			t.Errorf("NotFound(%q, %v, %q) = %v", c.kind, c.secret, c.key, err)
		}
		if c.secret && strings.Contains(err.Error(), c.key) {
			t.Errorf("NotFound shows the secret key: %v", err)
		}
	}
}

func TestLive(t *testing.T) {
	now := time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)
	expires := func(s *data.Session) time.Time { return s.ExpiresAt }
	for _, c := range []struct {
		expiresAt time.Time
		want      bool
	}{
		{now.Add(time.Second), true},
		{now, false},
		{now.Add(-time.Second), false},
	} {
		s := data.Session{ExpiresAt: c.expiresAt}
		if got := Live(expires, &s, now); got != c.want {
			t.Errorf("Live with ExpiresAt %v at %v = %v, want %v", c.expiresAt, now, got, c.want)
		}
	}
	if !Live[data.User](nil, &data.User{}, now) {
		t.Error("a kind without a lifetime is not live")
	}
}

package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/service/users"
)

// usersServer serves a real socket on a bbolt store holding usr_octo (a
// session, a CLI login) and usr_hubot.
func usersServer(t *testing.T) (*Client, data.Store) {
	t.Helper()
	dir := shortDir(t)
	st, err := boltdb.Open(filepath.Join(dir, "arbor.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx, now := context.Background(), time.Now().UTC()
	for _, u := range []data.User{
		{ID: "usr_octo", Login: "octocat", Email: "octocat@example.com", CreatedAt: now, UpdatedAt: now},
		{ID: "usr_hubot", Login: "hubot", CreatedAt: now, UpdatedAt: now},
	} {
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateSession(ctx, data.Session{ID: "s1", UserID: "usr_octo", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRefreshFamily(ctx, data.RefreshFamily{ID: "f1", UserID: "usr_octo", CurrentJTI: "j", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(SocketPath(dir), Handlers{Users: users.New(users.Options{Store: st})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return NewClient(srv.Path()), st
}

func TestUsersOverTheSocket(t *testing.T) {
	c, st := usersServer(t)
	ctx := context.Background()
	list, err := c.Users(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "usr_hubot" || list[1].Login != "octocat" {
		t.Fatalf("users: %+v, %v", list, err)
	}
	d, err := c.User(ctx, "OctoCat@example.com")
	if err != nil || d.User.ID != "usr_octo" || len(d.Sessions) != 1 || len(d.Logins) != 1 {
		t.Fatalf("user by e-mail: %+v, %v", d, err)
	}

	ch, err := c.DisableUser(ctx, "usr_octo", "offboarded")
	if err != nil || ch.Already || ch.Ended.Sessions != 1 || ch.Ended.Logins != 1 {
		t.Fatalf("disable: %+v, %v", ch, err)
	}
	// The actor is the peer as the kernel names it, not what it claims.
	wantActor := fmt.Sprintf("operator:uid=%d", os.Getuid())
	u, _ := st.GetUser(ctx, "usr_octo")
	if !u.Disabled || u.DisabledBy != wantActor || u.DisabledReason != "offboarded" {
		t.Errorf("user after disable: disabled %v by %q (%q); want by %q", u.Disabled, u.DisabledBy, u.DisabledReason, wantActor)
	}
	if ch.Event.Actor != wantActor || ch.Event.Action != users.ActionDisabled || ch.Event.Seq == 0 {
		t.Errorf("event: %+v", ch.Event)
	}
	if _, err := st.GetSession(ctx, "s1"); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("session after disable: %v", err)
	}
	if ch, err := c.DisableUser(ctx, "usr_octo", ""); err != nil || !ch.Already {
		t.Errorf("second disable: %+v, %v; want Already", ch, err)
	}
	if ch, err := c.EnableUser(ctx, "usr_octo"); err != nil || ch.Already || ch.User.Disabled {
		t.Errorf("enable: %+v, %v", ch, err)
	}
	if ch, err := c.RevokeSessions(ctx, "usr_hubot"); err != nil || !ch.Already {
		t.Errorf("revoke with nothing to end: %+v, %v", ch, err)
	}
	if ch, err := c.DeleteUser(ctx, "usr_hubot"); err != nil || ch.Already || ch.User.Login != "hubot" {
		t.Errorf("delete: %+v, %v", ch, err)
	}
	if _, err := st.GetUser(ctx, "usr_hubot"); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("user after delete: %v", err)
	}
}

func TestUsersErrorsOverTheSocket(t *testing.T) {
	c, st := usersServer(t)
	ctx := context.Background()
	var ae *Error
	_, err := c.DisableUser(ctx, "usr_nobody", "")
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != CodeNoUser || !errors.Is(err, users.ErrNoUser) ||
		!strings.Contains(err.Error(), `no user "usr_nobody"; `+"`arbor users list` shows them") {
		t.Errorf("disable of an unknown user: %#v", err)
	}
	if _, err := c.User(ctx, "a/b"); !errors.Is(err, users.ErrNoUser) {
		t.Errorf("an id with a slash: %v; want no_user (escaped into one path segment)", err)
	}
	_, err = c.DisableUser(ctx, "usr_octo", "two\nlines")
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != CodeBadReason {
		t.Errorf("bad reason: %#v", err)
	}

	raw := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://arbor"+path, strings.NewReader(body))
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"too large", "POST", "/v1/users/usr_octo/disable", `{"reason":"` + strings.Repeat("x", maxUserBody) + `"}`, 413, CodeBadRequest},
		{"not JSON", "POST", "/v1/users/usr_octo/disable", `reason=x`, 400, CodeBadRequest},
		{"unknown field", "POST", "/v1/users/usr_octo/disable", `{"reason":"x","force":true}`, 400, CodeBadRequest},
		{"bad since", "GET", "/v1/audit?since=yesterday", "", 400, CodeBadRequest},
		{"bad before", "GET", "/v1/audit?before=-1", "", 400, CodeBadRequest},
		{"limit zero", "GET", "/v1/audit?limit=0", "", 400, CodeBadRequest},
		{"limit too large", "GET", "/v1/audit?limit=1001", "", 400, CodeBadRequest},
		{"wrong method", "PUT", "/v1/users/usr_octo", "", 405, ""},
	} {
		status, body := raw(tc.method, tc.path, tc.body)
		if status != tc.status || tc.code != "" && !strings.Contains(body, `"error":"`+tc.code+`"`) {
			t.Errorf("%s: %d %s; want %d %s", tc.name, status, body, tc.status, tc.code)
		}
	}
	if u, _ := st.GetUser(ctx, "usr_octo"); u.Disabled {
		t.Error("a refused request disabled the user")
	}
}

func TestUsersNotServed(t *testing.T) {
	dir := shortDir(t)
	srv, err := Listen(SocketPath(dir), Handlers{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	var ae *Error
	if _, err := NewClient(srv.Path()).Users(context.Background()); !errors.As(err, &ae) || ae.Status != 501 || ae.Code != "not_supported" {
		t.Errorf("users without a service: %v", err)
	}
	// The peer of a plain connection: no credentials to read, "operator".
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := peerActor(a); got != operator {
		t.Errorf("peerActor(pipe) = %q", got)
	}
}

func TestAuditOverTheSocket(t *testing.T) {
	c, st := usersServer(t)
	ctx := context.Background()
	for i := range 5 {
		if _, err := st.AppendAudit(ctx, data.AuditEvent{Action: fmt.Sprintf("test.e%d", i), UserID: "usr_octo"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DisableUser(ctx, "usr_octo", "x"); err != nil {
		t.Fatal(err)
	}
	p, err := c.Audit(ctx, users.AuditQuery{UserID: "usr_octo", Limit: 4})
	if err != nil || len(p.Events) != 4 || p.Events[0].Action != users.ActionDisabled || p.Events[3].Action != "test.e2" || p.Next != p.Events[3].Seq {
		t.Fatalf("page 1: %+v, %v", p, err)
	}
	p, err = c.Audit(ctx, users.AuditQuery{UserID: "usr_octo", Limit: 4, Before: p.Next})
	if err != nil || len(p.Events) != 2 || p.Events[1].Action != "test.e0" || p.Next != 0 {
		t.Fatalf("page 2: %+v, %v", p, err)
	}
	p, err = c.Audit(ctx, users.AuditQuery{Action: "test.", Since: time.Now().Add(-time.Minute)})
	if err != nil || len(p.Events) != 5 {
		t.Fatalf("prefix and since: %+v, %v", p, err)
	}
	if p, err := c.Audit(ctx, users.AuditQuery{Since: time.Now().Add(time.Hour)}); err != nil || len(p.Events) != 0 || p.Events == nil {
		t.Fatalf("since the future: %+v, %v; want an empty list", p, err)
	}
}

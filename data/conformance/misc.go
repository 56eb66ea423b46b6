package conformance

import (
	"context"
	"time"

	"github.com/vintner/arbor/data"
)

// utcTests store records whose times are in another zone and expect every
// time back in UTC, at the same instant.
var utcTests = func() []subtest {
	zone := time.FixedZone("IST", 5*3600+30*60)
	local := func(e *env, d time.Duration) time.Time { return e.clock.Now().Add(d).In(zone) }
	type check struct {
		name  string
		store func(e *env) []time.Time // stores a record, returns its times
		read  func(e *env) []time.Time // reads it back, returns its times
	}
	checks := []check{
		{"User", func(e *env) []time.Time {
			u := e.newUser("u2")
			u.CreatedAt, u.UpdatedAt = local(e, 0), local(e, time.Second)
			e.ok(e.s.CreateUser(e.ctx, u), "CreateUser")
			return []time.Time{u.CreatedAt, u.UpdatedAt}
		}, func(e *env) []time.Time {
			u, err := e.s.GetUser(e.ctx, "u2")
			e.ok(err, "GetUser")
			return []time.Time{u.CreatedAt, u.UpdatedAt}
		}},
		{"Identity", func(e *env) []time.Time {
			i := e.newIdentity("u1", "github", "1")
			i.CreatedAt, i.LastLoginAt = local(e, 0), local(e, time.Second)
			e.ok(e.s.CreateIdentity(e.ctx, i), "CreateIdentity")
			return []time.Time{i.CreatedAt, i.LastLoginAt}
		}, func(e *env) []time.Time {
			i, err := e.s.GetIdentity(e.ctx, "github", "1")
			e.ok(err, "GetIdentity")
			return []time.Time{i.CreatedAt, i.LastLoginAt}
		}},
		{"Session", func(e *env) []time.Time {
			s := e.newSession("s1", "u1", 0)
			s.CreatedAt, s.LastSeenAt, s.ExpiresAt = local(e, 0), local(e, time.Second), local(e, time.Hour)
			e.ok(e.s.CreateSession(e.ctx, s), "CreateSession")
			return []time.Time{s.CreatedAt, s.LastSeenAt, s.ExpiresAt}
		}, func(e *env) []time.Time {
			s, err := e.s.GetSession(e.ctx, "s1")
			e.ok(err, "GetSession")
			return []time.Time{s.CreatedAt, s.LastSeenAt, s.ExpiresAt}
		}},
		{"SessionUpdate", func(e *env) []time.Time {
			e.ok(e.s.CreateSession(e.ctx, e.newSession("s1", "u1", time.Hour)), "CreateSession")
			want := []time.Time{local(e, 0), local(e, time.Second), local(e, 2*time.Hour)}
			got, err := e.s.UpdateSession(e.ctx, "s1", func(s data.Session) (data.Session, error) {
				s.CreatedAt, s.LastSeenAt, s.ExpiresAt = want[0], want[1], want[2]
				return s, nil
			})
			e.ok(err, "UpdateSession")
			e.checkUTC([]time.Time{got.CreatedAt, got.LastSeenAt, got.ExpiresAt}, want, "UpdateSession result")
			return want
		}, func(e *env) []time.Time {
			s, err := e.s.GetSession(e.ctx, "s1")
			e.ok(err, "GetSession")
			return []time.Time{s.CreatedAt, s.LastSeenAt, s.ExpiresAt}
		}},
		{"OAuthState", func(e *env) []time.Time {
			s := e.newOAuthState("st", 0)
			s.CreatedAt, s.ExpiresAt = local(e, 0), local(e, time.Hour)
			e.ok(e.s.CreateOAuthState(e.ctx, s), "CreateOAuthState")
			return []time.Time{s.CreatedAt, s.ExpiresAt}
		}, func(e *env) []time.Time {
			s, err := e.s.ConsumeOAuthState(e.ctx, "st")
			e.ok(err, "ConsumeOAuthState")
			return []time.Time{s.CreatedAt, s.ExpiresAt}
		}},
		{"DeviceCode", func(e *env) []time.Time {
			d := e.newDeviceCode("dc", "UC", 0)
			d.LastPolledAt, d.ApprovedAt = local(e, time.Second), local(e, 2*time.Second)
			d.CreatedAt, d.ExpiresAt = local(e, 0), local(e, time.Hour)
			e.ok(e.s.CreateDeviceCode(e.ctx, d), "CreateDeviceCode")
			return []time.Time{d.LastPolledAt, d.ApprovedAt, d.CreatedAt, d.ExpiresAt}
		}, func(e *env) []time.Time {
			d, err := e.s.GetDeviceCodeByUserCode(e.ctx, "UC")
			e.ok(err, "GetDeviceCodeByUserCode")
			return []time.Time{d.LastPolledAt, d.ApprovedAt, d.CreatedAt, d.ExpiresAt}
		}},
		{"RefreshFamily", func(e *env) []time.Time {
			f := e.newRefreshFamily("f", "u1", 0)
			f.RotatedAt, f.RevokedAt, f.LastUsedAt = local(e, time.Second), local(e, 2*time.Second), local(e, 3*time.Second)
			f.CreatedAt, f.ExpiresAt = local(e, 0), local(e, time.Hour)
			e.ok(e.s.CreateRefreshFamily(e.ctx, f), "CreateRefreshFamily")
			return []time.Time{f.RotatedAt, f.RevokedAt, f.LastUsedAt, f.CreatedAt, f.ExpiresAt}
		}, func(e *env) []time.Time {
			f, err := e.s.GetRefreshFamily(e.ctx, "f")
			e.ok(err, "GetRefreshFamily")
			return []time.Time{f.RotatedAt, f.RevokedAt, f.LastUsedAt, f.CreatedAt, f.ExpiresAt}
		}},
		{"Worker", func(e *env) []time.Time {
			w := e.newWorker("w", "u1")
			w.CreatedAt, w.RotatedAt, w.LastUsedAt = local(e, 0), local(e, time.Second), local(e, 2*time.Second)
			e.ok(e.s.CreateWorker(e.ctx, w), "CreateWorker")
			return []time.Time{w.CreatedAt, w.RotatedAt, w.LastUsedAt}
		}, func(e *env) []time.Time {
			w, err := e.s.GetWorker(e.ctx, "w")
			e.ok(err, "GetWorker")
			return []time.Time{w.CreatedAt, w.RotatedAt, w.LastUsedAt}
		}},
		{"Connection", func(e *env) []time.Time {
			c := e.newConnection("u1", "github")
			c.TokenExpiresAt, c.LastRefreshAt = local(e, time.Hour), local(e, time.Second)
			c.CreatedAt, c.UpdatedAt = local(e, 0), local(e, 2*time.Second)
			e.ok(e.s.CreateConnection(e.ctx, c), "CreateConnection")
			return []time.Time{c.TokenExpiresAt, c.LastRefreshAt, c.CreatedAt, c.UpdatedAt}
		}, func(e *env) []time.Time {
			l, err := e.s.ListConnections(e.ctx, "u1")
			e.ok(err, "ListConnections")
			if len(l) != 1 {
				e.t.Fatalf("ListConnections returned %d connections, want 1", len(l))
			}
			c := l[0]
			return []time.Time{c.TokenExpiresAt, c.LastRefreshAt, c.CreatedAt, c.UpdatedAt}
		}},
		{"AuditEvent", func(e *env) []time.Time {
			in := local(e, -time.Hour)
			ev, err := e.s.AppendAudit(e.ctx, data.AuditEvent{Action: "zoned", Time: in})
			e.ok(err, "AppendAudit")
			e.checkUTC([]time.Time{ev.Time}, []time.Time{in}, "AppendAudit result")
			return []time.Time{in}
		}, func(e *env) []time.Time {
			l, err := e.s.ListAudit(e.ctx, data.AuditQuery{})
			e.ok(err, "ListAudit")
			if len(l) != 1 {
				e.t.Fatalf("ListAudit returned %d events, want 1", len(l))
			}
			return []time.Time{l[0].Time}
		}},
	}
	var tests []subtest
	for _, c := range checks {
		tests = append(tests, subtest{c.name, func(e *env) {
			e.user("u1")
			want := c.store(e)
			e.checkUTC(c.read(e), want, "times read back")
		}})
	}
	return tests
}()

// checkUTC fails unless every got[i] is in UTC and the same instant as
// want[i].
func (e *env) checkUTC(got, want []time.Time, what string) {
	e.t.Helper()
	if len(got) != len(want) {
		e.t.Fatalf("%s: %d times, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].Location() != time.UTC || !got[i].Equal(want[i]) {
			e.t.Fatalf("%s: time #%d is %v (location %q), want %v in UTC", what, i, got[i], got[i].Location(), want[i].UTC())
		}
	}
}

// invalidTests check that an empty key is refused with data.ErrInvalid by
// every method that takes one, before the store looks anything up (so it is
// ErrInvalid even where the record would not be found).
var invalidTests = func() []subtest {
	noExpiry := func(e *env) data.Session { s := e.newSession("s1", "u1", 0); s.ExpiresAt = time.Time{}; return s }
	calls := []struct {
		name string
		call func(e *env) error
	}{
		{"CreateUser", func(e *env) error { return e.s.CreateUser(e.ctx, e.newUser("")) }},
		{"GetUser", func(e *env) error { _, err := e.s.GetUser(e.ctx, ""); return err }},
		{"UpdateUser", func(e *env) error { _, err := e.s.UpdateUser(e.ctx, "", keep[data.User]); return err }},
		{"DeleteUser", func(e *env) error { return e.s.DeleteUser(e.ctx, "") }},
		{"CreateIdentityProvider", func(e *env) error { return e.s.CreateIdentity(e.ctx, e.newIdentity("u1", "", "1")) }},
		{"CreateIdentitySubject", func(e *env) error { return e.s.CreateIdentity(e.ctx, e.newIdentity("u1", "github", "")) }},
		{"CreateIdentityUser", func(e *env) error { return e.s.CreateIdentity(e.ctx, e.newIdentity("", "github", "1")) }},
		{"GetIdentity", func(e *env) error { _, err := e.s.GetIdentity(e.ctx, "github", ""); return err }},
		{"UpdateIdentity", func(e *env) error {
			_, err := e.s.UpdateIdentity(e.ctx, "", "1", keep[data.Identity])
			return err
		}},
		{"DeleteIdentity", func(e *env) error { return e.s.DeleteIdentity(e.ctx, "", "") }},
		{"ListIdentities", func(e *env) error { _, err := e.s.ListIdentities(e.ctx, "u\x001"); return err }}, // "": every identity
		{"CreateSession", func(e *env) error { return e.s.CreateSession(e.ctx, e.newSession("", "u1", time.Hour)) }},
		{"CreateSessionUser", func(e *env) error { return e.s.CreateSession(e.ctx, e.newSession("s1", "", time.Hour)) }},
		{"CreateSessionWithoutExpiry", func(e *env) error { return e.s.CreateSession(e.ctx, noExpiry(e)) }},
		{"GetSession", func(e *env) error { _, err := e.s.GetSession(e.ctx, ""); return err }},
		{"UpdateSession", func(e *env) error { _, err := e.s.UpdateSession(e.ctx, "", keep[data.Session]); return err }},
		{"DeleteSession", func(e *env) error { return e.s.DeleteSession(e.ctx, "") }},
		{"ListSessions", func(e *env) error { _, err := e.s.ListSessions(e.ctx, ""); return err }},
		{"CreateOAuthState", func(e *env) error { return e.s.CreateOAuthState(e.ctx, e.newOAuthState("", time.Hour)) }},
		{"CreateOAuthStateWithoutExpiry", func(e *env) error {
			st := e.newOAuthState("st", 0)
			st.ExpiresAt = time.Time{}
			return e.s.CreateOAuthState(e.ctx, st)
		}},
		{"ConsumeOAuthState", func(e *env) error { _, err := e.s.ConsumeOAuthState(e.ctx, ""); return err }},
		{"GetOAuthState", func(e *env) error { _, err := e.s.GetOAuthState(e.ctx, ""); return err }},
		{"CreateDeviceCode", func(e *env) error { return e.s.CreateDeviceCode(e.ctx, e.newDeviceCode("", "UC", time.Hour)) }},
		{"GetDeviceCode", func(e *env) error { _, err := e.s.GetDeviceCode(e.ctx, ""); return err }},
		{"GetDeviceCodeByUserCode", func(e *env) error { _, err := e.s.GetDeviceCodeByUserCode(e.ctx, ""); return err }},
		{"UpdateDeviceCode", func(e *env) error {
			_, err := e.s.UpdateDeviceCode(e.ctx, "", keep[data.DeviceCode])
			return err
		}},
		{"ConsumeDeviceCode", func(e *env) error {
			_, err := e.s.ConsumeDeviceCode(e.ctx, "", func(data.DeviceCode) error { return nil })
			return err
		}},
		{"CreateRefreshFamily", func(e *env) error {
			return e.s.CreateRefreshFamily(e.ctx, e.newRefreshFamily("", "u1", time.Hour))
		}},
		{"GetRefreshFamily", func(e *env) error { _, err := e.s.GetRefreshFamily(e.ctx, ""); return err }},
		{"UpdateRefreshFamily", func(e *env) error {
			_, err := e.s.UpdateRefreshFamily(e.ctx, "", keep[data.RefreshFamily])
			return err
		}},
		{"DeleteRefreshFamily", func(e *env) error { return e.s.DeleteRefreshFamily(e.ctx, "") }},
		{"ListRefreshFamilies", func(e *env) error { _, err := e.s.ListRefreshFamilies(e.ctx, ""); return err }},
		{"CreateWorker", func(e *env) error { return e.s.CreateWorker(e.ctx, e.newWorker("", "u1")) }},
		{"CreateWorkerUser", func(e *env) error { return e.s.CreateWorker(e.ctx, e.newWorker("w1", "")) }},
		{"GetWorker", func(e *env) error { _, err := e.s.GetWorker(e.ctx, ""); return err }},
		{"UpdateWorker", func(e *env) error { _, err := e.s.UpdateWorker(e.ctx, "", keep[data.Worker]); return err }},
		{"DeleteWorker", func(e *env) error { return e.s.DeleteWorker(e.ctx, "") }},
		{"ListWorkers", func(e *env) error { _, err := e.s.ListWorkers(e.ctx, ""); return err }},
		{"CreateConnection", func(e *env) error { return e.s.CreateConnection(e.ctx, e.newConnection("u1", "")) }},
		{"GetConnection", func(e *env) error { _, err := e.s.GetConnection(e.ctx, "", "github"); return err }},
		{"UpdateConnection", func(e *env) error {
			_, err := e.s.UpdateConnection(e.ctx, "u1", "", keep[data.Connection])
			return err
		}},
		{"DeleteConnection", func(e *env) error { return e.s.DeleteConnection(e.ctx, "u1", "") }},
		{"AppendAuditWithoutAction", func(e *env) error {
			_, err := e.s.AppendAudit(e.ctx, data.AuditEvent{UserID: "u1"})
			return err
		}},
	}
	return []subtest{{"EmptyKeys", func(e *env) {
		e.user("u1")
		for _, c := range calls {
			e.is(c.call(e), data.ErrInvalid, c.name)
		}
		// Nothing was stored under an empty key.
		_, err := e.s.GetSession(e.ctx, "s1")
		e.is(err, data.ErrNotFound, "GetSession s1 after the refused creates")
		l, err := e.s.ListUsers(e.ctx)
		e.ok(err, "ListUsers")
		e.orderIs(ids(l, userID), []string{"u1"}, "users after the refused creates")
	}}}
}()

var lifecycleTests = []subtest{
	{"Ping", func(e *env) {
		e.ok(e.s.Ping(e.ctx), "Ping")
	}},
	{"CanceledContext", func(e *env) {
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		e.is(e.s.CreateUser(ctx, e.newUser("u1")), context.Canceled, "CreateUser with a canceled context")
		_, err := e.s.GetUser(ctx, "u1")
		e.is(err, context.Canceled, "GetUser with a canceled context")
		_, err = e.s.GetUser(e.ctx, "u1")
		e.is(err, data.ErrNotFound, "GetUser: the canceled create stored nothing")
	}},
	{"Close", func(e *env) {
		e.user("u1")
		e.ok(e.s.Close(), "Close")
		_, err := e.s.GetUser(e.ctx, "u1")
		e.is(err, data.ErrClosed, "GetUser after Close")
		e.is(e.s.CreateUser(e.ctx, e.newUser("u2")), data.ErrClosed, "CreateUser after Close")
		_, err = e.s.UpdateUser(e.ctx, "u1", keep[data.User])
		e.is(err, data.ErrClosed, "UpdateUser after Close")
		_, err = e.s.ListUsers(e.ctx)
		e.is(err, data.ErrClosed, "ListUsers after Close")
		_, err = e.s.AppendAudit(e.ctx, data.AuditEvent{Action: "x"})
		e.is(err, data.ErrClosed, "AppendAudit after Close")
		_, err = e.s.CollectExpired(e.ctx, e.clock.Now())
		e.is(err, data.ErrClosed, "CollectExpired after Close")
		e.is(e.s.Ping(e.ctx), data.ErrClosed, "Ping after Close")
		e.ok(e.s.Close(), "second Close")
	}},
	{"CloseWhileWriting", func(e *env) {
		// Writes racing Close either succeed or report ErrClosed.
		e.user("u1")
		errs := make(chan error, 65)
		concurrently(65, func(i int) {
			if i == 64 {
				time.Sleep(time.Millisecond)
				errs <- e.s.Close()
				return
			}
			_, err := e.s.AppendAudit(e.ctx, data.AuditEvent{Action: "racing close"})
			if err != nil && !isClosed(err) {
				errs <- err
			}
		})
		close(errs)
		for err := range errs {
			if err != nil {
				e.t.Errorf("a write racing Close returned %v, want nil or ErrClosed", err)
			}
		}
	}},
}

package conformance

import (
	"time"

	"github.com/vintner/arbor/data"
)

var userTests = []subtest{
	{"CreateGet", func(e *env) {
		u := e.user("u1")
		got, err := e.s.GetUser(e.ctx, "u1")
		e.returned(got, err, u, "GetUser returns what CreateUser stored")
	}},
	{"CreateDuplicate", func(e *env) {
		e.user("u1")
		e.is(e.s.CreateUser(e.ctx, e.newUser("u1")), data.ErrAlreadyExists, "second CreateUser u1")
	}},
	{"GetMissing", func(e *env) {
		_, err := e.s.GetUser(e.ctx, "nobody")
		e.is(err, data.ErrNotFound, "GetUser nobody")
	}},
	{"Update", func(e *env) {
		u := e.user("u1")
		want := u
		want.Name, want.UpdatedAt = "Renamed", u.UpdatedAt.Add(time.Minute)
		got, err := e.s.UpdateUser(e.ctx, "u1", func(old data.User) (data.User, error) {
			e.equal(old, u, "update function's argument")
			old.Name, old.UpdatedAt = want.Name, want.UpdatedAt
			return old, nil
		})
		e.returned(got, err, want, "UpdateUser")
		got, err = e.s.GetUser(e.ctx, "u1")
		e.returned(got, err, want, "GetUser after UpdateUser")
	}},
	{"UpdateErrorLeavesRecord", func(e *env) {
		u := e.user("u1")
		_, err := e.s.UpdateUser(e.ctx, "u1", func(old data.User) (data.User, error) {
			old.Name = "half-done"
			return old, errBoom
		})
		e.is(err, errBoom, "UpdateUser whose function fails")
		got, err := e.s.GetUser(e.ctx, "u1")
		e.returned(got, err, u, "user after a failed update")
	}},
	{"UpdateMissing", func(e *env) {
		_, err := e.s.UpdateUser(e.ctx, "nobody", keep[data.User])
		e.is(err, data.ErrNotFound, "UpdateUser nobody")
	}},
	{"UpdateMayNotChangeID", func(e *env) {
		u := e.user("u1")
		_, err := e.s.UpdateUser(e.ctx, "u1", func(old data.User) (data.User, error) {
			old.ID = "u2"
			return old, nil
		})
		e.is(err, data.ErrInvalid, "UpdateUser changing the id")
		got, err := e.s.GetUser(e.ctx, "u1")
		e.returned(got, err, u, "u1 after the refused update")
		_, err = e.s.GetUser(e.ctx, "u2")
		e.is(err, data.ErrNotFound, "GetUser u2")
	}},
	{"Delete", func(e *env) {
		e.user("u1")
		e.ok(e.s.DeleteUser(e.ctx, "u1"), "DeleteUser")
		_, err := e.s.GetUser(e.ctx, "u1")
		e.is(err, data.ErrNotFound, "GetUser after DeleteUser")
		e.is(e.s.DeleteUser(e.ctx, "u1"), data.ErrNotFound, "second DeleteUser")
		e.user("u1") // the id is free again
	}},
	{"ListOrderedByID", func(e *env) {
		got, err := e.s.ListUsers(e.ctx)
		e.ok(err, "ListUsers on an empty store")
		e.orderIs(ids(got, userID), nil, "ListUsers on an empty store")
		for _, id := range []string{"carol", "alice", "bob", "alice2"} {
			e.user(id)
		}
		got, err = e.s.ListUsers(e.ctx)
		e.ok(err, "ListUsers")
		e.orderIs(ids(got, userID), []string{"alice", "alice2", "bob", "carol"}, "ListUsers order")
		e.equal(got[2], e.newUser("bob"), "listed user bob")
	}},
}

var identityTests = []subtest{
	{"CreateGet", func(e *env) {
		e.user("u1")
		id := e.newIdentity("u1", "github", "1001")
		e.ok(e.s.CreateIdentity(e.ctx, id), "CreateIdentity")
		got, err := e.s.GetIdentity(e.ctx, "github", "1001")
		e.returned(got, err, id, "GetIdentity returns what CreateIdentity stored")
		_, err = e.s.GetIdentity(e.ctx, "gitlab", "1001")
		e.is(err, data.ErrNotFound, "GetIdentity of the same subject at another provider")
	}},
	{"CreateNeedsUser", func(e *env) {
		e.is(e.s.CreateIdentity(e.ctx, e.newIdentity("ghost", "github", "1")), data.ErrNotFound, "CreateIdentity for a missing user")
		_, err := e.s.GetIdentity(e.ctx, "github", "1")
		e.is(err, data.ErrNotFound, "GetIdentity after the refused create")
	}},
	{"CreateDuplicate", func(e *env) {
		e.user("u1")
		e.user("u2")
		e.ok(e.s.CreateIdentity(e.ctx, e.newIdentity("u1", "github", "1")), "CreateIdentity")
		e.is(e.s.CreateIdentity(e.ctx, e.newIdentity("u2", "github", "1")), data.ErrAlreadyExists,
			"CreateIdentity of a (provider, subject) another user has")
		e.ok(e.s.CreateIdentity(e.ctx, e.newIdentity("u2", "gitlab", "1")), "same subject at another provider")
	}},
	{"Update", func(e *env) {
		e.user("u1")
		id := e.newIdentity("u1", "github", "1")
		e.ok(e.s.CreateIdentity(e.ctx, id), "CreateIdentity")
		want := id
		want.LastLoginAt, want.Login = id.LastLoginAt.Add(time.Hour), "renamed"
		got, err := e.s.UpdateIdentity(e.ctx, "github", "1", func(old data.Identity) (data.Identity, error) {
			old.LastLoginAt, old.Login = want.LastLoginAt, want.Login
			return old, nil
		})
		e.returned(got, err, want, "UpdateIdentity result")
		got, err = e.s.GetIdentity(e.ctx, "github", "1")
		e.returned(got, err, want, "GetIdentity after UpdateIdentity")

		_, err = e.s.UpdateIdentity(e.ctx, "github", "1", updateFail[data.Identity])
		e.is(err, errBoom, "UpdateIdentity whose function fails")
		_, err = e.s.UpdateIdentity(e.ctx, "github", "1", func(old data.Identity) (data.Identity, error) {
			old.Subject = "2"
			return old, nil
		})
		e.is(err, data.ErrInvalid, "UpdateIdentity changing the subject")
		got, err = e.s.GetIdentity(e.ctx, "github", "1")
		e.returned(got, err, want, "identity after refused updates")
		_, err = e.s.UpdateIdentity(e.ctx, "github", "missing", keep[data.Identity])
		e.is(err, data.ErrNotFound, "UpdateIdentity of a missing identity")
	}},
	{"MoveToAnotherUser", func(e *env) {
		e.user("u1")
		e.user("u2")
		id := e.newIdentity("u1", "github", "1")
		e.ok(e.s.CreateIdentity(e.ctx, id), "CreateIdentity")
		_, err := e.s.UpdateIdentity(e.ctx, "github", "1", func(old data.Identity) (data.Identity, error) {
			old.UserID = "ghost"
			return old, nil
		})
		e.is(err, data.ErrNotFound, "moving an identity to a missing user")
		moved, err := e.s.UpdateIdentity(e.ctx, "github", "1", func(old data.Identity) (data.Identity, error) {
			old.UserID = "u2"
			return old, nil
		})
		e.ok(err, "moving an identity to u2")
		if moved.UserID != "u2" {
			e.t.Fatalf("moved identity has UserID %q, want u2", moved.UserID)
		}
		l1, err := e.s.ListIdentities(e.ctx, "u1")
		e.ok(err, "ListIdentities u1")
		l2, err := e.s.ListIdentities(e.ctx, "u2")
		e.ok(err, "ListIdentities u2")
		e.orderIs(ids(l1, identityKey), nil, "u1's identities after the move")
		e.orderIs(ids(l2, identityKey), []string{"github/1"}, "u2's identities after the move")
	}},
	{"Delete", func(e *env) {
		e.user("u1")
		e.ok(e.s.CreateIdentity(e.ctx, e.newIdentity("u1", "github", "1")), "CreateIdentity")
		e.ok(e.s.DeleteIdentity(e.ctx, "github", "1"), "DeleteIdentity")
		_, err := e.s.GetIdentity(e.ctx, "github", "1")
		e.is(err, data.ErrNotFound, "GetIdentity after DeleteIdentity")
		e.is(e.s.DeleteIdentity(e.ctx, "github", "1"), data.ErrNotFound, "second DeleteIdentity")
		l, err := e.s.ListIdentities(e.ctx, "u1")
		e.ok(err, "ListIdentities")
		e.orderIs(ids(l, identityKey), nil, "ListIdentities after DeleteIdentity")
	}},
	{"ListOrderedByProviderSubject", func(e *env) {
		e.user("u1")
		e.user("u2")
		for _, k := range [][2]string{{"gitlab", "9"}, {"github", "20"}, {"google", "1"}, {"github", "100"}} {
			e.ok(e.s.CreateIdentity(e.ctx, e.newIdentity("u1", k[0], k[1])), "CreateIdentity "+k[0]+"/"+k[1])
		}
		e.ok(e.s.CreateIdentity(e.ctx, e.newIdentity("u2", "github", "5")), "CreateIdentity for u2")
		got, err := e.s.ListIdentities(e.ctx, "u1")
		e.ok(err, "ListIdentities")
		e.orderIs(ids(got, identityKey), []string{"github/100", "github/20", "gitlab/9", "google/1"}, "ListIdentities order")
		e.equal(got[2], e.newIdentity("u1", "gitlab", "9"), "listed identity")
	}},
}

var cascadeTests = []subtest{
	{"DeletesOwnedRecords", func(e *env) {
		for _, u := range []string{"u1", "u2"} {
			e.user(u)
			e.ok(e.s.CreateIdentity(e.ctx, e.newIdentity(u, "github", "gh-"+u)), "CreateIdentity")
			e.ok(e.s.CreateIdentity(e.ctx, e.newIdentity(u, "google", "g-"+u)), "CreateIdentity")
			e.ok(e.s.CreateSession(e.ctx, e.newSession("s1-"+u, u, time.Hour)), "CreateSession")
			e.ok(e.s.CreateSession(e.ctx, e.newSession("s2-"+u, u, 2*time.Hour)), "CreateSession")
			e.ok(e.s.CreateRefreshFamily(e.ctx, e.newRefreshFamily("f-"+u, u, time.Hour)), "CreateRefreshFamily")
			e.ok(e.s.CreateWorker(e.ctx, e.newWorker("w-"+u, u)), "CreateWorker")
			e.ok(e.s.CreateConnection(e.ctx, e.newConnection(u, "github")), "CreateConnection")
			e.ok(e.s.CreateConnection(e.ctx, e.newConnection(u, "gitlab")), "CreateConnection")
			_, err := e.s.AppendAudit(e.ctx, data.AuditEvent{Action: "login", UserID: u})
			e.ok(err, "AppendAudit")
		}

		e.ok(e.s.DeleteUser(e.ctx, "u1"), "DeleteUser u1")

		_, err := e.s.GetUser(e.ctx, "u1")
		e.is(err, data.ErrNotFound, "GetUser u1")
		_, err = e.s.GetIdentity(e.ctx, "github", "gh-u1")
		e.is(err, data.ErrNotFound, "GetIdentity of u1")
		_, err = e.s.GetSession(e.ctx, "s1-u1")
		e.is(err, data.ErrNotFound, "GetSession of u1")
		_, err = e.s.GetRefreshFamily(e.ctx, "f-u1")
		e.is(err, data.ErrNotFound, "GetRefreshFamily of u1")
		_, err = e.s.GetWorker(e.ctx, "w-u1")
		e.is(err, data.ErrNotFound, "GetWorker of u1")
		_, err = e.s.GetConnection(e.ctx, "u1", "github")
		e.is(err, data.ErrNotFound, "GetConnection of u1")

		e.checkOwned("u1", 0)
		e.checkOwned("u2", 2)
		all, err := e.s.ListConnections(e.ctx, "")
		e.ok(err, "ListConnections of everyone")
		e.orderIs(ids(all, connectionKey), []string{"u2/github", "u2/gitlab"}, "connections left")

		audit, err := e.s.ListAudit(e.ctx, data.AuditQuery{UserID: "u1"})
		e.ok(err, "ListAudit u1")
		if len(audit) != 1 {
			e.t.Fatalf("u1 has %d audit events after DeleteUser, want 1: the audit trail is kept", len(audit))
		}

		// The id is free and the new user starts with nothing.
		e.user("u1")
		e.checkOwned("u1", 0)
		e.ok(e.s.CreateSession(e.ctx, e.newSession("s1-u1", "u1", time.Hour)), "CreateSession with a deleted user's session id")

		// Deleted sessions are gone, not merely expired: collecting later
		// counts only u2's and the new u1's.
		e.clock.Advance(3 * time.Hour)
		st, err := e.s.CollectExpired(e.ctx, e.clock.Now())
		e.ok(err, "CollectExpired")
		if st.Sessions != 3 || st.RefreshFamilies != 1 {
			e.t.Fatalf("CollectExpired after DeleteUser = %+v, want 3 sessions and 1 refresh family (u2's and the new u1's)", st)
		}
	}},
	{"DeleteMissing", func(e *env) {
		e.is(e.s.DeleteUser(e.ctx, "nobody"), data.ErrNotFound, "DeleteUser nobody")
	}},
}

// checkOwned checks how many identities, sessions, connections (n each)
// and refresh families and workers (n/2 each) the user has.
func (e *env) checkOwned(u string, n int) {
	e.t.Helper()
	idents, err := e.s.ListIdentities(e.ctx, u)
	e.ok(err, "ListIdentities "+u)
	sess, err := e.s.ListSessions(e.ctx, u)
	e.ok(err, "ListSessions "+u)
	fams, err := e.s.ListRefreshFamilies(e.ctx, u)
	e.ok(err, "ListRefreshFamilies "+u)
	ws, err := e.s.ListWorkers(e.ctx, u)
	e.ok(err, "ListWorkers "+u)
	conns, err := e.s.ListConnections(e.ctx, u)
	e.ok(err, "ListConnections "+u)
	got := []int{len(idents), len(sess), len(fams), len(ws), len(conns)}
	want := []int{n, n, n / 2, n / 2, n}
	e.equal(got, want, "counts of "+u+"'s identities, sessions, refresh families, workers, connections")
}

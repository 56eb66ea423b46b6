package conformance

import (
	"time"

	"github.com/vintner/arbor/data"
)

// The fields operators' controls and memberships keep on users and
// identities (issue 19) are stored like every other: written, read back,
// updated and cleared again.
var accountFieldTests = []subtest{
	{"UserDisabledAndMemberships", func(e *env) {
		u := e.newUser("u1")
		u.Disabled, u.DisabledAt, u.DisabledBy, u.DisabledReason = true, e.clock.Now(), "operator:alice", "left the company"
		u.Memberships = data.Memberships{
			Groups:       []string{"github:vintner", "github:vintner/platform", "gitlab:grp/sub"},
			Restricted:   []string{"github:secretive"},
			CheckedAt:    e.clock.Now().Add(-time.Minute),
			FailingSince: e.clock.Now().Add(-time.Second),
			LastError:    "github: 502 from api.github.com",
		}
		e.ok(e.s.CreateUser(e.ctx, u), "CreateUser")
		got, err := e.s.GetUser(e.ctx, "u1")
		e.returned(got, err, u, "GetUser of a disabled user with memberships")

		enabled, err := e.s.UpdateUser(e.ctx, "u1", func(u data.User) (data.User, error) {
			u.Disabled, u.DisabledAt, u.DisabledBy, u.DisabledReason = false, time.Time{}, "", ""
			u.Memberships.Groups, u.Memberships.FailingSince, u.Memberships.LastError = nil, time.Time{}, ""
			return u, nil
		})
		e.ok(err, "UpdateUser enabling it and clearing its groups")
		want := u
		want.Disabled, want.DisabledAt, want.DisabledBy, want.DisabledReason = false, time.Time{}, "", ""
		want.Memberships.Groups, want.Memberships.FailingSince, want.Memberships.LastError = nil, time.Time{}, ""
		e.equal(enabled, want, "UpdateUser result")
		listed, err := e.s.ListUsers(e.ctx)
		e.returned(listed, err, []data.User{want}, "ListUsers")
	}},
	{"IdentityGrant", func(e *env) {
		e.user("u1")
		id := e.newIdentity("u1", "github", "42")
		id.Grant, id.GrantExpiresAt = []byte("sealed\x00grant"), e.clock.Now().Add(8*time.Hour)
		e.ok(e.s.CreateIdentity(e.ctx, id), "CreateIdentity with a grant")
		got, err := e.s.GetIdentity(e.ctx, "github", "42")
		e.returned(got, err, id, "GetIdentity")
		dropped, err := e.s.UpdateIdentity(e.ctx, "github", "42", func(i data.Identity) (data.Identity, error) {
			i.Grant, i.GrantExpiresAt = nil, time.Time{}
			return i, nil
		})
		e.ok(err, "UpdateIdentity dropping the grant")
		want := id
		want.Grant, want.GrantExpiresAt = nil, time.Time{}
		e.equal(dropped, want, "UpdateIdentity result")
		listed, err := e.s.ListIdentities(e.ctx, "u1")
		e.returned(listed, err, []data.Identity{want}, "ListIdentities")
	}},
	{"ListEveryIdentity", func(e *env) {
		all := func(what string, want ...string) {
			e.t.Helper()
			got, err := e.s.ListIdentities(e.ctx, "")
			e.ok(err, "ListIdentities of everyone "+what)
			e.orderIs(ids(got, func(i data.Identity) string { return i.UserID + ":" + identityKey(i) }), want, "ListIdentities(\"\") "+what)
		}
		all("in an empty store")
		e.user("u1")
		e.user("u2")
		e.user("u0")
		for _, id := range []data.Identity{
			e.newIdentity("u2", "github", "7"), e.newIdentity("u1", "gitlab", "3"), e.newIdentity("u1", "github", "9"),
			e.newIdentity("u1", "github", "10"), e.newIdentity("u0", "google", "a"),
		} {
			e.ok(e.s.CreateIdentity(e.ctx, id), "CreateIdentity "+identityKey(id))
		}
		all("ordered by user, provider, subject",
			"u0:google/a", "u1:github/10", "u1:github/9", "u1:gitlab/3", "u2:github/7")
		_, err := e.s.UpdateIdentity(e.ctx, "gitlab", "3", func(i data.Identity) (data.Identity, error) { i.UserID = "u2"; return i, nil })
		e.ok(err, "UpdateIdentity moving gitlab/3 to u2")
		e.ok(e.s.DeleteUser(e.ctx, "u1"), "DeleteUser u1")
		all("after a move and a DeleteUser", "u0:google/a", "u2:github/7", "u2:gitlab/3")
	}},
}

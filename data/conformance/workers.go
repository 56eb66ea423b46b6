package conformance

import (
	"fmt"
	"strconv"

	"github.com/vintner/arbor/data"
)

var workerTests = ownedTests(workersOwned, nil)

var connectionTests = []subtest{
	{"CreateGet", func(e *env) {
		e.user("u1")
		c := e.newConnection("u1", "github")
		c.Version = 7 // the store sets 1
		e.ok(e.s.CreateConnection(e.ctx, c), "CreateConnection")
		want := c
		want.Version = 1
		got, err := e.s.GetConnection(e.ctx, "u1", "github")
		e.returned(got, err, want, "GetConnection returns what CreateConnection stored, with Version 1")
		e.is(e.s.CreateConnection(e.ctx, c), data.ErrAlreadyExists, "second CreateConnection to the same provider")
		e.is(e.s.CreateConnection(e.ctx, e.newConnection("ghost", "github")), data.ErrNotFound, "CreateConnection for a missing user")
		_, err = e.s.GetConnection(e.ctx, "u1", "gitlab")
		e.is(err, data.ErrNotFound, "GetConnection to another provider")
	}},
	{"UpdateIncrementsVersion", func(e *env) {
		e.user("u1")
		c := e.newConnection("u1", "gitlab")
		e.ok(e.s.CreateConnection(e.ctx, c), "CreateConnection")
		for v := uint64(1); v <= 3; v++ {
			got, err := e.s.UpdateConnection(e.ctx, "u1", "gitlab", func(old data.Connection) (data.Connection, error) {
				if old.Version != v {
					return old, fmt.Errorf("update function sees Version %d, want %d", old.Version, v)
				}
				old.Sealed = []byte("rotated-" + strconv.FormatUint(v, 10))
				old.Version = 1000 // ignored: the store counts
				return old, nil
			})
			e.ok(err, "UpdateConnection")
			if got.Version != v+1 || string(got.Sealed) != "rotated-"+strconv.FormatUint(v, 10) {
				e.t.Fatalf("UpdateConnection #%d returned Version %d, Sealed %q; want %d, %q", v, got.Version, got.Sealed, v+1, "rotated-"+strconv.FormatUint(v, 10))
			}
		}
		before, err := e.s.GetConnection(e.ctx, "u1", "gitlab")
		e.ok(err, "GetConnection")
		_, err = e.s.UpdateConnection(e.ctx, "u1", "gitlab", func(old data.Connection) (data.Connection, error) {
			old.Status = data.ConnectionNeedsReconnect
			return old, errBoom
		})
		e.is(err, errBoom, "UpdateConnection whose function fails")
		_, err = e.s.UpdateConnection(e.ctx, "u1", "gitlab", func(old data.Connection) (data.Connection, error) {
			old.Provider = "github"
			return old, nil
		})
		e.is(err, data.ErrInvalid, "UpdateConnection changing the provider")
		after, err := e.s.GetConnection(e.ctx, "u1", "gitlab")
		e.returned(after, err, before, "connection after refused updates (Version unchanged)")
		if after.Version != 4 {
			e.t.Fatalf("Version after three updates is %d, want 4", after.Version)
		}
		_, err = e.s.UpdateConnection(e.ctx, "u1", "bitbucket", keep[data.Connection])
		e.is(err, data.ErrNotFound, "UpdateConnection of a missing connection")
	}},
	{"ConcurrentUpdatesLoseNothing", func(e *env) {
		const n = 100
		e.user("u1")
		e.ok(e.s.CreateConnection(e.ctx, e.newConnection("u1", "github")), "CreateConnection")
		errs := make(chan error, n)
		concurrently(n, func(int) {
			_, err := e.s.UpdateConnection(e.ctx, "u1", "github", func(old data.Connection) (data.Connection, error) {
				count, err := strconv.Atoi(old.AccountID)
				if err != nil {
					return old, err
				}
				old.AccountID = strconv.Itoa(count + 1)
				return old, nil
			})
			if err != nil {
				errs <- err
			}
		})
		close(errs)
		for err := range errs {
			e.t.Errorf("UpdateConnection: %v", err)
		}
		got, err := e.s.GetConnection(e.ctx, "u1", "github")
		e.ok(err, "GetConnection")
		if got.Version != n+1 || got.AccountID != strconv.Itoa(n) {
			e.t.Fatalf("after %d concurrent increments: Version %d and counter %s, want %d and %d", n, got.Version, got.AccountID, n+1, n)
		}
	}},
	{"Delete", func(e *env) {
		e.user("u1")
		e.ok(e.s.CreateConnection(e.ctx, e.newConnection("u1", "github")), "CreateConnection")
		e.ok(e.s.DeleteConnection(e.ctx, "u1", "github"), "DeleteConnection")
		_, err := e.s.GetConnection(e.ctx, "u1", "github")
		e.is(err, data.ErrNotFound, "GetConnection after DeleteConnection")
		e.is(e.s.DeleteConnection(e.ctx, "u1", "github"), data.ErrNotFound, "second DeleteConnection")
		e.ok(e.s.CreateConnection(e.ctx, e.newConnection("u1", "github")), "reconnecting")
		got, err := e.s.GetConnection(e.ctx, "u1", "github")
		e.ok(err, "GetConnection")
		if got.Version != 1 {
			e.t.Fatalf("a new connection after a delete has Version %d, want 1", got.Version)
		}
	}},
	{"List", func(e *env) {
		for _, u := range []string{"u2", "u1", "u10"} {
			e.user(u)
			for _, p := range []string{"gitlab", "bitbucket", "github"} {
				e.ok(e.s.CreateConnection(e.ctx, e.newConnection(u, p)), "CreateConnection "+u+"/"+p)
			}
		}
		got, err := e.s.ListConnections(e.ctx, "u1")
		e.ok(err, "ListConnections u1")
		e.orderIs(ids(got, connectionKey), []string{"u1/bitbucket", "u1/github", "u1/gitlab"}, "ListConnections u1 order")
		e.equal(got[1], e.newConnection("u1", "github"), "listed connection")
		all, err := e.s.ListConnections(e.ctx, "")
		e.ok(err, "ListConnections of everyone")
		e.orderIs(ids(all, connectionKey), []string{
			"u1/bitbucket", "u1/github", "u1/gitlab",
			"u10/bitbucket", "u10/github", "u10/gitlab",
			"u2/bitbucket", "u2/github", "u2/gitlab",
		}, "ListConnections of everyone: order by user, provider")
		none, err := e.s.ListConnections(e.ctx, "nobody")
		e.ok(err, "ListConnections of a user without connections")
		e.orderIs(ids(none, connectionKey), nil, "ListConnections nobody")
	}},
}

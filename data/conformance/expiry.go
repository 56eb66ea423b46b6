package conformance

import (
	"strconv"
	"time"

	"github.com/vintner/arbor/data"
)

// expiring is one resource with a lifetime, seen through the calls the
// expiry tests make.
type expiring struct {
	name string
	// create stores a record with key id that expires after ttl.
	create func(e *env, id string, ttl time.Duration) error
	get    func(e *env, id string) error
	// update is a no-op update, or nil for single-use records.
	update func(e *env, id string) error
	// list reports the ids a listing shows, or nil if there is no listing.
	list func(e *env) ([]string, error)
	// count picks this resource's count from CollectStats.
	count func(data.CollectStats) int
}

var expiringResources = []expiring{
	{
		name: "Session",
		create: func(e *env, id string, ttl time.Duration) error {
			return e.s.CreateSession(e.ctx, e.newSession(id, "u1", ttl))
		},
		get: func(e *env, id string) error { _, err := e.s.GetSession(e.ctx, id); return err },
		update: func(e *env, id string) error {
			_, err := e.s.UpdateSession(e.ctx, id, keep[data.Session])
			return err
		},
		list: func(e *env) ([]string, error) {
			l, err := e.s.ListSessions(e.ctx, "u1")
			return ids(l, sessionID), err
		},
		count: func(s data.CollectStats) int { return s.Sessions },
	},
	{
		name: "OAuthState",
		create: func(e *env, id string, ttl time.Duration) error {
			return e.s.CreateOAuthState(e.ctx, e.newOAuthState(id, ttl))
		},
		// Consuming is the only read; a consumed state is gone, so the
		// expiry tests read it last.
		get:   func(e *env, id string) error { _, err := e.s.ConsumeOAuthState(e.ctx, id); return err },
		count: func(s data.CollectStats) int { return s.OAuthStates },
	},
	{
		name: "DeviceCode",
		create: func(e *env, id string, ttl time.Duration) error {
			return e.s.CreateDeviceCode(e.ctx, e.newDeviceCode(id, "UC-"+id, ttl))
		},
		get: func(e *env, id string) error {
			if _, err := e.s.GetDeviceCode(e.ctx, id); err != nil {
				return err
			}
			_, err := e.s.GetDeviceCodeByUserCode(e.ctx, "UC-"+id)
			return err
		},
		update: func(e *env, id string) error {
			_, err := e.s.UpdateDeviceCode(e.ctx, id, keep[data.DeviceCode])
			return err
		},
		count: func(s data.CollectStats) int { return s.DeviceCodes },
	},
	{
		name: "RefreshFamily",
		create: func(e *env, id string, ttl time.Duration) error {
			return e.s.CreateRefreshFamily(e.ctx, e.newRefreshFamily(id, "u1", ttl))
		},
		get: func(e *env, id string) error { _, err := e.s.GetRefreshFamily(e.ctx, id); return err },
		update: func(e *env, id string) error {
			_, err := e.s.UpdateRefreshFamily(e.ctx, id, keep[data.RefreshFamily])
			return err
		},
		list: func(e *env) ([]string, error) {
			l, err := e.s.ListRefreshFamilies(e.ctx, "u1")
			return ids(l, familyID), err
		},
		count: func(s data.CollectStats) int { return s.RefreshFamilies },
	},
}

// expiryTests check that a record is gone for readers from the instant its
// ExpiresAt is reached, before any collection.
var expiryTests = func() []subtest {
	var tests []subtest
	for _, r := range expiringResources {
		tests = append(tests, subtest{r.name, func(e *env) {
			e.user("u1")
			e.ok(r.create(e, "short", 10*time.Minute), "create short-lived "+r.name)
			e.ok(r.create(e, "long", time.Hour), "create long-lived "+r.name)
			expiry := e.clock.Now().Add(10 * time.Minute)

			e.clock.Set(expiry.Add(-time.Nanosecond))
			if r.update != nil {
				e.ok(r.update(e, "short"), "update one nanosecond before expiry")
			}
			if r.list != nil {
				l, err := r.list(e)
				e.ok(err, "list before expiry")
				e.orderIs(l, []string{"long", "short"}, "listing one nanosecond before expiry (equal CreatedAt: by id)")
			}

			e.clock.Set(expiry) // ExpiresAt <= now: expired
			if r.update != nil {
				e.is(r.update(e, "short"), data.ErrNotFound, "update at ExpiresAt")
			}
			if r.list != nil {
				l, err := r.list(e)
				e.ok(err, "list at expiry")
				e.orderIs(l, []string{"long"}, "listing at ExpiresAt omits the expired record")
			}
			e.is(r.get(e, "short"), data.ErrNotFound, "read at ExpiresAt")
			e.clock.Advance(time.Minute)
			e.is(r.get(e, "short"), data.ErrNotFound, "read after ExpiresAt")
			e.ok(r.get(e, "long"), "read of the record that lives on")

			// An expired record no longer exists: its key can be used again.
			e.ok(r.create(e, "short", 10*time.Minute), "create again with an expired record's key")
			e.ok(r.get(e, "short"), "read of the new record")
		}})
	}
	return tests
}()

var collectorTests = []subtest{
	{"DeletesExactlyTheExpired", func(e *env) {
		e.user("u1")
		t0 := e.clock.Now()
		for _, r := range expiringResources {
			e.ok(r.create(e, "soon", 5*time.Minute), "create "+r.name+" soon")
			e.ok(r.create(e, "later", 20*time.Minute), "create "+r.name+" later")
			e.ok(r.create(e, "at", 10*time.Minute), "create "+r.name+" at (expires at the collection instant)")
		}
		// Records whose expiry changed or that were deleted before it must
		// not be counted, nor left behind by the collector.
		e.ok(e.s.CreateSession(e.ctx, e.newSession("extended", "u1", 5*time.Minute)), "CreateSession extended")
		_, err := e.s.UpdateSession(e.ctx, "extended", func(s data.Session) (data.Session, error) {
			s.ExpiresAt = t0.Add(30 * time.Minute)
			return s, nil
		})
		e.ok(err, "UpdateSession extending the expiry")
		e.ok(e.s.CreateSession(e.ctx, e.newSession("shortened", "u1", time.Hour)), "CreateSession shortened")
		_, err = e.s.UpdateSession(e.ctx, "shortened", func(s data.Session) (data.Session, error) {
			s.ExpiresAt = t0.Add(time.Minute)
			return s, nil
		})
		e.ok(err, "UpdateSession shortening the expiry")
		e.ok(e.s.CreateSession(e.ctx, e.newSession("deleted", "u1", 5*time.Minute)), "CreateSession deleted")
		e.ok(e.s.DeleteSession(e.ctx, "deleted"), "DeleteSession")
		e.ok(e.s.CreateOAuthState(e.ctx, e.newOAuthState("consumed", 5*time.Minute)), "CreateOAuthState consumed")
		_, err = e.s.ConsumeOAuthState(e.ctx, "consumed")
		e.ok(err, "ConsumeOAuthState")
		e.ok(e.s.CreateDeviceCode(e.ctx, e.newDeviceCode("consumed", "UC-consumed", 5*time.Minute)), "CreateDeviceCode consumed")
		_, err = e.s.ConsumeDeviceCode(e.ctx, "consumed", func(data.DeviceCode) error { return nil })
		e.ok(err, "ConsumeDeviceCode")

		e.clock.Set(t0.Add(10 * time.Minute))
		st, err := e.s.CollectExpired(e.ctx, e.clock.Now())
		e.ok(err, "CollectExpired")
		want := data.CollectStats{Sessions: 3, OAuthStates: 2, DeviceCodes: 3, RefreshFamilies: 2}
		e.equal(st, want, "CollectExpired at t0+10m: soon and at of each kind, the shortened session and the consumed device code")
		if st.Total() != 10 {
			e.t.Fatalf("CollectStats.Total() = %d, want 10", st.Total())
		}
		st, err = e.s.CollectExpired(e.ctx, e.clock.Now())
		e.returned(st, err, data.CollectStats{}, "second CollectExpired at the same instant deletes nothing")

		// Turn the clock back: a record the collector deleted is gone, one
		// it kept is still there.
		e.clock.Set(t0)
		for _, r := range expiringResources {
			if r.name != "OAuthState" { // reading a state consumes it
				e.is(r.get(e, "soon"), data.ErrNotFound, r.name+" soon, collected, read with the clock turned back")
				e.is(r.get(e, "at"), data.ErrNotFound, r.name+" at, collected, read with the clock turned back")
				e.ok(r.get(e, "later"), r.name+" later, not collected")
			}
			if r.list != nil {
				l, err := r.list(e)
				e.ok(err, "list "+r.name)
				want := []string{"later"}
				if r.name == "Session" {
					want = []string{"extended", "later"} // equal CreatedAt: by id
				}
				e.orderIs(l, want, r.name+" listing after collection, clock turned back")
			}
		}
		_, err = e.s.GetSession(e.ctx, "shortened")
		e.is(err, data.ErrNotFound, "shortened session, collected")
		_, err = e.s.GetDeviceCodeByUserCode(e.ctx, "UC-soon")
		e.is(err, data.ErrNotFound, "user code of a collected device code")
		for _, id := range []string{"soon", "at"} {
			_, err = e.s.ConsumeOAuthState(e.ctx, id)
			e.is(err, data.ErrNotFound, "collected OAuth state "+id)
		}

		e.clock.Set(t0.Add(25 * time.Minute))
		st, err = e.s.CollectExpired(e.ctx, e.clock.Now())
		e.returned(st, err, data.CollectStats{Sessions: 1, OAuthStates: 1, DeviceCodes: 1, RefreshFamilies: 1}, "CollectExpired at t0+25m: the later ones")
		e.clock.Set(t0)
		_, err = e.s.GetSession(e.ctx, "extended")
		e.ok(err, "extended session (expires at t0+30m) survives")
	}},
	{"Empty", func(e *env) {
		st, err := e.s.CollectExpired(e.ctx, e.clock.Now().Add(24*time.Hour))
		e.returned(st, err, data.CollectStats{}, "CollectExpired on an empty store")
	}},
	{"Many", func(e *env) {
		// More than one batch of deletions, if the backend works in batches.
		const n = 2500
		e.user("u1")
		errs := make([]error, n)
		concurrently(64, func(w int) {
			for i := w; i < n; i += 64 {
				ttl := time.Minute
				if i%5 == 0 {
					ttl = time.Hour
				}
				errs[i] = e.s.CreateSession(e.ctx, e.newSession("s"+strconv.Itoa(i), "u1", ttl))
			}
		})
		for _, err := range errs {
			e.ok(err, "CreateSession")
		}
		st, err := e.s.CollectExpired(e.ctx, e.clock.Now().Add(30*time.Minute))
		e.ok(err, "CollectExpired")
		if st.Sessions != n*4/5 || st.Total() != n*4/5 {
			e.t.Fatalf("CollectExpired = %+v, want %d sessions", st, n*4/5)
		}
		l, err := e.s.ListSessions(e.ctx, "u1")
		e.ok(err, "ListSessions")
		if len(l) != n/5 {
			e.t.Fatalf("ListSessions after collection: %d sessions, want %d", len(l), n/5)
		}
	}},
}

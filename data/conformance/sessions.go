package conformance

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/vintner/arbor/data"
)

var sessionTests = ownedTests(sessionsOwned, []subtest{
	{"UpdateExtendsLife", func(e *env) {
		e.user("u1")
		s := e.newSession("s1", "u1", time.Hour)
		e.ok(e.s.CreateSession(e.ctx, s), "CreateSession")
		e.clock.Advance(10 * time.Minute)
		_, err := e.s.UpdateSession(e.ctx, "s1", func(old data.Session) (data.Session, error) {
			old.ExpiresAt = e.clock.Now().Add(time.Hour)
			return old, nil
		})
		e.ok(err, "UpdateSession")
		// Past the first expiry, the session lives on with the new one.
		e.clock.Advance(55 * time.Minute)
		_, err = e.s.GetSession(e.ctx, "s1")
		e.ok(err, "GetSession past the original expiry, before the extended one")
	}},
	{"UpdateMayNotClearExpiry", func(e *env) {
		e.user("u1")
		s := e.newSession("s1", "u1", time.Hour)
		e.ok(e.s.CreateSession(e.ctx, s), "CreateSession")
		_, err := e.s.UpdateSession(e.ctx, "s1", func(old data.Session) (data.Session, error) {
			old.ExpiresAt = time.Time{}
			return old, nil
		})
		e.is(err, data.ErrInvalid, "UpdateSession clearing ExpiresAt")
		got, err := e.s.GetSession(e.ctx, "s1")
		e.returned(got, err, s, "session after the refused update")
	}},
})

var oauthStateTests = []subtest{
	{"CreateConsume", func(e *env) {
		st := e.newOAuthState("state-1", 10*time.Minute)
		e.ok(e.s.CreateOAuthState(e.ctx, st), "CreateOAuthState")
		e.is(e.s.CreateOAuthState(e.ctx, st), data.ErrAlreadyExists, "second CreateOAuthState")
		got, err := e.s.ConsumeOAuthState(e.ctx, "state-1")
		e.returned(got, err, st, "ConsumeOAuthState returns what CreateOAuthState stored")
		_, err = e.s.ConsumeOAuthState(e.ctx, "state-1")
		e.is(err, data.ErrNotFound, "second ConsumeOAuthState")
		_, err = e.s.ConsumeOAuthState(e.ctx, "never-made")
		e.is(err, data.ErrNotFound, "ConsumeOAuthState of an unknown state")
	}},
	{"GetDoesNotConsume", func(e *env) {
		st := e.newOAuthState("state-1", 10*time.Minute)
		e.ok(e.s.CreateOAuthState(e.ctx, st), "CreateOAuthState")
		for i := 0; i < 2; i++ {
			got, err := e.s.GetOAuthState(e.ctx, "state-1")
			e.returned(got, err, st, "GetOAuthState returns what CreateOAuthState stored")
		}
		_, err := e.s.GetOAuthState(e.ctx, "never-made")
		e.is(err, data.ErrNotFound, "GetOAuthState of an unknown state")
		got, err := e.s.ConsumeOAuthState(e.ctx, "state-1")
		e.returned(got, err, st, "ConsumeOAuthState after GetOAuthState")
		_, err = e.s.GetOAuthState(e.ctx, "state-1")
		e.is(err, data.ErrNotFound, "GetOAuthState of a consumed state")

		e.ok(e.s.CreateOAuthState(e.ctx, e.newOAuthState("state-2", 10*time.Minute)), "CreateOAuthState state-2")
		e.clock.Advance(10 * time.Minute)
		_, err = e.s.GetOAuthState(e.ctx, "state-2")
		e.is(err, data.ErrNotFound, "GetOAuthState at its expiry")
	}},
	{"ConcurrentConsumeHasOneWinner", func(e *env) {
		const n = 100
		e.ok(e.s.CreateOAuthState(e.ctx, e.newOAuthState("state-1", 10*time.Minute)), "CreateOAuthState")
		var wins, notFound atomic.Int32
		errs := make(chan error, n)
		concurrently(n, func(int) {
			st, err := e.s.ConsumeOAuthState(e.ctx, "state-1")
			switch {
			case err == nil && st.ID == "state-1":
				wins.Add(1)
			case errors.Is(err, data.ErrNotFound):
				notFound.Add(1)
			default:
				errs <- fmt.Errorf("ConsumeOAuthState returned (%+v, %v)", st, err)
			}
		})
		close(errs)
		for err := range errs {
			e.t.Error(err)
		}
		if wins.Load() != 1 || notFound.Load() != n-1 {
			e.t.Fatalf("%d concurrent consumers: %d won and %d got ErrNotFound, want 1 and %d", n, wins.Load(), notFound.Load(), n-1)
		}
	}},
}

var deviceCodeTests = []subtest{
	{"CreateGet", func(e *env) {
		d := e.newDeviceCode("dc-1", "BCDF-GHJK", 10*time.Minute)
		e.ok(e.s.CreateDeviceCode(e.ctx, d), "CreateDeviceCode")
		got, err := e.s.GetDeviceCode(e.ctx, "dc-1")
		e.returned(got, err, d, "GetDeviceCode returns what CreateDeviceCode stored")
		got, err = e.s.GetDeviceCodeByUserCode(e.ctx, "BCDF-GHJK")
		e.returned(got, err, d, "GetDeviceCodeByUserCode")
		_, err = e.s.GetDeviceCodeByUserCode(e.ctx, "XXXX-XXXX")
		e.is(err, data.ErrNotFound, "GetDeviceCodeByUserCode of an unknown user code")
		_, err = e.s.GetDeviceCode(e.ctx, "dc-2")
		e.is(err, data.ErrNotFound, "GetDeviceCode of an unknown code")

		cli := e.newDeviceCode("dc-cli", "", 10*time.Minute)
		cli.Kind = data.DeviceKindCLI
		e.ok(e.s.CreateDeviceCode(e.ctx, cli), "CreateDeviceCode without a user code")
		got, err = e.s.GetDeviceCode(e.ctx, "dc-cli")
		e.returned(got, err, cli, "GetDeviceCode dc-cli")
	}},
	{"CreateDuplicate", func(e *env) {
		e.ok(e.s.CreateDeviceCode(e.ctx, e.newDeviceCode("dc-1", "BCDF-GHJK", 10*time.Minute)), "CreateDeviceCode")
		e.is(e.s.CreateDeviceCode(e.ctx, e.newDeviceCode("dc-1", "LMNP-QRST", 10*time.Minute)), data.ErrAlreadyExists, "CreateDeviceCode with a taken code")
		e.is(e.s.CreateDeviceCode(e.ctx, e.newDeviceCode("dc-2", "BCDF-GHJK", 10*time.Minute)), data.ErrAlreadyExists, "CreateDeviceCode with a taken user code")
		_, err := e.s.GetDeviceCode(e.ctx, "dc-2")
		e.is(err, data.ErrNotFound, "GetDeviceCode after the refused create")
		got, err := e.s.GetDeviceCodeByUserCode(e.ctx, "BCDF-GHJK")
		e.ok(err, "GetDeviceCodeByUserCode")
		if got.Code != "dc-1" {
			e.t.Fatalf("user code BCDF-GHJK leads to %q, want dc-1", got.Code)
		}
		e.ok(e.s.CreateDeviceCode(e.ctx, e.newDeviceCode("dc-3", "", 10*time.Minute)), "CreateDeviceCode without a user code")
		e.ok(e.s.CreateDeviceCode(e.ctx, e.newDeviceCode("dc-4", "", 10*time.Minute)), "a second one without a user code")
	}},
	{"UserCodeReusableAfterExpiry", func(e *env) {
		e.ok(e.s.CreateDeviceCode(e.ctx, e.newDeviceCode("dc-old", "BCDF-GHJK", 10*time.Minute)), "CreateDeviceCode dc-old")
		e.clock.Advance(10 * time.Minute)
		_, err := e.s.GetDeviceCodeByUserCode(e.ctx, "BCDF-GHJK")
		e.is(err, data.ErrNotFound, "GetDeviceCodeByUserCode of an expired device code")
		d := e.newDeviceCode("dc-new", "BCDF-GHJK", 10*time.Minute)
		e.ok(e.s.CreateDeviceCode(e.ctx, d), "CreateDeviceCode reusing an expired device code's user code")
		got, err := e.s.GetDeviceCodeByUserCode(e.ctx, "BCDF-GHJK")
		e.returned(got, err, d, "the user code leads to the new device code")
		// Collecting the old one must not take the user code from the new.
		st, err := e.s.CollectExpired(e.ctx, e.clock.Now())
		e.ok(err, "CollectExpired")
		if st.DeviceCodes != 1 {
			e.t.Fatalf("CollectExpired = %+v, want 1 device code", st)
		}
		got, err = e.s.GetDeviceCodeByUserCode(e.ctx, "BCDF-GHJK")
		e.returned(got, err, d, "the user code still leads to the new device code")
	}},
	{"Update", func(e *env) {
		e.user("u1")
		d := e.newDeviceCode("dc-1", "BCDF-GHJK", 10*time.Minute)
		e.ok(e.s.CreateDeviceCode(e.ctx, d), "CreateDeviceCode")
		e.clock.Advance(time.Minute)
		want := d
		want.State, want.UserID, want.ApprovedAt = data.DeviceApproved, "u1", e.clock.Now()
		want.VerificationHash = "hmac-of-code"
		got, err := e.s.UpdateDeviceCode(e.ctx, "dc-1", func(old data.DeviceCode) (data.DeviceCode, error) {
			e.equal(old, d, "update function's argument")
			old.State, old.UserID, old.ApprovedAt, old.VerificationHash = want.State, want.UserID, want.ApprovedAt, want.VerificationHash
			return old, nil
		})
		e.returned(got, err, want, "UpdateDeviceCode")
		got, err = e.s.GetDeviceCode(e.ctx, "dc-1")
		e.returned(got, err, want, "GetDeviceCode after UpdateDeviceCode")

		_, err = e.s.UpdateDeviceCode(e.ctx, "dc-1", func(old data.DeviceCode) (data.DeviceCode, error) {
			old.FailedAttempts++
			return old, errBoom
		})
		e.is(err, errBoom, "UpdateDeviceCode whose function fails")
		got, err = e.s.GetDeviceCode(e.ctx, "dc-1")
		e.returned(got, err, want, "device code after a failed update")
		_, err = e.s.UpdateDeviceCode(e.ctx, "dc-missing", keep[data.DeviceCode])
		e.is(err, data.ErrNotFound, "UpdateDeviceCode of a missing code")
	}},
	{"Consume", func(e *env) {
		d := e.newDeviceCode("dc-1", "BCDF-GHJK", 10*time.Minute)
		d.State, d.UserID = data.DeviceApproved, "u1"
		e.ok(e.s.CreateDeviceCode(e.ctx, d), "CreateDeviceCode")
		e.clock.Advance(2 * time.Minute)

		_, err := e.s.ConsumeDeviceCode(e.ctx, "dc-1", func(cur data.DeviceCode) error {
			e.equal(cur, d, "check function's argument")
			return errBoom
		})
		e.is(err, errBoom, "ConsumeDeviceCode whose check fails")
		got, err := e.s.GetDeviceCode(e.ctx, "dc-1")
		e.returned(got, err, d, "device code after a refused consume")

		want := d
		want.ConsumedAt = e.clock.Now()
		got, err = e.s.ConsumeDeviceCode(e.ctx, "dc-1", func(data.DeviceCode) error { return nil })
		e.returned(got, err, want, "ConsumeDeviceCode result (ConsumedAt is the store's now)")
		got, err = e.s.GetDeviceCode(e.ctx, "dc-1")
		e.returned(got, err, want, "GetDeviceCode after consumption")

		_, err = e.s.ConsumeDeviceCode(e.ctx, "dc-1", func(data.DeviceCode) error {
			e.t.Error("the check function ran for a consumed device code")
			return nil
		})
		e.is(err, data.ErrConsumed, "second ConsumeDeviceCode")
		_, err = e.s.UpdateDeviceCode(e.ctx, "dc-1", keep[data.DeviceCode])
		e.is(err, data.ErrConsumed, "UpdateDeviceCode of a consumed code")
		_, err = e.s.ConsumeDeviceCode(e.ctx, "dc-missing", func(data.DeviceCode) error { return nil })
		e.is(err, data.ErrNotFound, "ConsumeDeviceCode of a missing code")
	}},
	{"ConcurrentConsumeHasOneWinner", func(e *env) {
		const n = 100
		e.ok(e.s.CreateDeviceCode(e.ctx, e.newDeviceCode("dc-1", "BCDF-GHJK", 10*time.Minute)), "CreateDeviceCode")
		var wins, consumed atomic.Int32
		errs := make(chan error, n)
		concurrently(n, func(int) {
			d, err := e.s.ConsumeDeviceCode(e.ctx, "dc-1", func(data.DeviceCode) error { return nil })
			switch {
			case err == nil && d.Code == "dc-1" && !d.ConsumedAt.IsZero():
				wins.Add(1)
			case errors.Is(err, data.ErrConsumed):
				consumed.Add(1)
			default:
				errs <- fmt.Errorf("ConsumeDeviceCode returned (%+v, %v)", d, err)
			}
		})
		close(errs)
		for err := range errs {
			e.t.Error(err)
		}
		if wins.Load() != 1 || consumed.Load() != n-1 {
			e.t.Fatalf("%d concurrent consumers: %d won and %d got ErrConsumed, want 1 and %d", n, wins.Load(), consumed.Load(), n-1)
		}
	}},
	// A check and the count it leads to are one step: of many concurrent
	// updates that each refuse once a counter reached a limit and
	// otherwise add one (the CLI login's wrong-code counter), exactly limit
	// commit. The result of the committed call of fn is what the caller
	// sees, however often fn ran.
	{"ConcurrentCheckAndCount", func(e *env) {
		const n, limit = 200, 5
		e.ok(e.s.CreateDeviceCode(e.ctx, e.newDeviceCode("dc-1", "BCDF-GHJK", 10*time.Minute)), "CreateDeviceCode")
		var counted, refused atomic.Int32
		errs := make(chan error, n)
		concurrently(n, func(int) {
			seen := -1
			d, err := e.s.UpdateDeviceCode(e.ctx, "dc-1", func(cur data.DeviceCode) (data.DeviceCode, error) {
				if cur.FailedAttempts >= limit {
					return cur, errBoom
				}
				cur.FailedAttempts++
				seen = cur.FailedAttempts
				if cur.FailedAttempts == limit {
					cur.State = data.DeviceBurned
				}
				return cur, nil
			})
			switch {
			case err == nil && d.FailedAttempts == seen:
				counted.Add(1)
			case errors.Is(err, errBoom):
				refused.Add(1)
			default:
				errs <- fmt.Errorf("UpdateDeviceCode returned (%+v, %v), fn last saw %d", d, err, seen)
			}
		})
		close(errs)
		for err := range errs {
			e.t.Error(err)
		}
		if counted.Load() != limit || refused.Load() != n-limit {
			e.t.Fatalf("%d concurrent check-and-count updates: %d counted and %d refused, want %d and %d", n, counted.Load(), refused.Load(), limit, n-limit)
		}
		got, err := e.s.GetDeviceCode(e.ctx, "dc-1")
		e.ok(err, "GetDeviceCode")
		if got.FailedAttempts != limit || got.State != data.DeviceBurned {
			e.t.Fatalf("after the updates: %d failed attempts, state %q; want %d, burned", got.FailedAttempts, got.State, limit)
		}
	}},
}

var refreshFamilyTests = ownedTests(familiesOwned, nil)

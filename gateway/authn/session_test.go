package authn_test

import (
	"errors"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authn/session"
)

// TestChainSession: Chain.Session reads the session cookie only and keeps
// its four outcomes apart, writing nothing (no redirect, no cleared
// cookie, no WWW-Authenticate): its callers decide what each means.
func TestChainSession(t *testing.T) {
	e := newEnv(t)
	run := func(t *testing.T, cr creds) (authn.Outcome, error, result) {
		t.Helper()
		var out authn.Outcome
		var err error
		r := e.do(t, cr, func(c *fiber.Ctx) (authn.Identity, bool, error) {
			var id authn.Identity
			id, out, err = e.chain.Session(c)
			if c.Response().StatusCode() != fiber.StatusOK {
				t.Errorf("Session wrote status %d", c.Response().StatusCode())
			}
			return id, out == authn.Authenticated, nil
		})
		return out, err, r
	}
	for _, tc := range []struct {
		name    string
		cr      creds
		want    authn.Outcome
		wantErr error
	}{
		{"none", creds{}, authn.None, nil},
		{"session", creds{cookie: e.cookie}, authn.Authenticated, nil},
		{"forged session is refused, not cleared", creds{cookie: e.forgedCookie}, authn.Refused, session.ErrInvalid},
		{"cli does not count", creds{bearer: e.bearerAll}, authn.None, nil},
		{"workers do not count", creds{workerID: e.workerID, workerTok: e.workerTok}, authn.None, nil},
		{"session beside a bearer", creds{cookie: e.cookie, bearer: e.bearerAll}, authn.Authenticated, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err, r := run(t, tc.cr)
			wantKind := authn.KindNone
			if tc.want == authn.Authenticated {
				wantKind = authn.KindSession
			}
			if out != tc.want || r != (result{kind: wantKind}) || (tc.wantErr == nil) != (err == nil) || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Session = %v %v, result %+v; want %v %v", out, err, r, tc.want, tc.wantErr)
			}
		})
	}
	// The store cannot be read (a fresh env: nothing cached yet): Failed,
	// with the store's error.
	e = newEnv(t)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err, r := run(t, creds{cookie: e.cookie}); out != authn.Failed || err == nil || r != (result{}) {
		t.Errorf("closed store: Session = %v %v, result %+v; want Failed with an error", out, err, r)
	}
}

package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/service/membership"
)

// googleGrantEnv is a whole Arbor under a policy of Google's hosted domain
// example.com, re-checked every downInterval with downGrace of grace, the
// fake Google on the harness's clock (its access tokens expire after
// 3599 s of it); jane (a Workspace account of example.com) signed in with
// a browser session and a CLI login.
type googleGrantEnv struct {
	*downEnv
	google *fakeprovider.Provider
}

func newGoogleGrantEnv(t *testing.T) *googleGrantEnv {
	t.Helper()
	var clk atomic.Pointer[apptest.Clock]
	h := policyApp(t, config.Policy{
		Allow:           config.PolicyAllow{Groups: []string{"google:example.com"}},
		RecheckInterval: downInterval,
		GracePeriod:     downGrace,
	}, apptest.EditFake(func(name string, c *fakeprovider.Config) {
		if name == "google" {
			c.Now = func() time.Time {
				if c := clk.Load(); c != nil {
					return c.Now()
				}
				return time.Now()
			}
		}
	}))
	clk.Store(h.Clock)
	e := &downEnv{Harness: h, t: t, browser: h.Browser(), api: h.CLIClient()}
	auth := e.browser.Start("google", "")
	u, err := url.Parse(auth)
	if err != nil {
		t.Fatal(err)
	}
	if q := u.Query(); q.Get("access_type") != "offline" || q.Get("prompt") != "consent" {
		t.Fatalf("the Google sign-in under a google: policy asks access_type=%q prompt=%q, want offline and consent", q.Get("access_type"), q.Get("prompt"))
	}
	if res := e.browser.Get(e.browser.Approve(auth, "jane")); res.StatusCode != http.StatusFound || !h.SetsSession(res) {
		t.Fatalf("jane: %d %q\n%s", res.StatusCode, apptest.ErrorCode(res.Body), res.Body)
	}
	e.uid = h.MustUserID(e.browser)
	e.cli = apptest.CLILogin(t, e.browser, h.CLIClient())
	return &googleGrantEnv{downEnv: e, google: h.Fakes.Fakes["google"]}
}

// refreshes counts the refresh grants the fake Google answered.
func (e *googleGrantEnv) refreshes() (ok, refused int) {
	for _, c := range e.google.CallsTo(fakeprovider.EndpointToken) {
		if c.GrantType != "refresh_token" {
			continue
		}
		if c.Error == "" {
			ok++
		} else {
			refused++
		}
	}
	return ok, refused
}

// cliLoginsLeft counts jane's CLI logins that are not revoked.
func (e *googleGrantEnv) cliLoginsLeft() int {
	e.t.Helper()
	fs, err := e.Bolt().ListRefreshFamilies(context.Background(), e.uid)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, f := range fs {
		if f.RevokedAt.IsZero() {
			n++
		}
	}
	return n
}

// Issue 19's Google bug, full stack: with google:example.com in
// policy.allow.groups, jane stays admitted across several lifetimes of
// Google's access token (about an hour each), her kept grant refreshed
// once per lifetime with the same refresh token (Google does not rotate),
// her session and CLI login untouched. Before the fix the sign-in asked
// online access, the kept grant had no refresh token, and an hour plus
// the grace period after signing in her access ended.
func TestGoogleMemberStaysSignedInAcrossTokenLifetimes(t *testing.T) {
	e := newGoogleGrantEnv(t)
	const hours = 4
	for h := 1; h <= hours; h++ {
		for range 6 { // an hour, a re-check per interval
			e.recheck(downInterval)
		}
		if ok, refused := e.refreshes(); ok != h || refused != 0 {
			t.Fatalf("after %d h: %d refreshes (%d refused), want %d", h, ok, refused, h)
		}
		if res := e.browser.Get("/app/page"); res.StatusCode != http.StatusOK {
			t.Fatalf("after %d h: the session gets %d %q", h, res.StatusCode, apptest.ErrorCode(res.Body))
		}
		if n := e.cliLoginsLeft(); n != 1 {
			t.Fatalf("after %d h: %d CLI logins left", h, n)
		}
		if m := e.memberships(); !m.FailingSince.IsZero() || m.LastError != "" {
			t.Fatalf("after %d h: %+v", h, m)
		}
	}
	if ev := e.accessEnded(); len(ev) != 0 {
		t.Fatalf("policy.access_ended: %+v", ev)
	}
}

// A Google grant revoked at Google (the user removed the app from their
// account): the refresh is refused with invalid_grant, a failure like a
// provider that does not answer: the last known memberships stand for the
// grace period, then the session and CLI login end (policy.access_ended,
// memberships_unavailable), as TestDeadGrantCountsAsFailure shows for
// GitHub.
func TestGoogleRevokedGrantCountsAsFailure(t *testing.T) {
	e := newGoogleGrantEnv(t)
	e.google.RevokeAll()
	e.recheck(time.Hour) // past the access token's 3599 s
	m := e.memberships()
	if m.FailingSince.IsZero() || !strings.Contains(m.LastError, "refused to renew") {
		t.Fatalf("after the refused refresh: %+v", m)
	}
	if ok, refused := e.refreshes(); ok != 0 || refused != 1 {
		t.Fatalf("%d refreshes, %d refused; want the one refused", ok, refused)
	}
	for _, c := range e.google.CallsTo(fakeprovider.EndpointToken) {
		if c.GrantType == "refresh_token" && (c.Error != "invalid_grant" || c.Status != http.StatusBadRequest) {
			t.Errorf("the fake Google answered the revoked refresh token %d %q, want 400 invalid_grant", c.Status, c.Error)
		}
	}
	if res := e.browser.Get("/app/page"); res.StatusCode != http.StatusOK {
		t.Fatalf("within the grace period: %d %q", res.StatusCode, apptest.ErrorCode(res.Body))
	}
	e.recheck(downGrace + time.Second)
	if res := e.browser.Get("/app/page"); res.StatusCode != http.StatusFound {
		t.Fatalf("after the grace period the session gets %d %q, want a redirect to sign in", res.StatusCode, apptest.ErrorCode(res.Body))
	}
	if n := e.cliLoginsLeft(); n != 0 {
		t.Fatalf("after the grace period: %d CLI logins left", n)
	}
	if ev := e.accessEnded(); len(ev) != 1 || ev[0].Details["reason"] != membership.CodeMembershipsUnavailable {
		t.Fatalf("policy.access_ended: %+v", ev)
	}
}

package membership_test

import (
	"context"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/service/membership"
)

// googleEnv judges by Google's hosted domain example.com (the fake's jane
// is a Workspace account of it) and re-checks every interval, with an
// hour of grace. The fake Google runs on the test's clock, so its access
// tokens expire when the service's do (Google's: 3599 s).
func googleEnv(t *testing.T) *env {
	var clk atomic.Pointer[clock]
	e := newEnv(t, membership.Options{
		Judge:           rule{groups: []string{"google:example.com"}},
		GroupProviders:  []string{"google"},
		Wanted:          membership.WantedGroups([]string{"google:example.com"}),
		RecheckInterval: interval,
		GracePeriod:     time.Hour,
	}, func(name string, c *fakeprovider.Config) {
		c.Now = func() time.Time {
			if c := clk.Load(); c != nil {
				return c.Now()
			}
			return time.Now()
		}
	})
	clk.Store(e.clock)
	return e
}

// googleRefreshes counts the refresh grants the fake Google answered.
func (e *env) googleRefreshes() int {
	n := 0
	for _, c := range e.fakes.Fakes["google"].CallsTo(fakeprovider.EndpointToken) {
		if c.GrantType == "refresh_token" {
			n++
		}
	}
	return n
}

// A Google member stays admitted across several access-token lifetimes:
// the sign-in asked offline access (the policy uses Google's groups), so
// the kept grant has a refresh token, and every expired access token is
// renewed once, the refresh token staying the same (Google does not
// rotate). Before the fix the grant had no refresh token and the member
// was refused an hour after signing in, then lost their access after the
// grace period.
func TestGoogleMemberStaysAdmittedAcrossTokenLifetimes(t *testing.T) {
	e := googleEnv(t)
	ctx := context.Background()
	adm, uid := e.signIn("google", "jane")
	if !adm.Admitted() || uid == "" {
		t.Fatalf("jane: %+v", adm.Verdict)
	}
	e.sessionAndLogin(uid)
	first := e.grant(uid)
	if first.RefreshToken == "" || first.ExpiresAt == 0 {
		t.Fatalf("the kept Google grant has no refresh token (expiry %d): the sign-in did not ask offline access", first.ExpiresAt)
	}
	const lifetimes = 4
	prev := first
	for i := 1; i <= lifetimes; i++ {
		// One access-token lifetime (an hour), re-checked every interval.
		for range 6 {
			e.clock.Advance(interval)
			e.svc.RecheckDue(ctx)
		}
		g := e.grant(uid)
		if got := e.googleRefreshes(); got != i {
			t.Fatalf("lifetime %d: %d refreshes, want %d", i, got, i)
		}
		if g.AccessToken == prev.AccessToken || g.RefreshToken != first.RefreshToken {
			t.Fatalf("lifetime %d: access token renewed %v, refresh token kept %v", i,
				g.AccessToken != prev.AccessToken, g.RefreshToken == first.RefreshToken)
		}
		m := e.member(uid)
		if !m.Verdict.Admitted() || m.Unavailable || !m.InGroup("google:example.com") || e.clock.Now().Sub(m.CheckedAt) > interval {
			t.Fatalf("lifetime %d: %+v", i, m)
		}
		if s, l := e.accessLeft(uid); s != 1 || l != 1 {
			t.Fatalf("lifetime %d: %d sessions, %d CLI logins left", i, s, l)
		}
		prev = g
	}
	if !e.fakes.Fakes["google"].ValidRefreshToken(first.RefreshToken) {
		t.Fatal("the refresh token died at the fake Google")
	}
	if ev := e.audits(uid, "identity.grant_refresh"); len(ev) != lifetimes {
		t.Fatalf("%d identity.grant_refresh events, want %d", len(ev), lifetimes)
	}
	if ev := e.audits(uid, "policy.access_ended"); len(ev) != 0 {
		t.Fatalf("access ended: %+v", ev)
	}
}

// The authorization URL asks Google for offline access (and the consent
// that makes Google issue a refresh token again) only for a sign-in whose
// policy uses Google's groups; a plain sign-in asks online access, as
// before.
func TestGoogleAsksOfflineAccessOnlyWithGroups(t *testing.T) {
	e := googleEnv(t)
	p, _, _ := e.provs.Get("google")
	for _, withGroups := range []bool{false, true} {
		raw, err := p.AuthorizeURL(context.Background(), plugins.AuthorizeInput{Purpose: abi.PurposeLogin,
			RedirectURI: publicURL + "/auth/callback/google", State: "s", CodeChallenge: "ch", WithGroups: withGroups})
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		want := [2]string{}
		if withGroups {
			want = [2]string{"offline", "consent"}
		}
		if got := [2]string{q.Get("access_type"), q.Get("prompt")}; got != want || q.Get("scope") != "openid email profile" {
			t.Errorf("WithGroups %v: access_type, prompt = %q, scope %q; want %q", withGroups, got, q.Get("scope"), want)
		}
	}
}

// A revoked Google grant (the user removed Arbor at
// myaccount.google.com/permissions): the refresh is refused with
// invalid_grant, which counts as a failed check; the last known groups
// stand for the grace period, then the member is refused and their
// access ends.
func TestGoogleRevokedGrantEndsAccessAfterGrace(t *testing.T) {
	e := googleEnv(t)
	ctx := context.Background()
	_, uid := e.signIn("google", "jane")
	e.sessionAndLogin(uid)
	g := e.grant(uid)
	p, _, _ := e.provs.Get("google")
	if err := p.Revoke(ctx, plugins.RevokeInput{RefreshToken: g.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	if e.fakes.Fakes["google"].ValidRefreshToken(g.RefreshToken) {
		t.Fatal("the refresh token survived its revocation")
	}

	// Past the access token's expiry: the refresh fails.
	e.clock.Advance(time.Unix(g.ExpiresAt, 0).Sub(e.clock.Now()) + time.Minute)
	e.svc.RecheckDue(ctx)
	u, err := e.store.GetUser(ctx, uid)
	if err != nil || u.Memberships.FailingSince.IsZero() || !strings.Contains(u.Memberships.LastError, "refused to renew") {
		t.Fatalf("after the refused refresh: %+v %v", u.Memberships, err)
	}
	if m := e.member(uid); !m.Verdict.Admitted() || m.Unavailable {
		t.Fatalf("within the grace period: %+v", m)
	}
	if s, l := e.accessLeft(uid); s != 1 || l != 1 {
		t.Fatalf("within the grace period: %d sessions, %d CLI logins", s, l)
	}

	for range 7 { // past the hour of grace
		e.clock.Advance(interval)
		e.svc.RecheckDue(ctx)
	}
	if m := e.member(uid); m.Verdict.Code != membership.CodeMembershipsUnavailable || !m.Unavailable {
		t.Fatalf("after the grace period: %+v", m)
	}
	if s, l := e.accessLeft(uid); s != 0 || l != 0 {
		t.Fatalf("after the grace period: %d sessions, %d CLI logins", s, l)
	}
	if ev := e.audits(uid, "policy.access_ended"); len(ev) != 1 || ev[0].Details["reason"] != membership.CodeMembershipsUnavailable {
		t.Fatalf("access_ended: %+v", ev)
	}
}

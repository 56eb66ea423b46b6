package membership_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/service/membership"
)

const interval = 10 * time.Minute

// groupsEnv judges by the GitHub team vintner/platform and re-checks
// GitHub's groups every interval, with a grace period of an hour.
func groupsEnv(t *testing.T) *env {
	return newEnv(t, membership.Options{
		Judge:           rule{groups: []string{"github:vintner/platform"}},
		GroupProviders:  []string{"github"},
		Wanted:          membership.WantedGroups([]string{"github:vintner/platform"}),
		RecheckInterval: interval,
		GracePeriod:     time.Hour,
	}, nil)
}

// failGroups makes the fake GitHub fail every groups call with 503.
func (e *env) failGroups() {
	for _, ep := range []fakeprovider.Endpoint{fakeprovider.EndpointOrgs, fakeprovider.EndpointTeams, fakeprovider.EndpointOrgMembership} {
		e.fakes.Fakes["github"].FailNext(ep, 1000, 503)
	}
}

// Sign-in reads the groups with the sign-in's own token: octocat (in the
// team) is admitted and their grant kept sealed; hubot (in no group) is
// refused and nothing is kept.
func TestSignInReadsGroups(t *testing.T) {
	e := groupsEnv(t)
	ctx := context.Background()
	adm, uid := e.signIn("github", "octocat")
	if !adm.Admitted() || uid == "" {
		t.Fatalf("octocat: %+v", adm.Verdict)
	}
	m := e.member(uid)
	if !m.InGroup("github:vintner/platform") || m.CheckedAt.IsZero() || !m.Verdict.Admitted() {
		t.Fatalf("octocat's member: %+v", m)
	}
	ids, err := e.store.ListIdentities(ctx, uid)
	if err != nil || len(ids) != 1 || len(ids[0].Grant) == 0 {
		t.Fatalf("octocat's identity: %+v %v", ids, err)
	}
	if _, err := e.keys.Open(ids[0].Grant, data.IdentityAAD(ids[0].Provider, ids[0].Subject)); err != nil {
		t.Fatalf("the grant does not open with its identity's AAD: %v", err)
	}
	adm, uid = e.signIn("github", "hubot")
	if adm.Admitted() || adm.Verdict.Code != membership.CodeNotAllowed || uid != "" {
		t.Fatalf("hubot: %+v", adm.Verdict)
	}
	// A provider that cannot answer at sign-in refuses rather than admits
	// without knowing.
	e.failGroups()
	adm, _ = e.signIn("github", "octocat")
	if adm.Admitted() || adm.Verdict.Code != membership.CodeMembershipsUnavailable || adm.Verdict.Fix == "" ||
		!strings.Contains(adm.Verdict.Rule, "at GitHub, and GitHub did not say") {
		t.Fatalf("octocat while GitHub fails: %+v", adm.Verdict)
	}
}

// Removed from the team at the provider, a signed-in user loses their
// sessions and CLI logins at the next re-check, with audit events; the
// Member refuses (workers are refused through it).
func TestRecheckEndsAccessWhenRemoved(t *testing.T) {
	e := groupsEnv(t)
	ctx := context.Background()
	_, uid := e.signIn("github", "octocat")
	e.sessionAndLogin(uid)
	// The sign-in recorded the first memberships.
	if ev := e.audits(uid, "policy.memberships_changed"); len(ev) != 1 || ev[0].Details["added"] != "github:vintner,github:vintner/platform" {
		t.Fatalf("memberships_changed at sign-in: %+v", ev)
	}

	// Nothing changed: the re-check keeps everything.
	e.clock.Advance(interval)
	e.svc.RecheckDue(ctx)
	if s, l := e.accessLeft(uid); s != 1 || l != 1 || !e.member(uid).Verdict.Admitted() {
		t.Fatalf("unchanged memberships: %d sessions, %d CLI logins, %+v", s, l, e.member(uid).Verdict)
	}
	if ev := e.audits(uid, "policy.memberships_changed"); len(ev) != 1 {
		t.Fatalf("memberships_changed without a change: %+v", ev)
	}

	if err := e.fakes.Fakes["github"].SetMemberships("octocat", []string{"vintner"}); err != nil {
		t.Fatal(err)
	}
	// Not yet due: nothing happens.
	e.clock.Advance(interval / 2)
	e.svc.RecheckDue(ctx)
	if s, _ := e.accessLeft(uid); s != 1 {
		t.Fatal("re-checked before the interval")
	}
	// Due at the last tick within the interval (ticks are a tenth of it
	// apart): access ends within one interval of the last check.
	e.clock.Advance(interval/2 - interval/10)
	e.svc.RecheckDue(ctx)
	m := e.member(uid)
	if m.Verdict.Code != membership.CodeNotAllowed || m.InGroup("github:vintner/platform") || !m.InGroup("github:vintner") {
		t.Fatalf("after the removal: %+v", m)
	}
	if s, l := e.accessLeft(uid); s != 0 || l != 0 {
		t.Fatalf("after the removal: %d sessions, %d CLI logins left", s, l)
	}
	ended := e.audits(uid, "policy.access_ended")
	if len(ended) != 1 || ended[0].Details["reason"] != membership.CodeNotAllowed || ended[0].Actor != "system" {
		t.Fatalf("access_ended: %+v", ended)
	}
	changed := e.audits(uid, "policy.memberships_changed")
	if len(changed) == 0 || changed[len(changed)-1].Details["removed"] != "github:vintner/platform" {
		t.Fatalf("memberships_changed: %+v", changed)
	}
}

// An expired grant is refreshed once, rotation-safe: the new pair is
// stored (the old refresh token is dead at the provider) and the groups
// are read with the new access token.
func TestRecheckRefreshesAnExpiredGrant(t *testing.T) {
	e := groupsEnv(t)
	ctx := context.Background()
	_, uid := e.signIn("github", "octocat")
	before := e.grant(uid)
	if before.RefreshToken == "" || before.ExpiresAt == 0 {
		t.Fatalf("the kept grant has no refresh token or expiry: %+v", before.ExpiresAt)
	}
	refreshes := func() int {
		n := 0
		for _, c := range e.fakes.Fakes["github"].CallsTo(fakeprovider.EndpointToken) {
			if c.GrantType == "refresh_token" {
				n++
			}
		}
		return n
	}
	e.clock.Advance(time.Unix(before.ExpiresAt, 0).Sub(e.clock.Now()) + time.Minute)
	e.svc.RecheckDue(ctx)
	after := e.grant(uid)
	if refreshes() != 1 || after.AccessToken == before.AccessToken || after.RefreshToken == before.RefreshToken {
		t.Fatalf("refreshes %d, access token changed %v, refresh token changed %v", refreshes(),
			after.AccessToken != before.AccessToken, after.RefreshToken != before.RefreshToken)
	}
	f := e.fakes.Fakes["github"]
	if f.ValidRefreshToken(before.RefreshToken) || !f.ValidRefreshToken(after.RefreshToken) {
		t.Fatal("the provider did not rotate the refresh token")
	}
	m := e.member(uid)
	if !m.Verdict.Admitted() || e.clock.Now().Sub(m.CheckedAt) > time.Second {
		t.Fatalf("after the refresh: %+v", m)
	}
	// Fresh now: the next re-check does not refresh again.
	e.clock.Advance(interval)
	e.svc.RecheckDue(ctx)
	if refreshes() != 1 {
		t.Fatalf("%d refreshes after a second re-check of a fresh grant", refreshes())
	}
}

// A provider that cannot answer: the last known groups stand for the
// grace period (still admitted, sessions kept), then the member is
// Unavailable and refused, and their access ends.
func TestProviderDownGrace(t *testing.T) {
	e := groupsEnv(t)
	ctx := context.Background()
	_, uid := e.signIn("github", "octocat")
	e.sessionAndLogin(uid)
	e.failGroups()

	e.clock.Advance(interval)
	e.svc.RecheckDue(ctx)
	u, err := e.store.GetUser(ctx, uid)
	if err != nil || u.Memberships.FailingSince.IsZero() || u.Memberships.LastError == "" || !slices.Contains(u.Memberships.Groups, "github:vintner/platform") {
		t.Fatalf("after a failed re-check: %+v %v", u.Memberships, err)
	}
	if m := e.member(uid); !m.Verdict.Admitted() || m.Unavailable {
		t.Fatalf("within the grace period: %+v", m)
	}
	if s, l := e.accessLeft(uid); s != 1 || l != 1 {
		t.Fatalf("within the grace period: %d sessions, %d CLI logins", s, l)
	}

	for range 7 { // past the hour of grace, a re-check per interval
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

// grantTokens is the sealed grant as the service stores it.
type grantTokens struct {
	AccessToken  string `json:"a"`
	RefreshToken string `json:"r"`
	ExpiresAt    int64  `json:"e"`
}

func (e *env) grant(userID string) grantTokens {
	e.t.Helper()
	ids, err := e.store.ListIdentities(context.Background(), userID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, id := range ids {
		if len(id.Grant) == 0 {
			continue
		}
		raw, err := e.keys.Open(id.Grant, data.IdentityAAD(id.Provider, id.Subject))
		if err != nil {
			e.t.Fatal(err)
		}
		var g grantTokens
		if err := json.Unmarshal(raw, &g); err != nil {
			e.t.Fatal(err)
		}
		return g
	}
	e.t.Fatalf("%s has no grant", userID)
	return grantTokens{}
}

// An organisation that restricts OAuth apps hides octocat's membership:
// the provider's Restricted reaches the Member, prefixed, and the groups
// it hid do not count.
func TestSignInRestrictedOrganisation(t *testing.T) {
	e := newEnv(t, membership.Options{
		Judge:          rule{groups: []string{"github:vintner/platform"}},
		GroupProviders: []string{"github"},
		Wanted:         membership.WantedGroups([]string{"github:vintner/platform"}),
	}, func(name string, c *fakeprovider.Config) {
		if name == "github" {
			c.RestrictedOrgs = []string{"vintner"}
		}
	})
	adm, uid := e.signIn("github", "octocat")
	if adm.Admitted() || uid != "" || adm.Verdict.Code != membership.CodeNotAllowed {
		t.Fatalf("octocat behind a restricted organisation: %+v", adm.Verdict)
	}
	if m := adm.Member; !slices.Contains(m.Restricted, "github:vintner") || m.InGroup("github:vintner/platform") {
		t.Fatalf("member: groups %q, restricted %q", m.Groups, m.Restricted)
	}
}

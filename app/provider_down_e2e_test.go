package app_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/service/membership"
)

// The provider-down tests step the re-check by hand
// (App.Members().RecheckDue) on the harness's clock: the background
// re-check ticks every interval/10 of real time (a minute here), which no
// test waits for.
const (
	downInterval = 10 * time.Minute
	downGrace    = 30 * time.Minute
)

// downEnv is a signed-in octocat with a browser session, a CLI login and
// a worker, under a policy of github:vintner/platform.
type downEnv struct {
	*apptest.Harness
	t                   *testing.T
	uid                 string
	browser, api        *apptest.Browser
	cli                 apptest.CLITokens
	workerID, workerTok string
}

func newDownEnv(t *testing.T) *downEnv {
	t.Helper()
	h := policyApp(t, config.Policy{
		Allow:           config.PolicyAllow{Groups: []string{"github:vintner/platform"}},
		RecheckInterval: downInterval,
		GracePeriod:     downGrace,
	})
	e := &downEnv{Harness: h, t: t, browser: h.Browser(), api: h.CLIClient()}
	e.browser.MustSignIn("github")
	e.uid = h.MustUserID(e.browser)
	e.cli = apptest.CLILogin(t, e.browser, h.CLIClient())
	w, tok, err := h.App.Workers().Register(t.Context(), e.uid, "runner")
	if err != nil {
		t.Fatal(err)
	}
	e.workerID, e.workerTok = w.ID, tok
	return e
}

func (e *downEnv) recheck(advance time.Duration) {
	e.Clock.Advance(advance)
	e.App.Members().RecheckDue(context.Background())
}

// failGroups makes the fake GitHub answer every groups call 503 (n > 0)
// or answer again (n = 0).
func (e *downEnv) failGroups(n int) {
	for _, ep := range []fakeprovider.Endpoint{fakeprovider.EndpointOrgs, fakeprovider.EndpointTeams, fakeprovider.EndpointOrgMembership} {
		e.Fakes.Fakes["github"].FailNext(ep, n, http.StatusServiceUnavailable)
	}
}

// answers is what the session (a page), the CLI token and the worker get,
// as status and error code.
type answers struct{ session, cli, worker string }

func answer(res *apptest.Response) string {
	if c := apptest.ErrorCode(res.Body); c != "" {
		return http.StatusText(res.StatusCode) + " " + c
	}
	return http.StatusText(res.StatusCode)
}

func (e *downEnv) answers() answers {
	e.t.Helper()
	worker, err := e.api.SendJSON(http.MethodGet, "/api/tendril/jobs", nil, http.Header{"X-Worker-Id": {e.workerID}, "X-Worker-Token": {e.workerTok}})
	if err != nil {
		e.t.Fatal(err)
	}
	return answers{
		session: answer(e.browser.Get("/app/page")),
		cli:     answer(e.api.BearerGet("/api/auth/me", e.cli.AccessToken)),
		worker:  answer(worker),
	}
}

func (e *downEnv) memberships() data.Memberships {
	e.t.Helper()
	u, err := e.Bolt().GetUser(context.Background(), e.uid)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.Memberships
}

func (e *downEnv) accessEnded() []data.AuditEvent {
	e.t.Helper()
	ev, err := e.Bolt().ListAudit(context.Background(), data.AuditQuery{UserID: e.uid, Action: "policy.access_ended"})
	if err != nil {
		e.t.Fatal(err)
	}
	return ev
}

var allowed = answers{"OK", "OK", "OK"}

// The provider down, full stack: while GitHub answers 503, the last known
// memberships stand for policy.grace_period (session, CLI token and
// worker still admitted, the upstream still told the groups); once it is
// over every request is refused with memberships_unavailable and the
// explaining page or JSON, the next re-check ends the sessions and CLI
// logins (policy.access_ended), and a sign-in is refused with the same
// code. When GitHub answers again, the next re-check lets the worker (whose
// record stayed) back in; the person signs in again, and logs the CLI in
// again (the ended session and the revoked CLI login stay ended).
func TestProviderDownFullStack(t *testing.T) {
	e := newDownEnv(t)
	if got := e.answers(); got != allowed {
		t.Fatalf("before: %+v", got)
	}

	// Down, within the grace period.
	e.failGroups(1000)
	e.recheck(downInterval)
	if m := e.memberships(); m.FailingSince.IsZero() || m.LastError == "" || !slices.Contains(m.Groups, "github:vintner/platform") {
		t.Fatalf("after a failed re-check: %+v", m)
	}
	e.recheck(downInterval)
	if got := e.answers(); got != allowed {
		t.Fatalf("within the grace period: %+v", got)
	}
	if hdr, _, _ := e.Upstream.Last(); hdr.Get("X-Arbor-User-Groups") != "github:vintner/platform" {
		t.Errorf("within the grace period the upstream got groups %q", hdr.Get("X-Arbor-User-Groups"))
	}

	// The grace period ends: refused at once, before any re-check ran.
	e.Clock.Advance(downGrace)
	const unavailable = "Forbidden " + membership.CodeMembershipsUnavailable
	if got := e.answers(); got != (answers{unavailable, unavailable, unavailable}) {
		t.Fatalf("after the grace period: %+v", got)
	}
	page := e.browser.Get("/app/page")
	if !strings.Contains(page.Body, "could not be checked") || !strings.Contains(page.Header.Get("Content-Type"), "text/html") {
		t.Errorf("the memberships_unavailable page does not explain:\n%s", page.Body)
	}
	e.browser.Header.Set("Accept", "application/json")
	if d := e.browser.Get("/app/page"); !strings.Contains(d.Body, `"rule":"`) || !strings.Contains(d.Body, `"fix":"Sign in again`) {
		t.Errorf("the memberships_unavailable JSON: %s", d.Body)
	}
	e.browser.Header.Del("Accept")

	// The next re-check ends the sessions and CLI logins.
	e.recheck(time.Second)
	got := e.answers()
	if got.session != "Found" || !strings.HasPrefix(got.cli, "Unauthorized") || got.worker != unavailable {
		t.Fatalf("after the re-check past the grace period: %+v", got)
	}
	if ev := e.accessEnded(); len(ev) != 1 || ev[0].Details["reason"] != membership.CodeMembershipsUnavailable {
		t.Fatalf("policy.access_ended: %+v", ev)
	}
	// Signing in while GitHub still fails: refused, no session.
	b := e.Browser()
	res := b.SignIn("github", "", "octocat")
	if res.StatusCode != http.StatusForbidden || apptest.ErrorCode(res.Body) != membership.CodeMembershipsUnavailable || e.SetsSession(res) {
		t.Fatalf("sign-in while GitHub fails: %d %q, session %v", res.StatusCode, apptest.ErrorCode(res.Body), e.SetsSession(res))
	}
	if !strings.Contains(res.Body, "groups at GitHub, and GitHub did not say") {
		t.Errorf("the refused sign-in's page does not explain in the provider's name:\n%s", res.Body)
	}

	// GitHub answers again: the next re-check restores the worker.
	e.failGroups(0)
	e.recheck(downInterval)
	if m := e.memberships(); !m.FailingSince.IsZero() || m.LastError != "" {
		t.Fatalf("after GitHub answered again: %+v", m)
	}
	if got := e.answers(); got.session != "Found" || !strings.HasPrefix(got.cli, "Unauthorized") || got.worker != "OK" {
		t.Fatalf("after GitHub answered again: %+v (the ended session and CLI login stay ended)", got)
	}
	e.browser.MustSignIn("github")
	e.cli = apptest.CLILogin(t, e.browser, e.CLIClient())
	if got := e.answers(); got != allowed {
		t.Fatalf("signed in again: %+v", got)
	}
}

// A grant that dies at refresh (the provider revoked it, so the refresh
// token is refused with invalid_grant) is a failure like a provider that
// does not answer: the last known memberships stand for the grace period,
// then access is refused with memberships_unavailable and ended. The
// refusal says to sign in again, which stores a new grant and works.
func TestDeadGrantCountsAsFailure(t *testing.T) {
	e := newDownEnv(t)
	gh := e.Fakes.Fakes["github"]
	gh.RevokeAll()
	// The sign-in's access token (8 hours at the fake GitHub App) has
	// expired by the harness's clock: the re-check refreshes first.
	e.recheck(8*time.Hour + time.Minute)
	m := e.memberships()
	if m.FailingSince.IsZero() || !strings.Contains(m.LastError, "refused to renew") {
		t.Fatalf("after the refused refresh: %+v", m)
	}
	refreshes := 0
	for _, c := range gh.CallsTo(fakeprovider.EndpointToken) {
		if c.GrantType == "refresh_token" {
			refreshes++
			// GitHub answers a bad refresh token 200 with an error body.
			if c.Error != "bad_refresh_token" || c.DeadToken != "revoked" {
				t.Errorf("the fake did not refuse the dead refresh token: %+v", c)
			}
		}
	}
	if refreshes != 1 {
		t.Fatalf("%d refreshes, want 1", refreshes)
	}
	if got := e.answers(); got.worker != "OK" || got.session != "OK" {
		t.Fatalf("within the grace period after a dead grant: %+v", got)
	}
	e.recheck(downGrace + time.Second)
	const unavailable = "Forbidden " + membership.CodeMembershipsUnavailable
	if got := e.answers(); got.session != "Found" || !strings.HasPrefix(got.cli, "Unauthorized") || got.worker != unavailable {
		t.Fatalf("after the grace period: %+v", got)
	}
	if ev := e.accessEnded(); len(ev) != 1 || ev[0].Details["reason"] != membership.CodeMembershipsUnavailable {
		t.Fatalf("policy.access_ended: %+v", ev)
	}
	e.browser.MustSignIn("github")
	if got := e.answers(); got.session != "OK" || got.worker != "OK" {
		t.Fatalf("signed in again with a new grant: %+v", got)
	}
	if m := e.memberships(); !m.FailingSince.IsZero() {
		t.Fatalf("the new sign-in left the failure: %+v", m)
	}
}

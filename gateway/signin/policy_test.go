package signin_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/service/membership"
)

// A person the policy refuses gets the explaining page (403, the code, the
// rule and what to do), no session cookie, and leaves no user, identity
// or session in the store; the refusal is audited.
func TestRefusedSignInLeavesNothing(t *testing.T) {
	e := newEnv(t, envOptions{policy: &config.Policy{Allow: config.PolicyAllow{Emails: []string{"someone-else@example.com"}}}})
	ctx := context.Background()
	b := e.browser()
	res := b.SignIn("github", "/reports", "")
	if res.StatusCode != http.StatusForbidden || errorCode(res.Body) != membership.CodeNotAllowed {
		t.Fatalf("refused sign-in: %d %q\n%s", res.StatusCode, errorCode(res.Body), res.Body)
	}
	if !strings.Contains(res.Body, "someone-else@example.com") {
		t.Fatalf("the page does not say which rule applied:\n%s", res.Body)
	}
	if e.SetsSession(res) || b.Cookie(e.cookie) != "" {
		t.Fatalf("a refused sign-in set the session cookie: %q", res.Header.Values("Set-Cookie"))
	}
	users, err := e.store.ListUsers(ctx)
	if err != nil || len(users) != 0 {
		t.Fatalf("users after a refused sign-in: %+v %v", users, err)
	}
	ev, err := e.store.ListAudit(ctx, data.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var refused []data.AuditEvent
	for _, a := range ev {
		if a.Action == "session.sign_in" {
			refused = append(refused, a)
		}
	}
	if len(refused) != 1 || refused[0].Outcome != "refused" || refused[0].Details["code"] != membership.CodeNotAllowed || refused[0].Target != "github" {
		t.Fatalf("audit of the refusal: %+v", refused)
	}
	// JSON for an API client, the same code.
	api := e.browser()
	api.Header.Set("Accept", "application/json")
	res = api.SignIn("github", "", "")
	if res.StatusCode != http.StatusForbidden || !strings.Contains(res.Body, `"error":"not_allowed"`) {
		t.Fatalf("refused sign-in as JSON: %d %s", res.StatusCode, res.Body)
	}
	// An address the policy allows signs in.
	ok := newEnv(t, envOptions{policy: &config.Policy{Allow: config.PolicyAllow{EmailDomains: []string{"example.com"}}}})
	ok.browser().MustSignIn("github")
}

// A disabled user's sign-in is refused with account_disabled, and starts
// no session, and their worker is refused; enabled again, they sign in
// and the worker works.
func TestDisabledUserCannotSignIn(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	first := e.browser()
	first.MustSignIn("gitlab")
	uid := mustUserID(t, e, first)
	setDisabled := func(v bool) {
		t.Helper()
		if _, err := e.store.UpdateUser(ctx, uid, func(u data.User) (data.User, error) {
			u.Disabled = v
			return u, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	setDisabled(true)
	b := e.browser()
	res := b.SignIn("gitlab", "", "")
	if res.StatusCode != http.StatusForbidden || errorCode(res.Body) != membership.CodeAccountDisabled || e.SetsSession(res) {
		t.Fatalf("disabled user's sign-in: %d %q, sets session %v\n%s", res.StatusCode, errorCode(res.Body), e.SetsSession(res), res.Body)
	}
	if ss, err := e.store.ListSessions(ctx, uid); err != nil || len(ss) != 1 {
		t.Fatalf("sessions of the disabled user: %d %v (only the first browser's)", len(ss), err)
	}
	// A worker acts for its owner: refused while the owner is disabled,
	// even without a policy, and back when they are enabled.
	w, tok, err := e.workers.Register(ctx, uid, "runner")
	if err != nil {
		t.Fatal(err)
	}
	worker := e.browser()
	worker.Header.Set("X-Worker-ID", w.ID)
	worker.Header.Set("X-Worker-Token", tok)
	if res := worker.Get("/api/tendril/jobs"); res.StatusCode != http.StatusForbidden || errorCode(res.Body) != membership.CodeAccountDisabled {
		t.Fatalf("the disabled user's worker: %d %q", res.StatusCode, errorCode(res.Body))
	}
	setDisabled(false)
	e.browser().MustSignIn("gitlab")
	if res := worker.Get("/api/tendril/jobs"); res.StatusCode != http.StatusOK {
		t.Fatalf("the enabled user's worker: %d %s", res.StatusCode, res.Body)
	}
}

// With a policy on GitHub's groups, the GitHub sign-in asks for the
// groups scope (and GitLab's does not), a member of the team signs in,
// and hubot, in no group, gets the explaining page.
func TestSignInByGroups(t *testing.T) {
	e := newEnv(t, envOptions{policy: &config.Policy{Allow: config.PolicyAllow{Groups: []string{"github:vintner/platform"}}}})
	b := e.browser()
	auth := b.Start("github", "")
	au, err := url.Parse(auth)
	if err != nil {
		t.Fatal(err)
	}
	if scope := au.Query().Get("scope"); !strings.Contains(scope, "read:org") {
		t.Fatalf("GitHub sign-in scope %q lacks read:org", scope)
	}
	gl, _ := url.Parse(e.browser().Start("gitlab", ""))
	if scope := gl.Query().Get("scope"); strings.Contains(scope, "read_api") {
		t.Fatalf("GitLab sign-in scope %q asks for groups the policy does not use", scope)
	}
	res := b.Get(b.Approve(auth, "octocat"))
	if res.StatusCode != http.StatusFound || !e.SetsSession(res) {
		t.Fatalf("octocat: %d\n%s", res.StatusCode, res.Body)
	}
	uid := mustUserID(t, e, b)
	ids, err := e.store.ListIdentities(context.Background(), uid)
	if err != nil || len(ids) != 1 || len(ids[0].Grant) == 0 {
		t.Fatalf("octocat's identity keeps no grant: %+v %v", ids, err)
	}
	hubot := e.browser()
	res = hubot.SignIn("github", "", "hubot")
	if res.StatusCode != http.StatusForbidden || errorCode(res.Body) != membership.CodeNotAllowed || e.SetsSession(res) {
		t.Fatalf("hubot: %d %q\n%s", res.StatusCode, errorCode(res.Body), res.Body)
	}
	if !strings.Contains(res.Body, "vintner/platform") {
		t.Fatalf("hubot's page does not name the rule:\n%s", res.Body)
	}
}

// Removed from the team at the provider, a signed-in browser is signed out
// at the next re-check.
func TestRemovedFromTheTeamIsSignedOut(t *testing.T) {
	e := newEnv(t, envOptions{policy: &config.Policy{
		Allow:           config.PolicyAllow{Groups: []string{"github:vintner/platform"}},
		RecheckInterval: 10 * time.Minute,
		GracePeriod:     time.Hour,
	}})
	b := e.browser()
	b.MustSignIn("github")
	if res := b.Get("/x"); res.StatusCode != http.StatusOK {
		t.Fatalf("signed in: %d", res.StatusCode)
	}
	if err := e.fakes.Fakes["github"].SetMemberships("octocat", []string{"vintner"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute)
	e.App.Members().RecheckDue(context.Background())
	res := b.Get("/x")
	if res.StatusCode != http.StatusFound || !strings.Contains(res.Location(), "/auth/sign-in") {
		t.Fatalf("after the removal: %d → %q", res.StatusCode, res.Location())
	}
	// Signing in again is refused, with the rule.
	res = e.browser().SignIn("github", "", "")
	if res.StatusCode != http.StatusForbidden || errorCode(res.Body) != membership.CodeNotAllowed {
		t.Fatalf("signing in again: %d %q", res.StatusCode, errorCode(res.Body))
	}
}

// A group provider linked from the account page counts: its grant is
// kept and its groups open a route the user could not reach before.
func TestLinkedGroupProviderCounts(t *testing.T) {
	e := newEnv(t, envOptions{policy: &config.Policy{
		Allow:  config.PolicyAllow{EmailDomains: []string{"example.com"}},
		Routes: []config.PolicyRoute{{Prefix: "/admin/", Groups: []string{"github:vintner/platform"}}},
	}})
	b := e.browser()
	b.MustSignIn("google")
	if res := b.Get("/admin/panel"); res.StatusCode != http.StatusForbidden || errorCode(res.Body) != membership.CodeRouteNotAllowed {
		t.Fatalf("before linking GitHub: %d %q", res.StatusCode, errorCode(res.Body))
	}
	res := b.Get("/auth/link/github")
	if scope := mustScope(t, res.Location()); !strings.Contains(scope, "read:org") {
		t.Fatalf("linking GitHub asks for %q, without read:org", scope)
	}
	res = b.Get(b.Approve(res.Location(), "octocat"))
	if res.StatusCode != http.StatusFound || !strings.HasSuffix(res.Location(), "/auth/account?linked=github") {
		t.Fatalf("link: %d → %q\n%s", res.StatusCode, res.Location(), res.Body)
	}
	if res := b.Get("/admin/panel"); res.StatusCode != http.StatusOK {
		t.Fatalf("after linking GitHub: %d %s", res.StatusCode, res.Body)
	}
	ids, err := e.store.ListIdentities(context.Background(), mustUserID(t, e, b))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if (id.Provider == "github") != (len(id.Grant) > 0) {
			t.Fatalf("identity %s keeps a grant: %v", id.Provider, len(id.Grant) > 0)
		}
	}
}

func mustScope(t *testing.T, authURL string) string {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("scope")
}

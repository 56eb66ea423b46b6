package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/service/users"
)

// recheckInterval is policy.recheck_interval of the policy replicas.
const recheckInterval = time.Second

// setMemberships changes a user's groups at the fake GitHub through its
// control endpoint, as a person trying `arbor dev` would.
func setMemberships(t *testing.T, c *cluster, login string, groups ...string) {
	t.Helper()
	if groups == nil {
		groups = []string{}
	}
	body, _ := json.Marshal(map[string]any{"user": login, "groups": groups})
	resp, err := http.Post(c.fakes.Fakes["github"].URL()+fakeprovider.ControlMembershipsPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("the fake's control endpoint answered %d", resp.StatusCode)
	}
}

// eventually polls check on every replica until it holds there, for at
// most bound after since, and returns how long each took; bound is a
// deadline for a broken build, not the speed asserted.
func eventually(t *testing.T, c *cluster, what string, since time.Time, bound time.Duration, check func(r *replica) (bool, string)) {
	t.Helper()
	for _, r := range c.replicas {
		for {
			ok, last := check(r)
			if ok {
				t.Logf("%s on replica %s after %v", what, r.name, time.Since(since).Round(time.Millisecond))
				break
			}
			if time.Since(since) > bound {
				t.Fatalf("%s: replica %s still answers %s %v after the change", what, r.name, last, bound)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Removal at the provider ends access within about one re-check interval
// on two replicas on etcd: removed from the team that a route rule
// names, octocat's session gets 403 route_not_allowed there (and keeps the
// rest); removed from the organisation policy.allow names, the session,
// the CLI token and the worker are all refused on both replicas, with one
// audit event policy.access_ended. The provider is asked about once per
// interval, not once per replica or request. Put back, octocat signs in
// again and everything works.
func TestPolicyRemovalEndsAccessOnReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and two replicas")
	}
	c := startClusterEnv(t, 1,
		"ARBOR_POLICY_ALLOW_GROUPS=github:vintner",
		"ARBOR_POLICY_ROUTES=[{prefix: /admin/, groups: [github:vintner/platform]}]",
		"ARBOR_POLICY_RECHECK_INTERVAL="+recheckInterval.String(),
		"ARBOR_AUTH_SESSION_PATHS=/admin/,/app/",
	)
	gh := c.fakes.Fakes["github"]
	user := newAgent(t, 20*time.Second)
	cookie, err := user.signIn(c.public)
	if err != nil {
		t.Fatal(err)
	}
	a := c.replicas[0]
	access, _, err := user.cliLogin(a.base, a.base, c.replicas[1].base)
	if err != nil {
		t.Fatal(err)
	}
	_, workerCreds := registerWorker(t, user, a.base, "policy-runner")
	plain := newAgent(t, 10*time.Second)
	page := http.Header{"Cookie": {"arbor_session=" + cookie}, "Accept": {"text/html"}}
	bearer := http.Header{"Authorization": {"Bearer " + access}}
	who, err := expect(plain.get(a.base+"/auth/whoami", page))(200, "whoami")
	if err != nil {
		t.Fatal(err)
	}
	var me struct {
		UserID string `json:"user_id"`
	}
	if json.Unmarshal([]byte(who.body), &me) != nil || me.UserID == "" {
		t.Fatalf("whoami: %s", who.body)
	}
	requests := 0
	get := func(r *replica, path string, hdr http.Header) reply {
		t.Helper()
		requests++
		res, err := plain.get(r.base+path, hdr)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	code := func(res reply) string {
		if i := strings.Index(res.body, `data-error="`); i >= 0 {
			rest := res.body[i+len(`data-error="`):]
			return rest[:strings.IndexByte(rest, '"')]
		}
		var j struct{ Error string }
		json.Unmarshal([]byte(res.body), &j)
		return j.Error
	}
	status := func(res reply) string { return http.StatusText(res.status) + " " + code(res) }
	for _, r := range c.replicas {
		for path, hdr := range map[string]http.Header{"/admin/panel": page, "/app/home": page, "/api/auth/me": bearer, "/api/tendril/jobs": workerCreds} {
			if res := get(r, path, hdr); res.status != http.StatusOK {
				t.Fatalf("before the removal, %s on %s: %d %s", path, r.name, res.status, tail(res.body, 300))
			}
		}
	}
	teamsCalls := func() int { return len(gh.CallsTo(fakeprovider.EndpointTeams)) }
	bound := 5*recheckInterval + 10*time.Second // a loaded 2-core machine; a broken build never gets there

	// 1. Out of the team: the route rule stops matching; the rest stands.
	removed, callsBefore := time.Now(), teamsCalls()
	setMemberships(t, c, "octocat", "vintner")
	eventually(t, c, "/admin/ refused", removed, bound, func(r *replica) (bool, string) {
		res := get(r, "/admin/panel", page)
		return res.status == http.StatusForbidden && code(res) == "route_not_allowed", status(res)
	})
	for _, r := range c.replicas {
		res := get(r, "/admin/panel", page)
		if !strings.Contains(res.body, "limited to members of the GitHub group vintner/platform") || !strings.Contains(res.header.Get("Content-Type"), "text/html") {
			t.Errorf("the route_not_allowed page on %s does not say the rule:\n%s", r.name, tail(res.body, 2000))
		}
		for path, hdr := range map[string]http.Header{"/app/home": page, "/api/auth/me": bearer, "/api/tendril/jobs": workerCreds} {
			if res := get(r, path, hdr); res.status != http.StatusOK {
				t.Errorf("out of the team only, %s on %s: %d %s", path, r.name, res.status, tail(res.body, 300))
			}
		}
	}

	// 2. Out of the organisation: no longer allowed at all.
	setMemberships(t, c, "octocat")
	left := time.Now()
	eventually(t, c, "session, CLI token and worker refused", left, bound, func(r *replica) (bool, string) {
		if res := get(r, "/auth/whoami", page); res.status != http.StatusUnauthorized {
			return false, "session: " + status(res)
		}
		if res := get(r, "/api/auth/me", bearer); res.status != http.StatusUnauthorized {
			return false, "CLI token: " + status(res)
		}
		if res := get(r, "/api/tendril/jobs", workerCreds); res.status != http.StatusForbidden || code(res) != "not_allowed" {
			return false, "worker: " + status(res)
		}
		return true, ""
	})
	for _, r := range c.replicas {
		if res := get(r, "/admin/panel", page); res.status != http.StatusFound || !strings.Contains(res.header.Get("Location"), "/auth/sign-in") {
			t.Errorf("the ended session on %s: %d %q, want the sign-in redirect", r.name, res.status, res.header.Get("Location"))
		}
	}
	elapsed, calls := time.Since(removed), teamsCalls()-callsBefore
	// About one groups fetch per interval (the lock per user), not one
	// per replica per tick, nor per request.
	if most := int(elapsed/recheckInterval) + 2; calls > most || calls < 2 {
		t.Errorf("the fake saw %d /user/teams calls in %v (%d requests to the replicas); want 2 to %d, about one per %v", calls, elapsed.Round(time.Millisecond), requests, most, recheckInterval)
	}
	t.Logf("%d /user/teams calls in %v while the test sent %d requests", calls, elapsed.Round(time.Millisecond), requests)

	dir := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "ARBOR_DATA_DIR=" + dir,
		"ARBOR_STORE_BACKEND=etcd", "ARBOR_STORE_ENDPOINTS=" + strings.Join(c.etcd.Endpoints(), ","), "ARBOR_STORE_ROOT=/arbor-replicas/"}
	audit := decodeJSON[users.AuditPage](t, "audit --json", arborOK(t, env, "audit", "--user", me.UserID, "--type", "policy.access_ended", "--json"))
	if len(audit.Events) != 1 || audit.Events[0].Actor != "system" || audit.Events[0].Details["reason"] != "not_allowed" ||
		audit.Events[0].Details["sessions"] != "1" || audit.Events[0].Details["cli_logins"] != "1" {
		t.Errorf("policy.access_ended events: %+v", audit.Events)
	}

	// 3. Back in the team: a new sign-in works and reaches /admin/ on
	// both replicas; the worker, whose record stayed, works again.
	setMemberships(t, c, "octocat", "vintner", "vintner/platform")
	again := newAgent(t, 20*time.Second)
	cookie, err = again.signIn(c.public)
	if err != nil {
		t.Fatal(err)
	}
	page = http.Header{"Cookie": {"arbor_session=" + cookie}, "Accept": {"text/html"}}
	back := time.Now()
	eventually(t, c, "octocat back", back, bound, func(r *replica) (bool, string) {
		if res := get(r, "/admin/panel", page); res.status != http.StatusOK {
			return false, "session: " + status(res)
		}
		if res := get(r, "/api/tendril/jobs", workerCreds); res.status != http.StatusOK {
			return false, "worker: " + status(res)
		}
		return true, ""
	})
}

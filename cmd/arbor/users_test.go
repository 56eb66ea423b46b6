package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/service/users"
)

// arborOK runs arbor and fails the test unless it exits 0.
func arborOK(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, errOut, code := runArbor(t, env, args...)
	if code != 0 {
		t.Fatalf("arbor %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func decodeJSON[T any](t *testing.T, what, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: not JSON (%v):\n%s", what, err, s)
	}
	return v
}

// A user signed in with a browser session, a CLI login and a worker is
// disabled with `arbor users disable` while `arbor serve` runs: the very
// next request with the cookie, the CLI token and the worker is refused
// (the worker with 403 account_disabled), a new sign-in is refused with
// the account_disabled page and no cookie, and `arbor audit` shows who
// did it. Enabled, the user signs in again and the worker works again;
// `arbor sessions revoke` sends the browser to sign in; `arbor users
// delete` ends the worker too. All through the same socket.
func TestUsersCommandsWhileServing(t *testing.T) {
	e := newTestEnv(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %q", r.Header.Get("X-Arbor-User-Id"))
	}))
	defer upstream.Close()
	addr := freeAddr(t)
	base := "http://" + addr
	env, _ := e.withFakes(t, base, upstream.URL, fakes.Options{}, "ARBOR_WORKERS_PATHS=/api/tendril/")
	startServeAt(t, addr, "/readyz", env)

	user := newAgent(t, 20*time.Second)
	cookie, err := user.signIn(base)
	if err != nil {
		t.Fatal(err)
	}
	access, _, err := user.cliLogin(base, base, base)
	if err != nil {
		t.Fatal(err)
	}
	plain := newAgent(t, 20*time.Second)
	withCookie := http.Header{"Cookie": {"arbor_session=" + cookie}}
	withBearer := http.Header{"Authorization": {"Bearer " + access}}
	if _, err := expect(plain.get(base+"/auth/whoami", withCookie))(200, "whoami before"); err != nil {
		t.Fatal(err)
	}
	if _, err := expect(plain.get(base+"/api/auth/me", withBearer))(200, "CLI token before"); err != nil {
		t.Fatal(err)
	}
	_, worker := registerWorker(t, user, base, "build-box")
	workerURL := base + "/api/tendril/jobs"
	if _, err := expect(plain.get(workerURL, worker))(200, "the worker before"); err != nil {
		t.Fatal(err)
	}

	list := decodeJSON[[]users.Summary](t, "users list --json", arborOK(t, env, "users", "list", "--json"))
	if len(list) != 1 || list[0].Login != "octocat" || strings.Join(list[0].Providers, ",") != "github" || list[0].LastSignIn.IsZero() {
		t.Fatalf("users list: %+v", list)
	}
	id := list[0].ID
	table := arborOK(t, env, "users", "list")
	if !strings.Contains(table, "LAST SIGN-IN") || !strings.Contains(table, id) || !strings.Contains(table, "1 user") {
		t.Errorf("users list table:\n%s", table)
	}

	out := arborOK(t, env, "users", "disable", id, "--reason", "left the team")
	if !strings.Contains(out, "disabled user "+id+": 1 browser session and 1 CLI login ended") {
		t.Errorf("users disable printed: %s", out)
	}
	// At once: no waiting, the store told the session cache before the
	// command returned.
	if _, err := expect(plain.get(base+"/auth/whoami", withCookie))(http.StatusUnauthorized, "whoami after disable"); err != nil {
		t.Error(err)
	}
	if r, err := plain.get(base+"/hello", withCookie); err != nil || r.status != http.StatusFound || !strings.Contains(r.header.Get("Location"), "/auth/") {
		t.Errorf("a page after disable: %d %s %v; want the sign-in redirect", r.status, r.header.Get("Location"), err)
	}
	if r, err := expect(plain.get(base+"/api/auth/me", withBearer))(http.StatusUnauthorized, "CLI token after disable"); err != nil {
		t.Error(err)
	} else if code := errorCode(r); code != "unauthenticated" {
		t.Errorf("CLI token after disable: error %q, want unauthenticated", code)
	}
	if r, err := expect(plain.get(workerURL, worker))(http.StatusForbidden, "the worker after disable"); err != nil {
		t.Error(err)
	} else if code := errorCode(r); code != "account_disabled" {
		t.Errorf("the worker after disable: error %q, want account_disabled: %s", code, r.body)
	}
	// A new sign-in is refused with the explaining page, and no cookie.
	again := newAgent(t, 20*time.Second)
	if r, err := again.signInAnswer(base); err != nil {
		t.Error(err)
	} else {
		if r.status != http.StatusForbidden || !strings.Contains(r.body, `data-error="account_disabled"`) ||
			!strings.Contains(r.body, "An administrator has disabled your account.") {
			t.Errorf("sign-in of a disabled user: %d, want 403 with the account_disabled page:\n%s", r.status, tail(r.body, 2000))
		}
		if c := r.header.Get("Set-Cookie"); strings.Contains(c, "arbor_session=") && !strings.Contains(c, "arbor_session=;") {
			t.Errorf("the refused sign-in set a session cookie: %s", c)
		}
	}
	if out := arborOK(t, env, "users", "disable", id); !strings.Contains(out, "already disabled") {
		t.Errorf("second disable printed: %s", out)
	}

	wantActor := fmt.Sprintf("operator:uid=%d", os.Getuid())
	d := decodeJSON[users.Detail](t, "users show --json", arborOK(t, env, "users", "show", id, "--json"))
	if !d.User.Disabled || d.User.DisabledBy != wantActor || d.User.DisabledReason != "left the team" || len(d.Sessions) != 0 ||
		len(d.Logins) != 1 || d.Logins[0].RevokedAt.IsZero() {
		t.Errorf("users show after disable: %+v", d)
	}
	if list[0].Email == "" {
		t.Fatal("the fake GitHub gave octocat no e-mail address")
	}
	if out := arborOK(t, env, "users", "show", strings.ToUpper(list[0].Email)); !strings.Contains(out, "disabled:   yes, since") || !strings.Contains(out, "left the team") {
		t.Errorf("users show by e-mail printed:\n%s", out)
	}

	page := decodeJSON[users.AuditPage](t, "audit --json", arborOK(t, env, "audit", "--user", id, "--type", "user.", "--json"))
	if len(page.Events) != 1 || page.Events[0].Action != users.ActionDisabled || page.Events[0].Actor != wantActor ||
		page.Events[0].Details["reason"] != "left the team" {
		t.Errorf("audit --user --type user.: %+v", page)
	}

	if out := arborOK(t, env, "users", "enable", id); !strings.Contains(out, "enabled user "+id) {
		t.Errorf("users enable printed: %s", out)
	}
	if out := arborOK(t, env, "users", "enable", id); !strings.Contains(out, "is not disabled; nothing changed") {
		t.Errorf("second enable printed: %s", out)
	}
	// The worker works again at once, with the token it had.
	if _, err := expect(plain.get(workerURL, worker))(200, "the worker after enable"); err != nil {
		t.Error(err)
	}
	// Signed in again after enable, then signed out everywhere.
	cookie, err = user.signIn(base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := expect(user.get(base+"/hello", nil))(200, "a page signed in again after enable"); err != nil {
		t.Error(err)
	}
	if out := arborOK(t, env, "sessions", "revoke", "--user", id); !strings.Contains(out, "1 browser session and 0 CLI logins ended") {
		t.Errorf("sessions revoke printed: %s", out)
	}
	if r, _ := user.get(base+"/auth/whoami", nil); r.status != http.StatusUnauthorized {
		t.Errorf("whoami after sessions revoke: %d", r.status)
	}
	// The browser is sent to sign in (and may: the account is enabled).
	if r, err := user.get(base+"/hello", http.Header{"Accept": {"text/html"}}); err != nil || r.status != http.StatusFound ||
		!strings.HasPrefix(r.header.Get("Location"), "/auth/sign-in") {
		t.Errorf("a page after sessions revoke: %d %q %v; want the sign-in redirect", r.status, r.header.Get("Location"), err)
	}
	// Workers are untouched by a revoke of sessions.
	if _, err := expect(plain.get(workerURL, worker))(200, "the worker after sessions revoke"); err != nil {
		t.Error(err)
	}

	// Newest first, paged: four events, two a page.
	out = arborOK(t, env, "audit", "--user", id, "--limit", "2")
	if !strings.Contains(out, "older events: arbor audit --user "+id+" --limit 2 --before ") {
		t.Errorf("audit page 1 does not say how to get the next:\n%s", out)
	}
	p1 := decodeJSON[users.AuditPage](t, "audit page 1", arborOK(t, env, "audit", "--user", id, "--limit", "2", "--json"))
	if len(p1.Events) != 2 || p1.Events[0].Action != users.ActionSessionsRevoked || p1.Next == 0 {
		t.Fatalf("audit page 1: %+v", p1)
	}
	p2 := decodeJSON[users.AuditPage](t, "audit page 2", arborOK(t, env, "audit", "--user", id, "--limit", "2", "--before", fmt.Sprint(p1.Next), "--json"))
	if len(p2.Events) == 0 || p2.Events[0].Seq >= p1.Events[1].Seq {
		t.Errorf("audit page 2 (before %d): %+v", p1.Next, p2)
	}

	if _, errOut, code := runArbor(t, env, "users", "delete", id); code != 2 || !strings.Contains(errOut, "pass --yes") {
		t.Errorf("delete without --yes and no terminal: exit %d: %s", code, errOut)
	}
	signedIn, err := user.signIn(base) // a session for delete to end
	if err != nil {
		t.Fatal(err)
	}
	if out := arborOK(t, env, "users", "delete", id, "--yes"); !strings.Contains(out, "deleted user "+id) {
		t.Errorf("users delete printed: %s", out)
	}
	// Everything ends: the session, the CLI login, the worker.
	if r, err := plain.get(base+"/hello", http.Header{"Cookie": {"arbor_session=" + signedIn}}); err != nil || r.status != http.StatusFound {
		t.Errorf("a page with the session after delete: %d %v; want the sign-in redirect", r.status, err)
	}
	if _, err := expect(plain.get(base+"/api/auth/me", withBearer))(http.StatusUnauthorized, "CLI token after delete"); err != nil {
		t.Error(err)
	}
	if r, err := expect(plain.get(workerURL, worker))(http.StatusUnauthorized, "the worker after delete"); err != nil {
		t.Error(err)
	} else if code := errorCode(r); code != "worker_unauthorized" {
		t.Errorf("the worker after delete: error %q, want worker_unauthorized", code)
	}
	if out := arborOK(t, env, "users", "delete", id, "--yes"); !strings.Contains(out, "already deleted") {
		t.Errorf("second delete printed: %s", out)
	}
	if _, errOut, code := runArbor(t, env, "users", "show", id); code != 1 || !strings.Contains(errOut, "`arbor users list` shows them") {
		t.Errorf("show of a deleted user: exit %d: %s", code, errOut)
	}
}

// Without a server the commands open the store file themselves and print
// the same; a file another process holds is refused with advice.
func TestUsersCommandsWithoutServer(t *testing.T) {
	e := newTestEnv(t)
	path := filepath.Join(e.dataDir, "arbor.db")
	ctx, now := context.Background(), time.Now().UTC()
	st, err := boltdb.Open(path, boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateUser(ctx, data.User{ID: "usr_1", Login: "octocat", Email: "octocat@example.com", CreatedAt: now, UpdatedAt: now}))
	must(st.CreateSession(ctx, data.Session{ID: "s1", UserID: "usr_1", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}))
	must(st.CreateRefreshFamily(ctx, data.RefreshFamily{ID: "f1", UserID: "usr_1", CurrentJTI: "j", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))

	// Held (as by a server whose socket is gone): refused, nothing changed.
	_, errOut, code := runArbor(t, e.env, "users", "disable", "usr_1")
	if code == 0 || !strings.Contains(errOut, "is an arbor server running on it? stop it first") {
		t.Errorf("disable on a held file: exit %d: %s", code, errOut)
	}
	must(st.Close())

	if out := arborOK(t, e.env, "users", "list"); !strings.Contains(out, "usr_1") || !strings.Contains(out, "octocat@example.com") {
		t.Errorf("users list:\n%s", out)
	}
	if out := arborOK(t, e.env, "users", "disable", "usr_1", "--reason", "lost laptop"); !strings.Contains(out, "disabled user usr_1: 1 browser session and 1 CLI login ended") {
		t.Errorf("users disable printed: %s", out)
	}
	d := decodeJSON[users.Detail](t, "users show --json", arborOK(t, e.env, "users", "show", "OCTOCAT@example.com", "--json"))
	if d.User.ID != "usr_1" || !d.User.Disabled || d.User.DisabledBy != users.Actor {
		t.Errorf("users show by e-mail: %+v", d.User)
	}
	page := decodeJSON[users.AuditPage](t, "audit --json", arborOK(t, e.env, "audit", "--json", "--since", "1h"))
	if len(page.Events) != 1 || page.Events[0].Action != users.ActionDisabled || page.Events[0].Actor != users.Actor {
		t.Errorf("audit: %+v", page)
	}
	if _, errOut, code := runArbor(t, e.env, "audit", "--since", "soon"); code != 2 || !strings.Contains(errOut, "want a duration") {
		t.Errorf("audit --since soon: exit %d: %s", code, errOut)
	}

	st, err = boltdb.Open(path, boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSession(ctx, "s1"); err == nil {
		t.Error("the session outlived the disable")
	}
	if f, err := st.GetRefreshFamily(ctx, "f1"); err != nil || f.RevokedAt.IsZero() {
		t.Errorf("the CLI login after disable: %+v, %v", f, err)
	}
	must(st.Close())

	if out := arborOK(t, e.env, "users", "delete", "usr_1", "--yes"); !strings.Contains(out, "deleted user usr_1") {
		t.Errorf("users delete printed: %s", out)
	}
	if out := arborOK(t, e.env, "users", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("users list --json after delete: %s", out)
	}

	other := newTestEnv(t)
	if _, errOut, code := runArbor(t, other.env, "users", "list"); code == 0 || !strings.Contains(errOut, "there is no store at") {
		t.Errorf("users list with no store: exit %d: %s", code, errOut)
	}
}

// On etcd, with the replicas serving elsewhere (no admin socket here),
// `arbor users disable` talks to the cluster itself, and both replicas,
// which have the session cached, refuse it within a second: they hear of
// the deletion through their watches.
func TestUsersDisableOnEtcdEndsEveryReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and two replicas")
	}
	c := startCluster(t, 1)
	user := newAgent(t, 20*time.Second)
	cookie, err := user.signIn(c.public)
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.replicas[0], c.replicas[1]
	access, _, err := user.cliLogin(a.base, a.base, b.base)
	if err != nil {
		t.Fatal(err)
	}
	plain := newAgent(t, 10*time.Second)
	withCookie := http.Header{"Cookie": {"arbor_session=" + cookie}}
	withBearer := http.Header{"Authorization": {"Bearer " + access}}
	for _, r := range c.replicas {
		if _, err := expect(plain.get(r.base+"/auth/whoami", withCookie))(200, "whoami on "+r.name); err != nil {
			t.Fatal(err)
		}
	}

	dir, err := os.MkdirTemp("", "arbops")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "ARBOR_DATA_DIR=" + dir,
		"ARBOR_STORE_BACKEND=etcd", "ARBOR_STORE_ENDPOINTS=" + strings.Join(c.etcd.Endpoints(), ","), "ARBOR_STORE_ROOT=/arbor-replicas/"}
	list := decodeJSON[[]users.Summary](t, "users list --json", arborOK(t, env, "users", "list", "--json"))
	if len(list) != 1 {
		t.Fatalf("users list on etcd: %+v", list)
	}
	id := list[0].ID
	out := arborOK(t, env, "users", "disable", id, "--reason", "incident 42")
	if !strings.Contains(out, "disabled user "+id+": 1 browser session and 1 CLI login ended") {
		t.Errorf("users disable printed: %s", out)
	}
	disabled := time.Now()
	for _, r := range c.replicas {
		for {
			resp, err := plain.get(r.base+"/auth/whoami", withCookie)
			if err != nil {
				t.Fatal(err)
			}
			if resp.status == http.StatusUnauthorized {
				t.Logf("replica %s refused the session %v after the command returned", r.name, time.Since(disabled).Round(time.Millisecond))
				break
			}
			if time.Since(disabled) > 5*time.Second {
				t.Fatalf("replica %s still accepts the session of a disabled user 5s later: %d", r.name, resp.status)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if _, err := expect(plain.get(r.base+"/api/auth/me", withBearer))(http.StatusUnauthorized, "CLI token on "+r.name); err != nil {
			t.Error(err)
		}
	}
	page := decodeJSON[users.AuditPage](t, "audit --json", arborOK(t, env, "audit", "--type", users.ActionDisabled, "--json"))
	if len(page.Events) != 1 || page.Events[0].UserID != id || page.Events[0].Actor != users.Actor || page.Events[0].Details["reason"] != "incident 42" {
		t.Errorf("audit on etcd: %+v", page)
	}
}

// signInAnswer runs a web sign-in through the fake GitHub, as a browser
// would (Accept: text/html), like agent.signIn, and returns Arbor's
// answer to the callback, whatever it is.
func (a *agent) signInAnswer(base string) (reply, error) {
	html := http.Header{"Accept": {"text/html"}}
	r, err := expect(a.get(base+"/auth/start/github", html))(http.StatusFound, "start")
	if err != nil {
		return r, err
	}
	r, err = expect(a.get(r.header.Get("Location")+"&fake_auto=approve", html))(http.StatusFound, "fake authorize")
	if err != nil {
		return r, err
	}
	return a.get(r.header.Get("Location"), html)
}

// errorCode is the "error" of a JSON error answer, or "".
func errorCode(r reply) string {
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal([]byte(r.body), &e)
	return e.Error
}

package main

// RFC 8628 remote phishing against a real `arbor serve` (issue 15, item
// 7): only clients registered in cli.device_clients may start a device
// login, an unregistered client_id gets 400 invalid_client and writes
// nothing, a client may not ask for more than its scopes, and a device
// token is refused (403 insufficient_scope) wherever it lacks the scope.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/plugintest"
)

func TestHostileDeviceClient(t *testing.T) {
	lb := newBalancer(t)
	set, err := fakes.Start(lb.url, fakes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	var upstreamHits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"user": r.Header.Get("X-Arbor-User-Id"), "authorization": r.Header.Get("Authorization")})
	}))
	t.Cleanup(up.Close)
	sessionKey, _ := config.GenerateToken()
	cliKey, _ := config.GenerateToken()
	sealKey, _ := config.GenerateKeyringEntry(time.Now())
	env := append([]string{
		"PATH=" + os.Getenv("PATH"),
		"ARBOR_LOG_LEVEL=warn",
		"ARBOR_PUBLIC_URL=" + lb.url,
		"ARBOR_UPSTREAM_URL=" + up.URL,
		"ARBOR_STORE_GC_INTERVAL=1h", // no background writes during the test
		// What is measured is what an unregistered client leaves in the
		// store; the per-address rate limits would answer most of the
		// requests 429 before the client check (hostile_ratelimit_test.go).
		"ARBOR_LIMITS_ENABLED=false",
		`ARBOR_CLI_DEVICE_CLIENTS=[{id: trellis-viewer, name: Trellis viewer, scopes: [proxy]}, {id: repo-tool, name: Repo tool, scopes: [providers]}]`,
		config.EnvSessionKey + "=" + sessionKey,
		config.EnvCLIJWTSecret + "=" + cliKey,
		config.EnvEncryptionKeys + "=" + sealKey,
		"ARBOR_PLUGINS_CACHE_DIR=" + plugintest.DefaultCacheDir(),
	}, set.Environ()...)
	r := startReplica(t, "dc", env)
	lb.add(r)
	dbFile := ""
	for _, kv := range r.cmd.Env {
		if v, ok := strings.CutPrefix(kv, "ARBOR_DATA_DIR="); ok {
			dbFile = filepath.Join(v, "arbor.db")
		}
	}
	readDB := func() []byte {
		t.Helper()
		b, err := os.ReadFile(dbFile)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	anon := newAgent(t, 30*time.Second)
	form := func(a *agent, path string, v url.Values) (int, map[string]any) {
		t.Helper()
		rep, err := a.postForm(r.base+path, v)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.Unmarshal([]byte(rep.body), &body)
		return rep.status, body
	}

	// 1. Unregistered clients: 400 invalid_client, nothing written.
	before := readDB()
	for i, id := range []string{"Trellis Web (official)", "trellis-viewer ", "TRELLIS-VIEWER", "grape", "stock-cli", strings.Repeat("x", 64)} {
		status, body := form(anon, "/oauth/device/code", url.Values{"client_id": {id}, "scope": {"providers workers proxy"}})
		if status != http.StatusBadRequest || body["error"] != "invalid_client" {
			t.Fatalf("unregistered client %d: %d %v, want 400 invalid_client", i, status, body)
		}
		status, body = form(anon, "/oauth/token", url.Values{"client_id": {id}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {"x"}})
		if status != http.StatusBadRequest || body["error"] != "invalid_client" {
			t.Fatalf("unregistered client %d at /oauth/token: %d %v, want 400 invalid_client", i, status, body)
		}
	}
	// 2. A registered client asking beyond its scopes: 400 invalid_scope.
	for _, s := range []string{"providers", "workers", "proxy workers", "admin"} {
		status, body := form(anon, "/oauth/device/code", url.Values{"client_id": {"trellis-viewer"}, "scope": {s}})
		if status != http.StatusBadRequest || body["error"] != "invalid_scope" {
			t.Fatalf("trellis-viewer asking for %q: %d %v, want 400 invalid_scope", s, status, body)
		}
	}
	if !bytes.Equal(before, readDB()) {
		t.Fatal("refused device clients changed the store file")
	}

	// 3. A registered client's token can do only what its scopes allow.
	user := newAgent(t, 30*time.Second)
	if _, err := user.signIn(lb.url); err != nil {
		t.Fatal(err)
	}
	deviceToken := func(clientID string) string {
		t.Helper()
		status, da := form(anon, "/oauth/device/code", url.Values{"client_id": {clientID}})
		uc, _ := da["user_code"].(string)
		if status != http.StatusOK || uc == "" {
			t.Fatalf("%s: device code: %d %v", clientID, status, da)
		}
		page, err := expect(user.get(r.base+"/device?user_code="+url.QueryEscape(uc), nil))(http.StatusOK, "/device")
		if err != nil {
			t.Fatal(err)
		}
		m := csrfFieldRE.FindStringSubmatch(page.body)
		if m == nil {
			t.Fatalf("/device without a CSRF field: %s", tail(page.body, 500))
		}
		confirm, err := expect(user.postForm(r.base+"/device", url.Values{"csrf": {m[1]}, "user_code": {uc}}))(http.StatusOK, "/device confirmation")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(confirm.body, `id="phishing-warning"`) || !strings.Contains(confirm.body, "(client id <code>"+clientID+"</code>)") {
			t.Fatalf("%s: the confirmation page lacks the warning or the registered client:\n%s", clientID, tail(confirm.body, 2000))
		}
		if _, err := expect(user.postForm(r.base+"/device/approve", url.Values{"csrf": {m[1]}, "user_code": {uc}, "decision": {"approve"}}))(http.StatusOK, "approve"); err != nil {
			t.Fatal(err)
		}
		status, tok := form(anon, "/oauth/token", url.Values{"client_id": {clientID}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da["device_code"].(string)}})
		at, _ := tok["access_token"].(string)
		if status != http.StatusOK || at == "" {
			t.Fatalf("%s: token: %d %v", clientID, status, tok)
		}
		return at
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	wantScope := func(what string, rep reply, err error, need string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var body struct{ Error string }
		json.Unmarshal([]byte(rep.body), &body)
		if rep.status != http.StatusForbidden || body.Error != "insufficient_scope" || !strings.Contains(rep.header.Get("WWW-Authenticate"), `scope="`+need+`"`) {
			t.Fatalf("%s: %d %q (WWW-Authenticate %q), want 403 insufficient_scope for %s", what, rep.status, body.Error, rep.header.Get("WWW-Authenticate"), need)
		}
	}

	viewer := deviceToken("trellis-viewer")
	rep, err := anon.get(r.base+"/api/providers/github/token", bearer(viewer))
	wantScope("a proxy-only token reading a provider token", rep, err, "providers")
	rep, err = anon.postJSON(r.base+"/api/workers", map[string]string{"name": "backdoor"}, bearer(viewer))
	wantScope("a proxy-only token registering a worker", rep, err, "workers")
	rep, err = expect(anon.get(r.base+"/app/dashboard", bearer(viewer)))(http.StatusOK, "a proxy-only token on a proxied route")
	if err != nil {
		t.Fatal(err)
	}
	var seen map[string]string
	if err := json.Unmarshal([]byte(rep.body), &seen); err != nil || seen["user"] == "" || seen["authorization"] != "" {
		t.Fatalf("upstream saw %v: want the user's id and no token", seen)
	}

	repo := deviceToken("repo-tool")
	if _, err := expect(anon.get(r.base+"/api/providers", bearer(repo)))(http.StatusOK, "a providers token listing providers"); err != nil {
		t.Fatal(err)
	}
	hits := upstreamHits.Load()
	rep, err = anon.get(r.base+"/app/dashboard", bearer(repo))
	wantScope("a providers-only token on a proxied route", rep, err, "proxy")
	if upstreamHits.Load() != hits {
		t.Fatal("a token without the proxy scope reached the upstream")
	}
	rep, err = anon.postJSON(r.base+"/api/workers", map[string]string{"name": "backdoor"}, bearer(repo))
	wantScope("a providers-only token registering a worker", rep, err, "workers")

	// The server keeps serving.
	if _, err := expect(anon.get(r.base+"/healthz", nil))(http.StatusOK, "healthz"); err != nil {
		t.Fatal(err)
	}
}

package main

// Hostile sign-in traffic against the real `arbor serve` (the race-enabled
// binary of TestMain, a real bbolt file or an embedded etcd cluster, the
// built-in plugins, the fake providers): an anonymous flood of /auth/start
// and of failed callbacks must not write to the store (issue 15, "no store
// write before a provider has vouched").

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vintner/arbor/data/boltdb/bolttest"
	"github.com/vintner/arbor/plugins/builtin/fakes"
)

func TestHostileSignInFloodWritesNothing(t *testing.T) {
	e := newTestEnv(t)
	storePath := filepath.Join(e.dataDir, "arbor.db")
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s as %q", r.URL.Path, r.Header.Get("X-Arbor-User-Id"))
	}))
	defer upstream.Close()
	// The fakes accept exactly public_url + /auth/callback/{name}, so the
	// address is chosen before the fakes and the server start.
	addr := freeAddr(t)
	base := "http://" + addr
	env, _ := e.withFakes(t, base, upstream.URL, fakes.Options{},
		// What is measured is what the requests leave in the store; the
		// per-address rate limits (hostile_ratelimit_test.go) would answer
		// most of the flood 429 before it reached the sign-in handlers.
		"ARBOR_LIMITS_ENABLED=false",
	)
	startServeAt(t, addr, "/readyz", env)

	// A genuine sign-in first: the store then holds a user, and its
	// callback is one to replay later.
	user := newAgent(t, 20*time.Second)
	callback := signInForCallback(t, user, base)
	keys0, size0 := serveCensus(t, e, env, storePath)

	requests := floodSignIn(t, base, callback)
	// The user's own browser replaying the genuine callback: spent.
	if r, err := expect(user.get(callback, http.Header{"Accept": {"application/json"}}))(400, "replay"); err != nil || !strings.Contains(r.body, `"error":"state_invalid"`) {
		t.Fatalf("replayed callback: %v %s", err, r.body)
	}

	keys1, size1 := serveCensus(t, e, env, storePath)
	t.Logf("%d anonymous requests: store %d keys / %d bytes before, %d keys / %d bytes after",
		requests, keys0, size0, keys1, size1)
	if keys1 != keys0 || size1 != size0 {
		t.Fatalf("the anonymous flood changed the store: %d keys / %d bytes before, %d keys / %d bytes after",
			keys0, size0, keys1, size1)
	}
	if r, err := expect(user.get(base+"/hello", nil))(http.StatusOK, "the user after the flood"); err != nil {
		t.Fatalf("%v %s", err, r.body)
	}
}

// The same flood through two replicas on etcd (each request to either
// one): not one write reaches the cluster, so its revision stays put.
func TestHostileSignInFloodWritesNothingEtcd(t *testing.T) {
	c := startCluster(t, 1)
	user := newAgent(t, 20*time.Second)
	callback := signInForCallback(t, user, c.public)
	cli := c.etcd.Client(t)
	census := func() (rev, keys int64) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, "/arbor-replicas/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision, resp.Count
	}
	rev0, keys0 := census()
	requests := floodSignIn(t, c.public, callback)
	if r, err := expect(user.get(callback, http.Header{"Accept": {"application/json"}}))(400, "replay"); err != nil || !strings.Contains(r.body, `"error":"state_invalid"`) {
		t.Fatalf("replayed callback: %v %s", err, r.body)
	}
	rev1, keys1 := census()
	t.Logf("%d anonymous requests: etcd revision %d and %d keys before, %d and %d after", requests, rev0, keys0, rev1, keys1)
	if rev1 != rev0 || keys1 != keys0 {
		t.Fatalf("the anonymous flood wrote to etcd: revision %d and %d keys before, %d and %d after", rev0, keys0, rev1, keys1)
	}
	if _, err := expect(user.get(c.public+"/hello", nil))(http.StatusOK, "the user after the flood"); err != nil {
		t.Fatal(err)
	}
}

// signInForCallback signs user in through the fake GitHub at base and
// returns the callback URL it used (spent now).
func signInForCallback(t *testing.T, user *agent, base string) string {
	t.Helper()
	r, err := expect(user.get(base+"/auth/start/github", nil))(http.StatusFound, "start")
	if err != nil {
		t.Fatal(err)
	}
	r, err = expect(user.get(r.header.Get("Location")+"&fake_auto=approve", nil))(http.StatusFound, "fake authorize")
	if err != nil {
		t.Fatal(err)
	}
	callback := r.header.Get("Location")
	if _, err := expect(user.get(callback, nil))(http.StatusFound, "callback"); err != nil {
		t.Fatal(err)
	}
	if r, err := expect(user.get(base+"/hello", nil))(http.StatusOK, "proxied as the user"); err != nil || !strings.Contains(r.body, "usr_") {
		t.Fatalf("%v %s", err, r.body)
	}
	return callback
}

// floodSignIn sends, from several anonymous clients in parallel, sign-in
// starts and every kind of failed callback (each checked for its status
// and error code), and returns how many requests it sent. callback is a
// genuine callback URL another browser has already used.
func floodSignIn(t *testing.T, base, callback string) int {
	t.Helper()
	// Workers in parallel, each a bounded number of rounds.
	jsonHdr := http.Header{"Accept": {"application/json"}}
	const workers, rounds = 6, 60
	cb, _ := url.Parse(callback)
	code := cb.Query().Get("code")
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			a := newAgent(t, 20*time.Second)
			for i := 0; i < rounds; i++ {
				// A start (its state is real, bound to a's flow cookie).
				provider := []string{"github", "gitlab"}[i%2]
				r, err := expect(a.get(base+"/auth/start/"+provider+"?return_to=/p/"+fmt.Sprint(i), nil))(http.StatusFound, "start")
				if err != nil {
					errs <- err
					return
				}
				loc, _ := url.Parse(r.header.Get("Location"))
				state := loc.Query().Get("state")
				cbURL := base + "/auth/callback/" + provider + "?"
				other := map[string]string{"github": "gitlab", "gitlab": "github"}[provider]
				for _, f := range []struct {
					what   string
					agent  *agent
					target string
					status int
					code   string
				}{
					{"bad state", a, cbURL + url.Values{"state": {"AQ" + strings.Repeat("x", 300)}, "code": {code}}.Encode(), 400, "state_invalid"},
					{"tampered state", a, cbURL + url.Values{"state": {flipMiddle(state)}, "code": {code}}.Encode(), 400, "state_invalid"},
					{"no state", a, cbURL + "code=abc", 400, "state_missing"},
					{"no code", a, cbURL + url.Values{"state": {state}}.Encode(), 400, "code_missing"},
					{"provider error", a, cbURL + url.Values{"state": {state}, "error": {"server_error"}}.Encode(), 502, "provider_error"},
					{"access denied", a, cbURL + url.Values{"state": {state}, "error": {"access_denied"}}.Encode(), 403, "access_denied"},
					{"wrong provider", a, base + "/auth/callback/" + other + "?" + url.Values{"state": {state}, "code": {"abc"}}.Encode(), 400, "state_mismatch"},
					{"wrong browser", newAgent(t, 20*time.Second), cbURL + url.Values{"state": {state}, "code": {"abc"}}.Encode(), 400, "state_mismatch"},
					{"replayed genuine callback", a, callback, 400, "state_mismatch"}, // a is not the user's browser
				} {
					r, err := expect(f.agent.get(f.target, jsonHdr))(f.status, f.what)
					if f.agent != a {
						// A browser used once: its keep-alive connection would
						// otherwise stay open and count against
						// server.max_conns_per_address.
						f.agent.http.CloseIdleConnections()
					}
					if err == nil && !strings.Contains(r.body, `"error":"`+f.code+`"`) {
						err = fmt.Errorf("%s: %d %s, want error %q", f.what, r.status, tail(r.body, 200), f.code)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return workers * rounds * 10
}

// serveCensus counts every key of the running server's store (through
// `arbor backup`, as the file is locked) and reads the store file's size.
func serveCensus(t *testing.T, e *testEnv, env []string, storePath string) (keys int, size int64) {
	t.Helper()
	backup := filepath.Join(e.dataDir, fmt.Sprintf("census-%d.db", time.Now().UnixNano()))
	if out, errOut, code := runArbor(t, env, "backup", "--to", backup); code != 0 {
		t.Fatalf("backup: %d\n%s\n%s", code, out, errOut)
	}
	keys = bolttest.CountKeys(t, backup)
	fi, err := os.Stat(storePath)
	if err != nil {
		t.Fatal(err)
	}
	return keys, fi.Size()
}

// flipMiddle changes the middle character of s.
func flipMiddle(s string) string {
	i := len(s) / 2
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

package signin_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/data/boltdb/bolttest"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

// census counts every key in every bucket of the store (through a backup
// of the live file, which the store keeps locked) and reads the file's
// size.
func census(t *testing.T, e *env) (keys int, size int64) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := e.store.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "census.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	keys = bolttest.CountKeys(t, copyPath)
	fi, err := os.Stat(e.store.Path())
	if err != nil {
		t.Fatal(err)
	}
	return keys, fi.Size()
}

// An anonymous flood of sign-in starts and failed callbacks writes
// nothing to the store: every sign-in's state travels sealed in the state
// parameter, and only a code the provider accepted spends it.
func TestAnonymousSignInWritesNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	// Something real in the store first: a user who signed in.
	e.browser().MustSignIn("gitlab")
	keys0, size0 := census(t, e)
	if keys0 == 0 {
		t.Fatal("the census counts no keys after a sign-in")
	}

	const n = 150 // per kind of request
	flooder := e.browser()
	auth := flooder.Start("github", "/somewhere")
	state := stateOf(t, auth)
	if len(state) > 400 {
		t.Fatalf("the state parameter is %d characters", len(state))
	}
	cb := flooder.Approve(auth, "")
	code := mustQuery(t, cb, "code")
	gitlabState := stateOf(t, flooder.Start("gitlab", ""))
	tokenCalls := len(e.fakes.Fakes["github"].CallsTo(fakeprovider.EndpointToken))

	type attempt struct {
		name   string
		b      *browser
		target string
		status int
		code   string
	}
	stranger := e.browser()
	var attempts []attempt
	cbWith := func(v url.Values) string { return "/auth/callback/github?" + v.Encode() }
	for i := 0; i < n; i++ {
		attempts = append(attempts,
			// Starts: from the same browser, from fresh browsers, with
			// hostile return paths, for every provider, and links.
			attempt{"start", flooder, "/auth/start/github?return_to=" + url.QueryEscape(fmt.Sprintf("/p/%d", i)), http.StatusFound, ""},
			attempt{"start, fresh browser", e.browser(), "/auth/start/gitlab", http.StatusFound, ""},
			attempt{"start, long return path", flooder, "/auth/start/github?return_to=/" + strings.Repeat("x", 2000), http.StatusFound, ""},
			attempt{"start, unknown provider", flooder, "/auth/start/nope", http.StatusNotFound, "unknown_provider"},
			attempt{"link, anonymous", flooder, "/auth/link/github", http.StatusFound, ""},
			// Failed callbacks.
			attempt{"bad state", flooder, cbWith(url.Values{"state": {randomState(i)}, "code": {code}}), http.StatusBadRequest, "state_invalid"},
			attempt{"tampered state", flooder, cbWith(url.Values{"state": {flipChar(state, i)}, "code": {code}}), http.StatusBadRequest, "state_invalid"},
			attempt{"missing state", flooder, "/auth/callback/github?code=" + code, http.StatusBadRequest, "state_missing"},
			attempt{"missing code", flooder, cbWith(url.Values{"state": {state}}), http.StatusBadRequest, "code_missing"},
			attempt{"provider error", flooder, cbWith(url.Values{"state": {state}, "error": {"server_error"}}), http.StatusBadGateway, "provider_error"},
			attempt{"access denied", flooder, cbWith(url.Values{"state": {state}, "error": {"access_denied"}}), http.StatusForbidden, "access_denied"},
			attempt{"wrong binding", stranger, cb, http.StatusBadRequest, "state_mismatch"},
			attempt{"wrong provider", flooder, "/auth/callback/github?" + url.Values{"state": {gitlabState}, "code": {code}}.Encode(), http.StatusBadRequest, "state_mismatch"},
		)
	}
	// A handful of codes the provider refuses (each one is a call to the
	// fake's token endpoint).
	for i := 0; i < 10; i++ {
		attempts = append(attempts, attempt{"unknown code", flooder, cbWith(url.Values{"state": {state}, "code": {fmt.Sprintf("bogus-%d", i)}}), http.StatusBadRequest, "code_invalid"})
	}
	for _, a := range attempts {
		res := a.b.Get(a.target)
		if a.code != "" {
			wantError(t, a.name, res, a.status, a.code)
		} else if res.StatusCode != a.status {
			t.Fatalf("%s: %d, want %d\n%s", a.name, res.StatusCode, a.status, res.Body)
		}
	}
	if got := len(e.fakes.Fakes["github"].CallsTo(fakeprovider.EndpointToken)) - tokenCalls; got != 10 {
		t.Fatalf("the token endpoint was called %d times, want 10 (the unknown codes only)", got)
	}
	// Expired: last, it moves the clock.
	e.clock.Advance(11 * time.Minute)
	for i := 0; i < n; i++ {
		wantError(t, "expired", flooder.Get(cb), http.StatusBadRequest, "state_invalid")
	}

	keys1, size1 := census(t, e)
	if keys1 != keys0 || size1 != size0 {
		t.Fatalf("%d anonymous requests changed the store: %d keys and %d bytes before, %d keys and %d bytes after",
			len(attempts)+n, keys0, size0, keys1, size1)
	}
	oauth, err := e.store.ListOAuthStates(context.Background())
	if err != nil || len(oauth) != 0 {
		t.Fatalf("OAuth state records: %d (%v), want none", len(oauth), err)
	}
	assertNoSession(t, e, flooder)
	assertServes(t, e)

	// The census does see a sign-in (so the comparison above can fail):
	// the provider vouched, and the state is now recorded as spent.
	b := e.browser()
	b.MustSignIn("github")
	if keys2, _ := census(t, e); keys2 <= keys1 {
		t.Fatalf("a sign-in added no keys (%d, then %d)", keys1, keys2)
	}
	if oauth, err := e.store.ListOAuthStates(context.Background()); err != nil || len(oauth) != 1 || !strings.HasPrefix(oauth[0].ID, "spent:") {
		t.Fatalf("after a sign-in, the OAuth state records are %+v (%v), want one spent marker", oauth, err)
	}
}

// Concurrent replays of one genuine callback: exactly one signs in.
func TestConcurrentCallbacksOneWins(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	cb := b.Approve(b.Start("github", ""), "")
	const n = 12
	type result struct {
		status  int
		session bool
		body    string
		err     error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest(http.MethodGet, "http://"+e.addr+strings.TrimPrefix(cb, "http://"+e.addr), nil)
			if err != nil {
				results <- result{err: err}
				return
			}
			req.Header.Set("Accept", "application/json")
			req.AddCookie(&http.Cookie{Name: flowCookie, Value: b.Cookie(flowCookie)})
			res, err := client.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer res.Body.Close()
			var body bytes.Buffer
			body.ReadFrom(res.Body)
			r := result{status: res.StatusCode, body: body.String()}
			for _, c := range res.Cookies() {
				r.session = r.session || (c.Name == e.cookie && c.Value != "")
			}
			results <- r
		}()
	}
	wg.Wait()
	close(results)
	wins := 0
	for r := range results {
		switch {
		case r.err != nil:
			t.Fatal(r.err)
		case r.status == http.StatusFound && r.session:
			wins++
		case r.status == http.StatusBadRequest && (errorCode(r.body) == "state_invalid" || errorCode(r.body) == "code_invalid"):
		default:
			t.Fatalf("a concurrent callback answered %d %s", r.status, r.body)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent callbacks signed in, want exactly 1", wins, n)
	}
	// And afterwards, a replay is refused before its code reaches the
	// provider.
	calls := len(e.fakes.Fakes["github"].CallsTo(fakeprovider.EndpointToken))
	wantError(t, "replay after the race", b.Get(cb), http.StatusBadRequest, "state_invalid")
	if got := len(e.fakes.Fakes["github"].CallsTo(fakeprovider.EndpointToken)); got != calls {
		t.Fatal("a replayed callback's code was sent to the provider")
	}
}

// Two tabs of one browser signing in at once both finish: they share the
// binding cookie, and each carries its own state.
func TestTwoTabsSignInAtOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	tab1 := b.Start("github", "/one")
	tab2 := b.Start("gitlab", "/two")
	cb2 := b.Approve(tab2, "")
	cb1 := b.Approve(tab1, "")
	for _, tc := range []struct{ cb, want string }{{cb1, "/one"}, {cb2, "/two"}} {
		res := b.Get(tc.cb)
		if res.StatusCode != http.StatusFound || !setsSession(e, res) || res.Location() != "http://"+e.addr+tc.want {
			t.Fatalf("finishing the tab bound for %s: %d → %q\n%s", tc.want, res.StatusCode, res.Location(), res.Body)
		}
	}
}

func mustQuery(t *testing.T, rawURL, key string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Query().Get(key) == "" {
		t.Fatalf("no %s in %q (%v)", key, rawURL, err)
	}
	return u.Query().Get(key)
}

// randomState is a value of a sealed state's shape that Arbor never
// sealed.
func randomState(i int) string {
	return fmt.Sprintf("AQ%0300d", i)
}

// flipChar changes one character of s, a different one for each i.
func flipChar(s string, i int) string {
	j := 1 + i%(len(s)-1)
	c := byte('A')
	if s[j] == 'A' {
		c = 'B'
	}
	return s[:j] + string(c) + s[j+1:]
}

// A return path up to 512 bytes rides in the sealed state; a longer one
// (returnto allows 2 KiB) would make the state too long for some
// providers' URLs, so the sign-in lands on the default page instead.
func TestLongReturnPathIsNotCarried(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct{ returnTo, want string }{
		{"/" + strings.Repeat("a", 511), "/" + strings.Repeat("a", 511)},
		{"/" + strings.Repeat("a", 512), "/"},
		{"/" + strings.Repeat("a", 2000), "/"},
	} {
		b := e.browser()
		auth := b.Start("github", tc.returnTo)
		if n := len(stateOf(t, auth)); n > 1024 {
			t.Fatalf("return path of %d bytes: a state of %d characters", len(tc.returnTo), n)
		}
		res := b.Get(b.Approve(auth, ""))
		if res.StatusCode != http.StatusFound || res.Location() != "http://"+e.addr+tc.want {
			t.Fatalf("return path of %d bytes: %d → %.60q, want %.60q", len(tc.returnTo), res.StatusCode, res.Location(), tc.want)
		}
	}
}

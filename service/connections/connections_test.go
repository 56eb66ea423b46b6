package connections

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/data/seal"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/plugins/builtin"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
	"github.com/vintner/arbor/service/providers"
)

var host *plugins.Host

func TestMain(m *testing.M) { plugintest.MainWithHost(m, &host) }

type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// faultyStore is the real bbolt store with one injected fault: the next
// failUpdates UpdateConnection calls fail as a store outage would.
type faultyStore struct {
	*boltdb.Store
	failUpdates atomic.Int32
	failLocks   atomic.Int32
}

func (f *faultyStore) UpdateConnection(ctx context.Context, userID, provider string, fn func(data.Connection) (data.Connection, error)) (data.Connection, error) {
	if f.failUpdates.Add(-1) >= 0 {
		return data.Connection{}, fmt.Errorf("injected outage: %w", data.ErrUnavailable)
	}
	return f.Store.UpdateConnection(ctx, userID, provider, fn)
}

// failLocks makes the next n Lock calls fail as a store outage would.
func (f *faultyStore) Lock(ctx context.Context, name string) (func(), error) {
	if f.failLocks.Add(-1) >= 0 {
		return nil, fmt.Errorf("injected outage: %w", data.ErrUnavailable)
	}
	return f.Store.Lock(ctx, name)
}

type env struct {
	t      testing.TB
	store  *faultyStore
	keys   *seal.Keyring
	fakes  *fakes.Set
	provs  *providers.Set
	b      *Broker
	clock  *clock
	events chan Event
}

const publicURL = "http://arbor.test"

func newEnv(t testing.TB, edit func(name string, c *fakeprovider.Config), opts Options) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, clock: &clock{}, events: make(chan Event, 1000)}
	e.clock.ns.Store(time.Now().UnixNano())
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "c.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.store = &faultyStore{Store: st}
	e.keys = newKeyring(t)
	e.fakes, e.provs = startFakes(t, edit)
	opts.Now = e.clock.Now
	opts.Notify = func(ev Event) { e.events <- ev }
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = time.Millisecond
	}
	e.b = New(e.store, e.keys, e.provs, opts)
	t.Cleanup(e.b.Close)
	if err := e.store.CreateUser(ctx, data.User{ID: "u1", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return e
}

func newKeyring(t testing.TB) *seal.Keyring {
	t.Helper()
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.NewKeyring(seal.Key{ID: "k1", Secret: k})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// startFakes starts the fake providers and loads the built-in plugins
// pointed at them.
func startFakes(t testing.TB, edit func(name string, c *fakeprovider.Config)) (*fakes.Set, *providers.Set) {
	t.Helper()
	fk, err := fakes.Start(publicURL, fakes.Options{Edit: edit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fk.Close)
	reg, err := plugins.NewRegistry(context.Background(), host, plugins.RegistryOptions{
		Sources: []fs.FS{builtin.FS()},
		Config:  func(name string) plugins.PluginConfig { return fk.Configs[name] },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return fk, providers.FromRegistry(func() providers.Registry { return reg })
}

// connect runs the provider's authorization (approved on the fake), the
// code exchange and the user lookup through the real plugin, and stores
// the connection, as the web flow's callback does.
func (e *env) connect(provider string) {
	e.t.Helper()
	connect(e.t, e.b, e.provs, e.fakes, provider)
}

func connect(t testing.TB, b *Broker, provs *providers.Set, fk *fakes.Set, provider string) {
	t.Helper()
	ctx := context.Background()
	p, _, ok := provs.Get(provider)
	if !ok {
		t.Fatalf("no provider %s", provider)
	}
	redirect := publicURL + "/auth/callback/" + provider
	verifier := "the-pkce-verifier-of-this-test-0123456789-abcdefgh"
	sum := sha256.Sum256([]byte(verifier))
	authURL, err := p.AuthorizeURL(ctx, plugins.AuthorizeInput{Purpose: "git", RedirectURI: redirect, State: "s", CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := fk.Fakes[provider].Approve(ctx, authURL, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.Exchange(ctx, plugins.ExchangeInput{Code: code, RedirectURI: redirect, CodeVerifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	u, err := p.User(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, "u1", provider, tok, u); err != nil {
		t.Fatal(err)
	}
}

// refreshCalls counts refresh_token grants the fake answered.
func (e *env) refreshCalls(provider string) []fakeprovider.Call {
	return refreshCalls(e.fakes, provider)
}

func refreshCalls(fk *fakes.Set, provider string) []fakeprovider.Call {
	var out []fakeprovider.Call
	for _, c := range fk.Fakes[provider].CallsTo(fakeprovider.EndpointToken) {
		// Injected failures are answered before the form is read, so
		// count every token call that is not the code exchange.
		if c.GrantType != "authorization_code" {
			out = append(out, c)
		}
	}
	return out
}

func (e *env) sealed(provider string) secrets {
	e.t.Helper()
	c, err := e.store.GetConnection(context.Background(), "u1", provider)
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := e.b.open(c)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func codeOf(err error) string {
	if err == nil {
		return ""
	}
	return httperr.From(answer(err)).Code
}

// Each provider refreshes with its own client authentication, and a
// rotated refresh token replaces the old one, which the provider no longer
// accepts.
func TestRefreshPerProvider(t *testing.T) {
	for _, tc := range []struct {
		provider   string
		clientAuth string
		rotates    bool
	}{
		{"github", "body", true},
		{"gitlab", "body", true},
		{"bitbucket", "basic", true},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			e := newEnv(t, nil, Options{})
			e.connect(tc.provider)
			before := e.sealed(tc.provider)
			if before.ExpiresAt == 0 || before.RefreshToken == "" {
				t.Fatalf("connected without an expiring token and a refresh token: %+v", before.Expiry())
			}
			// Fresh: no refresh.
			tok, err := e.b.ValidProviderToken(context.Background(), "u1", tc.provider)
			if err != nil || tok.AccessToken != before.AccessToken || len(e.refreshCalls(tc.provider)) != 0 {
				t.Fatalf("fresh token: %v, refreshes %d", err, len(e.refreshCalls(tc.provider)))
			}
			// Inside the margin: one refresh.
			e.clock.Advance(before.Expiry().Sub(e.clock.Now()) - time.Minute)
			tok, err = e.b.ValidProviderToken(context.Background(), "u1", tc.provider)
			if err != nil {
				t.Fatal(err)
			}
			calls := e.refreshCalls(tc.provider)
			if len(calls) != 1 || calls[0].ClientAuth != tc.clientAuth || calls[0].Status != 200 {
				t.Fatalf("refresh calls %+v, want one with client auth %s", calls, tc.clientAuth)
			}
			after := e.sealed(tc.provider)
			if tok.AccessToken == before.AccessToken || after.AccessToken != tok.AccessToken || !e.fakes.Fakes[tc.provider].ValidAccessToken(tok.AccessToken) {
				t.Fatal("the refreshed access token was not stored or is not valid at the provider")
			}
			if tc.rotates {
				if after.RefreshToken == before.RefreshToken || e.fakes.Fakes[tc.provider].ValidRefreshToken(before.RefreshToken) {
					t.Fatal("the rotated refresh token was not stored, or the old one still works")
				}
			}
			c, _ := e.store.GetConnection(context.Background(), "u1", tc.provider)
			if c.Status != data.ConnectionActive || !c.LastRefreshAt.Equal(e.clock.Now().Truncate(time.Nanosecond)) && c.LastRefreshAt.IsZero() {
				t.Fatalf("connection after refresh: %+v", c)
			}
		})
	}
}

func TestConcurrentCallersShareOneRefresh(t *testing.T) {
	for _, delay := range []time.Duration{0, 300 * time.Millisecond} {
		t.Run(fmt.Sprint("provider delay ", delay), func(t *testing.T) {
			e := newEnv(t, nil, Options{})
			e.connect("gitlab")
			e.clock.Advance(3 * time.Hour) // expired
			e.fakes.Fakes["gitlab"].SetDelay(fakeprovider.EndpointToken, delay)
			var wg sync.WaitGroup
			toks := make([]string, 100)
			errs := make([]error, 100)
			for i := range 100 {
				wg.Go(func() {
					if i >= 50 && delay > 0 {
						time.Sleep(delay / 3) // more callers arrive while the provider is slow
					}
					tok, err := e.b.ValidProviderToken(context.Background(), "u1", "gitlab")
					toks[i], errs[i] = tok.AccessToken, err
				})
			}
			wg.Wait()
			for i := range 100 {
				if errs[i] != nil || toks[i] != toks[0] || toks[i] == "" {
					t.Fatalf("caller %d: %q %v (caller 0: %q)", i, toks[i], errs[i], toks[0])
				}
			}
			if n := len(e.refreshCalls("gitlab")); n != 1 {
				t.Fatalf("%d refresh calls for 100 callers, want 1", n)
			}
		})
	}
}

// A refresh whose store write fails: the caller gets an error, the
// provider has rotated the refresh token, and the next call writes the
// pair it kept instead of refreshing with the dead refresh token.
func TestRefreshWhoseStoreWriteFails(t *testing.T) {
	e := newEnv(t, nil, Options{})
	e.connect("bitbucket")
	old := e.sealed("bitbucket")
	e.clock.Advance(3 * time.Hour)
	e.store.failUpdates.Store(1)
	_, err := e.b.ValidProviderToken(context.Background(), "u1", "bitbucket")
	if codeOf(err) != "store_unavailable" {
		t.Fatalf("first call: %v, want store_unavailable", err)
	}
	if e.fakes.Fakes["bitbucket"].ValidRefreshToken(old.RefreshToken) {
		t.Fatal("the fake did not rotate the refresh token")
	}
	tok, err := e.b.ValidProviderToken(context.Background(), "u1", "bitbucket")
	if err != nil {
		t.Fatalf("second call: %v", err)
	}
	if n := len(e.refreshCalls("bitbucket")); n != 1 {
		t.Fatalf("%d refresh calls, want 1 (the kept pair must be written, not refreshed again)", n)
	}
	now := e.sealed("bitbucket")
	if now.AccessToken != tok.AccessToken || now.RefreshToken == old.RefreshToken || !e.fakes.Fakes["bitbucket"].ValidRefreshToken(now.RefreshToken) {
		t.Fatal("the stored pair is not the refreshed one")
	}
	// And it keeps working.
	e.clock.Advance(3 * time.Hour)
	if _, err := e.b.ValidProviderToken(context.Background(), "u1", "bitbucket"); err != nil {
		t.Fatalf("later refresh: %v", err)
	}
}

func TestRejectedRefreshNeedsReconnect(t *testing.T) {
	e := newEnv(t, nil, Options{})
	e.connect("github")
	e.fakes.Fakes["github"].RevokeAll() // the user revoked the app
	e.clock.Advance(9 * time.Hour)
	_, err := e.b.ValidProviderToken(context.Background(), "u1", "github")
	if codeOf(err) != CodeReconnectRequired {
		t.Fatalf("after the grant was revoked: %v, want %s", err, CodeReconnectRequired)
	}
	c, _ := e.store.GetConnection(context.Background(), "u1", "github")
	if c.Status != data.ConnectionNeedsReconnect || c.StatusReason == "" {
		t.Fatalf("connection: status %q reason %q", c.Status, c.StatusReason)
	}
	// The reason names the plugin that refused, once (the host adds it).
	if !strings.HasPrefix(c.StatusReason, "github: ") || strings.Count(c.StatusReason, "github:") != 1 {
		t.Errorf("reason %q: want the plugin's name once, in front", c.StatusReason)
	}
	n := len(e.refreshCalls("github"))
	if _, err := e.b.ValidProviderToken(context.Background(), "u1", "github"); codeOf(err) != CodeReconnectRequired || len(e.refreshCalls("github")) != n {
		t.Fatalf("second call: %v; refresh calls %d → %d", err, n, len(e.refreshCalls("github")))
	}
	list, _ := e.b.List(context.Background(), "u1")
	found := false
	for _, s := range list {
		found = found || s.Provider == "github" && s.State == data.ConnectionNeedsReconnect && s.Reason != ""
	}
	if !found {
		t.Fatalf("List does not show the broken connection: %+v", list)
	}
	// Reconnecting makes it active again.
	e.connect("github")
	if _, err := e.b.ValidProviderToken(context.Background(), "u1", "github"); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
	if ev := drain(e.events); !ev["connection.needs_reconnect"] {
		t.Fatalf("no needs_reconnect event: %v", ev)
	}
}

func drain(ch chan Event) map[string]bool {
	out := map[string]bool{}
	for {
		select {
		case ev := <-ch:
			out[ev.Type] = true
		default:
			return out
		}
	}
}

func TestTransientFailuresAreRetriedNotFatal(t *testing.T) {
	e := newEnv(t, nil, Options{Retries: 3})
	e.connect("gitlab")
	e.clock.Advance(3 * time.Hour)
	e.fakes.Fakes["gitlab"].FailNext(fakeprovider.EndpointToken, 2, 503)
	if _, err := e.b.ValidProviderToken(context.Background(), "u1", "gitlab"); err != nil {
		t.Fatalf("two 503s then success: %v", err)
	}
	if n := len(e.refreshCalls("gitlab")); n != 3 {
		t.Fatalf("%d refresh attempts, want 3", n)
	}
	// The provider stays down: an expired token cannot be served, but the
	// connection is not marked broken.
	e.clock.Advance(3 * time.Hour)
	e.fakes.Fakes["gitlab"].FailNext(fakeprovider.EndpointToken, 100, 502)
	_, err := e.b.ValidProviderToken(context.Background(), "u1", "gitlab")
	if codeOf(err) != CodeProviderUnavailable {
		t.Fatalf("provider down: %v", err)
	}
	if c, _ := e.store.GetConnection(context.Background(), "u1", "gitlab"); c.Status != data.ConnectionActive {
		t.Fatalf("a transient failure marked the connection %q", c.Status)
	}
	// Within the margin but not expired: the current token is served.
	e.fakes.Fakes["gitlab"].FailNext(fakeprovider.EndpointToken, 0, 0)
	e.fakes.Fakes["gitlab"].Reset()
	e.connect("gitlab")
	cur := e.sealed("gitlab")
	e.clock.Advance(cur.Expiry().Sub(e.clock.Now()) - 2*time.Minute)
	e.fakes.Fakes["gitlab"].FailNext(fakeprovider.EndpointToken, 100, 500)
	tok, err := e.b.ValidProviderToken(context.Background(), "u1", "gitlab")
	if err != nil || tok.AccessToken != cur.AccessToken {
		t.Fatalf("early refresh failing: %v (got the current token: %v)", err, tok.AccessToken == cur.AccessToken)
	}
}

func TestNonExpiringTokenIsReturnedAsIs(t *testing.T) {
	e := newEnv(t, func(name string, c *fakeprovider.Config) {
		if name == "github" { // a GitHub OAuth app: gho_ tokens, no refresh token
			o := fakeprovider.GitHubOAuthApp()
			o.Name, o.RedirectURIs, o.Now = c.Name, c.RedirectURIs, c.Now
			*c = o
		}
	}, Options{})
	e.connect("github")
	s := e.sealed("github")
	if s.ExpiresAt != 0 || s.RefreshToken != "" || !strings.HasPrefix(s.AccessToken, "gho_") {
		t.Fatalf("classic token stored with expiry %v / refresh token %v", s.Expiry(), s.RefreshToken != "")
	}
	e.clock.Advance(1000 * time.Hour)
	tok, err := e.b.ValidProviderToken(context.Background(), "u1", "github")
	if err != nil || tok.AccessToken != s.AccessToken || !tok.ExpiresAt.IsZero() || len(e.refreshCalls("github")) != 0 {
		t.Fatalf("non-expiring token: %v, refreshes %d", err, len(e.refreshCalls("github")))
	}
}

func TestNotConnected(t *testing.T) {
	e := newEnv(t, nil, Options{})
	if _, err := e.b.ValidProviderToken(context.Background(), "u1", "gitlab"); codeOf(err) != CodeNotConnected {
		t.Fatalf("no connection: %v", err)
	}
	if _, err := e.b.Disconnect(context.Background(), "u1", "gitlab"); codeOf(err) != CodeNotConnected {
		t.Fatalf("disconnect without a connection: %v", err)
	}
}

func TestDisconnectRevokes(t *testing.T) {
	e := newEnv(t, nil, Options{})
	for _, p := range []string{"github", "gitlab", "bitbucket"} {
		e.connect(p)
	}
	tokGH := e.sealed("github").AccessToken
	res, err := e.b.Disconnect(context.Background(), "u1", "github")
	if err != nil || !res.Revoked {
		t.Fatalf("github: %+v %v", res, err)
	}
	rc := e.fakes.Fakes["github"].CallsTo(fakeprovider.EndpointRevoke)
	if len(rc) != 1 || rc[0].ClientAuth != "basic" || rc[0].Token != fakeprovider.Fingerprint(tokGH) || e.fakes.Fakes["github"].ValidAccessToken(tokGH) {
		t.Fatalf("github revoke calls %+v", rc)
	}
	if _, err := e.store.GetConnection(context.Background(), "u1", "github"); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("github connection after disconnect: %v", err)
	}
	res, err = e.b.Disconnect(context.Background(), "u1", "gitlab")
	if err != nil || !res.Revoked || len(e.fakes.Fakes["gitlab"].CallsTo(fakeprovider.EndpointRevoke)) == 0 {
		t.Fatalf("gitlab: %+v %v", res, err)
	}
	// Bitbucket Cloud documents no revocation endpoint for OAuth consumers.
	res, err = e.b.Disconnect(context.Background(), "u1", "bitbucket")
	if err != nil || res.Revoked || res.RevokePending || res.Message == "" {
		t.Fatalf("bitbucket: %+v %v", res, err)
	}
	if list, _ := e.b.List(context.Background(), "u1"); len(list) != 3 || list[0].Connected || list[1].Connected || list[2].Connected {
		t.Fatalf("List after disconnecting everything: %+v", list)
	}
}

func TestDisconnectWhileProviderIsDown(t *testing.T) {
	e := newEnv(t, nil, Options{})
	e.b.revoker.firstRetry = 50 * time.Millisecond
	e.connect("gitlab")
	tok := e.sealed("gitlab").AccessToken
	e.fakes.Fakes["gitlab"].FailNext(fakeprovider.EndpointRevoke, 1, 503)
	res, err := e.b.Disconnect(context.Background(), "u1", "gitlab")
	if err != nil || res.Revoked || !res.RevokePending {
		t.Fatalf("disconnect with the provider down: %+v %v", res, err)
	}
	if _, err := e.store.GetConnection(context.Background(), "u1", "gitlab"); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("the local record survived: %v", err)
	}
	// The broker's clock is the test's: move it past the retry.
	deadline := time.Now().Add(10 * time.Second)
	for e.fakes.Fakes["gitlab"].ValidAccessToken(tok) {
		if time.Now().After(deadline) {
			t.Fatalf("the revocation was not retried (pending %d, revoke calls %d)", e.b.PendingRevocations(), len(e.fakes.Fakes["gitlab"].CallsTo(fakeprovider.EndpointRevoke)))
		}
		e.clock.Advance(100 * time.Millisecond)
		select {
		case e.b.revoker.wake <- struct{}{}:
		default:
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The failed attempt, then the retry (GitLab's plugin revokes the
	// access and the refresh token: one or two calls).
	if n := len(e.fakes.Fakes["gitlab"].CallsTo(fakeprovider.EndpointRevoke)); n < 2 {
		t.Fatalf("%d revoke calls, want the failed one and a retry", n)
	}
}

func TestTokensNeverStoredInTheClear(t *testing.T) {
	e := newEnv(t, nil, Options{})
	e.connect("gitlab")
	s := e.sealed("gitlab")
	raw, err := os.ReadFile(e.store.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{s.AccessToken, s.RefreshToken} {
		if secret == "" || contains(raw, secret) {
			t.Fatalf("a token is in the store file in the clear (or empty)")
		}
	}
	// The envelope is bound to its row.
	c, _ := e.store.GetConnection(context.Background(), "u1", "gitlab")
	c.UserID = "u2"
	if _, err := e.b.open(c); err == nil {
		t.Fatal("a sealed connection opened under another user's row")
	}
}

func contains(hay []byte, needle string) bool { return bytes.Contains(hay, []byte(needle)) }

func BenchmarkValidProviderTokenFresh(b *testing.B) {
	e := newEnv(b, nil, Options{})
	e.connect("gitlab")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.b.ValidProviderToken(ctx, "u1", "gitlab"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefreshOverhead measures what Arbor adds to one refresh: the
// plugin call (guest code, host HTTP client, loopback), sealing and the
// store write, with the fake provider's own time subtracted.
func BenchmarkRefreshOverhead(b *testing.B) {
	for _, provider := range []string{"github", "gitlab", "bitbucket"} {
		b.Run(provider, func(b *testing.B) {
			e := newEnv(b, nil, Options{})
			e.connect(provider)
			fake := e.fakes.Fakes[provider]
			ctx := context.Background()
			var total, inFake time.Duration
			for b.Loop() {
				e.clock.Advance(24 * time.Hour) // expired: the next call refreshes
				busy := fake.Busy()
				start := time.Now()
				if _, err := e.b.ValidProviderToken(ctx, "u1", provider); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				inFake += fake.Busy() - busy
			}
			b.ReportMetric(float64((total-inFake).Microseconds())/float64(b.N), "arbor-µs/refresh")
			b.ReportMetric(float64(inFake.Microseconds())/float64(b.N), "fake-µs/refresh")
		})
	}
}

// lockedBuffer is a log sink for tests.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// No token the fake ever issued appears in a log line or an error, through
// refreshes, a failed store write, a rejected refresh and a disconnect
// while the provider is down.
func TestNoTokenInLogsOrErrors(t *testing.T) {
	logs := &lockedBuffer{}
	e := newEnv(t, nil, Options{})
	e.b.opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.b.log = e.b.opts.Logger
	var errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error(), fmt.Sprintf("%+v", err))
		}
	}
	ctx := context.Background()
	for _, p := range []string{"github", "gitlab"} {
		e.connect(p)
	}
	e.clock.Advance(9 * time.Hour)
	e.store.failUpdates.Store(1)
	_, err := e.b.ValidProviderToken(ctx, "u1", "gitlab")
	note(err)
	_, err = e.b.ValidProviderToken(ctx, "u1", "gitlab")
	note(err)
	e.fakes.Fakes["github"].RevokeAll()
	_, err = e.b.ValidProviderToken(ctx, "u1", "github")
	note(err)
	e.fakes.Fakes["gitlab"].FailNext(fakeprovider.EndpointRevoke, 5, 503)
	_, err = e.b.Disconnect(ctx, "u1", "gitlab")
	note(err)
	if len(errs) < 2 {
		t.Fatalf("the scenario produced too few errors to check: %v", errs)
	}
	out := logs.String() + strings.Join(errs, "\n")
	for _, p := range []string{"github", "gitlab"} {
		for _, it := range e.fakes.Fakes[p].IssuedTokens() {
			for _, secret := range []string{it.AccessToken, it.RefreshToken} {
				if secret != "" && strings.Contains(out, secret) {
					t.Fatalf("a %s token appears in the logs or errors", p)
				}
			}
		}
	}
}

// An expired grant is renewed before it is revoked: a GitLab on Doorkeeper
// before 5.8.1 answers 200 to the revocation of an expired token and
// revokes nothing, which would leave the refresh token usable after
// "Disconnected, and the access was revoked".
func TestDisconnectRevokesAnExpiredGrant(t *testing.T) {
	e := newEnv(t, func(name string, c *fakeprovider.Config) {
		if name == "gitlab" {
			c.RevokeIgnoresExpired = true
		}
	}, Options{})
	e.connect("gitlab")
	f := e.fakes.Fakes["gitlab"]
	f.ExpireAccessTokens()
	e.clock.Advance(3 * time.Hour)
	res, err := e.b.Disconnect(context.Background(), "u1", "gitlab")
	if err != nil || !res.Revoked {
		t.Fatalf("disconnect: %+v %v", res, err)
	}
	if n := len(e.refreshCalls("gitlab")); n != 1 {
		t.Errorf("%d refreshes before the revocation, want 1", n)
	}
	for i, it := range f.IssuedTokens() {
		if it.AccessValid || it.RefreshValid {
			t.Errorf("token pair %d (%s) still valid at the provider after disconnect: access %v refresh %v", i, it.GrantType, it.AccessValid, it.RefreshValid)
		}
	}
}

// A token handed out works at the provider for as long as its UseUntil
// promises: until then no call refreshes it (a refresh kills the old
// access token at GitHub and GitLab); after it, the next call refreshes.
func TestUseUntilIsKept(t *testing.T) {
	e := newEnv(t, nil, Options{})
	e.connect("gitlab")
	f := e.fakes.Fakes["gitlab"]
	ctx := context.Background()
	t1, err := e.b.ValidProviderToken(ctx, "u1", "gitlab")
	if err != nil {
		t.Fatal(err)
	}
	if want := t1.ExpiresAt.Add(-DefaultRefreshMargin); !t1.UseUntil.Equal(want) {
		t.Fatalf("UseUntil %v, want ExpiresAt less the margin, %v", t1.UseUntil, want)
	}
	e.clock.Advance(t1.UseUntil.Sub(e.clock.Now()) - time.Second)
	t2, err := e.b.ValidProviderToken(ctx, "u1", "gitlab")
	if err != nil || t2.AccessToken != t1.AccessToken || len(e.refreshCalls("gitlab")) != 0 {
		t.Fatalf("a second before UseUntil: %v, same token %v, %d refreshes", err, t2.AccessToken == t1.AccessToken, len(e.refreshCalls("gitlab")))
	}
	if !f.ValidAccessToken(t1.AccessToken) {
		t.Fatal("the token stopped working at the provider before its UseUntil")
	}
	e.clock.Advance(2 * time.Second)
	t3, err := e.b.ValidProviderToken(ctx, "u1", "gitlab")
	if err != nil || t3.AccessToken == t1.AccessToken || len(e.refreshCalls("gitlab")) != 1 {
		t.Fatalf("a second after UseUntil: %v, new token %v, %d refreshes", err, t3.AccessToken != t1.AccessToken, len(e.refreshCalls("gitlab")))
	}
	if !t3.UseUntil.After(e.clock.Now()) || !f.ValidAccessToken(t3.AccessToken) {
		t.Fatalf("the refreshed token: UseUntil %v (now %v), valid at the provider %v", t3.UseUntil, e.clock.Now(), f.ValidAccessToken(t3.AccessToken))
	}
}

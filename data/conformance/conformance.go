// Package conformance is the test suite every data.Store backend passes.
//
// The gateway is written against package data alone; this suite is what
// makes "data.Store" mean the same thing for the embedded bbolt file and for
// an etcd cluster. A backend's test file is a few lines:
//
//	func TestStore(t *testing.T) {
//		conformance.RunTests(t, func(t *testing.T, now func() time.Time) data.Store {
//			s, err := mybackend.Open(..., now)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Every subtest gets a fresh, empty store and its own Clock, which the
// suite moves forward to test expiry without sleeping. The store must use
// the now function it is given for every expiry decision and every time it
// stamps itself. The suite uses only the data.Store interface and errors.Is
// on the sentinel errors; it must stay free of any one backend's details.
//
// RunBenchmarks is the same idea for speed: one workload that every
// backend runs, so that their figures compare the same work.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
)

// Clock is a fake clock the suite advances by hand. It is safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads t until it is moved.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time. Pass it (the method value) to the store.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t, backwards if need be (the suite turns time back
// to tell a deleted record from a merely expired one).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Start is where every subtest's clock begins: a fixed instant with
// nanoseconds, so that a backend that drops precision is caught.
var Start = time.Date(2031, time.March, 14, 15, 9, 26, 535897932, time.UTC)

// RunTests runs the whole suite against the stores newStore makes. newStore
// is called once per subtest; it must return an empty store whose clock is
// now, and arrange (t.Cleanup) for it to be closed. Closing it twice must be
// harmless: the Close subtest closes it itself.
func RunTests(t *testing.T, newStore func(t *testing.T, now func() time.Time) data.Store) {
	groups := []struct {
		name  string
		tests []subtest
	}{
		{"Users", userTests},
		{"Identities", identityTests},
		{"AccountFields", accountFieldTests},
		{"Sessions", sessionTests},
		{"OAuthStates", oauthStateTests},
		{"DeviceCodes", deviceCodeTests},
		{"RefreshFamilies", refreshFamilyTests},
		{"Workers", workerTests},
		{"Connections", connectionTests},
		{"Audit", auditTests},
		{"Blobs", blobTests},
		{"Expiry", expiryTests},
		{"Collector", collectorTests},
		{"DeleteUserCascade", cascadeTests},
		{"WatchSessions", watchTests(sessionKind)},
		{"WatchWorkers", watchTests(workerKind)},
		{"WatchUsers", watchTests(userKind)},
		{"Locks", lockTests},
		{"UTC", utcTests},
		{"Invalid", invalidTests},
		{"Lifecycle", lifecycleTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, st := range g.tests {
				t.Run(st.name, func(t *testing.T) {
					clock := NewClock(Start)
					s := newStore(t, clock.Now)
					st.run(&env{t: t, s: s, clock: clock, ctx: context.Background()})
				})
			}
		})
	}
}

type subtest struct {
	name string
	run  func(e *env)
}

// env is what a subtest works with.
type env struct {
	t     *testing.T
	s     data.Store
	clock *Clock
	ctx   context.Context
}

// errBoom is what update functions in the suite fail with.
var errBoom = errors.New("conformance: update function refused")

// is fails the test unless errors.Is(err, want); what describes the call.
func (e *env) is(err, want error, what string) {
	e.t.Helper()
	if want == nil {
		if err != nil {
			e.t.Fatalf("%s: unexpected error: %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		e.t.Fatalf("%s: got error %v, want one that errors.Is %v", what, err, want)
	}
}

// ok fails the test if err is not nil.
func (e *env) ok(err error, what string) {
	e.t.Helper()
	e.is(err, nil, what)
}

// equal fails the test unless got and want are deeply equal. Times must
// match in location too, so a backend that returns local times fails here.
func (e *env) equal(got, want any, what string) {
	e.t.Helper()
	if !reflect.DeepEqual(got, want) {
		e.t.Fatalf("%s:\n got: %+v\nwant: %+v", what, got, want)
	}
}

// returned fails the test unless the call that gave got and err succeeded
// with want; what names the call.
func (e *env) returned(got any, err error, want any, what string) {
	e.t.Helper()
	e.ok(err, what)
	e.equal(got, want, what)
}

// concurrently runs fn(i) for i in [0, n) in n goroutines released at once,
// and waits for all of them.
func concurrently(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// Fixtures. Each returns a complete record stamped with the clock's time;
// the suite stores them and expects them back unchanged.

func (e *env) newUser(id string) data.User {
	now := e.clock.Now()
	return data.User{ID: id, Email: id + "@example.com", Name: "User " + id, Login: id, CreatedAt: now, UpdatedAt: now}
}

// user stores a new user and returns it.
func (e *env) user(id string) data.User {
	e.t.Helper()
	u := e.newUser(id)
	e.ok(e.s.CreateUser(e.ctx, u), "CreateUser "+id)
	return u
}

func (e *env) newIdentity(userID, provider, subject string) data.Identity {
	return data.Identity{
		Provider: provider, Subject: subject, UserID: userID, Login: "login-" + subject,
		Email: subject + "@" + provider + ".example", EmailVerified: true,
		CreatedAt: e.clock.Now(), LastLoginAt: e.clock.Now().Add(time.Second),
	}
}

func (e *env) newSession(id, userID string, ttl time.Duration) data.Session {
	now := e.clock.Now()
	return data.Session{
		ID: id, UserID: userID, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(ttl),
		UserAgent: "conformance/1.0", IP: "192.0.2.7",
	}
}

func (e *env) newOAuthState(id string, ttl time.Duration) data.OAuthState {
	now := e.clock.Now()
	return data.OAuthState{
		ID: id, Provider: "github", Purpose: "login", Binding: "bind-" + id,
		PKCEVerifier: "verifier-" + id, RedirectURI: "https://arbor.example/callback/github",
		ReturnTo: "/dashboard", CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
}

func (e *env) newDeviceCode(code, userCode string, ttl time.Duration) data.DeviceCode {
	now := e.clock.Now()
	return data.DeviceCode{
		Code: code, Kind: data.DeviceKindRFC8628, UserCode: userCode, ClientID: "grape",
		ClientInfo: map[string]string{"hostname": "build-7", "os": "linux"},
		Scope:      "openid", State: data.DevicePending, Interval: 5,
		CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
}

func (e *env) newRefreshFamily(id, userID string, ttl time.Duration) data.RefreshFamily {
	now := e.clock.Now()
	return data.RefreshFamily{
		ID: id, UserID: userID, ClientID: "grape", ClientInfo: map[string]string{"hostname": "laptop"},
		CurrentJTI: "jti-" + id + "-1", Generation: 1, CreatedAt: now, ExpiresAt: now.Add(ttl), Scope: "providers proxy",
	}
}

func (e *env) newWorker(id, userID string) data.Worker {
	return data.Worker{
		ID: id, UserID: userID, Name: "worker " + id,
		TokenHash: []byte{0x00, 0x01, 0xfe, 0xff, byte(len(id))}, CreatedAt: e.clock.Now(),
		Scopes: []string{"git:read"}, Repos: []string{"octocat/*", "group/sub/**"},
	}
}

func (e *env) newConnection(userID, provider string) data.Connection {
	now := e.clock.Now()
	return data.Connection{
		UserID: userID, Provider: provider, AccountID: "0", AccountLogin: "octo-" + userID,
		Scopes: []string{"read:user", "repo"}, Sealed: []byte("sealed\x00bytes-" + provider),
		TokenExpiresAt: now.Add(time.Hour), Status: data.ConnectionActive,
		CreatedAt: now, UpdatedAt: now, Version: 1,
	}
}

// ids returns a label for each record, for order checks.
func ids[T any](vs []T, id func(T) string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = id(v)
	}
	return out
}

func sessionID(s data.Session) string        { return s.ID }
func familyID(f data.RefreshFamily) string   { return f.ID }
func workerID(w data.Worker) string          { return w.ID }
func userID(u data.User) string              { return u.ID }
func identityKey(i data.Identity) string     { return i.Provider + "/" + i.Subject }
func connectionKey(c data.Connection) string { return c.UserID + "/" + c.Provider }
func auditSeq(a data.AuditEvent) string      { return fmt.Sprint(a.Seq) }

// keep is an update function that changes nothing.
func keep[T any](v T) (T, error) { return v, nil }

// updateFail is an update function that refuses.
func updateFail[T any](v T) (T, error) { return v, errBoom }

func isClosed(err error) bool { return errors.Is(err, data.ErrClosed) }

// orderIs compares two lists of labels; nil and empty are the same.
func (e *env) orderIs(got, want []string, what string) {
	e.t.Helper()
	e.equal(append([]string{}, got...), append([]string{}, want...), what)
}

package membership_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/data/seal"
	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/plugins/builtin"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
	"github.com/vintner/arbor/service/membership"
	"github.com/vintner/arbor/service/providers"
)

var host *plugins.Host

func TestMain(m *testing.M) { plugintest.MainWithHost(m, &host) }

const publicURL = "http://arbor.test"

type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// rule is the tiny policy these tests judge with: a member passes with a
// verified address in emails or membership of one of groups, and the
// upstream sees every group (a Judge is policy, written here from a
// literal rule; package gateway/authz/policy is the real one).
type rule struct {
	emails, groups []string
}

func (r rule) Admit(m *membership.Member) membership.Verdict {
	for _, e := range r.emails {
		if m.HasEmail(e) {
			return membership.Verdict{}
		}
	}
	for _, g := range r.groups {
		if m.InGroup(g) {
			return membership.Verdict{}
		}
	}
	return membership.Verdict{Code: membership.CodeNotAllowed, Rule: "Only " + strings.Join(r.groups, ", ") + ".", Fix: "Ask to join."}
}

func (r rule) Visible(m *membership.Member) []string { return m.Groups }

// hookStore is the real bbolt store; afterGetUser, when set, runs after
// a GetUser has read (to write between a read and what is built from it).
type hookStore struct {
	*boltdb.Store
	afterGetUser atomic.Pointer[func()]
}

func (h *hookStore) GetUser(ctx context.Context, id string) (data.User, error) {
	u, err := h.Store.GetUser(ctx, id)
	if f := h.afterGetUser.Swap(nil); f != nil {
		(*f)()
	}
	return u, err
}

type env struct {
	t     testing.TB
	store *hookStore
	keys  *seal.Keyring
	fakes *fakes.Set
	provs *providers.Set
	clock *clock
	svc   *membership.Service
	opts  membership.Options
}

// newEnv opens a bbolt store, starts the fakes with the built-in plugins
// pointed at them, and builds a Service with opts (Store, Keys,
// Providers, Now and Logger filled in).
func newEnv(t testing.TB, opts membership.Options, edit func(name string, c *fakeprovider.Config)) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{}}
	e.clock.ns.Store(time.Now().UnixNano())
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "m.db"), boltdb.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.store = &hookStore{Store: st}
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if e.keys, err = seal.NewKeyring(seal.Key{ID: "k1", Secret: k}); err != nil {
		t.Fatal(err)
	}
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
	e.fakes, e.provs = fk, providers.FromRegistry(func() providers.Registry { return reg })
	opts.Store, opts.Keys, opts.Providers, opts.Now = e.store, e.keys, e.provs, e.clock.Now
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	e.opts = opts
	if e.svc, err = membership.New(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.svc.Close)
	return e
}

// user stores a user with a verified address at the "google" provider.
func (e *env) user(id, email string, m data.Memberships) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.store.CreateUser(ctx, data.User{ID: id, CreatedAt: e.clock.Now(), Memberships: m}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.CreateIdentity(ctx, data.Identity{Provider: "google", Subject: "g-" + id, UserID: id,
		Email: email, EmailVerified: email != "", CreatedAt: e.clock.Now()}); err != nil {
		e.t.Fatal(err)
	}
}

// sessionAndLogin gives userID a session and a CLI login.
func (e *env) sessionAndLogin(userID string) {
	e.t.Helper()
	ctx := context.Background()
	now := e.clock.Now()
	if err := e.store.CreateSession(ctx, data.Session{ID: "s-" + userID, UserID: userID, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(24 * time.Hour)}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.CreateRefreshFamily(ctx, data.RefreshFamily{ID: "f-" + userID, UserID: userID, CurrentJTI: "j1", CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}); err != nil {
		e.t.Fatal(err)
	}
}

// accessLeft reports how many live sessions and unrevoked CLI logins
// userID has.
func (e *env) accessLeft(userID string) (sessions, logins int) {
	e.t.Helper()
	ctx := context.Background()
	ss, err := e.store.ListSessions(ctx, userID)
	if err != nil {
		e.t.Fatal(err)
	}
	fs, err := e.store.ListRefreshFamilies(ctx, userID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range fs {
		if f.RevokedAt.IsZero() {
			logins++
		}
	}
	return len(ss), logins
}

// audits returns userID's audit events with action.
func (e *env) audits(userID, action string) []data.AuditEvent {
	e.t.Helper()
	all, err := e.store.ListAudit(context.Background(), data.AuditQuery{UserID: userID})
	if err != nil {
		e.t.Fatal(err)
	}
	return slices.DeleteFunc(all, func(a data.AuditEvent) bool { return a.Action != action })
}

func (e *env) member(userID string) *membership.Member {
	e.t.Helper()
	m, err := e.svc.Member(context.Background(), userID)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// signIn runs a login through the real plugin against its fake (approved
// as login, "" for the fake's first user), then SignIn and, when
// admitted, the user's creation as the web sign-in does and Keep. It
// returns the Admission and the user id ("" when refused).
func (e *env) signIn(provider, login string) (membership.Admission, string) {
	e.t.Helper()
	ctx := context.Background()
	p, _, ok := e.provs.Get(provider)
	if !ok {
		e.t.Fatalf("no provider %s", provider)
	}
	redirect := publicURL + "/auth/callback/" + provider
	verifier := "the-pkce-verifier-of-this-test-0123456789-abcdefgh"
	sum := sha256.Sum256([]byte(verifier))
	authURL, err := p.AuthorizeURL(ctx, plugins.AuthorizeInput{Purpose: abi.PurposeLogin, RedirectURI: redirect, State: "s",
		CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]), WithGroups: e.svc.GroupProvider(provider)})
	if err != nil {
		e.t.Fatal(err)
	}
	code, _, err := e.fakes.Fakes[provider].Approve(ctx, authURL, login)
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := p.Exchange(ctx, plugins.ExchangeInput{Code: code, RedirectURI: redirect, CodeVerifier: verifier})
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := p.User(ctx, tok.AccessToken)
	if err != nil {
		e.t.Fatal(err)
	}
	adm, err := e.svc.SignIn(ctx, provider, u.ID, membership.Profile{Email: strings.ToLower(u.Email), EmailVerified: u.EmailVerified}, tok)
	if err != nil {
		e.t.Fatal(err)
	}
	if !adm.Admitted() {
		return adm, ""
	}
	userID := "usr-" + provider + "-" + u.ID
	ident, err := e.store.GetIdentity(ctx, provider, u.ID)
	if err == nil {
		userID = ident.UserID
	} else {
		now := e.clock.Now()
		if err := e.store.CreateUser(ctx, data.User{ID: userID, Login: u.Login, CreatedAt: now}); err != nil {
			e.t.Fatal(err)
		}
		if err := e.store.CreateIdentity(ctx, data.Identity{Provider: provider, Subject: u.ID, UserID: userID, Login: u.Login,
			Email: strings.ToLower(u.Email), EmailVerified: u.EmailVerified, CreatedAt: now}); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.svc.Keep(ctx, userID, provider, u.ID, tok, adm); err != nil {
		e.t.Fatal(err)
	}
	return adm, userID
}

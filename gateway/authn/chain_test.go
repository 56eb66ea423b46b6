package authn_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/authn/sessiontoken"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/clilogin"
	"github.com/vintner/arbor/service/clilogin/clitoken"
	"github.com/vintner/arbor/service/workers"
)

const serviceSecret = "0123456789abcdef0123456789abcdef-argocd"

// env is the chain as Arbor builds it, on a real bbolt store: the session
// manager, the CLI login service (CLI access tokens) and the worker
// service, plus one service token. Its credentials are the headers of each
// kind, valid and invalid.
type env struct {
	store      *boltdb.Store
	chain      *authn.Chain
	cfg        authn.Config // the chain's, for a chain with Members
	app        *fiber.App
	cookieName string

	cookie, forgedCookie           string // session cookies
	bearerAll, bearerNoProxy       string // CLI access tokens
	bearerForged                   string
	workerID, workerTok, workerBad string
	repoID, repoTok                string // a repository credential (git:read, octocat/*)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{app: fiber.New()}
	var err error
	e.store, err = boltdb.Open(filepath.Join(t.TempDir(), "a.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	now := time.Now().UTC()
	if err := e.store.CreateUser(ctx, data.User{ID: "alice", Email: "alice@example.test", Login: "alice", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}

	// Sessions: a live session and a cookie signed with another key.
	key := []byte("0123456789abcdef0123456789abcdef-session")
	signer, err := sessiontoken.NewSigner(key, sessiontoken.Options{Issuer: "test", Audience: "arbor-session"})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.New(e.store, session.Options{Signer: signer, CSRFKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sessions.Close)
	e.cookieName = sessions.CookieName()
	if err := e.store.CreateSession(ctx, data.Session{ID: "s1", UserID: "alice", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if e.cookie, _, err = signer.Mint("s1", "alice", "alice@example.test"); err != nil {
		t.Fatal(err)
	}
	other, _ := sessiontoken.NewSigner([]byte("another key, another key, another key!"), sessiontoken.Options{Issuer: "test", Audience: "arbor-session"})
	if e.forgedCookie, _, err = other.Mint("s1", "alice", "alice@example.test"); err != nil {
		t.Fatal(err)
	}

	// CLI access tokens of one live login: every scope, and every scope
	// but proxy; and one signed with another key.
	cliKey := []byte("0123456789abcdef0123456789abcdef-cli")
	toks, err := clitoken.NewSigner(cliKey, clitoken.Options{Issuer: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateRefreshFamily(ctx, data.RefreshFamily{ID: "f1", UserID: "alice", ClientID: "grape", CurrentJTI: "j1", Generation: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	sub := clitoken.Subject{UserID: "alice", Email: "alice@example.test", Login: "alice", Scopes: scope.All}
	if e.bearerAll, _, err = toks.Mint(clitoken.TypeAccess, sub, "f1", "a1"); err != nil {
		t.Fatal(err)
	}
	sub.Scopes = scope.All &^ scope.Proxy
	if e.bearerNoProxy, _, err = toks.Mint(clitoken.TypeAccess, sub, "f1", "a2"); err != nil {
		t.Fatal(err)
	}
	otherToks, _ := clitoken.NewSigner([]byte("another key, another key, another key!"), clitoken.Options{Issuer: "test"})
	if e.bearerForged, _, err = otherToks.Mint(clitoken.TypeAccess, sub, "f1", "a3"); err != nil {
		t.Fatal(err)
	}

	// Workers.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ws := workers.New(e.store, workers.Options{FlushInterval: time.Hour, Logger: quiet})
	t.Cleanup(ws.Close)
	w, tok, err := ws.Register(ctx, "alice", "runner")
	if err != nil {
		t.Fatal(err)
	}
	e.workerID, e.workerTok = w.ID, tok
	_, e.workerBad, err = ws.Register(ctx, "alice", "other") // a real token, of another worker
	if err != nil {
		t.Fatal(err)
	}
	rc, rtok, err := ws.RegisterWith(ctx, "alice", "argocd", workers.Grant{Scopes: []string{"git:read"}, Repos: []string{"octocat/*"}})
	if err != nil {
		t.Fatal(err)
	}
	e.repoID, e.repoTok = rc.ID, rtok

	// The chain, as cmd/arbor builds it.
	cli, err := clilogin.New(e.store, clilogin.Options{Tokens: toks, CodeKey: cliKey, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = authn.Config{
		Session:       sessions.Cookies(),
		CLI:           authn.CLI(cli),
		Worker:        authn.Workers(ws),
		Repo:          authn.RepoCredentials(ws),
		ServiceTokens: []authn.ServiceToken{{Name: "argocd", Token: serviceSecret}},
	}
	e.chain, err = authn.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// creds is what a request carries.
type creds struct {
	cookie, bearer, auth string // auth: a raw Authorization header
	workerID, workerTok  string
}

// result is what a route class made of a request: the caller's kind, or
// the answer's status and code; ok and no error is "" (no caller, let
// through), for Upstream.
type result struct {
	kind    authn.Kind
	status  int
	code    string
	www     string // WWW-Authenticate
	cleared bool   // the session cookie was cleared
}

// do runs fn (one route class of the chain) on a request with cr.
func (e *env) do(t *testing.T, cr creds, fn func(c *fiber.Ctx) (authn.Identity, bool, error)) result {
	t.Helper()
	fctx := &fasthttp.RequestCtx{}
	fctx.Request.SetRequestURI("/somewhere?x=1")
	h := &fctx.Request.Header
	if cr.cookie != "" {
		h.SetCookie(e.cookieName, cr.cookie)
	}
	if cr.bearer != "" {
		h.Set("Authorization", "Bearer "+cr.bearer)
	}
	if cr.auth != "" {
		h.Set("Authorization", cr.auth)
	}
	if cr.workerID != "" {
		h.Set(workers.HeaderID, cr.workerID)
		h.Set(workers.HeaderToken, cr.workerTok)
	}
	c := e.app.AcquireCtx(fctx)
	defer e.app.ReleaseCtx(c)
	id, ok, err := fn(c)
	r := result{www: string(c.Response().Header.Peek(fiber.HeaderWWWAuthenticate))}
	var ck fasthttp.Cookie
	ck.SetKey(e.cookieName)
	r.cleared = c.Response().Header.Cookie(&ck) && len(ck.Value()) == 0
	switch {
	case err != nil:
		he := httperr.From(err)
		r.status, r.code = he.Status, he.Code
		if c.Response().StatusCode() == http.StatusFound { // a redirect, not an error
			r.status, r.code = http.StatusFound, string(c.Response().Header.Peek(fiber.HeaderLocation))
		}
	case ok:
		r.kind = id.Kind
		if id.Kind == authn.KindNone || (id.UserID != "alice" && id.Kind != authn.KindService) {
			t.Errorf("identity %+v: want alice with a kind", id)
		}
	case c.Response().StatusCode() == http.StatusFound:
		r.status, r.code = http.StatusFound, string(c.Response().Header.Peek(fiber.HeaderLocation))
	}
	return r
}

// The route classes, each as a func for env.do.
func upstream(public bool) func(c *fiber.Ctx, ch *authn.Chain) (authn.Identity, bool, error) {
	return func(c *fiber.Ctx, ch *authn.Chain) (authn.Identity, bool, error) { return ch.Upstream(c, public) }
}

func single(f func(ch *authn.Chain, c *fiber.Ctx) (authn.Identity, error)) func(c *fiber.Ctx, ch *authn.Chain) (authn.Identity, bool, error) {
	return func(c *fiber.Ctx, ch *authn.Chain) (authn.Identity, bool, error) {
		id, err := f(ch, c)
		return id, err == nil, err
	}
}

var (
	classUpstream  = upstream(false)
	classPublic    = upstream(true)
	classWorker    = single((*authn.Chain).Worker)
	classProviders = single(func(ch *authn.Chain, c *fiber.Ctx) (authn.Identity, error) { return ch.API(c, scope.Providers) })
	classWho       = single((*authn.Chain).Who)
	classForm      = single((*authn.Chain).Form)
	classService   = single((*authn.Chain).Service)
	classPage      = func(c *fiber.Ctx, ch *authn.Chain) (authn.Identity, bool, error) { return ch.Page(c) }
)

const signIn = "/auth/sign-in?return_to=%2Fsomewhere%3Fx%3D1"

// TestChain is the chain's rules: for each class of route, each kind of
// credential absent, valid and refused, alone and together (the order).
func TestChain(t *testing.T) {
	e := newEnv(t)
	ok := func(k authn.Kind) result { return result{kind: k} }
	unauth := func(www string) result {
		return result{status: 401, code: httperr.CodeUnauthenticated, www: www}
	}
	cookieRealm := `Cookie realm="arbor"`
	invalidToken := `Bearer realm="arbor", error="invalid_token"`
	workerRefused := result{status: 401, code: authn.CodeWorkerUnauthorized, www: `X-Worker-Token realm="arbor"`}
	serviceRefused := result{status: 401, code: authn.CodeInvalidServiceToken, www: `Bearer realm="arbor-service"`}
	insufficient := func(s scope.Set) result {
		return result{status: 403, code: scope.CodeInsufficient, www: `Bearer realm="arbor", error="insufficient_scope", scope="` + s.String() + `"`}
	}
	worker := creds{workerID: e.workerID, workerTok: e.workerTok}

	for _, tc := range []struct {
		name  string
		class func(c *fiber.Ctx, ch *authn.Chain) (authn.Identity, bool, error)
		cr    creds
		want  result
	}{
		// Upstream: session, then a bearer only without a session.
		{"upstream/none", classUpstream, creds{}, result{}},
		{"upstream/session", classUpstream, creds{cookie: e.cookie}, ok(authn.KindSession)},
		{"upstream/forged session is cleared, counts as none", classUpstream, creds{cookie: e.forgedCookie}, result{cleared: true}},
		{"upstream/cli", classUpstream, creds{bearer: e.bearerAll}, ok(authn.KindCLI)},
		{"upstream/cli without proxy scope", classUpstream, creds{bearer: e.bearerNoProxy}, insufficient(scope.Proxy)},
		{"public/cli without proxy scope", classPublic, creds{bearer: e.bearerNoProxy}, insufficient(scope.Proxy)},
		{"upstream/forged bearer counts as none", classUpstream, creds{bearer: e.bearerForged}, result{}},
		{"public/foreign Authorization passes", classPublic, creds{auth: "Basic dXNlcjpwYXNz"}, result{}},
		{"upstream/session first", classUpstream, creds{cookie: e.cookie, bearer: e.bearerAll}, ok(authn.KindSession)},
		{"upstream/session first, even a scope-less token", classUpstream, creds{cookie: e.cookie, bearer: e.bearerNoProxy}, ok(authn.KindSession)},
		{"upstream/refused session decides", classUpstream, creds{cookie: e.forgedCookie, bearer: e.bearerAll}, result{cleared: true}},
		{"upstream/workers do not count", classUpstream, worker, result{}},

		// Worker routes: worker credentials only, one answer.
		{"worker/worker", classWorker, worker, ok(authn.KindWorker)},
		{"worker/none", classWorker, creds{}, workerRefused},
		{"worker/wrong token", classWorker, creds{workerID: e.workerID, workerTok: e.workerBad}, workerRefused},
		{"worker/session does not count", classWorker, creds{cookie: e.cookie}, workerRefused},
		{"worker/cli does not count", classWorker, creds{bearer: e.bearerAll}, workerRefused},

		// API: a bearer when sent decides, else the session.
		{"api/none", classProviders, creds{}, unauth(cookieRealm)},
		{"api/session", classProviders, creds{cookie: e.cookie}, ok(authn.KindSession)},
		{"api/forged session", classProviders, creds{cookie: e.forgedCookie}, unauth(cookieRealm)},
		{"api/cli", classProviders, creds{bearer: e.bearerAll}, ok(authn.KindCLI)},
		{"api/cli without proxy is fine here", classProviders, creds{bearer: e.bearerNoProxy}, ok(authn.KindCLI)},
		{"api/forged bearer", classProviders, creds{bearer: e.bearerForged}, unauth(invalidToken)},
		{"api/bearer first", classProviders, creds{cookie: e.cookie, bearer: e.bearerAll}, ok(authn.KindCLI)},
		{"api/refused bearer decides", classProviders, creds{cookie: e.cookie, bearer: e.bearerForged}, unauth(invalidToken)},
		{"api/service token is not a CLI token", classProviders, creds{bearer: serviceSecret}, unauth(invalidToken)},
		{"api/workers do not count", classProviders, worker, unauth(cookieRealm)},

		// /api/auth/me: like the API, any scope.
		{"who/cli", classWho, creds{bearer: e.bearerNoProxy}, ok(authn.KindCLI)},
		{"who/session", classWho, creds{cookie: e.cookie}, ok(authn.KindSession)},
		{"who/forged bearer", classWho, creds{cookie: e.cookie, bearer: e.bearerForged}, unauth(`Bearer realm="arbor"`)},
		{"who/none", classWho, creds{}, unauth(`Bearer realm="arbor"`)},

		// Pages and forms: the session only.
		{"page/session", classPage, creds{cookie: e.cookie}, ok(authn.KindSession)},
		{"page/none", classPage, creds{}, result{status: 302, code: signIn}},
		{"page/cli does not count", classPage, creds{bearer: e.bearerAll}, result{status: 302, code: signIn}},
		{"form/session", classForm, creds{cookie: e.cookie}, ok(authn.KindSession)},
		{"form/forged", classForm, creds{cookie: e.forgedCookie}, unauth("")},

		// The service route: a configured service token only.
		{"service/token", classService, creds{bearer: serviceSecret}, ok(authn.KindService)},
		{"service/none", classService, creds{}, serviceRefused},
		{"service/wrong token", classService, creds{bearer: serviceSecret + "x"}, serviceRefused},
		{"service/cli token does not count", classService, creds{bearer: e.bearerAll}, serviceRefused},
		{"service/session does not count", classService, creds{cookie: e.cookie}, serviceRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.do(t, tc.cr, func(c *fiber.Ctx) (authn.Identity, bool, error) { return tc.class(c, e.chain) })
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestChainIdentity checks what each kind's identity carries.
func TestChainIdentity(t *testing.T) {
	e := newEnv(t)
	var ids []authn.Identity
	keep := func(c *fiber.Ctx, ch *authn.Chain, f func(c *fiber.Ctx, ch *authn.Chain) (authn.Identity, bool, error)) (authn.Identity, bool, error) {
		id, ok, err := f(c, ch)
		ids = append(ids, id)
		return id, ok, err
	}
	for _, r := range []struct {
		cr    creds
		class func(c *fiber.Ctx, ch *authn.Chain) (authn.Identity, bool, error)
	}{
		{creds{cookie: e.cookie}, classUpstream},
		{creds{bearer: e.bearerAll}, classUpstream},
		{creds{workerID: e.workerID, workerTok: e.workerTok}, classWorker},
		{creds{bearer: serviceSecret}, classService},
	} {
		e.do(t, r.cr, func(c *fiber.Ctx) (authn.Identity, bool, error) { return keep(c, e.chain, r.class) })
	}
	want := []authn.Identity{
		{Kind: authn.KindSession, UserID: "alice", Email: "alice@example.test", Login: "alice", SessionID: "s1"},
		{Kind: authn.KindCLI, UserID: "alice", Email: "alice@example.test", Login: "alice", LoginID: "f1", Scopes: scope.All},
		{Kind: authn.KindWorker, UserID: "alice", WorkerID: e.workerID},
		{Kind: authn.KindService, Service: "argocd"},
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Errorf("identity %d: %+v, want %+v", i, ids[i], want[i])
		}
	}
}

// TestChainStoreFailure: when the store cannot be read, a credential that
// needs it is a technical failure: 503 store_unavailable, except where
// today's rules say otherwise (a public upstream route serves without an
// identity; a bearer on an upstream route counts as none; a page
// redirects to sign-in).
func TestChainStoreFailure(t *testing.T) {
	e := newEnv(t)
	// Nothing is cached yet: every check below reads the closed store.
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	unavailable := func(www string) result { return result{status: 503, code: httperr.CodeStoreUnavailable, www: www} }
	for _, tc := range []struct {
		name  string
		class func(c *fiber.Ctx, ch *authn.Chain) (authn.Identity, bool, error)
		cr    creds
		want  result
	}{
		{"upstream/session", classUpstream, creds{cookie: e.cookie}, unavailable("")},
		{"public/session", classPublic, creds{cookie: e.cookie}, result{}},
		{"upstream/cli", classUpstream, creds{bearer: e.bearerAll}, result{}},
		{"worker", classWorker, creds{workerID: e.workerID, workerTok: e.workerTok}, unavailable("")},
		{"api/session", classProviders, creds{cookie: e.cookie}, unavailable("")},
		{"api/cli", classProviders, creds{bearer: e.bearerAll}, unavailable("")},
		{"who/cli", classWho, creds{bearer: e.bearerAll}, unavailable("")},
		{"page/session", classPage, creds{cookie: e.cookie}, result{status: 302, code: signIn}},
		{"form/session", classForm, creds{cookie: e.cookie}, result{status: 401, code: httperr.CodeUnauthenticated}},
		// Credentials that need no store are unaffected.
		{"service/token", classService, creds{bearer: serviceSecret}, result{kind: authn.KindService}},
		{"upstream/forged session", classUpstream, creds{cookie: e.forgedCookie}, result{cleared: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.do(t, tc.cr, func(c *fiber.Ctx) (authn.Identity, bool, error) { return tc.class(c, e.chain) })
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestAuthenticators checks each authenticator's four outcomes directly.
func TestAuthenticators(t *testing.T) {
	e := newEnv(t)
	type outcome = authn.Outcome
	for _, tc := range []struct {
		name string
		cr   creds
		kind authn.Kind
		want outcome
	}{
		{"session/none", creds{}, authn.KindSession, authn.None},
		{"session/ok", creds{cookie: e.cookie}, authn.KindSession, authn.Authenticated},
		{"session/refused", creds{cookie: e.forgedCookie}, authn.KindSession, authn.Refused},
		{"cli/none", creds{}, authn.KindCLI, authn.None},
		{"cli/other scheme", creds{auth: "Basic dXNlcjpwYXNz"}, authn.KindCLI, authn.None},
		{"cli/ok", creds{bearer: e.bearerAll}, authn.KindCLI, authn.Authenticated},
		{"cli/refused", creds{bearer: e.bearerForged}, authn.KindCLI, authn.Refused},
		{"worker/none", creds{}, authn.KindWorker, authn.None},
		{"worker/ok", creds{workerID: e.workerID, workerTok: e.workerTok}, authn.KindWorker, authn.Authenticated},
		{"worker/refused", creds{workerID: e.workerID, workerTok: e.workerBad}, authn.KindWorker, authn.Refused},
		{"service/none", creds{}, authn.KindService, authn.None},
		{"service/ok", creds{bearer: serviceSecret}, authn.KindService, authn.Authenticated},
		{"service/refused", creds{bearer: e.bearerAll}, authn.KindService, authn.Refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got outcome
			var gotErr error
			e.do(t, tc.cr, func(c *fiber.Ctx) (authn.Identity, bool, error) {
				_, got, gotErr = e.chain.Authenticator(tc.kind).Authenticate(c)
				return authn.Identity{}, false, nil
			})
			if got != tc.want || (gotErr != nil) != (tc.want == authn.Refused) {
				t.Errorf("outcome %d (%v), want %d", got, gotErr, tc.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	if _, err := authn.New(authn.Config{}); err == nil {
		t.Error("a chain without sessions was built")
	}
	e := newEnv(t)
	for k, want := range map[authn.Kind]bool{authn.KindSession: true, authn.KindCLI: true, authn.KindWorker: true, authn.KindService: true, authn.KindNone: false} {
		if e.chain.Accepts(k) != want {
			t.Errorf("Accepts(%v) = %v", k, !want)
		}
	}
	cookies := e.chain.Authenticator(authn.KindSession).(authn.Sessions)
	short, err := authn.New(authn.Config{Session: cookies, ServiceTokens: []authn.ServiceToken{{Name: "argocd", Token: "short"}}})
	if err == nil || !strings.Contains(err.Error(), `service token "argocd"`) {
		t.Errorf("a short service token: %v, %v", short, err)
	}
	bare, err := authn.New(authn.Config{Session: cookies})
	if err != nil {
		t.Fatal(err)
	}
	if bare.Accepts(authn.KindCLI) || bare.Accepts(authn.KindWorker) || bare.Accepts(authn.KindService) {
		t.Error("a chain of sessions only accepts other kinds")
	}
}

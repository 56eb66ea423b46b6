package app

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/seal"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/api"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/authn/sessiontoken"
	"github.com/vintner/arbor/gateway/authz"
	"github.com/vintner/arbor/gateway/authz/access"
	"github.com/vintner/arbor/gateway/authz/assertion"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/gateway/edge/gitproxy"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/gateway/pages"
	"github.com/vintner/arbor/gateway/signin"
	"github.com/vintner/arbor/service/clilogin"
	"github.com/vintner/arbor/service/clilogin/clitoken"
	"github.com/vintner/arbor/service/connections"
	"github.com/vintner/arbor/service/membership"
	"github.com/vintner/arbor/service/providers"
	"github.com/vintner/arbor/service/webhook"
	"github.com/vintner/arbor/service/workers"
)

// Session tokens are issued by the public URL to this audience; CLI tokens
// (issue 7) use another, so neither is ever accepted as the other.
const sessionAudience = "arbor-session"

// webAuth is the browser sign-in wiring: sessions, the route policy, the
// identity assertion and the sign-in routes.
type webAuth struct {
	sessions    *session.Manager
	sessionToks *sessiontoken.Signer
	web         *signin.SignIn
	gate        *authz.Gate // gateway.Options.Guard and Director
	broker      *connections.Broker
	cli         *clilogin.Service
	notifier    *webhook.Notifier // nil without connections.webhook_url
	workers     *workers.Service
	members     *membership.Service
	// Arbor's pages and JSON APIs besides sign-in and the CLI's.
	integrationsPage *pages.Integrations
	workersPage      *pages.Workers
	accountPage      *pages.Account
	providersAPI     *api.Providers
	workersAPI       *api.Workers
	whoamiAPI        *api.Whoami
	cliPage          *pages.CLI
	cliAPI           *api.CLI
	gitProxy         *gitproxy.Proxy
	// errorPage is the page a browser gets for an error the gateway
	// answers (gateway.Options.ErrorPage).
	errorPage httperr.Page
}

// mount registers the sign-in, Integrations and API routes, each route
// behind the handler limits gives it (the rate limits' RouteHandler).
func (w *webAuth) mount(srv *gateway.Server, limits gateway.RouteHook) error {
	limit := gateway.WithRouteHook(limits)
	return errors.Join(
		srv.Mount(gateway.ClassAuth, w.web.Routes, limit),
		srv.Mount(gateway.ClassAuth, w.accountPage.Routes, limit),
		srv.Mount(gateway.ClassAPI, w.whoamiAPI.Routes, limit),
		srv.Mount(gateway.ClassAuth, w.integrationsPage.Routes, limit),
		srv.Mount(gateway.ClassAPI, w.providersAPI.Routes, limit),
		srv.Mount(gateway.ClassAuth, w.cliPage.Routes, limit),
		srv.Mount(gateway.ClassAPI, w.cliAPI.Routes, limit),
		srv.Mount(gateway.ClassAuth, w.workersPage.Routes, limit),
		srv.Mount(gateway.ClassAPI, w.workersAPI.Routes, limit),
		srv.Mount(gateway.ClassGit, w.gitProxy.Routes, limit, gateway.WithStreamedBody()),
	)
}

// derive makes an independent key for one purpose from the session key, so
// that one configured secret serves the session token, CSRF tokens and
// browser binding without any of them revealing another.
func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("arbor key derivation\x00" + purpose))
	return m.Sum(nil)
}

// setupWebAuth builds the parts of webAuth, registering each one that runs
// in the background with a.onClose as soon as it exists. At shutdown,
// revocations still to retry are abandoned (logged) and queued webhook
// events get a few seconds to go out.
func (a *App) setupWebAuth(cfg config.Config, secrets config.SecretsValues, keyring *seal.Keyring, store data.Store, pl *pluginRuntime, log *slog.Logger) (*webAuth, error) {
	if err := a.step("sessions"); err != nil {
		return nil, err
	}
	signer, err := sessiontoken.NewSigner(derive(secrets.SessionKey, "session token"), sessiontoken.Options{
		Issuer:   cfg.PublicURL,
		Audience: sessionAudience,
		TTL:      cfg.Session.TokenTTL,
		Now:      a.opts.Now,
	})
	if err != nil {
		return nil, err
	}
	key, err := loadAssertionKey(cfg.Secrets.AssertionKeyFile, log)
	if err != nil {
		return nil, usageErr(err)
	}
	shape := assertion.ShapeArbor
	if cfg.Identity.AssertionShape == "supabase" {
		shape = assertion.ShapeSupabase
	}
	asserter, err := assertion.NewSigner([]ed25519.PrivateKey{key}, assertion.Options{
		Issuer:   cfg.PublicURL,
		Audience: cfg.Identity.AssertionAudience,
		TTL:      cfg.Identity.AssertionTTL,
		Shape:    shape,
		Now:      a.opts.Now,
	})
	if err != nil {
		return nil, err
	}
	policy, err := routePolicy(cfg.Auth)
	if err != nil {
		return nil, usageErr(err)
	}
	secure := cfg.SecureCookies()
	if !secure {
		log.Warn("public_url is plain http: the session cookie is arbor_session without Secure. Only for loopback development; serve https (tls.cert_file, docs/tls.md) or put TLS in front of Arbor, and set public_url to https://… in production", "public_url", cfg.PublicURL)
	}
	sessions, err := session.New(store, session.Options{
		Signer:           signer,
		CSRFKey:          derive(secrets.SessionKey, "csrf"),
		IdleTimeout:      cfg.Session.IdleTimeout,
		AbsoluteLifetime: cfg.Session.AbsoluteLifetime,
		Secure:           secure,
		Now:              a.opts.Now,
	})
	if err != nil {
		return nil, err
	}
	a.onClose("sessions", sessions.Close)
	provs := providers.FromRegistry(pl.providerRegistry)
	if err := a.step("webhook"); err != nil {
		return nil, err
	}
	var notifier *webhook.Notifier
	if cfg.Connections.WebhookURL != "" {
		secret, err := config.OptionalSecret(a.environ, config.EnvWebhookSecret)
		if err != nil {
			return nil, usageErr(err)
		}
		if secret == "" {
			return nil, usageErr(fmt.Errorf("connections.webhook_url is set but %s is not: set it (or %s_FILE) to a value from `arbor keys generate --only session` and share it with the receiver", config.EnvWebhookSecret, config.EnvWebhookSecret))
		}
		notifier, err = webhook.New(webhook.Options{URL: cfg.Connections.WebhookURL, Secret: []byte(secret), Logger: log})
		if err != nil {
			return nil, usageErr(err)
		}
		a.onClose("webhook notifier", func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = notifier.Close(ctx)
		})
	}
	if err := a.step("broker"); err != nil {
		return nil, err
	}
	broker := connections.New(store, keyring, provs, connections.Options{
		RefreshMargin: cfg.Connections.RefreshMargin,
		AppName:       cfg.UI.AppName,
		Logger:        log,
		Now:           a.opts.Now,
		RetryBackoff:  a.opts.Tests.ConnectionRetryBackoff,
		Notify: func(e connections.Event) {
			if notifier != nil {
				_ = notifier.Send(webhook.Event{Type: e.Type, UserID: e.UserID, Provider: e.Provider, Data: e.Data})
			}
		},
	})
	a.onClose("broker", broker.Close)
	if err := a.step("cli"); err != nil {
		return nil, err
	}
	services, err := serviceTokens(a.environ)
	if err != nil {
		return nil, usageErr(err)
	}
	cliIssuer := cfg.CLI.Issuer
	if cliIssuer == "" {
		cliIssuer = cfg.PublicURL
	}
	cliTokens, err := clitoken.NewSigner(secrets.CLIJWTSecret, clitoken.Options{
		Issuer: cliIssuer, Audience: cfg.CLI.Audience, AccessTTL: cfg.CLI.AccessTTL, RefreshTTL: cfg.CLI.RefreshTTL,
		Now: a.opts.Now,
	})
	if err != nil {
		return nil, usageErr(err)
	}
	if err := a.step("workers"); err != nil {
		return nil, err
	}
	workerSvc := workers.New(store, workers.Options{Logger: log, FlushInterval: a.opts.Tests.WorkerFlushInterval})
	a.onClose("workers", workerSvc.Close)
	if err := a.step("membership"); err != nil {
		return nil, err
	}
	// The policy (docs/policy.md): nil without policy:.
	pol, err := a.compilePolicy(cfg)
	if err != nil {
		return nil, err
	}
	var judge membership.Judge
	if pol != nil {
		judge = pol
	}
	memberSvc, err := a.startMembership(cfg, store, keyring, provs, judge, log)
	if err != nil {
		return nil, err
	}
	cli, err := clilogin.New(store, clilogin.Options{
		Tokens:       cliTokens,
		CodeKey:      derive(secrets.CLIJWTSecret, "cli verification code"),
		RefreshGrace: cfg.CLI.RefreshGrace,
		Logger:       log,

		MaxPendingDevices:    cfg.CLI.MaxPendingDevices,
		MaxPendingPerAddress: cfg.CLI.MaxPendingPerAddress,
		DeviceClients:        deviceClients(cfg.CLI.DeviceClients),
		Now:                  a.opts.Now,
	})
	if err != nil {
		return nil, err
	}
	// What the chain and the gate consult: nil and nil without policy:.
	rules, members, err := a.buildPolicy(pol, memberSvc)
	if err != nil {
		return nil, err
	}
	// The one authentication chain (package authn).
	chain, err := authn.New(authn.Config{
		Session:       sessions.Cookies(),
		CLI:           authn.CLI(cli),
		Worker:        authn.Workers(workerSvc),
		Repo:          authn.RepoCredentials(workerSvc),
		ServiceTokens: services,
		Members:       members,
	})
	if err != nil {
		return nil, usageErr(err)
	}
	cliPages, err := pages.NewCLI(pages.CLIOptions{
		Service: cli, Sessions: sessions, Chain: chain, PublicURL: cfg.PublicURL,
		AppName: cfg.UI.AppName, WorkerName: cfg.UI.WorkerName, CLIName: cfg.UI.CLIName,
	})
	if err != nil {
		return nil, err
	}
	cliAPI, err := api.NewCLI(api.CLIOptions{Service: cli, Chain: chain, PublicURL: cfg.PublicURL})
	if err != nil {
		return nil, err
	}
	var workerRules []access.Rule
	for _, p := range cfg.Workers.Paths {
		if p = strings.TrimSpace(p); p != "" {
			workerRules = append(workerRules, access.Rule{Prefix: p, Class: access.API})
		}
	}
	workerRoutes, err := access.New(access.Public, workerRules)
	if err != nil {
		return nil, usageErr(fmt.Errorf("workers.paths: %w", err))
	}
	if err := a.step("signin"); err != nil {
		return nil, err
	}
	// Sign-ins are judged by the membership service, unless a test fixed
	// the memberships the policy sees (Options.Members).
	var admission signin.Admission = memberSvc
	if pol != nil && a.opts.Members != nil {
		admission = nil
	}
	web, err := signin.New(signin.Options{
		Chain:               chain, // issue 17
		Admission:           admission,
		Store:               store,
		Sessions:            sessions,
		Connector:           broker,
		Providers:           provs,
		Assertions:          asserter,
		PublicURL:           cfg.PublicURL,
		AppName:             cfg.UI.AppName,
		Secure:              secure,
		LinkByVerifiedEmail: cfg.Auth.LinkByVerifiedEmail,
		AfterSignIn:         cfg.Auth.AfterSignIn,
		BindingKey:          derive(secrets.SessionKey, "browser binding"),
		Logger:              log,
		Now:                 a.opts.Now,
	})
	if err != nil {
		return nil, err
	}
	gate, err := authz.NewGate(authz.GateOptions{
		Policy:       policy,
		WorkerRoutes: workerRoutes,
		Chain:        chain,
		SignInPath:   signin.PathSignIn,
		AfterSignIn:  cfg.Auth.AfterSignIn,
		FlowPaths:    signin.FlowPaths(),
		Headers: authz.Headers{
			UserID:    cfg.Identity.UserIDHeader,
			Email:     cfg.Identity.EmailHeader,
			Login:     cfg.Identity.LoginHeader,
			Assertion: cfg.Identity.AssertionHeader,
			Groups:    cfg.Identity.GroupsHeader,
		},
		Rules:         rules,
		Assertions:    asserter,
		SessionCookie: sessions.CookieName(),
		FlowCookie:    web.FlowCookieName(),
	})
	if err != nil {
		return nil, err
	}
	integrationsPage, err := pages.NewIntegrations(pages.IntegrationsOptions{
		Broker: broker, Sessions: sessions, Starter: web,
		PublicURL: cfg.PublicURL, Chain: chain, AppName: cfg.UI.AppName,
	})
	if err != nil {
		return nil, usageErr(err)
	}
	providersAPI, err := api.NewProviders(api.ProvidersOptions{
		Broker: broker, Audit: store, PublicURL: cfg.PublicURL, Chain: chain,
	})
	if err != nil {
		return nil, usageErr(err)
	}
	workersPage, err := pages.NewWorkers(pages.WorkersOptions{
		Workers: workerSvc, Sessions: sessions, PublicURL: cfg.PublicURL,
		AppName: cfg.UI.AppName, WorkerName: cfg.UI.WorkerName,
		Chain: chain,
	})
	if err != nil {
		return nil, err
	}
	workersAPI, err := api.NewWorkers(api.WorkersOptions{Workers: workerSvc, PublicURL: cfg.PublicURL, Chain: chain})
	if err != nil {
		return nil, err
	}
	accountPage, err := pages.NewAccount(pages.AccountOptions{
		Store: store, Sessions: sessions, Providers: provs, CLILogins: cli, Chain: chain,
		PublicURL: cfg.PublicURL, AppName: cfg.UI.AppName,
		SignIn: signin.PathSignIn, LinkPrefix: signin.PathLink, SignOut: web.Logout,
	})
	if err != nil {
		return nil, err
	}
	whoamiAPI, err := api.NewWhoami(api.WhoamiOptions{Chain: chain, Sessions: sessions})
	if err != nil {
		return nil, err
	}
	errorPage, err := pages.HTTPErrorPage(pages.Names{App: cfg.UI.AppName, Worker: cfg.UI.WorkerName})
	if err != nil {
		return nil, err
	}
	if err := a.step("git proxy"); err != nil {
		return nil, err
	}
	hosts, err := newGitHosts(cfg, provs, log)
	if err != nil {
		return nil, usageErr(err)
	}
	gitProxy, err := gitproxy.New(gitproxy.Config{
		Chain: chain, Tokens: broker, Hosts: hosts, PublicURL: cfg.PublicURL,
		ClientReadTimeout: cfg.Server.ReadTimeout, MaxPerClient: cfg.Server.GitMaxPerClient,
	})
	if err != nil {
		return nil, err
	}
	a.onClose("git proxy", gitProxy.Close)
	return &webAuth{sessions: sessions, sessionToks: signer, web: web, gate: gate, broker: broker, cli: cli, notifier: notifier, workers: workerSvc, members: memberSvc,
		integrationsPage: integrationsPage, workersPage: workersPage, accountPage: accountPage,
		providersAPI: providersAPI, workersAPI: workersAPI, whoamiAPI: whoamiAPI, cliPage: cliPages, cliAPI: cliAPI, errorPage: errorPage, gitProxy: gitProxy}, nil
}

// deviceClients converts cli.device_clients (validated by config).
func deviceClients(list []config.DeviceClient) []clilogin.DeviceClient {
	out := make([]clilogin.DeviceClient, 0, len(list))
	for _, d := range list {
		s, _ := scope.Parse(strings.Join(d.Scopes, " "))
		out = append(out, clilogin.DeviceClient{ID: d.ID, Name: d.Name, Scopes: s})
	}
	return out
}

// serviceTokens reads ARBOR_SERVICE_TOKENS: name:token pairs, comma
// separated.
func serviceTokens(environ []string) ([]authn.ServiceToken, error) {
	raw, err := config.OptionalSecret(environ, config.EnvServiceTokens)
	if err != nil || raw == "" {
		return nil, err
	}
	var out []authn.ServiceToken
	for _, pair := range strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == '\n' }) {
		name, tok, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok || name == "" || tok == "" {
			return nil, fmt.Errorf("%s: each entry is name:token; an entry has no ':'", config.EnvServiceTokens)
		}
		out = append(out, authn.ServiceToken{Name: name, Token: tok})
	}
	return out, nil
}

// routePolicy builds the upstream route policy from auth.*.
func routePolicy(a config.Auth) (*access.Policy, error) {
	def, err := access.ParseClass(a.DefaultRoute)
	if err != nil {
		return nil, fmt.Errorf("auth.default_route: %w", err)
	}
	var rules []access.Rule
	for _, l := range []struct {
		paths []string
		class access.Class
	}{{a.PublicPaths, access.Public}, {a.SessionPaths, access.Session}, {a.APIPaths, access.API}} {
		for _, p := range l.paths {
			if p = strings.TrimSpace(p); p != "" {
				rules = append(rules, access.Rule{Prefix: p, Class: l.class})
			}
		}
	}
	p, err := access.New(def, rules)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return p, nil
}

// loadAssertionKey reads the Ed25519 assertion key, generating it (mode
// 0600) on first start.
func loadAssertionKey(path string, log *slog.Logger) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := assertion.GenerateKey()
		if err != nil {
			return nil, err
		}
		pemBytes, err := assertion.MarshalKey(key)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("secrets.assertion_key_file: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return loadAssertionKey(path, log) // another replica won the race
		}
		if err != nil {
			return nil, fmt.Errorf("secrets.assertion_key_file: creating %s: %w", path, err)
		}
		if _, err := f.Write(pemBytes); err != nil {
			f.Close()
			return nil, fmt.Errorf("secrets.assertion_key_file: writing %s: %w", path, err)
		}
		if err := errors.Join(f.Sync(), f.Close()); err != nil {
			return nil, fmt.Errorf("secrets.assertion_key_file: writing %s: %w", path, err)
		}
		log.Info("generated the identity assertion key", "file", path, "kid", assertion.KeyID(key.Public().(ed25519.PublicKey)))
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secrets.assertion_key_file: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secrets.assertion_key_file: %s has mode %v; it holds a private key, so make it 0600 (chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	key, err := assertion.ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("secrets.assertion_key_file %s: %w", path, err)
	}
	return key, nil
}

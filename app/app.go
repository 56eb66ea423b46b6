// Package app builds a whole Arbor from its configuration: the store, the
// encryption keys, https (tls.go), the provider plugins, sessions, the
// connections broker, the worker service, the membership service and its
// re-check, CLI logins, the webhook notifier,
// the rate limits, the gateway server with its routes, the tunnel watch, the
// admin socket and the store's collector. `arbor serve`, `arbor dev` and the full-stack test
// harness (package app/apptest) all call [New], so tests exercise the wiring
// that runs in production instead of a copy of it.
//
// The package is called app, not arbor: it is the application assembled
// from the library packages (gateway/…, data/…, plugins/…), which do not
// import it; the module root stays free of Go code, and the name reads well
// at the call site (app.New, *app.App).
//
// # Start-up and shutdown
//
// New builds the parts in a fixed order, the order `arbor serve` always
// used, and remembers how to stop each one as soon as it exists. If a step
// fails, New stops what it had built, newest first, and returns the error:
// no goroutine of Arbor's is left running (the test
// TestStartFailureLeavesNothingRunning fails a start at each step in
// turn). [App.Close] stops everything the same way after [App.Shutdown].
//
// New does not listen on the public address: the caller owns listeners and
// signals (see cmd/arbor's serve), so that a test may serve on a listener
// of its own.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vintner/arbor/admin"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/seal"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/service/users"
)

// Options are what New takes besides the configuration. The zero value is
// what `arbor serve` uses, apart from Version.
type Options struct {
	// Version is reported by the admin socket (arbor version).
	Version string
	// Stderr receives the server log and the access log; default
	// os.Stderr.
	Stderr io.Writer
	// Environ is the environment the secrets and the other ARBOR_…
	// variables that are not configuration keys are read from (secrets,
	// provider client secrets, ARBOR_SERVICE_TOKENS,
	// ARBOR_WEBHOOK_SECRET); default os.Environ(). The configuration
	// itself is already in the cfg given to New. ARBOR_ETCD_PASSWORD is
	// always read from the process environment.
	Environ []string

	// Members, for tests only, replaces what the authentication chain and
	// the gate ask for users' standing when policy: is configured: it gets
	// the compiled policy and returns a Members of fixed memberships
	// (apptest.PolicyMembers); sign-ins are then not judged. Nil, as in
	// production: the membership service (service/membership,
	// App.Members), which also judges sign-ins.
	Members MembersFunc

	// Now, for tests only, is the clock of the store, the sessions, the
	// tokens and the sign-in, CLI and connection services, so that a test
	// can move time on; nil is time.Now.
	Now func() time.Time
	// FailAt, for tests only, makes New fail with ErrInjected just before
	// the start-up step of that name (see the step calls in New and
	// setupWebAuth; "ready" is the last, after every part exists). Empty in
	// production.
	FailAt string
	// Tests, for tests only: settings that `arbor serve` never changes
	// and that a full-stack test needs to (app/apptest sets them). The
	// zero value is production.
	Tests TestOptions
}

// TestOptions are start-up settings for tests only (Options.Tests); the
// zero value is what `arbor serve` runs with.
type TestOptions struct {
	// ConnectionRetryBackoff replaces the connections broker's first
	// retry backoff (connections.DefaultRetryBackoff), so that tests of
	// failed revocations do not wait.
	ConnectionRetryBackoff time.Duration
	// WorkerFlushInterval replaces how often workers' last-used times are
	// written (workers.DefaultFlushInterval); a test sets it long and
	// flushes itself (App.Workers().Flush).
	WorkerFlushInterval time.Duration
	// PluginsLoading never starts the first plugin load, as if it were
	// still compiling: the sign-in page says providers are loading and
	// /readyz answers 503.
	PluginsLoading bool
}

// ErrInjected is the error of a start-up failed by Options.FailAt.
var ErrInjected = errors.New("app: start-up failure injected by Options.FailAt")

// ConfigError marks an error in what the operator gave (configuration,
// secrets, environment): `arbor serve` exits with status 2 on it instead
// of 1. Its message is the wrapped error's.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// usageErr marks err as the operator's to fix (a ConfigError).
func usageErr(err error) error { return &ConfigError{Err: err} }

// App is a built Arbor: every part exists and runs, except the public
// listener, which the caller opens and hands to Server.Serve.
type App struct {
	// Log is the server log (not the access log).
	Log *slog.Logger
	// Server is the gateway, with every route mounted. Serve it; stop it
	// with App.Shutdown, then Close.
	Server *gateway.Server

	cfg     config.Config
	opts    Options
	environ []string
	store   *OpenedStore
	keyring *seal.Keyring
	plugins *pluginRuntime
	web     *webAuth
	tls     *tlsParts // nil: plain http
	admin   *admin.Server
	// accessOut buffers the access log (FlushLogs).
	accessOut *gateway.BufferedWriter

	shutdownOnce sync.Once

	// closers stop the parts built so far, in the order they were built;
	// close runs them backwards.
	closers []closer
	// steps are the names of the start-up steps passed, in order (tests
	// fail New at each).
	steps []string
}

type closer struct {
	name string
	fn   func()
}

// step marks the start of the start-up step name: it fails if
// Options.FailAt names it.
func (a *App) step(name string) error {
	a.steps = append(a.steps, name)
	if a.opts.FailAt == name {
		return fmt.Errorf("%w (step %q)", ErrInjected, name)
	}
	return nil
}

// onClose registers how to stop a part that has just been built.
func (a *App) onClose(name string, fn func()) {
	a.closers = append(a.closers, closer{name, fn})
}

// Close stops every part, newest first: the store's collector, the admin
// socket, the tunnel watch, the gateway (if Shutdown was not called), the
// worker service, the broker, the webhook
// notifier (its queued events get a few seconds), the sessions, the
// plugins, the store, and last the buffered access log. Shut the Server
// down first. Close may be called more than once.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i].fn()
	}
	a.closers = nil
}

// New builds every part of Arbor from cfg, in order; see the package
// documentation. On error nothing it started is left running, and an
// error in the operator's configuration is a *ConfigError.
func New(ctx context.Context, cfg config.Config, opts Options) (_ *App, err error) {
	a := &App{cfg: cfg, opts: opts, environ: opts.Environ}
	if a.environ == nil {
		a.environ = os.Environ()
	}
	stderr := opts.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if err := a.step("logs"); err != nil {
		return nil, err
	}
	log := NewLogger(cfg, stderr)
	a.Log = log
	// The access log (one line per request) is buffered: a write(2) per
	// request costs more than the rest of the logging. Lines reach stderr
	// within 200 ms and at shutdown.
	accessOut := gateway.NewBufferedWriter(stderr, 0, 0)
	a.accessOut = accessOut
	a.onClose("access log", func() { accessOut.Close() })
	accessLog := NewLogger(cfg, accessOut)
	for _, name := range config.UnknownEnv(a.environ) {
		log.Warn("ignoring environment variable that matches no config key", "name", name)
	}
	if err := a.step("secrets"); err != nil {
		return nil, err
	}
	secrets, err := config.LoadSecrets(cfg, a.environ, log)
	if err != nil {
		return nil, usageErr(err)
	}
	keyring, err := secrets.Keyring()
	if err != nil {
		return nil, usageErr(err)
	}
	a.keyring = keyring
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data_dir %s: %w", cfg.DataDir, err)
	}

	if err := a.step("store"); err != nil {
		return nil, err
	}
	// The store reports its failures into the gateway's metrics, which
	// exist once the gateway does; until then there is nothing to count.
	var metrics atomic.Pointer[gateway.Metrics]
	store, err := openStore(ctx, cfg, log, func(op string, err error) {
		log.Error("store failure", "op", op, "err", err)
		if m := metrics.Load(); m != nil {
			m.StoreError(op)
		}
	}, opts.Now)
	if err != nil {
		return nil, err
	}
	a.store = store
	a.onClose("store", func() {
		if err := store.Close(); err != nil {
			log.Error("closing the store", "err", err)
		}
	})
	log.Info("encryption keys loaded", "keys", keyring.IDs(), "sealing_key", keyring.NewestID())

	if err := a.step("tls"); err != nil {
		return nil, err
	}
	if err := a.setupTLS(cfg.TLS, log); err != nil {
		return nil, err
	}

	if err := a.step("plugins"); err != nil {
		return nil, err
	}
	pl, err := startPlugins(ctx, cfg, a.environ, log, opts.Tests.PluginsLoading)
	if err != nil {
		return nil, err
	}
	a.plugins = pl
	a.onClose("plugins", pl.close)

	wa, err := a.setupWebAuth(cfg, secrets, keyring, store, pl, log)
	if err != nil {
		return nil, err
	}
	a.web = wa
	if err := a.step("limits"); err != nil {
		return nil, err
	}
	limits, err := newRateLimits(cfg.Limits)
	if err != nil {
		return nil, usageErr(err)
	}

	if err := a.step("gateway"); err != nil {
		return nil, err
	}
	gopts := gateway.Options{
		Listen:          cfg.Listen,
		Upstream:        cfg.Upstream,
		IdleTimeout:     cfg.Server.IdleTimeout,
		ReadTimeout:     cfg.Server.ReadTimeout,
		MaxHeaderBytes:  cfg.Server.MaxHeaderBytes,
		BodyLimit:       int64(cfg.Server.BodyLimit),
		TrustedProxies:  cfg.Server.TrustedProxies,
		IdentityHeaders: append(append([]string(nil), cfg.Server.IdentityHeaders...), wa.gate.StrippedHeaders()...),
		Guard:           limits.Guard(wa.gate.Guard),
		NoPublicMetrics: cfg.Server.MetricsListen != config.MetricsPublic,
		Director:        wa.gate.Director,
		ErrorPage:       wa.errorPage,
		HSTS:            a.hsts(),
		Logger:          log,
		AccessLogger:    accessLog,
		Ready: func(ctx context.Context) error {
			if err := store.Ping(ctx); err != nil {
				return err
			}
			return pl.ready(ctx)
		},
	}
	slowClientOptions(&gopts, cfg.Server, cfg.Upstream)
	srv, err := gateway.New(gopts)
	if err != nil {
		return nil, usageErr(err)
	}
	a.Server = srv
	// Built, the gateway runs its proxy's sweepers; Shutdown stops them,
	// served or not. Close calls it only if the caller has not.
	a.onClose("gateway", func() {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
		defer cancel()
		_ = a.Shutdown(sctx)
	})
	if err := a.step("tunnel watch"); err != nil {
		return nil, err
	}
	a.onClose("tunnel watch", watchTunnels(srv, store, log))
	metrics.Store(srv.Metrics())
	if err := a.step("routes"); err != nil {
		return nil, err
	}
	if err := limits.Register(srv.Registry()); err != nil {
		return nil, err
	}
	if err := a.registerTLSMetrics(srv.Registry()); err != nil {
		return nil, err
	}
	if err := wa.mount(srv, limits.RouteHandler); err != nil {
		return nil, err
	}
	if err := limits.MissingError(); err != nil {
		return nil, err
	}

	if err := a.step("admin socket"); err != nil {
		return nil, err
	}
	adm, err := admin.Listen(admin.SocketPath(cfg.DataDir), admin.Handlers{
		Backup: store.Backup,
		RotateKeys: func(ctx context.Context) (data.ResealStats, error) {
			return data.Reseal(ctx, store, keyring)
		},
		ReloadPlugins: func(ctx context.Context) admin.PluginReload {
			return a.ReloadPlugins(ctx, "admin")
		},
		TLSStatus: a.TLSStatus,
		Users:     users.New(users.Options{Store: store, Now: opts.Now, Logger: log, EndAccess: wa.members.EndAccess}),
		Version:   opts.Version,
	}, log)
	if err != nil {
		return nil, err
	}
	a.admin = adm
	a.onClose("admin socket", func() {
		cctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
		defer cancel()
		adm.Close(cctx)
	})

	if err := a.step("collector"); err != nil {
		return nil, err
	}
	gcCtx, stopGC := context.WithCancel(context.Background())
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		data.RunCollector(gcCtx, store, cfg.Store.GCInterval, log)
	}()
	a.onClose("collector", func() { stopGC(); <-gcDone })
	if err := a.step("ready"); err != nil {
		return nil, err
	}
	return a, nil
}

// Shutdown shuts the Server down gracefully (gateway.Server.Shutdown): it
// stops accepting, lets requests in flight finish within ctx, and stops
// the proxy's background work. Only the first call does anything; Close
// calls it too, for a Server that was never served.
func (a *App) Shutdown(ctx context.Context) (err error) {
	a.shutdownOnce.Do(func() { err = a.Server.Shutdown(ctx) })
	return err
}

// ReloadPlugins re-reads the plugin sources (SIGHUP, `arbor plugin
// reload`), within five minutes; trigger is logged.
func (a *App) ReloadPlugins(ctx context.Context, trigger string) admin.PluginReload {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return a.plugins.reload(ctx, trigger)
}

// StartReloader starts the goroutine that runs plugin reloads asked for
// with request, one at a time, logged with trigger ("SIGHUP"). A request
// during a reload queues exactly one more, so a change made meanwhile is
// not missed; request never blocks. stop ends the goroutine (a reload in
// flight is cancelled); call it before Close.
func (a *App) StartReloader(trigger string) (request, stop func()) {
	// Reloads run outside the signal loop; the registry serialises them.
	ctx, cancel := context.WithCancel(context.Background())
	pending := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-pending:
				a.ReloadPlugins(ctx, trigger)
			}
		}
	}()
	return func() {
		select {
		case pending <- struct{}{}:
		default: // one is queued already
		}
	}, cancel
}

// AdminPath is the admin socket's path.
func (a *App) AdminPath() string { return a.admin.Path() }

// SessionCookie is the name of the browser session cookie.
func (a *App) SessionCookie() string { return a.web.sessions.CookieName() }

// Store is the opened store.
func (a *App) Store() data.Store { return a.store.Store }

// ListenMetrics starts serving /metrics on server.metrics_listen when that
// is an address of its own ("" and "public" need nothing: stop is then a
// no-op). Call stop after the Server's Shutdown.
func (a *App) ListenMetrics() (stop func(context.Context), err error) {
	var m *metricsListener
	if addr := a.cfg.Server.MetricsListen; addr != "" && addr != config.MetricsPublic {
		if m, err = listenMetrics(addr, a.Server.MetricsHandler(), a.Log); err != nil {
			return nil, err
		}
	}
	return m.stop, nil
}

// NewLogger is Arbor's logger for cfg.Log on w: JSON (the gateway's
// handler) or text.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(gateway.NewJSONHandler(w, opts))
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/admin"
	"github.com/vintner/arbor/gateway/config"
)

func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Long: `Run the gateway with the configuration from --config (or ARBOR_CONFIG) and
ARBOR_… environment variables. Secrets come from ARBOR_SESSION_KEY,
CLI_JWT_SECRET and ARBOR_ENCRYPTION_KEYS (or their _FILE forms); make them
with 'arbor keys generate'.

Provider plugins: the built-in ones and those in plugins.dir load in the
background once the gateway listens (/readyz answers 503 until they have);
SIGHUP or 'arbor plugin reload' re-reads them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, serveHooks{stdout: cmd.OutOrStdout()})
		},
	}
}

// loadConfig reads --config and the environment; extra are environment
// entries that take precedence (used by `arbor dev` for its flags).
func loadConfig(cmd *cobra.Command, extra []string) (config.Config, error) {
	file, _ := cmd.Flags().GetString("config")
	cfg, err := config.Load(config.Source{File: file, Environ: append(os.Environ(), extra...)})
	if err != nil {
		return cfg, usageErr(err)
	}
	return cfg, nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(gateway.NewJSONHandler(w, opts))
}

// serveHooks lets `arbor dev` add to what serve starts.
type serveHooks struct {
	stdout io.Writer
	// ready is called once the gateway listens.
	ready func(addr string)
}

// serve runs the gateway until ctx is cancelled (SIGTERM, SIGINT), then
// shuts down in order: stop accepting, let requests in flight finish, close
// the admin socket, close the plugins, close the store. SIGHUP reloads the
// plugins.
func serve(ctx context.Context, cfg config.Config, hooks serveHooks) error {
	// Catch SIGHUP first: its default action would kill the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	log := newLogger(cfg, os.Stderr)
	// The access log (one line per request) is buffered: a write(2) per
	// request costs more than the rest of the logging. Lines reach stderr
	// within 200 ms and at shutdown.
	accessOut := gateway.NewBufferedWriter(os.Stderr, 0, 0)
	defer accessOut.Close()
	accessLog := newLogger(cfg, accessOut)
	for _, name := range config.UnknownEnv(os.Environ()) {
		log.Warn("ignoring environment variable that matches no config key", "name", name)
	}
	secrets, err := config.LoadSecrets(cfg, os.Environ(), log)
	if err != nil {
		return usageErr(err)
	}
	keyring, err := secrets.Keyring()
	if err != nil {
		return usageErr(err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data_dir %s: %w", cfg.DataDir, err)
	}

	// The store reports its failures into the gateway's metrics, which
	// exist once the gateway does; until then there is nothing to count.
	var metrics atomic.Pointer[gateway.Metrics]
	store, err := openStore(ctx, cfg, log, func(op string, err error) {
		log.Error("store failure", "op", op, "err", err)
		if m := metrics.Load(); m != nil {
			m.StoreError(op)
		}
	})
	if err != nil {
		return err
	}
	storeOpen := true
	closeStore := func() {
		if !storeOpen {
			return
		}
		storeOpen = false
		if err := store.Close(); err != nil {
			log.Error("closing the store", "err", err)
		}
	}
	defer closeStore()
	log.Info("encryption keys loaded", "keys", keyring.IDs(), "sealing_key", keyring.NewestID())

	pl, err := startPlugins(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pl.close()
	// Reloads run outside the signal loop; the registry serialises them.
	reloadCtx, stopReloads := context.WithCancel(context.Background())
	defer stopReloads()
	reloadPlugins := func(ctx context.Context, trigger string) admin.PluginReload {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		return pl.reload(ctx, trigger)
	}

	wa, err := setupWebAuth(cfg, secrets, keyring, store, pl, log)
	if err != nil {
		return err
	}
	defer wa.close()
	limits, err := newRateLimits(cfg.Limits)
	if err != nil {
		return usageErr(err)
	}

	gopts := gateway.Options{
		Listen:          cfg.Listen,
		Upstream:        cfg.Upstream,
		IdleTimeout:     cfg.Server.IdleTimeout,
		ReadTimeout:     cfg.Server.ReadTimeout,
		MaxHeaderBytes:  cfg.Server.MaxHeaderBytes,
		BodyLimit:       int64(cfg.Server.BodyLimit),
		TrustedProxies:  cfg.Server.TrustedProxies,
		IdentityHeaders: append(append([]string(nil), cfg.Server.IdentityHeaders...), wa.web.StrippedHeaders()...),
		Guard:           limits.Guard(wa.web.Guard),
		NoPublicMetrics: cfg.Server.MetricsListen != config.MetricsPublic,
		Director:        wa.web.Director,
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
		return usageErr(err)
	}
	defer watchTunnels(srv, store, log)()
	metrics.Store(srv.Metrics())
	if err := limits.Register(srv.Registry()); err != nil {
		return err
	}
	if err := wa.mount(srv, limits.RouteHandler); err != nil {
		return err
	}
	if err := limits.MissingError(); err != nil {
		return err
	}

	adm, err := admin.Listen(admin.SocketPath(cfg.DataDir), admin.Handlers{
		Backup: store.backup,
		RotateKeys: func(ctx context.Context) (data.ResealStats, error) {
			return data.Reseal(ctx, store, keyring)
		},
		ReloadPlugins: func(ctx context.Context) admin.PluginReload {
			return reloadPlugins(ctx, "admin")
		},
		Version: version,
	}, log)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
		defer cancel()
		adm.Close(cctx)
	}()

	gcCtx, stopGC := context.WithCancel(context.Background())
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		data.RunCollector(gcCtx, store, cfg.Store.GCInterval, log)
	}()
	defer func() { stopGC(); <-gcDone }()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (is another process using it? set listen / ARBOR_LISTEN)", cfg.Listen, err)
	}
	var metricsLn *metricsListener
	if m := cfg.Server.MetricsListen; m != "" && m != config.MetricsPublic {
		if metricsLn, err = listenMetrics(m, srv.MetricsHandler(), log); err != nil {
			_ = ln.Close()
			return err
		}
	}
	log.Info("arbor serving", "version", version, "listen", ln.Addr().String(), "upstream", cfg.Upstream.URL, "admin_socket", adm.Path())
	if hooks.ready != nil {
		hooks.ready(ln.Addr().String())
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	// One goroutine runs SIGHUP reloads; a SIGHUP during a reload queues
	// exactly one more, so a change made meanwhile is not missed.
	pendingReload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-reloadCtx.Done():
				return
			case <-pendingReload:
				reloadPlugins(reloadCtx, "SIGHUP")
			}
		}
	}()
wait:
	for {
		select {
		case err := <-serveErr:
			if err != nil {
				return err
			}
			return errors.New("gateway stopped unexpectedly")
		case <-hup:
			log.Info("SIGHUP: reloading plugins")
			select {
			case pendingReload <- struct{}{}:
			default: // one is queued already
			}
		case <-ctx.Done():
			break wait
		}
	}

	log.Info("shutting down: finishing requests in flight", "timeout", cfg.Server.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("graceful shutdown incomplete", "err", err)
	}
	metricsLn.stop(sctx)
	<-serveErr
	return nil
}

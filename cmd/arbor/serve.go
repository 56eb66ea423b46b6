package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vintner/arbor/app"
	"github.com/vintner/arbor/config"
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
SIGHUP or 'arbor plugin reload' re-reads them.

With tls.cert_file and tls.key_file, Arbor serves https on listen and
re-reads the files on SIGHUP and when they change; tls.http_listen
redirects plain http to public_url (docs/tls.md). With tls.acme.domains,
Arbor obtains and renews the certificates itself once its listeners serve,
and stops if the CA refuses (docs/acme.md).`,
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

// serveHooks lets `arbor dev` add to what serve starts.
type serveHooks struct {
	stdout io.Writer
	// ready is called once the gateway listens.
	ready func(addr string)
}

// serve builds Arbor (package app) and runs it until ctx is cancelled
// (SIGTERM, SIGINT), then shuts down in order: stop accepting, let requests
// in flight finish, then App.Close (the admin socket, the plugins, the
// store, …). With tls.* the listener serves https and tls.http_listen
// redirects to it; with tls.acme.domains the certificates are obtained (or
// loaded from the store) once both listeners serve, and a failure stops
// start-up. SIGHUP reloads the plugins and the certificate files.
func serve(ctx context.Context, cfg config.Config, hooks serveHooks) error {
	// Catch SIGHUP first: its default action would kill the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	a, err := app.New(ctx, cfg, app.Options{Version: version})
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (is another process using it? set listen / ARBOR_LISTEN)", cfg.Listen, err)
	}
	stopMetrics, err := a.ListenMetrics()
	if err != nil {
		_ = ln.Close()
		return err
	}
	_, stopRedirect, err := a.ListenRedirect()
	if err != nil {
		_ = ln.Close()
		stopMetrics(ctx)
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- a.Serve(ln) }()
	// ACME: the CA validates against the listeners, which serve now.
	if err := a.StartCertificates(ctx); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
		defer cancel()
		_ = a.Shutdown(sctx)
		stopMetrics(sctx)
		stopRedirect(sctx)
		<-serveErr
		if ctx.Err() != nil {
			return nil // SIGTERM or SIGINT while waiting for the certificates
		}
		return err
	}
	a.Log.Info("arbor serving", "version", version, "listen", ln.Addr().String(), "https", a.HTTPS(), "public_url", cfg.PublicURL, "upstream", cfg.Upstream.URL, "admin_socket", a.AdminPath())
	if hooks.ready != nil {
		hooks.ready(ln.Addr().String())
	}
	reload, stopReloads := a.StartReloader("SIGHUP")
	defer stopReloads()
	for {
		select {
		case err := <-serveErr:
			if err != nil {
				return err
			}
			return errors.New("gateway stopped unexpectedly")
		case <-hup:
			a.Log.Info("SIGHUP: reloading plugins and certificate files")
			reload()
			a.ReloadCertificates()
		case <-ctx.Done():
			a.Log.Info("shutting down: finishing requests in flight", "timeout", cfg.Server.ShutdownTimeout)
			sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
			defer cancel()
			if err := a.Shutdown(sctx); err != nil {
				a.Log.Error("graceful shutdown incomplete", "err", err)
			}
			stopMetrics(sctx)
			stopRedirect(sctx)
			<-serveErr
			return nil
		}
	}
}

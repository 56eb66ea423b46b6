package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/edge/ratelimit"
)

// newRateLimits builds the per-address limits from limits.*; with
// limits.enabled false every class is unlimited (the route table is still
// checked against the routes).
func newRateLimits(l config.Limits) (*ratelimit.Limits, error) {
	var o ratelimit.Options
	o.Capacity = l.Capacity
	if l.Enabled {
		for c, r := range map[ratelimit.Class]config.Rate{
			ratelimit.SignIn:        l.SignIn,
			ratelimit.DeviceStart:   l.DeviceStart,
			ratelimit.DevicePoll:    l.DevicePoll,
			ratelimit.Refresh:       l.Refresh,
			ratelimit.FailedAuth:    l.FailedAuth,
			ratelimit.GitFailedAuth: l.GitFailedAuth,
		} {
			o.Rates[c] = ratelimit.Rate{PerMinute: r.PerMinute, Burst: r.Burst}
		}
	}
	return ratelimit.New(o)
}

// metricsListener serves /metrics on server.metrics_listen, apart from
// the public listener.
type metricsListener struct {
	srv  *http.Server
	done chan struct{}
}

// listenMetrics starts serving h at /metrics on addr. Anything else there
// is a 404.
func listenMetrics(addr string, h http.Handler, log *slog.Logger) (*metricsListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server.metrics_listen: listening on %s: %w (is another Arbor or exporter using it? set server.metrics_listen / ARBOR_SERVER_METRICS_LISTEN to a free address, \"public\", or \"\" for no /metrics)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	m := &metricsListener{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	log.Info("metrics listening", "metrics_listen", ln.Addr().String())
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	return m, nil
}

// stop shuts the listener down gracefully, within ctx.
func (m *metricsListener) stop(ctx context.Context) {
	if m == nil {
		return
	}
	if err := m.srv.Shutdown(ctx); err != nil {
		_ = m.srv.Close()
	}
	<-m.done
}

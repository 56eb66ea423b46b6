package data

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// DefaultCollectEvery is how often RunCollector collects when it is given no
// interval.
const DefaultCollectEvery = time.Minute

// RunCollector deletes expired records: it calls c.CollectExpired once at
// once and then every interval, until ctx is done, and returns then.
//
// Reads already treat an expired record as missing, so the collector only
// reclaims space; a slow or failing collection never lets an expired session
// or code be used. That is why a failure is logged and retried at the next
// tick rather than returned. An interval of zero or less means
// DefaultCollectEvery. A nil logger means slog.Default().
func RunCollector(ctx context.Context, c Collector, every time.Duration, logger *slog.Logger) {
	if every <= 0 {
		every = DefaultCollectEvery
	}
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "collector")
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	failures := 0
	for {
		start := time.Now()
		stats, err := c.CollectExpired(ctx, start)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			level := slog.LevelWarn
			if errors.Is(err, ErrClosed) {
				level = slog.LevelError // nothing will change until a restart
			}
			logger.Log(ctx, level, "collecting expired records failed; retrying at the next interval",
				"err", err, "failures", failures, "deleted", stats.Total(), "every", every)
		default:
			if failures > 0 {
				logger.Info("collecting expired records works again", "after_failures", failures)
				failures = 0
			}
			if stats.Total() > 0 {
				logger.Info("deleted expired records",
					"sessions", stats.Sessions, "oauth_states", stats.OAuthStates,
					"device_codes", stats.DeviceCodes, "refresh_families", stats.RefreshFamilies,
					"took", time.Since(start).Round(time.Microsecond))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

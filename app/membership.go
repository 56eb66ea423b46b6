package app

import (
	"context"
	"log/slog"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/seal"
	"github.com/vintner/arbor/service/membership"
	"github.com/vintner/arbor/service/providers"
)

// startMembership builds the membership service (package
// service/membership) for cfg.Policy and starts its background re-check,
// registering with a.onClose how to stop both.
func (a *App) startMembership(cfg config.Config, store data.Store, keyring *seal.Keyring, provs *providers.Set, judge membership.Judge, log *slog.Logger) (*membership.Service, error) {
	var named []string
	named = append(named, cfg.Policy.Allow.Groups...)
	for _, r := range cfg.Policy.Routes {
		named = append(named, r.Groups...)
	}
	members, err := membership.New(membership.Options{
		Store:           store,
		Keys:            keyring,
		Providers:       provs,
		Judge:           judge,
		GroupProviders:  cfg.Policy.GroupProviders(),
		Wanted:          membership.WantedGroups(named),
		RecheckInterval: cfg.Policy.RecheckInterval,
		GracePeriod:     cfg.Policy.GracePeriod,
		Now:             a.opts.Now,
		Logger:          log,
	})
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		members.Run(ctx)
	}()
	a.onClose("membership", func() {
		stop()
		<-done
		members.Close()
	})
	return members, nil
}

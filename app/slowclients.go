package app

import (
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authz"
	"github.com/vintner/arbor/gateway/edge/tunnelwatch"
)

// slowClientOptions sets the gateway's slow-client options (docs/edge.md,
// "Slow clients and connections") from the server.* keys, where 0 turns a
// check off (the gateway's -1).
func slowClientOptions(o *gateway.Options, s config.Server, up config.Upstream) {
	off := func(v int) int64 {
		if v == 0 {
			return -1
		}
		return int64(v)
	}
	o.UploadMinRate = off(s.UploadMinRate)
	o.DownloadMinRate = off(s.DownloadMinRate)
	o.MinRateGrace = s.MinRateGrace
	o.MaxConnsPerAddress = int(off(s.MaxConnsPerAddress))
	o.UpstreamMaxPerClient = int(off(s.UpstreamMaxPerClient))
	o.WebSocketIdleTimeout = s.WebSocketIdleTimeout
	if o.WebSocketIdleTimeout == 0 {
		o.WebSocketIdleTimeout = -1
	}
	o.ParkIdleAfter = s.ParkIdleAfter
	if o.ParkIdleAfter == 0 {
		o.ParkIdleAfter = -1
	}
	o.TunnelOwner = tunnelOwner
}

// tunnelOwner names the sign-in of a request the guard let through, so
// that its WebSocket tunnels end with it.
func tunnelOwner(c *fiber.Ctx) string {
	id, ok := authz.IdentityOf(c)
	if !ok {
		return ""
	}
	return tunnelwatch.Owner(id)
}

// watchTunnels closes WebSocket tunnels whose session or CLI login ended.
// Stop it before the store is closed.
func watchTunnels(srv *gateway.Server, store tunnelwatch.Store, log *slog.Logger) (stop func()) {
	w := tunnelwatch.Start(srv, store, tunnelwatch.Options{Logger: log})
	return w.Close
}

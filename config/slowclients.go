package config

import "time"

// validateSlowClients checks the server.* keys of the slow-client block
// (docs/edge.md, "Slow clients and connections").
func (c Config) validateSlowClients(bad func(key, format string, args ...any)) {
	s := c.Server
	for key, v := range map[string]int{
		"server.upload_min_rate":         s.UploadMinRate,
		"server.download_min_rate":       s.DownloadMinRate,
		"server.max_conns_per_address":   s.MaxConnsPerAddress,
		"server.upstream_max_per_client": s.UpstreamMaxPerClient,
		"server.git_max_per_client":      s.GitMaxPerClient,
	} {
		if v < 0 {
			bad(key, "%d: want a positive number, or 0 to turn it off", v)
		}
	}
	if c.Upstream.MaxConns < 1 {
		bad("upstream.max_conns", "%d: want a positive number of connections", c.Upstream.MaxConns)
	}
	if s.MinRateGrace <= 0 {
		bad("server.min_rate_grace", "%v: want a positive duration such as 30s", s.MinRateGrace)
	}
	if s.ParkIdleAfter < 0 {
		bad("server.park_idle_after", "%v: want a positive duration such as 5s, or 0 to turn parking off", s.ParkIdleAfter)
	}
	if s.WebSocketIdleTimeout < 0 {
		bad("server.websocket_idle_timeout", "%v: want a positive duration such as 5m, or 0 to turn it off", s.WebSocketIdleTimeout)
	}
	if s.WebSocketIdleTimeout > 0 && s.WebSocketIdleTimeout < time.Second {
		bad("server.websocket_idle_timeout", "%v: under a second would cut tunnels between two frames; want e.g. 5m", s.WebSocketIdleTimeout)
	}
}

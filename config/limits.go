package config

// Limits configures the rate limits per client address on Arbor's own auth
// endpoints (see docs/edge.md, "Rate limits"). The client address is the
// one server.trusted_proxies vouch for, an IPv6 client counted by its /64.
// Over a limit, a request gets 429 rate_limited with Retry-After.
type Limits struct {
	// Enabled turns every limit on or off. Default true.
	Enabled bool `yaml:"enabled"`
	// Capacity is how many client addresses each limit remembers; past it
	// the least recently seen address is forgotten (which only ever gives
	// that address a fresh burst). About 200 bytes each. Default 16384.
	Capacity int `yaml:"capacity"`
	// SignIn: /auth/start/…, /auth/link/…, /auth/callback/… and
	// /integrations/…/connect. Default 30 a minute, burst 10.
	SignIn Rate `yaml:"signin"`
	// DeviceStart: /api/auth/cli/start, /cli/login, /oauth/device/code and
	// entering a user code at /device. Default 10 a minute, burst 5.
	DeviceStart Rate `yaml:"device_start"`
	// DevicePoll: /api/auth/cli/exchange and /oauth/token with the device
	// code grant. A login polls every 5 s. Default 60 a minute, burst 20.
	DevicePoll Rate `yaml:"device_poll"`
	// Refresh: /api/auth/cli/refresh and /oauth/token with any other
	// grant. Default 30 a minute, burst 10.
	Refresh Rate `yaml:"refresh"`
	// FailedAuth: requests with a bearer token or worker credentials that
	// are answered 401. Once it is used up, the address's requests with
	// credentials get 429 until it refills. Default 30 a minute, burst 10.
	FailedAuth Rate `yaml:"failed_auth"`
	// GitFailedAuth: requests to the Git proxy (/git/…) with HTTP Basic
	// credentials that are answered 401 (a wrong, rotated or revoked
	// repository credential). Once it is used up, the address's Git
	// requests with credentials get 429 (text/plain, which git shows) until
	// it refills. A bucket of its own, apart from failed_auth. Default 30
	// a minute, burst 10.
	GitFailedAuth Rate `yaml:"git_failed_auth"`
}

// Rate is one limit: a bucket of Burst requests that refills at PerMinute
// a minute. PerMinute 0 turns this limit off.
type Rate struct {
	// PerMinute is the sustained rate, in requests a minute; 0 is no limit.
	PerMinute int `yaml:"per_minute"`
	// Burst is how many requests may come at once (at least 1 when
	// PerMinute is set).
	Burst int `yaml:"burst"`
}

func defaultLimits() Limits {
	return Limits{
		Enabled:       true,
		Capacity:      16384,
		SignIn:        Rate{PerMinute: 30, Burst: 10},
		DeviceStart:   Rate{PerMinute: 10, Burst: 5},
		DevicePoll:    Rate{PerMinute: 60, Burst: 20},
		Refresh:       Rate{PerMinute: 30, Burst: 10},
		FailedAuth:    Rate{PerMinute: 30, Burst: 10},
		GitFailedAuth: Rate{PerMinute: 30, Burst: 10},
	}
}

func (c Config) validateLimits(bad func(key, format string, args ...any)) {
	if c.Limits.Capacity < 1 || c.Limits.Capacity > 1<<24 {
		bad("limits.capacity", "%d: want 1 to 16777216 addresses", c.Limits.Capacity)
	}
	for key, r := range map[string]Rate{
		"limits.signin":          c.Limits.SignIn,
		"limits.device_start":    c.Limits.DeviceStart,
		"limits.device_poll":     c.Limits.DevicePoll,
		"limits.refresh":         c.Limits.Refresh,
		"limits.failed_auth":     c.Limits.FailedAuth,
		"limits.git_failed_auth": c.Limits.GitFailedAuth,
	} {
		switch {
		case r.PerMinute < 0:
			bad(key+".per_minute", "%d: want 0 (no limit) or more", r.PerMinute)
		case r.PerMinute > 0 && r.Burst < 1:
			bad(key+".burst", "%d: want at least 1 when per_minute is set", r.Burst)
		}
	}
}

// DefaultMetricsListen is server.metrics_listen's default.
const DefaultMetricsListen = "127.0.0.1:9180"

// MetricsPublic as server.metrics_listen serves /metrics on the public
// listener.
const MetricsPublic = "public"

package config

import (
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Session configures browser sessions.
type Session struct {
	// IdleTimeout ends a session not used for this long. Default 168h (7 days).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AbsoluteLifetime ends a session this long after sign-in, however
	// active. Default 720h (30 days).
	AbsoluteLifetime time.Duration `yaml:"absolute_lifetime"`
	// TokenTTL is the lifetime of the signed token in the session cookie;
	// the cookie is re-issued once the token is past half of it. Default 15m.
	TokenTTL time.Duration `yaml:"token_ttl"`
}

// Auth configures sign-in and which upstream routes need a session.
type Auth struct {
	// DefaultRoute is the class of an upstream path no rule names: public,
	// session (redirect to sign-in) or api (401 JSON). Default session.
	DefaultRoute string `yaml:"default_route"`
	// PublicPaths, SessionPaths and APIPaths are path prefixes of the
	// upstream ("/static/", "/api"); the longest matching prefix decides.
	// Default none.
	PublicPaths  []string `yaml:"public_paths"`
	SessionPaths []string `yaml:"session_paths"`
	APIPaths     []string `yaml:"api_paths"`
	// LinkByVerifiedEmail signs a new provider identity in to the existing
	// user with the same verified e-mail address. Off, a second provider is
	// linked only by a signed-in user who asks. Default false.
	LinkByVerifiedEmail bool `yaml:"link_by_verified_email"`
	// AfterSignIn is where a sign-in without a return path lands. Default /.
	AfterSignIn string `yaml:"after_sign_in"`
}

// Identity configures what the upstream receives about the signed-in user.
type Identity struct {
	// UserIDHeader, EmailHeader and LoginHeader name the headers carrying
	// the user's Arbor id, e-mail and login. Defaults X-Arbor-User-Id,
	// X-Arbor-User-Email, X-Arbor-User-Login.
	UserIDHeader string `yaml:"user_id_header"`
	EmailHeader  string `yaml:"email_header"`
	LoginHeader  string `yaml:"login_header"`
	// AssertionHeader carries a signed JWT (EdDSA) asserting the identity;
	// its keys are served at /.well-known/jwks.json. Default X-Arbor-Assertion.
	AssertionHeader string `yaml:"assertion_header"`
	// AssertionShape is arbor or supabase (sub, role and aud
	// "authenticated", for PostgREST's auth.uid()). Default arbor.
	AssertionShape string `yaml:"assertion_shape"`
	// AssertionAudience is the assertion's aud. Default: the upstream URL
	// (arbor shape) or "authenticated" (supabase shape).
	AssertionAudience string `yaml:"assertion_audience"`
	// AssertionTTL is the assertion's lifetime. Default 5m.
	AssertionTTL time.Duration `yaml:"assertion_ttl"`
	// GroupsHeader carries the user's groups ("github:vintner,
	// github:vintner/platform"), comma separated, sorted; the same list
	// is the assertion's groups claim. Default X-Arbor-User-Groups.
	GroupsHeader string `yaml:"groups_header"`
	// GroupsHeaderAll sends every group the providers report, not only
	// those the policy mentions. Default false: the upstream learns no
	// more than the policy needs (and the header stays small).
	GroupsHeaderAll bool `yaml:"groups_header_all"`
	// GroupsHeaderMax caps the groups header in bytes: groups are added in
	// sorted order while they fit, the rest are left out of the header and
	// of the claim. Default 2048.
	GroupsHeaderMax int `yaml:"groups_header_max"`
}

// Connections configures Git provider connections.
type Connections struct {
	// RefreshMargin: a provider token expiring within it is refreshed
	// before it is handed out. Default 5m.
	RefreshMargin time.Duration `yaml:"refresh_margin"`
	// WebhookURL receives connection events (connected, refreshed,
	// needs_reconnect, disconnected) as HMAC-signed JSON POSTs; the key is
	// ARBOR_WEBHOOK_SECRET. Default "" (none).
	WebhookURL string `yaml:"webhook_url"`
}

// CLI configures CLI login (Grape and RFC 8628 clients).
type CLI struct {
	// AccessTTL is the lifetime of a CLI access token. Default 1h.
	AccessTTL time.Duration `yaml:"access_ttl"`
	// RefreshTTL is the lifetime of a CLI login (its refresh tokens).
	// Default 2160h (90 days).
	RefreshTTL time.Duration `yaml:"refresh_ttl"`
	// RefreshGrace is how long the refresh token replaced by a rotation is
	// still accepted (a response lost on the network); after it, using it
	// again revokes the login. 0 disables the grace. Default 10s.
	RefreshGrace time.Duration `yaml:"refresh_grace"`
	// MaxPendingDevices caps the device login requests (Grape and RFC 8628)
	// that are pending, not yet approved, per Arbor process; a start past
	// it answers 503 busy with Retry-After. Approved requests do not count.
	// Replicas sharing etcd each allow this many. Default 10000.
	MaxPendingDevices int `yaml:"max_pending_devices"`
	// MaxPendingPerAddress caps the pending device login requests of one
	// client address (as resolved through server.trusted_proxies), per
	// Arbor process. Default 10.
	MaxPendingPerAddress int `yaml:"max_pending_per_address"`
	// Issuer is the iss of CLI tokens, minted and required. Default ""
	// (public_url).
	Issuer string `yaml:"issuer"`
	// Audience is the aud of CLI tokens, minted and required. Default
	// "arbor-cli".
	Audience string `yaml:"audience"`
	// DeviceClients are the RFC 8628 clients allowed to start a device
	// login (see DeviceClient); in the environment as a YAML flow or JSON
	// list: [{id: cli, name: CLI, scopes: [proxy]}]. Default none:
	// /oauth/device/code refuses every client_id.
	DeviceClients []DeviceClient `yaml:"device_clients"`
}

// Workers configures Tendril worker authentication.
type Workers struct {
	// Paths are upstream path prefixes only registered workers may call,
	// with X-Worker-ID and X-Worker-Token ("/api/tendril/"). Default none.
	Paths []string `yaml:"paths"`
}

func defaultSession() Session {
	return Session{IdleTimeout: 7 * 24 * time.Hour, AbsoluteLifetime: 30 * 24 * time.Hour, TokenTTL: 15 * time.Minute}
}

func defaultAuth() Auth { return Auth{DefaultRoute: "session", AfterSignIn: "/"} }

func defaultIdentity() Identity {
	return Identity{
		UserIDHeader:    "X-Arbor-User-Id",
		EmailHeader:     "X-Arbor-User-Email",
		LoginHeader:     "X-Arbor-User-Login",
		AssertionHeader: "X-Arbor-Assertion",
		AssertionShape:  "arbor",
		AssertionTTL:    5 * time.Minute,
		GroupsHeader:    DefaultGroupsHeader,
		GroupsHeaderMax: DefaultGroupsHeaderMax,
	}
}

// fillAuthDefaults derives defaults that depend on other fields.
func (c *Config) fillAuthDefaults() {
	if c.Secrets.AssertionKeyFile == "" && c.DataDir != "" {
		c.Secrets.AssertionKeyFile = filepath.Join(c.DataDir, "assertion-key.pem")
	}
	if c.Identity.AssertionAudience == "" {
		if c.Identity.AssertionShape == "supabase" {
			c.Identity.AssertionAudience = "authenticated"
		} else {
			c.Identity.AssertionAudience = c.Upstream.URL
		}
	}
}

// SecureCookies reports whether Arbor is reached over https, so that its
// cookies carry Secure and the __Host- prefix. Plain http is allowed only
// on a loopback public_url (Validate refuses anything else outside dev
// mode): browsers never send Secure cookies over http.
func (c Config) SecureCookies() bool {
	return strings.HasPrefix(c.PublicURL, "https://")
}

func (c Config) validateAuth(bad func(key, format string, args ...any)) {
	for key, d := range map[string]time.Duration{
		"session.idle_timeout":      c.Session.IdleTimeout,
		"session.absolute_lifetime": c.Session.AbsoluteLifetime,
		"session.token_ttl":         c.Session.TokenTTL,
		"identity.assertion_ttl":    c.Identity.AssertionTTL,
	} {
		if d <= 0 {
			bad(key, "%v: want a positive duration such as 15m", d)
		}
	}
	if c.CLI.AccessTTL <= 0 || c.CLI.RefreshTTL <= c.CLI.AccessTTL {
		bad("cli.access_ttl", "%v / cli.refresh_ttl %v: want positive durations, the refresh lifetime longer", c.CLI.AccessTTL, c.CLI.RefreshTTL)
	}
	if c.CLI.RefreshGrace < 0 || c.CLI.RefreshGrace > time.Minute {
		bad("cli.refresh_grace", "%v: want 0 to 1m", c.CLI.RefreshGrace)
	}
	if c.CLI.MaxPendingDevices < 1 || c.CLI.MaxPendingDevices > 1_000_000 {
		bad("cli.max_pending_devices", "%d: want 1 to 1000000", c.CLI.MaxPendingDevices)
	}
	if c.CLI.MaxPendingPerAddress < 1 || c.CLI.MaxPendingPerAddress > c.CLI.MaxPendingDevices {
		bad("cli.max_pending_per_address", "%d: want 1 to cli.max_pending_devices", c.CLI.MaxPendingPerAddress)
	}
	c.CLI.validateDeviceClients(c.UI.CLIName, bad)
	if c.Connections.RefreshMargin <= 0 {
		bad("connections.refresh_margin", "%v: want a positive duration such as 5m", c.Connections.RefreshMargin)
	}
	if u := c.Connections.WebhookURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad("connections.webhook_url", "not an http(s) URL; write e.g. https://trellis.internal/hooks/arbor")
		}
	}
	if c.Session.TokenTTL > 0 && c.Session.TokenTTL < 2*time.Second {
		bad("session.token_ttl", "%v: want at least 2s (the cookie is re-issued at half of it)", c.Session.TokenTTL)
	}
	if c.Session.IdleTimeout > 0 && c.Session.TokenTTL > c.Session.IdleTimeout {
		bad("session.token_ttl", "%v is longer than session.idle_timeout %v", c.Session.TokenTTL, c.Session.IdleTimeout)
	}
	if c.Session.IdleTimeout > c.Session.AbsoluteLifetime {
		bad("session.idle_timeout", "%v is longer than session.absolute_lifetime %v", c.Session.IdleTimeout, c.Session.AbsoluteLifetime)
	}
	switch strings.ToLower(c.Auth.DefaultRoute) {
	case "public", "session", "api":
	default:
		bad("auth.default_route", "%q: want public, session or api", c.Auth.DefaultRoute)
	}
	if !strings.HasPrefix(c.Auth.AfterSignIn, "/") || strings.HasPrefix(c.Auth.AfterSignIn, "//") {
		bad("auth.after_sign_in", "%q: want a path on this site such as /", c.Auth.AfterSignIn)
	}
	for key, h := range map[string]string{
		"identity.user_id_header":   c.Identity.UserIDHeader,
		"identity.email_header":     c.Identity.EmailHeader,
		"identity.login_header":     c.Identity.LoginHeader,
		"identity.assertion_header": c.Identity.AssertionHeader,
	} {
		if h == "" || strings.ContainsAny(h, " :\t\r\n") {
			bad(key, "%q is not a header name", h)
		}
	}
	switch c.Identity.AssertionShape {
	case "arbor", "supabase":
	default:
		bad("identity.assertion_shape", "%q: want arbor or supabase", c.Identity.AssertionShape)
	}
	if u, err := url.Parse(c.PublicURL); err == nil && u.Scheme == "http" && !c.Dev && !loopbackHost(u.Hostname()) {
		bad("public_url", "%q is plain http on a host that is not loopback: browsers would send the session cookie unencrypted. Serve https (tls.cert_file and tls.key_file, docs/tls.md) or put TLS in front of Arbor, and write https://…", c.PublicURL)
	}
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Package config loads Arbor's configuration: one YAML file, every key
// overridable by an ARBOR_… environment variable, and secrets that come only
// from the environment or from files.
//
// # Why so strict
//
// An auth gateway that silently ignores a misspelt key (say
// `trusted_proxie:`) runs with a default the operator did not choose, and in
// this software the defaults are security decisions. So decoding is strict:
// an unknown key is an error naming the key, its line and the keys that are
// allowed there. Secrets never live in the YAML file because config files get
// committed, pasted into tickets and printed by `kubectl describe`; a secret
// written there is refused with a message saying where to put it instead.
//
// # Order
//
// Load applies, in order: built-in defaults (Default), the YAML file,
// ARBOR_… environment variables, then Validate. The environment variable for
// a key is ARBOR_ followed by its path in upper case with dots as
// underscores: upstream.dial_timeout is ARBOR_UPSTREAM_DIAL_TIMEOUT. Lists
// are comma separated in the environment. The providers map is keyed by
// plugin name: providers.github.client_id is ARBOR_PROVIDERS_GITHUB_CLIENT_ID
// (a name's '-' is '_' there), and a provider named only in the environment
// is created. A provider's client secret comes only from
// ARBOR_PROVIDER_<NAME>_CLIENT_SECRET or providers.<name>.client_secret_file.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vintner/arbor/gateway/edge/proxy"
)

// Config is Arbor's whole configuration. Every field documents its default;
// examples/arbor.yaml shows them all.
type Config struct {
	// Listen is the address the gateway serves on. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// PublicURL is the external URL browsers use to reach Arbor; OAuth
	// redirect URIs are built from it. Default http://<listen>.
	PublicURL string `yaml:"public_url"`
	// DataDir holds the store file, the admin socket, the plugin compilation
	// cache and (dev mode only) generated secrets. Default ./arbor-data.
	DataDir string `yaml:"data_dir"`
	// Dev turns on development mode: missing secrets are generated and kept
	// in DataDir/secrets. Never use it in production. Default false.
	Dev bool `yaml:"dev"`

	Log         Log         `yaml:"log"`
	Server      Server      `yaml:"server"`
	Upstream    Upstream    `yaml:"upstream"`
	Store       Store       `yaml:"store"`
	Secrets     Secrets     `yaml:"secrets"`
	Session     Session     `yaml:"session"`
	Auth        Auth        `yaml:"auth"`
	Identity    Identity    `yaml:"identity"`
	Connections Connections `yaml:"connections"`
	CLI         CLI         `yaml:"cli"`
	Workers     Workers     `yaml:"workers"`
	Plugins     Plugins     `yaml:"plugins"`
	Limits      Limits      `yaml:"limits"`
	UI          UI          `yaml:"ui"`
	TLS         TLS         `yaml:"tls"`
	// Policy says who may sign in and reach which routes (policy.go,
	// docs/policy.md). Default: anyone with an account at a provider.
	Policy Policy `yaml:"policy"`
	// Providers configures provider plugins by name (github, gitlab, …):
	// client id, endpoint overrides, scopes, extra hosts. Environment:
	// ARBOR_PROVIDERS_<NAME>_<FIELD>, e.g. ARBOR_PROVIDERS_GITHUB_CLIENT_ID;
	// the client secret only from ARBOR_PROVIDER_<NAME>_CLIENT_SECRET or
	// client_secret_file. Default none.
	Providers map[string]Provider `yaml:"providers"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is json or text. Default json.
	Format string `yaml:"format"`
}

// Server configures the public listener.
type Server struct {
	// MaxHeaderBytes caps the size of a request's headers; larger requests
	// get 431. Default 16384.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// BodyLimit caps a request body in bytes; larger get 413. Default 33554432 (32 MiB).
	BodyLimit int `yaml:"body_limit"`
	// ReadTimeout bounds reading a request's headers. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ParkIdleAfter parks a keep-alive connection idle this long: it gives
	// back its goroutine and buffers (about 17 KB) and is served again at
	// its next byte; it still counts against max_conns_per_address and
	// still closes at idle_timeout. 0 turns parking off. Default 1s.
	ParkIdleAfter time.Duration `yaml:"park_idle_after"`
	// ShutdownTimeout is how long in-flight requests may run after SIGTERM. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TrustedProxies lists CIDRs (or single IPs) of load balancers whose
	// X-Forwarded-* headers Arbor extends instead of replacing. Default none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// IdentityHeaders lists extra header names that only Arbor may set; they
	// are stripped from client requests like every X-Arbor-* header.
	// Default none.
	IdentityHeaders []string `yaml:"identity_headers"`
	// MetricsListen is where /metrics is served: host:port for a listener
	// of its own, "public" for the public listener (the behaviour before
	// this key existed), or "" for nowhere. Default 127.0.0.1:9180:
	// loopback, so that the open internet never reads Arbor's internals
	// (docs/edge.md, "Metrics listener").
	MetricsListen string `yaml:"metrics_listen"`

	// Slow clients and connection caps (slowclients.go; docs/edge.md,
	// "Slow clients and connections"). 0 turns each one off.

	// UploadMinRate is the rate in bytes per second a client must keep up
	// when sending a proxied request body; it may fall behind by at most
	// MinRateGrace, then the connection is closed. Default 1024.
	UploadMinRate int `yaml:"upload_min_rate"`
	// DownloadMinRate is the same for reading a response (only time spent
	// waiting for the client counts, not for the upstream). Default 1024.
	DownloadMinRate int `yaml:"download_min_rate"`
	// MinRateGrace is how far behind the minimum rates a client may fall,
	// and so the longest a response may stall on a client that does not
	// read. Must be positive. Default 30s.
	MinRateGrace time.Duration `yaml:"min_rate_grace"`
	// MaxConnsPerAddress caps open connections from one TCP peer (an IPv6
	// one by its /64); trusted_proxies are exempt. Default 256.
	MaxConnsPerAddress int `yaml:"max_conns_per_address"`
	// UpstreamMaxPerClient caps one client's proxied requests and
	// WebSocket tunnels in progress (the client address as resolved
	// through trusted_proxies); beyond it, 429
	// too_many_concurrent_requests. Default 128.
	UpstreamMaxPerClient int `yaml:"upstream_max_per_client"`
	// GitMaxPerClient caps one client's Git proxy requests (/git/…) in
	// progress, keyed as upstream_max_per_client; a clone holds one for as
	// long as its pack takes. Beyond it, 429 too_many_concurrent_requests
	// (text/plain for git). 0 turns it off. Default 32.
	GitMaxPerClient int `yaml:"git_max_per_client"`
	// WebSocketIdleTimeout closes a WebSocket tunnel with no traffic
	// either way for this long. Default 5m.
	WebSocketIdleTimeout time.Duration `yaml:"websocket_idle_timeout"`
}

// Upstream configures the proxied application (the upstream: section). It
// is declared once, as proxy.Upstream, with its YAML keys and the
// documentation of each: a new upstream setting is written there. The
// defaults here are those of Default: url http://127.0.0.1:3000,
// dial_timeout 5s, response_header_timeout 60s, idle_timeout 90s,
// rewrite_headers DefaultRewriteHeaders (X-Original-URL, X-Rewrite-URL,
// X-Original-URI, X-Original-Path, X-Envoy-Original-Path; an empty list
// strips none), max_conns 2048.
type Upstream = proxy.Upstream

// Store configures persistence.
type Store struct {
	// Backend is bbolt (an embedded file, for one Arbor) or etcd (a
	// cluster shared by several Arbor replicas). Default bbolt.
	Backend string `yaml:"backend"`
	// Path of the bbolt file. Default <data_dir>/arbor.db.
	Path string `yaml:"path"`
	// Endpoints are the etcd cluster's client URLs
	// ("https://10.0.0.1:2379"; a bare host:port means http). Required
	// with backend etcd.
	Endpoints []string `yaml:"endpoints"`
	// Root prefixes every key Arbor writes in etcd, so that deployments
	// can share a cluster. Default /arbor/.
	Root string `yaml:"root"`
	// DialTimeout bounds connecting to etcd at start. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// RequestTimeout bounds every store call to etcd, retries included;
	// past it the request gets 503 store_unavailable. Default 5s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// Username authenticates to etcd (an etcd user, with read/write on
	// root). The password comes from ARBOR_ETCD_PASSWORD or
	// ARBOR_ETCD_PASSWORD_FILE, never from this file. Default none.
	Username string `yaml:"username"`
	// CAFile verifies the etcd servers' certificates. Default: the system
	// roots when an endpoint is https.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate for etcd's
	// --client-cert-auth. Both or neither. Default none.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name to verify in the etcd servers' certificates.
	// Default: each endpoint's host.
	ServerName string `yaml:"server_name"`
	// GCInterval is how often expired records are deleted. Default 1m.
	GCInterval time.Duration `yaml:"gc_interval"`
	// BatchDelay is how long bbolt waits to group concurrent writes into one
	// fsync. Default 0 (the store's tuned default).
	BatchDelay time.Duration `yaml:"batch_delay"`
}

// Secrets names files that hold secrets. The secrets themselves may only
// come from these files or the environment (see LoadSecrets), never from
// this YAML file.
type Secrets struct {
	// SessionKeyFile holds the session-cookie signing key (at least 32
	// bytes). Environment: ARBOR_SESSION_KEY or ARBOR_SESSION_KEY_FILE.
	// Default none.
	SessionKeyFile string `yaml:"session_key_file"`
	// CLIJWTSecretFile holds CLI_JWT_SECRET (at least 32 bytes).
	// Environment: CLI_JWT_SECRET or CLI_JWT_SECRET_FILE. Default none.
	CLIJWTSecretFile string `yaml:"cli_jwt_secret_file"`
	// EncryptionKeysFile holds the encryption keyring, `id:base64` pairs
	// separated by commas or newlines, newest last. Environment:
	// ARBOR_ENCRYPTION_KEYS or ARBOR_ENCRYPTION_KEYS_FILE. Default none.
	EncryptionKeysFile string `yaml:"encryption_keys_file"`
	// AssertionKeyFile holds the Ed25519 private key (PKCS#8 PEM) that
	// signs identity assertions to the upstream. Arbor generates it (mode
	// 0600) if the file does not exist; replicas must share one. Default
	// <data_dir>/assertion-key.pem.
	AssertionKeyFile string `yaml:"assertion_key_file"`
}

// Default returns the built-in configuration.
func Default() Config {
	return Config{
		Listen:  "127.0.0.1:8080",
		DataDir: "./arbor-data",
		Log:     Log{Level: "info", Format: "json"},
		Server: Server{
			MaxHeaderBytes:  16 << 10,
			BodyLimit:       32 << 20,
			ReadTimeout:     30 * time.Second,
			IdleTimeout:     120 * time.Second,
			ParkIdleAfter:   time.Second,
			ShutdownTimeout: 30 * time.Second,
			MetricsListen:   DefaultMetricsListen,
			// Slow clients and connection caps (slowclients.go).
			UploadMinRate:        1024,
			DownloadMinRate:      1024,
			MinRateGrace:         30 * time.Second,
			MaxConnsPerAddress:   256,
			UpstreamMaxPerClient: 128,
			GitMaxPerClient:      32,
			WebSocketIdleTimeout: 5 * time.Minute,
		},
		Upstream: Upstream{
			URL:                   "http://127.0.0.1:3000",
			DialTimeout:           5 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleTimeout:           90 * time.Second,
			RewriteHeaders:        DefaultRewriteHeaders(),
			MaxConns:              2048,
		},
		Store:       Store{Backend: "bbolt", GCInterval: time.Minute, Endpoints: []string{}, Root: "/arbor/", DialTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second},
		Session:     defaultSession(),
		Auth:        defaultAuth(),
		Identity:    defaultIdentity(),
		Connections: Connections{RefreshMargin: 5 * time.Minute},
		CLI: CLI{AccessTTL: time.Hour, RefreshTTL: 90 * 24 * time.Hour, RefreshGrace: 10 * time.Second,
			MaxPendingDevices: 10_000, MaxPendingPerAddress: 10, Audience: "arbor-cli"},
		Limits: defaultLimits(),
		UI:     defaultUI(),
		TLS:    defaultTLS(),
		Policy: defaultPolicy(),
	}
}

// Source says where configuration comes from; tests fill it directly.
type Source struct {
	// File is the YAML file path; empty means defaults and environment only.
	File string
	// Environ is the environment as KEY=VALUE pairs (os.Environ()).
	Environ []string
}

// Load reads the configuration from src and validates it.
func Load(src Source) (Config, error) {
	cfg := Default()
	if src.File != "" {
		raw, err := os.ReadFile(src.File)
		if err != nil {
			return Config{}, fmt.Errorf("config: reading %s: %w", src.File, err)
		}
		if err := decodeYAML(src.File, raw, &cfg); err != nil {
			return Config{}, err
		}
	}
	env := envMap(src.Environ)
	if err := applyEnv(&cfg, env); err != nil {
		return Config{}, err
	}
	if err := applyProviderEnv(&cfg, env); err != nil {
		return Config{}, err
	}
	cfg.fillDerived()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// decodeYAML decodes strictly: unknown keys and secrets written inline are
// reported with their line.
func decodeYAML(file string, raw []byte, cfg *Config) error {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return fmt.Errorf("config %s: not valid YAML: %v", file, err)
	}
	if root.Kind == 0 { // empty file
		return nil
	}
	if err := checkKeys(file, &root, reflectTypeOf(cfg), ""); err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return fmt.Errorf("config %s: %v", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

// fillDerived sets defaults that depend on other fields.
func (c *Config) fillDerived() {
	if c.PublicURL == "" && c.Listen != "" {
		scheme := "http://"
		if c.TLS.Enabled() {
			scheme = "https://"
		}
		c.PublicURL = scheme + c.Listen
	}
	if c.Store.Path == "" && c.DataDir != "" {
		c.Store.Path = filepath.Join(c.DataDir, "arbor.db")
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.Upstream.RewriteHeaders == nil {
		// Emptied in the file or the environment: strip none (nil
		// would mean the proxy's default list).
		c.Upstream.RewriteHeaders = []string{}
	}
	c.fillPluginDefaults()
	c.fillAuthDefaults()
	c.fillPolicyDefaults()
}

// Validate checks every field and reports all problems at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s (%s): %s", key, EnvName(key), fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port, e.g. 127.0.0.1:8080", c.Listen)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("public_url", "%q is not an http(s) URL, e.g. https://auth.example.com", c.PublicURL)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q: want json or text", c.Log.Format)
	}
	if c.Server.MaxHeaderBytes < 1024 || c.Server.MaxHeaderBytes > 1<<20 {
		bad("server.max_header_bytes", "%d: want 1024 to 1048576", c.Server.MaxHeaderBytes)
	}
	if c.Server.BodyLimit < 1 {
		bad("server.body_limit", "%d: want a positive number of bytes", c.Server.BodyLimit)
	}
	for key, d := range map[string]time.Duration{
		"server.read_timeout":              c.Server.ReadTimeout,
		"server.idle_timeout":              c.Server.IdleTimeout,
		"server.shutdown_timeout":          c.Server.ShutdownTimeout,
		"upstream.dial_timeout":            c.Upstream.DialTimeout,
		"upstream.response_header_timeout": c.Upstream.ResponseHeaderTimeout,
		"upstream.idle_timeout":            c.Upstream.IdleTimeout,
		"store.gc_interval":                c.Store.GCInterval,
	} {
		if d <= 0 {
			bad(key, "%v: want a positive duration such as 30s", d)
		}
	}
	if c.Store.BatchDelay < 0 || c.Store.BatchDelay > time.Second {
		bad("store.batch_delay", "%v: want 0 to 1s", c.Store.BatchDelay)
	}
	for _, p := range c.Server.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			bad("server.trusted_proxies", "%q is not an IP or CIDR", p)
		}
	}
	if m := c.Server.MetricsListen; m != "" && m != MetricsPublic {
		if _, _, err := net.SplitHostPort(m); err != nil {
			bad("server.metrics_listen", "%q: want host:port (e.g. 127.0.0.1:9180), %q, or empty for no /metrics", m, MetricsPublic)
		}
	}
	for _, h := range c.Server.IdentityHeaders {
		if h == "" || strings.ContainsAny(h, " :\t\r\n") {
			bad("server.identity_headers", "%q is not a header name", h)
		}
	}
	if u, err := url.Parse(c.Upstream.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("upstream.url", "%q is not an http(s) URL, e.g. http://127.0.0.1:3000", c.Upstream.URL)
	} else if u.User != nil {
		bad("upstream.url", "must not contain credentials")
	}
	switch c.Store.Backend {
	case "bbolt":
		if c.Store.Path == "" {
			bad("store.path", "must not be empty")
		}
	case "etcd":
		if len(c.Store.Endpoints) == 0 {
			bad("store.endpoints", "etcd needs at least one endpoint, e.g. [https://10.0.0.1:2379]")
		}
		if c.Store.DialTimeout < 0 || c.Store.RequestTimeout < 0 {
			bad("store.request_timeout", "timeouts must not be negative")
		}
		if (c.Store.CertFile == "") != (c.Store.KeyFile == "") {
			bad("store.cert_file", "give both store.cert_file and store.key_file, or neither")
		}
	default:
		bad("store.backend", "%q: want bbolt or etcd", c.Store.Backend)
	}
	c.validatePlugins(bad)
	c.validateAuth(bad)
	c.validateEdge(bad)
	c.validateLimits(bad)
	c.validateTLS(bad)
	c.validateSlowClients(bad)
	c.validateUI(bad)
	c.validatePolicy(bad)
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// ParsePrefix parses a CIDR or a single IP address (as a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

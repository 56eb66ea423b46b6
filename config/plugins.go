package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"
)

// Plugins configures the plugin host and where operator plugins come from.
// The built-in plugins (GitHub, GitLab, Bitbucket, Google) are always
// loaded; a plugin in Dir with the same name replaces the built-in one.
type Plugins struct {
	// Dir is the operator's plugin directory: one subdirectory per plugin
	// holding plugin.json and the module. It is re-read on SIGHUP and by
	// `arbor plugin reload`. A missing directory is not an error.
	// Default <data_dir>/plugins.
	Dir string `yaml:"dir"`
	// CacheDir holds the compiled-code cache so that a restart does not
	// compile every plugin again. Default <data_dir>/plugin-cache.
	CacheDir string `yaml:"cache_dir"`
	// MaxMemoryPages caps a plugin instance's memory in 64 KiB pages and is
	// the limit of a plugin that does not ask for one. Default 0 (the
	// host's default, 512 = 32 MiB).
	MaxMemoryPages int `yaml:"max_memory_pages"`
	// DefaultTimeout is one call's deadline when the plugin's manifest does
	// not ask for one. Default 0 (the host's default, 10s).
	DefaultTimeout time.Duration `yaml:"default_timeout"`
	// PoolSize is the most instances one plugin runs at once. Default 0
	// (the host's default, 4).
	PoolSize int `yaml:"pool_size"`
	// KeepWarm is how many instances each plugin keeps when idle. Default
	// 0 (1: a call after a quiet period finds an instance, about 1 ms;
	// each costs about 3.5 MB resident); negative (-1) keeps none, and a
	// call after a quiet period instantiates first (about 10 ms).
	KeepWarm int `yaml:"keep_warm"`
	// IdleTimeout: instances beyond keep_warm that no call needed for this
	// long are closed. Default 0 (the host's default, 1m).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// CodeIdleTimeout: a plugin without an instance for this long also
	// releases its compiled code; its next call compiles it again from
	// cache_dir (about 60 ms). Default 0: never (the built-in plugins share
	// one compiled module, about 13 MB, so an idle `arbor serve` keeps it
	// and stays near 70 MB; docs/benchmarks.md). Useful with keep_warm -1
	// and many plugins of your own, each with its own code.
	CodeIdleTimeout time.Duration `yaml:"code_idle_timeout"`
}

// Provider is the operator's configuration of one provider plugin, keyed by
// the plugin's name under `providers:`. The client secret is not here: it
// comes from ARBOR_PROVIDER_<NAME>_CLIENT_SECRET or client_secret_file
// (see ProviderSecret).
type Provider struct {
	// ClientID is the OAuth client registered with the provider.
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret (mode 0600).
	ClientSecretFile string `yaml:"client_secret_file"`
	// AuthorizeURL, TokenURL, APIBase and RevokeURL override the plugin's
	// default endpoints (GitHub Enterprise, self-managed GitLab).
	AuthorizeURL string `yaml:"authorize_url"`
	TokenURL     string `yaml:"token_url"`
	APIBase      string `yaml:"api_base"`
	RevokeURL    string `yaml:"revoke_url"`
	// LoginScopes and GitScopes replace the plugin's default scopes.
	LoginScopes []string `yaml:"login_scopes"`
	GitScopes   []string `yaml:"git_scopes"`
	// GroupsScopes replace the plugin's scopes.groups: what reading the
	// user's groups needs on top of login_scopes (GitHub: read:org). They
	// are requested at sign-in only when the policy uses this provider's
	// groups. Default: the plugin's.
	GroupsScopes []string `yaml:"groups_scopes"`
	// AllowedHosts adds outbound hosts to the plugin's allow-list.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// AllowPrivateHosts lists hosts that may resolve to private or loopback
	// addresses and be reached over plain http (an internal GitLab).
	AllowPrivateHosts []string `yaml:"allow_private_hosts"`
	// GitURL is the provider's Git host for the Git proxy
	// (docs/git-proxy.md), e.g. https://github.example.com. Default: what
	// the provider's plugin says (the git_host operation): the built-in
	// plugins answer their public hosts (github.com, gitlab.com,
	// bitbucket.org), or api_base without its /api/v3 or /api/v4 suffix
	// (GitHub Enterprise, self-managed GitLab).
	GitURL string `yaml:"git_url"`
	// GitUser is the HTTP Basic user name the Git host takes with an OAuth
	// token as password. Default: what the provider's plugin says (GitHub
	// x-access-token, GitLab oauth2, Bitbucket x-token-auth); needed for a
	// plugin without the git_host operation.
	GitUser string `yaml:"git_user"`
}

// providerNamePlaceholder stands for a provider's name in Keys and docs.
const providerNamePlaceholder = "<name>"

// validProviderName matches plugin names: ^[a-z][a-z0-9_-]{0,31}$.
func validProviderName(s string) bool {
	if len(s) < 1 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// envPart is a name as it appears inside an environment variable name.
func envPart(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// ProviderSecretEnv is the environment variable holding the named
// provider's client secret: ARBOR_PROVIDER_<NAME>_CLIENT_SECRET.
func ProviderSecretEnv(name string) string {
	return "ARBOR_PROVIDER_" + envPart(name) + "_CLIENT_SECRET"
}

// ProviderSecret returns the named provider's client secret from
// ARBOR_PROVIDER_<NAME>_CLIENT_SECRET or, if that is unset, from
// providers.<name>.client_secret_file (which must have mode 0600). No
// secret configured is "" and no error.
func ProviderSecret(cfg Config, name string, environ []string) (string, error) {
	env := envMap(environ)
	if v := env[ProviderSecretEnv(name)]; v != "" {
		return strings.TrimSpace(v), nil
	}
	file := cfg.Providers[name].ClientSecretFile
	if file == "" {
		return "", nil
	}
	b, err := readSecretFile(file)
	if err != nil {
		return "", fmt.Errorf("providers.%s.client_secret_file: %v", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// providerFieldEnv maps the environment suffix of each Provider field
// ("CLIENT_ID") to its index.
func providerFieldEnv() map[string]int {
	t := reflect.TypeOf(Provider{})
	m := map[string]int{}
	for name, i := range fieldsOf(t) {
		m[strings.ToUpper(name)] = i
	}
	return m
}

// parseProviderEnv splits ARBOR_PROVIDERS_<NAME>_<FIELD> into the env form
// of the name and the field index.
func parseProviderEnv(key string) (name string, field int, ok bool) {
	rest, ok := strings.CutPrefix(key, "ARBOR_PROVIDERS_")
	if !ok {
		return "", 0, false
	}
	best := ""
	for suffix := range providerFieldEnv() {
		if strings.HasSuffix(rest, "_"+suffix) && len(suffix) > len(best) {
			best = suffix
		}
	}
	if best == "" {
		return "", 0, false
	}
	name = strings.TrimSuffix(rest, "_"+best)
	if name == "" {
		return "", 0, false
	}
	return name, providerFieldEnv()[best], true
}

// applyProviderEnv applies ARBOR_PROVIDERS_<NAME>_<FIELD> variables. NAME is
// the provider's name in upper case with '-' as '_'; a name not in the file
// is created (in lower case).
func applyProviderEnv(cfg *Config, env map[string]string) error {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if n, ok := strings.CutPrefix(k, "ARBOR_PROVIDERS_"); ok && strings.HasSuffix(n, "_CLIENT_SECRET") {
			return fmt.Errorf("config: environment %s: a provider's client secret goes in ARBOR_PROVIDER_%s (PROVIDER, singular) or providers.<name>.client_secret_file", k, n)
		}
		envName, idx, ok := parseProviderEnv(k)
		if !ok {
			continue
		}
		name := ""
		for n := range cfg.Providers {
			if envPart(n) == envName {
				name = n
			}
		}
		if name == "" {
			name = strings.ToLower(envName)
		}
		if cfg.Providers == nil {
			cfg.Providers = map[string]Provider{}
		}
		p := cfg.Providers[name]
		if err := setFromString(reflect.ValueOf(&p).Elem().Field(idx), env[k]); err != nil {
			return fmt.Errorf("config: environment %s: %v", k, err)
		}
		cfg.Providers[name] = p
	}
	return nil
}

func (c Config) validatePlugins(bad func(key, format string, args ...any)) {
	if c.Plugins.MaxMemoryPages < 0 || c.Plugins.MaxMemoryPages > 65536 {
		bad("plugins.max_memory_pages", "%d: want 0 (default) to 65536 pages of 64 KiB", c.Plugins.MaxMemoryPages)
	}
	if c.Plugins.DefaultTimeout < 0 {
		bad("plugins.default_timeout", "%v: want 0 (default) or a positive duration", c.Plugins.DefaultTimeout)
	}
	if c.Plugins.PoolSize < 0 || c.Plugins.PoolSize > 1024 {
		bad("plugins.pool_size", "%d: want 0 (default) to 1024", c.Plugins.PoolSize)
	}
	if c.Plugins.KeepWarm < -1 || c.Plugins.KeepWarm > 1024 {
		bad("plugins.keep_warm", "%d: want -1 (none), 0 (default, 1) to 1024 (at most pool_size are kept)", c.Plugins.KeepWarm)
	}
	if c.Plugins.IdleTimeout < 0 {
		bad("plugins.idle_timeout", "%v: want 0 (default) or a positive duration", c.Plugins.IdleTimeout)
	}
	names := make([]string, 0, len(c.Providers))
	for n := range c.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !validProviderName(n) {
			bad("providers."+n, "%q is not a plugin name: 1-32 lower case letters, digits, '-' or '_', starting with a letter", n)
		}
	}
}

// fillPluginDefaults derives the plugin directories from data_dir.
func (c *Config) fillPluginDefaults() {
	if c.DataDir != "" {
		if c.Plugins.Dir == "" {
			c.Plugins.Dir = filepath.Join(c.DataDir, "plugins")
		}
		if c.Plugins.CacheDir == "" {
			c.Plugins.CacheDir = filepath.Join(c.DataDir, "plugin-cache")
		}
	}
	if len(c.Providers) == 0 {
		c.Providers = nil
	}
}

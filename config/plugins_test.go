package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPluginsDefaultsDeriveFromDataDir(t *testing.T) {
	cfg, err := Load(Source{Environ: []string{"ARBOR_DATA_DIR=/srv/arbor"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Plugins.Dir != filepath.Join("/srv/arbor", "plugins") || cfg.Plugins.CacheDir != filepath.Join("/srv/arbor", "plugin-cache") {
		t.Fatalf("plugins dirs = %q, %q", cfg.Plugins.Dir, cfg.Plugins.CacheDir)
	}
	if cfg.Providers != nil {
		t.Fatalf("providers = %v, want none", cfg.Providers)
	}
}

func TestProvidersFromYAMLAndEnv(t *testing.T) {
	p := writeFile(t, `
plugins:
  max_memory_pages: 256
  default_timeout: 3s
  pool_size: 2
  keep_warm: 1
  code_idle_timeout: -1s
providers:
  github:
    client_id: from-yaml
    api_base: https://ghe.example.com/api/v3
    login_scopes: [read:user]
    groups_scopes: [read:org]
  self-gitlab:
    client_id: gl
`)
	cfg, err := Load(Source{File: p, Environ: []string{
		"ARBOR_PROVIDERS_GITHUB_CLIENT_ID=from-env",
		"ARBOR_PROVIDERS_SELF_GITLAB_ALLOW_PRIVATE_HOSTS=gitlab.internal, gitlab.internal:8443",
		"ARBOR_PROVIDERS_SELF_GITLAB_ALLOWED_HOSTS=gitlab.internal",
		"ARBOR_PROVIDERS_GOOGLE_TOKEN_URL=https://oauth2.example.com/token",
		"ARBOR_PLUGINS_POOL_SIZE=3",
		"ARBOR_PLUGINS_IDLE_TIMEOUT=30s",
		"ARBOR_PROVIDERS_SELF_GITLAB_GROUPS_SCOPES=read_api",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Plugins.MaxMemoryPages != 256 || cfg.Plugins.DefaultTimeout != 3*time.Second || cfg.Plugins.PoolSize != 3 ||
		cfg.Plugins.KeepWarm != 1 || cfg.Plugins.IdleTimeout != 30*time.Second || cfg.Plugins.CodeIdleTimeout != -time.Second {
		t.Fatalf("plugins = %+v", cfg.Plugins)
	}
	gh := cfg.Providers["github"]
	if gh.ClientID != "from-env" || gh.APIBase != "https://ghe.example.com/api/v3" || !reflect.DeepEqual(gh.LoginScopes, []string{"read:user"}) ||
		!reflect.DeepEqual(gh.GroupsScopes, []string{"read:org"}) {
		t.Fatalf("github = %+v", gh)
	}
	if got := cfg.Providers["self-gitlab"].GroupsScopes; !reflect.DeepEqual(got, []string{"read_api"}) {
		t.Fatalf("self-gitlab groups_scopes from the environment = %v", got)
	}
	gl := cfg.Providers["self-gitlab"]
	if gl.ClientID != "gl" || !reflect.DeepEqual(gl.AllowPrivateHosts, []string{"gitlab.internal", "gitlab.internal:8443"}) ||
		!reflect.DeepEqual(gl.AllowedHosts, []string{"gitlab.internal"}) {
		t.Fatalf("self-gitlab = %+v", gl)
	}
	if cfg.Providers["google"].TokenURL != "https://oauth2.example.com/token" {
		t.Fatalf("google created from the environment = %+v", cfg.Providers["google"])
	}
	if len(cfg.Providers) != 3 {
		t.Fatalf("providers = %v", cfg.Providers)
	}
}

func TestProvidersStrictKeys(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"providers:\n  github:\n    client_idd: x\n", `unknown key "providers.github.client_idd"`},
		{"providers:\n  github:\n    client_secret: s3cret\n", "ARBOR_PROVIDER_GITHUB_CLIENT_SECRET"},
		{"providers:\n  GitHub:\n    client_id: x\n", "not a plugin name"},
		{"providers:\n  github: [a]\n", "must be a mapping"},
		{"providers: [github]\n", "must be a mapping of names"},
		{"plugins:\n  max_memory_page: 1\n", `unknown key "plugins.max_memory_page"`},
		{"plugins:\n  max_memory_pages: 70000\n", "plugins.max_memory_pages"},
	} {
		_, err := Load(Source{File: writeFile(t, tc.yaml)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to mention %q", tc.yaml, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error repeats the secret: %v", err)
		}
	}
	if _, err := Load(Source{Environ: []string{"ARBOR_PROVIDERS_GITHUB_POOL_SIZE=x"}}); err != nil {
		t.Fatalf("a variable that names no provider field must be ignored by Load (UnknownEnv warns): %v", err)
	}
	if _, err := Load(Source{Environ: []string{"ARBOR_PROVIDERS_GITHUB_CLIENT_SECRET=s3cret"}}); err == nil ||
		!strings.Contains(err.Error(), "ARBOR_PROVIDER_GITHUB_CLIENT_SECRET") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("secret in the plural variable: err = %v", err)
	}
	if _, err := Load(Source{Environ: []string{"ARBOR_PROVIDERS_9X_CLIENT_ID=x"}}); err == nil {
		t.Fatal("invalid provider name from the environment accepted")
	}
}

func TestProviderSecret(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "secret")
	os.WriteFile(f, []byte("from-file\n"), 0o600)
	cfg := Default()
	cfg.Providers = map[string]Provider{"gitlab": {ClientSecretFile: f}}
	if s, err := ProviderSecret(cfg, "gitlab", nil); err != nil || s != "from-file" {
		t.Fatalf("file secret = %q, %v", s, err)
	}
	if s, err := ProviderSecret(cfg, "gitlab", []string{"ARBOR_PROVIDER_GITLAB_CLIENT_SECRET=from-env"}); err != nil || s != "from-env" {
		t.Fatalf("env secret = %q, %v", s, err)
	}
	if s, err := ProviderSecret(cfg, "github", nil); err != nil || s != "" {
		t.Fatalf("unconfigured secret = %q, %v", s, err)
	}
	os.Chmod(f, 0o644)
	if _, err := ProviderSecret(cfg, "gitlab", nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable secret file: err = %v", err)
	}
}

func TestUnknownEnvKnowsProviders(t *testing.T) {
	got := UnknownEnv([]string{
		"ARBOR_PROVIDERS_GITHUB_CLIENT_ID=x",
		"ARBOR_PROVIDER_GITHUB_CLIENT_SECRET=y",
		"ARBOR_PLUGINS_DIR=/p",
		"ARBOR_PROVIDERS_GITHUB_CLIENT_IDD=x",
	})
	if !reflect.DeepEqual(got, []string{"ARBOR_PROVIDERS_GITHUB_CLIENT_IDD"}) {
		t.Fatalf("UnknownEnv = %v", got)
	}
}

func TestKeysListProviderFields(t *testing.T) {
	keys := strings.Join(Keys(), " ")
	for _, k := range []string{"plugins.dir", "plugins.max_memory_pages", "providers.<name>.client_id", "providers.<name>.allow_private_hosts"} {
		if !strings.Contains(keys, k) {
			t.Errorf("Keys() lacks %s", k)
		}
	}
}

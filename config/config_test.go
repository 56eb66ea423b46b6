package config

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/gateway/edge/proxy"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "arbor.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsLoad(t *testing.T) {
	cfg, err := Load(Source{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.PublicURL != "http://127.0.0.1:8080" {
		t.Fatalf("listen/public_url = %q %q", cfg.Listen, cfg.PublicURL)
	}
	if cfg.Store.Path != filepath.Join("arbor-data", "arbor.db") {
		t.Fatalf("store.path = %q", cfg.Store.Path)
	}
}

// The example config must load and must mention every key, so the
// documentation cannot fall behind the code.
func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	path := filepath.Join("..", "examples", "arbor.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(Source{File: path})
	if err != nil {
		t.Fatalf("example config does not load: %v", err)
	}
	want := Default()
	want.fillDerived()
	if !reflect.DeepEqual(cfg.Server.TrustedProxies, []string{}) && cfg.Server.TrustedProxies != nil {
		t.Fatalf("trusted_proxies = %v", cfg.Server.TrustedProxies)
	}
	cfg.Server.TrustedProxies, cfg.Server.IdentityHeaders = nil, nil
	cfg.Auth.PublicPaths, cfg.Auth.SessionPaths, cfg.Auth.APIPaths = nil, nil, nil
	cfg.Workers.Paths = nil
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("example config is not at the defaults:\n got %+v\nwant %+v", cfg, want)
	}
	for _, k := range Keys() {
		leaf := k[strings.LastIndex(k, ".")+1:]
		if !bytes.Contains(raw, []byte(leaf+":")) {
			t.Errorf("examples/arbor.yaml does not document %s", k)
		}
	}
}

func TestYAMLAndEnvOverride(t *testing.T) {
	p := writeFile(t, `
listen: 127.0.0.1:9000
upstream:
  url: http://127.0.0.1:4000
  dial_timeout: 2s
server:
  trusted_proxies: [10.0.0.0/8]
`)
	cfg, err := Load(Source{File: p, Environ: []string{
		"ARBOR_UPSTREAM_URL=http://127.0.0.1:5000",
		"ARBOR_SERVER_TRUSTED_PROXIES=192.168.1.1, 172.16.0.0/12",
		"ARBOR_SERVER_MAX_HEADER_BYTES=8192",
		"ARBOR_DEV=true",
		"ARBOR_STORE_GC_INTERVAL=30s",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9000" {
		t.Errorf("listen = %q", cfg.Listen)
	}
	if cfg.Upstream.URL != "http://127.0.0.1:5000" {
		t.Errorf("env did not override upstream.url: %q", cfg.Upstream.URL)
	}
	if cfg.Upstream.DialTimeout != 2*time.Second {
		t.Errorf("dial_timeout = %v", cfg.Upstream.DialTimeout)
	}
	if !reflect.DeepEqual(cfg.Server.TrustedProxies, []string{"192.168.1.1", "172.16.0.0/12"}) {
		t.Errorf("trusted_proxies = %v", cfg.Server.TrustedProxies)
	}
	if cfg.Server.MaxHeaderBytes != 8192 || !cfg.Dev || cfg.Store.GCInterval != 30*time.Second {
		t.Errorf("int/bool/duration env overrides not applied: %+v", cfg)
	}
}

func TestEveryKeyHasAWorkingEnvVar(t *testing.T) {
	for _, k := range Keys() {
		name := EnvName(k)
		if !strings.HasPrefix(name, "ARBOR_") || strings.ContainsAny(name, ".-") {
			t.Errorf("%s -> %s", k, name)
		}
	}
	if got := EnvName("upstream.response_header_timeout"); got != "ARBOR_UPSTREAM_RESPONSE_HEADER_TIMEOUT" {
		t.Fatalf("EnvName = %s", got)
	}
}

func TestBadConfig(t *testing.T) {
	cases := []struct {
		name    string
		yaml    string
		env     []string
		wantErr []string
	}{
		{"unknown top-level key", "listen: 127.0.0.1:1\nlistn: x\n", nil, []string{":2:", `unknown key "listn"`, "allowed here:", "listen"}},
		{"unknown nested key", "upstream:\n  url: http://127.0.0.1:1\n  dial_timout: 1s\n", nil, []string{":3:", `"upstream.dial_timout"`, "dial_timeout"}},
		{"secret inline", "secrets:\n  session_key: hunter2hunter2\n", nil, []string{":2:", "is a secret", "ARBOR_SESSION_KEY"}},
		{"secret at top level", "cli_jwt_secret: abc\n", nil, []string{":1:", "CLI_JWT_SECRET"}},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", nil, []string{"appears twice"}},
		{"not yaml", "listen: [unclosed\n", nil, []string{"not valid YAML"}},
		{"section not mapping", "upstream: 42\n", nil, []string{"upstream must be a mapping"}},
		{"bad duration", "upstream:\n  dial_timeout: soon\n", nil, []string{"line 2"}},
		{"negative duration", "upstream:\n  dial_timeout: -1s\n", nil, []string{"upstream.dial_timeout", "ARBOR_UPSTREAM_DIAL_TIMEOUT", "positive"}},
		{"bad upstream url", "upstream:\n  url: ftp://x\n", nil, []string{"upstream.url", "http(s) URL"}},
		{"upstream credentials", "upstream:\n  url: http://u:p@127.0.0.1\n", nil, []string{"credentials"}},
		{"bad trusted proxy", "server:\n  trusted_proxies: [notanip]\n", nil, []string{"server.trusted_proxies", "notanip"}},
		{"bad listen", "listen: nope\n", nil, []string{"listen", "host:port"}},
		{"bad log level", "log:\n  level: loud\n", nil, []string{"log.level"}},
		{"bad backend", "store:\n  backend: mysql\n", nil, []string{"store.backend"}},
		{"bad env int", "", []string{"ARBOR_SERVER_BODY_LIMIT=lots"}, []string{"ARBOR_SERVER_BODY_LIMIT", "whole number"}},
		{"bad env bool", "", []string{"ARBOR_DEV=maybe"}, []string{"ARBOR_DEV", "true or false"}},
		{"bad env duration", "", []string{"ARBOR_STORE_GC_INTERVAL=1 minute"}, []string{"ARBOR_STORE_GC_INTERVAL"}},
		{"header limit", "server:\n  max_header_bytes: 10\n", nil, []string{"server.max_header_bytes"}},
		{"bad rewrite header", "upstream:\n  rewrite_headers: [\"X Original\"]\n", nil, []string{"upstream.rewrite_headers", "ARBOR_UPSTREAM_REWRITE_HEADERS", "not a header name"}},
		{"needed rewrite header", "", []string{"ARBOR_UPSTREAM_REWRITE_HEADERS=X-Original-URL,Host"}, []string{"upstream.rewrite_headers", `"Host"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := Source{Environ: c.env}
			if c.yaml != "" {
				src.File = writeFile(t, c.yaml)
			}
			_, err := Load(src)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error echoes a secret: %v", err)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(Source{File: filepath.Join(t.TempDir(), "nope.yaml")})
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	cfg, err := Load(Source{File: writeFile(t, "# nothing\n")})
	if err != nil || cfg.Listen != "127.0.0.1:8080" {
		t.Fatalf("%v %q", err, cfg.Listen)
	}
}

func TestSecretsMissingNamesVariable(t *testing.T) {
	cfg, _ := Load(Source{})
	_, err := LoadSecrets(cfg, nil, nil)
	if err == nil {
		t.Fatal("no error without secrets")
	}
	for _, w := range []string{EnvSessionKey, EnvCLIJWTSecret, EnvEncryptionKeys, "arbor keys generate"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %s: %v", w, err)
		}
	}
}

func TestSecretsTooShort(t *testing.T) {
	cfg, _ := Load(Source{})
	key, _ := GenerateKeyringEntry(time.Now())
	_, err := LoadSecrets(cfg, []string{
		EnvSessionKey + "=short-secret-value",
		EnvCLIJWTSecret + "=" + strings.Repeat("x", 32),
		EnvEncryptionKeys + "=" + key,
	}, nil)
	if err == nil || !strings.Contains(err.Error(), EnvSessionKey+" is 18 bytes, want at least 32") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "short-secret-value") {
		t.Fatal("error echoes the secret")
	}
}

func TestSecretsFromEnvAndFiles(t *testing.T) {
	dir := t.TempDir()
	tok, _ := GenerateToken()
	key, _ := GenerateKeyringEntry(time.Now())
	cliFile := filepath.Join(dir, "cli")
	os.WriteFile(cliFile, []byte(tok+"\n"), 0o600)
	keysFile := filepath.Join(dir, "keys")
	old, _ := GenerateKeyringEntry(time.Now().Add(-24 * time.Hour))
	os.WriteFile(keysFile, []byte(old+"\n"+key+"\n"), 0o600)

	cfg, _ := Load(Source{})
	cfg.Secrets.EncryptionKeysFile = keysFile
	s, err := LoadSecrets(cfg, []string{EnvSessionKey + "=" + tok, EnvCLIJWTSecret + "_FILE=" + cliFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(s.SessionKey) != tok || string(s.CLIJWTSecret) != tok {
		t.Fatal("secrets not read")
	}
	kr, err := s.Keyring()
	if err != nil || len(kr.IDs()) != 2 || kr.NewestID() != strings.Split(key, ":")[0] {
		t.Fatalf("keyring %v %v", kr, err)
	}
	if strings.Contains(s.String()+s.GoString(), tok) {
		t.Fatal("String prints secrets")
	}

	// A world-readable secret file is refused.
	os.Chmod(cliFile, 0o644)
	_, err = LoadSecrets(cfg, []string{EnvSessionKey + "=" + tok, EnvCLIJWTSecret + "_FILE=" + cliFile}, nil)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable file: %v", err)
	}
}

func TestDevModeGeneratesAndKeepsSecrets(t *testing.T) {
	cfg, _ := Load(Source{Environ: []string{"ARBOR_DEV=true", "ARBOR_DATA_DIR=" + t.TempDir()}})
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	s1, err := LoadSecrets(cfg, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(s1.Generated) != 3 || !strings.Contains(logs.String(), "DEV MODE") {
		t.Fatalf("generated=%v log=%s", s1.Generated, logs.String())
	}
	for _, name := range []string{"session_key", "cli_jwt_secret", "encryption_keys"} {
		st, err := os.Stat(filepath.Join(cfg.DataDir, "secrets", name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, err, st)
		}
	}
	if strings.Contains(logs.String(), string(s1.SessionKey)) {
		t.Fatal("log contains the secret")
	}
	s2, err := LoadSecrets(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1.SessionKey, s2.SessionKey) || !bytes.Equal(s1.EncryptionKeys[0].Secret, s2.EncryptionKeys[0].Secret) {
		t.Fatal("dev secrets changed between starts")
	}
}

func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{"ARBOR_UPSTREM_URL=x", "ARBOR_UPSTREAM_URL=y", "ARBOR_SESSION_KEY=z", "HOME=/"})
	if !reflect.DeepEqual(got, []string{"ARBOR_UPSTREM_URL"}) {
		t.Fatalf("UnknownEnv = %v", got)
	}
}

// upstream.rewrite_headers defaults to the proxy's list, may be replaced,
// and may be emptied (an empty list strips none).
func TestRewriteHeaders(t *testing.T) {
	cfg, err := Load(Source{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Upstream.RewriteHeaders, proxy.DefaultRewriteHeaders) {
		t.Errorf("default upstream.rewrite_headers = %q, want proxy.DefaultRewriteHeaders %q", cfg.Upstream.RewriteHeaders, proxy.DefaultRewriteHeaders)
	}
	cfg, err = Load(Source{File: writeFile(t, "upstream:\n  rewrite_headers: [X-Original-URL, X-HTTP-Method-Override]\n")})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Upstream.RewriteHeaders, []string{"X-Original-URL", "X-HTTP-Method-Override"}) {
		t.Errorf("rewrite_headers from YAML = %q", cfg.Upstream.RewriteHeaders)
	}
	for _, src := range []Source{
		{File: writeFile(t, "upstream:\n  rewrite_headers: []\n")},
		{Environ: []string{"ARBOR_UPSTREAM_REWRITE_HEADERS="}},
	} {
		cfg, err = Load(src)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Upstream.RewriteHeaders) != 0 {
			t.Errorf("emptied rewrite_headers = %q", cfg.Upstream.RewriteHeaders)
		}
		// Non-nil: the proxy reads nil as its default list.
		if cfg.Upstream.RewriteHeaders == nil {
			t.Errorf("emptied rewrite_headers is nil: the proxy would strip its default list")
		}
	}
}

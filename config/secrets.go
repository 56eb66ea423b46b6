package config

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vintner/arbor/data/seal"
)

// MinSecretLen is the shortest accepted signing secret, in bytes: HS256 keys
// shorter than the hash output weaken it (RFC 7518 section 3.2).
const MinSecretLen = 32

// Environment variables that carry secrets. Each also has a _FILE form
// naming a file that holds the value.
const (
	EnvSessionKey     = "ARBOR_SESSION_KEY"
	EnvCLIJWTSecret   = "CLI_JWT_SECRET"
	EnvEncryptionKeys = "ARBOR_ENCRYPTION_KEYS"
	// EnvWebhookSecret keys the HMAC signature of webhook deliveries
	// (optional; needed when connections.webhook_url is set).
	EnvWebhookSecret = "ARBOR_WEBHOOK_SECRET"
	// EnvServiceTokens lists the backends that may fetch users' provider
	// tokens: name:token pairs, comma separated (optional).
	EnvServiceTokens = "ARBOR_SERVICE_TOKENS"
)

// SecretsValues are the loaded secrets. They are never logged; String hides
// them if someone tries.
type SecretsValues struct {
	SessionKey     []byte
	CLIJWTSecret   []byte
	EncryptionKeys []seal.Key
	// Generated lists the secrets dev mode generated or reused from the
	// data dir, for the start-up warning.
	Generated []string
}

// String never prints secret material.
func (s SecretsValues) String() string { return "config.SecretsValues{redacted}" }

// GoString never prints secret material.
func (s SecretsValues) GoString() string { return s.String() }

// Keyring builds the encryption keyring.
func (s SecretsValues) Keyring() (*seal.Keyring, error) { return seal.NewKeyring(s.EncryptionKeys...) }

type secretSpec struct {
	env      string
	fileKey  string // config key of the *_file setting
	file     string // its value
	devFile  string // name under DataDir/secrets in dev mode
	generate func() (string, error)
}

// LoadSecrets reads the secrets from the environment or files. Outside dev
// mode a missing or short secret is an error that names the variable and
// how to make a value. In dev mode missing secrets are generated once and
// kept in DataDir/secrets (0600), and a warning is logged.
func LoadSecrets(cfg Config, environ []string, log *slog.Logger) (SecretsValues, error) {
	return loadSecrets(cfg, environ, log, "")
}

// LoadKeyring loads only the encryption keyring (for `arbor keys rotate`
// run without a server).
func LoadKeyring(cfg Config, environ []string) (*seal.Keyring, error) {
	s, err := loadSecrets(cfg, environ, nil, EnvEncryptionKeys)
	if err != nil {
		return nil, err
	}
	return s.Keyring()
}

func loadSecrets(cfg Config, environ []string, log *slog.Logger, only string) (SecretsValues, error) {
	env := envMap(environ)
	var out SecretsValues
	specs := []struct {
		spec secretSpec
		set  func(string) error
	}{
		{secretSpec{EnvSessionKey, "secrets.session_key_file", cfg.Secrets.SessionKeyFile, "session_key", genToken}, func(v string) error {
			b, err := checkSigningSecret(EnvSessionKey, v)
			out.SessionKey = b
			return err
		}},
		{secretSpec{EnvCLIJWTSecret, "secrets.cli_jwt_secret_file", cfg.Secrets.CLIJWTSecretFile, "cli_jwt_secret", genToken}, func(v string) error {
			b, err := checkSigningSecret(EnvCLIJWTSecret, v)
			out.CLIJWTSecret = b
			return err
		}},
		{secretSpec{EnvEncryptionKeys, "secrets.encryption_keys_file", cfg.Secrets.EncryptionKeysFile, "encryption_keys", genKeyring}, func(v string) error {
			keys, err := seal.ParseKeys(strings.ReplaceAll(v, "\n", ","))
			if err != nil {
				return fmt.Errorf("%s: %v", EnvEncryptionKeys, err)
			}
			if _, err := seal.NewKeyring(keys...); err != nil {
				return fmt.Errorf("%s: %v", EnvEncryptionKeys, err)
			}
			out.EncryptionKeys = keys
			return nil
		}},
	}
	var errs []error
	for _, s := range specs {
		if only != "" && s.spec.env != only {
			continue
		}
		v, generated, err := readSecret(cfg, env, s.spec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.set(v); err != nil {
			errs = append(errs, err)
			continue
		}
		if generated {
			out.Generated = append(out.Generated, s.spec.env)
		}
	}
	if len(errs) > 0 {
		return SecretsValues{}, fmt.Errorf("secrets: %w", errors.Join(errs...))
	}
	if len(out.Generated) > 0 && log != nil {
		log.Warn("DEV MODE: using generated secrets kept in the data dir; never run like this in production",
			"secrets", out.Generated, "dir", filepath.Join(cfg.DataDir, "secrets"))
	}
	return out, nil
}

func readSecret(cfg Config, env map[string]string, s secretSpec) (value string, generated bool, err error) {
	if v, ok := env[s.env]; ok && v != "" {
		return strings.TrimSpace(v), false, nil
	}
	file := s.file
	if f, ok := env[s.env+"_FILE"]; ok && f != "" {
		file = f
	}
	if file != "" {
		b, err := readSecretFile(file)
		if err != nil {
			return "", false, fmt.Errorf("%s: %v", s.env, err)
		}
		return strings.TrimSpace(string(b)), false, nil
	}
	if cfg.Dev {
		v, err := devSecret(cfg.DataDir, s)
		return v, true, err
	}
	return "", false, fmt.Errorf("%s is not set: set it (or %s_FILE, or %s) to a value from `arbor keys generate`", s.env, s.env, s.fileKey)
}

// readSecretFile refuses files other users can read.
func readSecretFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading secret file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret file %s is readable by other users (mode %v); run: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	return os.ReadFile(path)
}

func devSecret(dataDir string, s secretSpec) (string, error) {
	dir := filepath.Join(dataDir, "secrets")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("%s: dev mode: creating %s: %v", s.env, dir, err)
	}
	path := filepath.Join(dir, s.devFile)
	if b, err := readSecretFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: dev mode: %v", s.env, err)
	}
	v, err := s.generate()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("%s: dev mode: writing %s: %v", s.env, path, err)
	}
	if _, err := f.WriteString(v + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("%s: dev mode: writing %s: %v", s.env, path, err)
	}
	return v, f.Close()
}

func checkSigningSecret(name, v string) ([]byte, error) {
	if len(v) < MinSecretLen {
		return nil, fmt.Errorf("%s is %d bytes, want at least %d; make one with `arbor keys generate`", name, len(v), MinSecretLen)
	}
	return []byte(v), nil
}

// GenerateToken returns 32 random bytes, base64url without padding (43
// characters), suitable for ARBOR_SESSION_KEY and CLI_JWT_SECRET.
func GenerateToken() (string, error) { return genToken() }

// GenerateKeyringEntry returns a new `id:base64` encryption key entry with a
// date-based id.
func GenerateKeyringEntry(now time.Time) (string, error) {
	k, err := seal.GenerateKey()
	if err != nil {
		return "", err
	}
	var suffix [3]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return "", err
	}
	id := fmt.Sprintf("k%s-%x", now.UTC().Format("20060102"), suffix)
	return id + ":" + seal.EncodeSecret(k), nil
}

func genToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return seal.EncodeSecret(b), nil
}

func genKeyring() (string, error) { return GenerateKeyringEntry(time.Now()) }

// UnknownEnv lists ARBOR_… variables in environ that are neither a config
// key nor a secret, usually typos worth a warning.
func UnknownEnv(environ []string) []string {
	known := map[string]bool{"ARBOR_CONFIG": true}
	for _, k := range Keys() {
		known[EnvName(k)] = true
	}
	for _, s := range []string{EnvSessionKey, EnvEncryptionKeys, EnvWebhookSecret, EnvServiceTokens} {
		known[s] = true
		known[s+"_FILE"] = true
	}
	var out []string
	for k := range envMap(environ) {
		if _, _, ok := parseProviderEnv(k); ok {
			continue
		}
		if strings.HasPrefix(k, "ARBOR_PROVIDER_") && strings.HasSuffix(k, "_CLIENT_SECRET") {
			continue
		}
		if strings.HasPrefix(k, "ARBOR_") && !known[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// OptionalSecret reads a secret that may be absent: the variable name, or
// the file named by name_FILE (which must have mode 0600). Unset is "" and
// no error.
func OptionalSecret(environ []string, name string) (string, error) {
	env := envMap(environ)
	if v := env[name]; v != "" {
		return strings.TrimSpace(v), nil
	}
	if f := env[name+"_FILE"]; f != "" {
		b, err := readSecretFile(f)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %v", name, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

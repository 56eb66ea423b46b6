package main

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway/access"
	"github.com/vintner/arbor/gateway/assertion"
	"github.com/vintner/arbor/gateway/config"
	"github.com/vintner/arbor/gateway/providers"
	"github.com/vintner/arbor/gateway/session"
	"github.com/vintner/arbor/gateway/sessiontoken"
	"github.com/vintner/arbor/gateway/webauth"
)

// Session tokens are issued by the public URL to this audience; CLI tokens
// (issue 7) use another, so neither is ever accepted as the other.
const sessionAudience = "arbor-session"

// webAuth is the browser sign-in wiring: sessions, the route policy, the
// identity assertion and the sign-in routes.
type webAuth struct {
	sessions *session.Manager
	web      *webauth.WebAuth
}

func (w *webAuth) close() { w.sessions.Close() }

// derive makes an independent key for one purpose from the session key, so
// that one configured secret serves the session token, CSRF tokens and
// browser binding without any of them revealing another.
func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("arbor key derivation\x00" + purpose))
	return m.Sum(nil)
}

func setupWebAuth(cfg config.Config, secrets config.SecretsValues, store data.Store, pl *pluginRuntime, log *slog.Logger) (*webAuth, error) {
	signer, err := sessiontoken.NewSigner(derive(secrets.SessionKey, "session token"), sessiontoken.Options{
		Issuer:   cfg.PublicURL,
		Audience: sessionAudience,
		TTL:      cfg.Session.TokenTTL,
	})
	if err != nil {
		return nil, err
	}
	key, err := loadAssertionKey(cfg.Secrets.AssertionKeyFile, log)
	if err != nil {
		return nil, usageErr(err)
	}
	shape := assertion.ShapeArbor
	if cfg.Identity.AssertionShape == "supabase" {
		shape = assertion.ShapeSupabase
	}
	asserter, err := assertion.NewSigner([]ed25519.PrivateKey{key}, assertion.Options{
		Issuer:   cfg.PublicURL,
		Audience: cfg.Identity.AssertionAudience,
		TTL:      cfg.Identity.AssertionTTL,
		Shape:    shape,
	})
	if err != nil {
		return nil, err
	}
	policy, err := routePolicy(cfg.Auth)
	if err != nil {
		return nil, usageErr(err)
	}
	secure := cfg.SecureCookies()
	if !secure {
		log.Warn("public_url is plain http: the session cookie is arbor_session without Secure. Only for loopback development; put TLS in front of Arbor and set public_url to https://… in production", "public_url", cfg.PublicURL)
	}
	sessions, err := session.New(store, session.Options{
		Signer:           signer,
		CSRFKey:          derive(secrets.SessionKey, "csrf"),
		IdleTimeout:      cfg.Session.IdleTimeout,
		AbsoluteLifetime: cfg.Session.AbsoluteLifetime,
		Secure:           secure,
	})
	if err != nil {
		return nil, err
	}
	web, err := webauth.New(webauth.Options{
		Store:      store,
		Sessions:   sessions,
		Providers:  providers.FromRegistry(pl.providerRegistry),
		Policy:     policy,
		Assertions: asserter,
		PublicURL:  cfg.PublicURL,
		Secure:     secure,
		Headers: webauth.Headers{
			UserID:    cfg.Identity.UserIDHeader,
			Email:     cfg.Identity.EmailHeader,
			Login:     cfg.Identity.LoginHeader,
			Assertion: cfg.Identity.AssertionHeader,
		},
		LinkByVerifiedEmail: cfg.Auth.LinkByVerifiedEmail,
		AfterSignIn:         cfg.Auth.AfterSignIn,
		BindingKey:          derive(secrets.SessionKey, "browser binding"),
		Logger:              log,
	})
	if err != nil {
		sessions.Close()
		return nil, err
	}
	return &webAuth{sessions: sessions, web: web}, nil
}

// routePolicy builds the upstream route policy from auth.*.
func routePolicy(a config.Auth) (*access.Policy, error) {
	def, err := access.ParseClass(a.DefaultRoute)
	if err != nil {
		return nil, fmt.Errorf("auth.default_route: %w", err)
	}
	var rules []access.Rule
	for _, l := range []struct {
		paths []string
		class access.Class
	}{{a.PublicPaths, access.Public}, {a.SessionPaths, access.Session}, {a.APIPaths, access.API}} {
		for _, p := range l.paths {
			if p = strings.TrimSpace(p); p != "" {
				rules = append(rules, access.Rule{Prefix: p, Class: l.class})
			}
		}
	}
	p, err := access.New(def, rules)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return p, nil
}

// loadAssertionKey reads the Ed25519 assertion key, generating it (mode
// 0600) on first start.
func loadAssertionKey(path string, log *slog.Logger) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := assertion.GenerateKey()
		if err != nil {
			return nil, err
		}
		pemBytes, err := assertion.MarshalKey(key)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("secrets.assertion_key_file: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return loadAssertionKey(path, log) // another replica won the race
		}
		if err != nil {
			return nil, fmt.Errorf("secrets.assertion_key_file: creating %s: %w", path, err)
		}
		if _, err := f.Write(pemBytes); err != nil {
			f.Close()
			return nil, fmt.Errorf("secrets.assertion_key_file: writing %s: %w", path, err)
		}
		if err := errors.Join(f.Sync(), f.Close()); err != nil {
			return nil, fmt.Errorf("secrets.assertion_key_file: writing %s: %w", path, err)
		}
		log.Info("generated the identity assertion key", "file", path, "kid", assertion.KeyID(key.Public().(ed25519.PublicKey)))
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secrets.assertion_key_file: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secrets.assertion_key_file: %s has mode %v; it holds a private key, so make it 0600 (chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	key, err := assertion.ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("secrets.assertion_key_file %s: %w", path, err)
	}
	return key, nil
}

package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"
)

// VerificationCodeAlphabet is the alphabet of the 6-character code Arbor
// shows after approval (no I, O, 0 or 1); entry is case-insensitive.
const VerificationCodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// VerificationCodeLength is the length of the verification code.
const VerificationCodeLength = 6

// MaxCodeAttempts is how many codes Login asks for before giving up; Arbor
// burns a request after as many wrong codes.
const MaxCodeAttempts = 5

// LoginUI is the interactive part of Login.
type LoginUI interface {
	// Open shows the login URL to the user: it should print it (for
	// headless machines) and try to open it in a browser. An error aborts
	// the login, so an implementation that cannot start a browser should
	// print the URL and return nil.
	Open(loginURL string) error
	// Prompt asks for the verification code shown in the browser. It is
	// called again after a wrong code. It should return ctx.Err() when ctx
	// is done, and an error when the user gives up.
	Prompt(ctx context.Context) (string, error)
}

// CodeRejecter may be implemented by a LoginUI to be told why a code was
// not accepted before Prompt is called again. attemptsLeft is how many more
// codes Login will ask for.
type CodeRejecter interface {
	CodeRejected(err error, attemptsLeft int)
}

// Login runs the whole CLI login (see the package documentation) and saves
// the token pair to cfg.Store.
func Login(ctx context.Context, cfg Config, ui LoginUI) (*Token, error) {
	if ui == nil {
		return nil, errors.New("login needs a LoginUI")
	}
	server, err := normalizeServer(cfg.Server)
	if err != nil {
		return nil, err
	}
	store := cfg.store()
	u, err := uuid.NewRandom() // crypto/rand
	if err != nil {
		return nil, err
	}
	deviceCode := u.String()
	verifier, err := newVerifier()
	if err != nil {
		return nil, err
	}
	challenge := S256(verifier)

	loginURL, err := start(ctx, &cfg, server, deviceCode, challenge)
	if err != nil {
		return nil, err
	}
	if err := ui.Open(loginURL); err != nil {
		return nil, err
	}

	var lastErr error
	for attempt := 1; attempt <= MaxCodeAttempts; attempt++ {
		raw, err := ui.Prompt(ctx)
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		code := NormalizeCode(raw)
		if err := checkCode(code); err != nil {
			lastErr = err
			reject(ui, err, MaxCodeAttempts-attempt)
			continue
		}
		var tr tokenResponse
		err = postJSON(ctx, &cfg, server, PathExchange, map[string]string{
			"device_code":       deviceCode,
			"verification_code": code,
			"code_verifier":     verifier,
		}, &tr)
		if err == nil {
			tok, err := tr.token(server, nil, time.Now())
			if err != nil {
				return nil, err
			}
			if err := store.Save(tok); err != nil {
				// Do not leave a live login nobody holds.
				revoke(context.WithoutCancel(ctx), &cfg, tok)
				return nil, fmt.Errorf("logged in, but could not save the login: %w", err)
			}
			return tok, nil
		}
		var ae *APIError
		if !errors.As(err, &ae) {
			return nil, fmt.Errorf("exchanging the code: %w", err)
		}
		switch ae.Code {
		case CodeInvalidCode:
			lastErr = fmt.Errorf("wrong code, or the request is not approved yet in the browser: %w", ae)
			reject(ui, lastErr, MaxCodeAttempts-attempt)
			continue
		case CodeDeviceCodeBurned:
			return nil, fmt.Errorf("too many wrong codes: this login request is no longer usable; %s again: %w", cfg.loginHint(), ae)
		case CodeExpiredDeviceCode:
			return nil, fmt.Errorf("this login request expired (they last 10 minutes); %s again: %w", cfg.loginHint(), ae)
		case CodeDeviceCodeUsed:
			return nil, fmt.Errorf("this login request was already used; %s again: %w", cfg.loginHint(), ae)
		case CodeUnknownDeviceCode:
			return nil, fmt.Errorf("the server does not know this login request; %s again: %w", cfg.loginHint(), ae)
		default:
			return nil, fmt.Errorf("exchanging the code: %w", ae)
		}
	}
	return nil, fmt.Errorf("no valid code after %d attempts; %s again: %w", MaxCodeAttempts, cfg.loginHint(), lastErr)
}

func reject(ui LoginUI, err error, left int) {
	if r, ok := ui.(CodeRejecter); ok && left > 0 {
		r.CodeRejected(err, left)
	}
}

// start announces the login request and returns the URL to open. A server
// without the start endpoint (404) is sent to /cli/login directly, which
// creates the request.
func start(ctx context.Context, cfg *Config, server, deviceCode, challenge string) (string, error) {
	info := cfg.ClientInfo
	if info == nil {
		info = map[string]string{"os": runtime.GOOS + "/" + runtime.GOARCH}
		if h, err := os.Hostname(); err == nil {
			info["hostname"] = h
		}
	}
	var sr struct {
		LoginURL  string `json:"login_url"`
		ExpiresIn int    `json:"expires_in"`
	}
	err := postJSON(ctx, cfg, server, PathStart, map[string]any{
		"device_code":    deviceCode,
		"code_challenge": challenge,
		"client_name":    cfg.clientName(),
		"client_info":    info,
	}, &sr)
	var ae *APIError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		q := url.Values{"device_code": {deviceCode}, "code_challenge": {challenge}}
		return server + PathLoginUI + "?" + q.Encode(), nil
	case err != nil:
		return "", fmt.Errorf("starting the login at %s: %w", server, err)
	}
	base, _ := url.Parse(server + "/")
	u, err := base.Parse(sr.LoginURL)
	if sr.LoginURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("starting the login: the server answered an unusable login_url %q", sr.LoginURL)
	}
	return u.String(), nil
}

// revoke logs a token pair out on the server, best effort.
func revoke(ctx context.Context, cfg *Config, t *Token) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := postJSON(ctx, cfg, t.Server, PathLogout, map[string]string{"refresh_token": t.RefreshToken}, nil)
	if IsCode(err, CodeInvalidGrant) {
		return nil // already dead
	}
	return err
}

// NormalizeCode turns what the user typed into the form Arbor compares:
// surrounding space trimmed, upper case, inner spaces and dashes dropped.
func NormalizeCode(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '-', '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2212':
			return -1
		}
		return r
	}, s)
}

// checkCode refuses, without spending one of the server's attempts, a code
// that cannot be right.
func checkCode(code string) error {
	if code == "" {
		return errors.New("no code entered")
	}
	if len(code) != VerificationCodeLength {
		return fmt.Errorf("the code has %d characters, not %d", len(code), VerificationCodeLength)
	}
	for _, r := range code {
		if !strings.ContainsRune(VerificationCodeAlphabet, r) {
			if strings.ContainsRune("IO01", r) {
				return fmt.Errorf("the code never contains %q (no I, O, 0 or 1): check it", r)
			}
			return fmt.Errorf("the code contains %q, which is not one of %s", r, VerificationCodeAlphabet)
		}
	}
	return nil
}

// newVerifier is a PKCE code_verifier: 32 random bytes, base64url, 43
// characters of [A-Za-z0-9-_].
func newVerifier() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// S256 is the PKCE S256 challenge of a verifier: base64url(SHA-256), no
// padding.
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Paths of the CLI login API (docs/cli-login.md).
const (
	PathStart    = "/api/auth/cli/start"
	PathExchange = "/api/auth/cli/exchange"
	PathRefresh  = "/api/auth/cli/refresh"
	PathLogout   = "/api/auth/cli/logout"
	PathMe       = "/api/auth/me"
	PathLoginUI  = "/cli/login"
)

// Error codes Arbor answers with (the "error" field of an error body).
const (
	CodeUnknownDeviceCode = "unknown_device_code"
	CodeExpiredDeviceCode = "expired_device_code"
	CodeDeviceCodeBurned  = "device_code_burned"
	CodeDeviceCodeUsed    = "device_code_used"
	CodeInvalidCode       = "invalid_code"
	CodeInvalidVerifier   = "invalid_verifier"
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidGrant      = "invalid_grant"
	CodeUnauthenticated   = "unauthenticated"
)

// ErrNotLoggedIn is returned (possibly wrapped) when there is no stored
// login, or when Arbor no longer accepts it.
var ErrNotLoggedIn = errors.New("not logged in")

// Config says which Arbor to talk to and where the tokens live.
type Config struct {
	// Server is Arbor's base URL, e.g. "https://arbor.example". Required for
	// Login; elsewhere it defaults to the server the stored token came from,
	// and when set it must be that server.
	Server string
	// ClientName names the CLI on the approval page and in messages ("run
	// `grape login`"). Default "grape".
	ClientName string
	// ClientInfo is shown on the approval page (hostname, os, version).
	// Default: hostname and GOOS/GOARCH.
	ClientInfo map[string]string
	// HTTPClient makes the calls to the login API (start, exchange, refresh,
	// logout); redirects are never followed for them. It must not use a
	// Transport of this package. Default: a client with a 30 s timeout.
	HTTPClient *http.Client
	// Store keeps the token pair. Default: FileStore{Path: DefaultPath()}.
	Store TokenStore
}

// User is who a token belongs to.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email,omitempty"`
	Login string `json:"login,omitempty"`
}

// Token is a login: the access and refresh token pair, their expiry, the
// user, and the server that issued them. It is what FileStore writes.
type Token struct {
	AccessToken   string    `json:"access_token"`
	RefreshToken  string    `json:"refresh_token"`
	Expiry        time.Time `json:"expiry"`
	RefreshExpiry time.Time `json:"refresh_expiry,omitzero"`
	User          User      `json:"user"`
	Server        string    `json:"server"`
}

// expiresWithin reports whether the access token expires within d.
func (t *Token) expiresWithin(d time.Duration) bool {
	return t.Expiry.IsZero() || !time.Now().Add(d).Before(t.Expiry)
}

// APIError is an error answer from Arbor: {"error": Code, "message": Message}.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("arbor: ")
	switch {
	case e.Code != "" && e.Message != "":
		b.WriteString(e.Code + ": " + e.Message)
	case e.Code != "":
		b.WriteString(e.Code)
	case e.Message != "":
		b.WriteString(e.Message)
	default:
		b.WriteString(http.StatusText(e.Status))
	}
	fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	return b.String()
}

// IsCode reports whether err is or wraps an *APIError with the given code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// tokenResponse is the answer of exchange and refresh.
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	RefreshToken     string `json:"refresh_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int64  `json:"expires_in"`
	RefreshExpiresIn int64  `json:"refresh_expires_in"`
	User             *User  `json:"user"`
}

func (r *tokenResponse) token(server string, prev *Token, now time.Time) (*Token, error) {
	if r.AccessToken == "" || r.RefreshToken == "" {
		return nil, errors.New("arbor answered without an access or refresh token")
	}
	if r.TokenType != "" && !strings.EqualFold(r.TokenType, "bearer") {
		return nil, fmt.Errorf("arbor answered with token type %q, want Bearer", r.TokenType)
	}
	t := &Token{AccessToken: r.AccessToken, RefreshToken: r.RefreshToken, Server: server}
	if r.ExpiresIn > 0 {
		t.Expiry = now.Add(time.Duration(r.ExpiresIn) * time.Second)
	} else {
		// No lifetime given: the contract says 1 hour.
		t.Expiry = now.Add(time.Hour)
	}
	if r.RefreshExpiresIn > 0 {
		t.RefreshExpiry = now.Add(time.Duration(r.RefreshExpiresIn) * time.Second)
	}
	switch {
	case r.User != nil:
		t.User = *r.User
	case prev != nil:
		t.User = prev.User
	}
	return t, nil
}

func (c *Config) clientName() string {
	if c.ClientName != "" {
		return c.ClientName
	}
	return "grape"
}

func (c *Config) store() TokenStore {
	if c.Store != nil {
		return c.Store
	}
	return FileStore{Path: DefaultPath()}
}

var defaultHTTPClient = &http.Client{Timeout: 30 * time.Second}

// apiClient is the configured client with redirects turned off: a 307/308
// would re-send a refresh token or verifier to wherever it points.
func (c *Config) apiClient() *http.Client {
	base := c.HTTPClient
	if base == nil {
		base = defaultHTTPClient
	}
	hc := *base
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

// loginHint is the sentence that tells the user how to get a new login.
func (c *Config) loginHint() string {
	return fmt.Sprintf("run `%s login`", c.clientName())
}

// normalizeServer checks an Arbor base URL and returns it without a
// trailing slash: http(s), a host, no query or fragment, and plain http
// only on loopback.
func normalizeServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("no Arbor server given")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("server %q: %w", s, err)
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("server %q: want an http(s) URL such as https://arbor.example", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("server %q: want a base URL without credentials, query or fragment", s)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("server %q: plain http is only allowed on loopback; use https", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameOrigin reports whether u is on the origin of the server base URL.
func sameOrigin(server string, u *url.URL) bool {
	s, err := url.Parse(server)
	if err != nil || u == nil {
		return false
	}
	return strings.EqualFold(s.Scheme, u.Scheme) && strings.EqualFold(hostPort(s), hostPort(u))
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

const maxBody = 1 << 20

// postJSON POSTs in as JSON to server+path. A 2xx answer is decoded into out
// (when out is not nil); anything else becomes an *APIError.
func postJSON(ctx context.Context, cfg *Config, server, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := cfg.apiClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("reading answer of %s: %w", path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp.StatusCode, data)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 && resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("answer of %s is not the expected JSON: %w", path, err)
	}
	return nil
}

func apiError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var eb struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
		e.Code, e.Message = eb.Error, eb.Message
		return e
	}
	// Not Arbor's JSON (a proxy's error page, say): keep a short, printable
	// excerpt.
	msg := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(body))
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	e.Message = msg
	return e
}

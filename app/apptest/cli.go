package apptest

// CLI login (Grape, service/clilogin) as a test drives it: a cookie-less
// client speaking JSON and a signed-in browser approving the login. See
// docs/cli-login.md. The CLI login tests are in gateway/api; the
// worker and rate-limit tests use CLILogin to get tokens.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/vintner/arbor/gateway/api"
)

var (
	// VerificationCodeRE finds the verification code on the CLI login page.
	VerificationCodeRE = regexp.MustCompile(`id="verification-code">([^<]*)<`)
	// CSRFRE finds the CSRF token of a form on an Arbor page.
	CSRFRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// CLIClient returns a cookie-less client for the CLI side, with a
// transport that keeps enough idle connections for concurrent tests.
func (h *Harness) CLIClient() *Browser {
	b := h.Browser()
	b.client.Transport = &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}
	return b
}

// SendJSON sends method path with v (if not nil) as a JSON body, the extra
// headers hdr and b's cookies. Safe for concurrent use; it reports errors
// instead of failing the test, for goroutines.
func (b *Browser) SendJSON(method, path string, v any, hdr http.Header) (*Response, error) {
	var body io.Reader
	if v != nil {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.h.base()+path, body)
	if err != nil {
		return nil, err
	}
	if v != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	res, err := b.send(req, hdr, false)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return res, nil
}

// PostJSON POSTs v as JSON to path.
func (b *Browser) PostJSON(path string, v any) *Response {
	b.t.Helper()
	res, err := b.SendJSON(http.MethodPost, path, v, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return res
}

// BearerGet GETs path with Authorization: Bearer token.
func (b *Browser) BearerGet(path, token string) *Response {
	b.t.Helper()
	res, err := b.SendJSON(http.MethodGet, path, nil, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		b.t.Fatal(err)
	}
	return res
}

// RandomSecret returns 43 base64url characters, the shape of Arbor's state
// and binding values.
func RandomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewDeviceCode returns a random UUID v4, as the CLI picks it.
func NewDeviceCode(t *testing.T) string {
	t.Helper()
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		t.Fatal(err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// NewVerifier returns a PKCE-style verifier and its S256 challenge.
func NewVerifier(t *testing.T) (verifier, challenge string) {
	t.Helper()
	verifier = RandomSecret(t)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestClientInfo is the client_info StartCLI sends.
var TestClientInfo = map[string]string{"hostname": "build-box-7", "os": "linux/amd64", "version": "grape 1.4.2"}

// StartCLI announces a login as the CLI and returns its device code.
func (b *Browser) StartCLI(challenge string) string {
	b.t.Helper()
	dc := NewDeviceCode(b.t)
	res := b.PostJSON(api.PathCLIStart, map[string]any{
		"device_code": dc, "code_challenge": challenge, "client_name": "grape", "client_info": TestClientInfo,
	})
	var out struct {
		LoginURL  string `json:"login_url"`
		ExpiresIn int    `json:"expires_in"`
	}
	if res.StatusCode != http.StatusCreated || json.Unmarshal([]byte(res.Body), &out) != nil {
		b.t.Fatalf("start: %d %s", res.StatusCode, res.Body)
	}
	if want := b.h.PublicURL + "/cli/login?device_code=" + dc; out.LoginURL != want || out.ExpiresIn != 600 {
		b.t.Fatalf("start answered %+v, want login_url %q and expires_in 600", out, want)
	}
	return dc
}

// OpenCLILogin opens the login page of dc in the user's browser.
func (b *Browser) OpenCLILogin(dc string) *Response {
	b.t.Helper()
	return b.Get(api.PathCLILogin + "?device_code=" + url.QueryEscape(dc))
}

// ApproveCLI opens the login page of dc as the signed-in browser b,
// presses Approve and returns the verification code the page shows.
func (b *Browser) ApproveCLI(dc string) string {
	b.t.Helper()
	page := b.OpenCLILogin(dc)
	m := CSRFRE.FindStringSubmatch(page.Body)
	if page.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("login page: %d\n%s", page.StatusCode, page.Body)
	}
	res := b.Do(http.MethodPost, api.PathCLIApprove, url.Values{"csrf": {m[1]}, "device_code": {dc}})
	c := VerificationCodeRE.FindStringSubmatch(res.Body)
	if res.StatusCode != http.StatusOK || c == nil {
		b.t.Fatalf("approve: %d\n%s", res.StatusCode, res.Body)
	}
	return c[1]
}

// ExchangeBody is the JSON body of an exchange.
func ExchangeBody(dc, code, verifier string) map[string]string {
	return map[string]string{"device_code": dc, "verification_code": code, "code_verifier": verifier}
}

// Exchange trades dc, code and verifier for tokens as the CLI.
func (b *Browser) Exchange(dc, code, verifier string) *Response {
	b.t.Helper()
	return b.PostJSON(api.PathCLIExchange, ExchangeBody(dc, code, verifier))
}

// CLITokens are the tokens of an exchange or a refresh.
type CLITokens struct {
	AccessToken      string `json:"access_token"`
	RefreshToken     string `json:"refresh_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int64  `json:"expires_in"`
	RefreshExpiresIn int64  `json:"refresh_expires_in"`
	User             struct {
		ID    string `json:"id"`
		Email string `json:"email"`
		Login string `json:"login"`
	} `json:"user"`
}

// DecodeTokens reads the tokens of a 200 answer and fails the test on any
// other answer.
func DecodeTokens(t *testing.T, what string, res *Response) CLITokens {
	t.Helper()
	var tk CLITokens
	if res.StatusCode != http.StatusOK || json.Unmarshal([]byte(res.Body), &tk) != nil || tk.AccessToken == "" || tk.RefreshToken == "" {
		t.Fatalf("%s: %d %s", what, res.StatusCode, res.Body)
	}
	return tk
}

// CLILogin runs the whole flow for the signed-in browser user, with cli as
// the CLI, and returns the tokens.
func CLILogin(t *testing.T, user, cli *Browser) CLITokens {
	t.Helper()
	verifier, challenge := NewVerifier(t)
	dc := cli.StartCLI(challenge)
	code := user.ApproveCLI(dc)
	return DecodeTokens(t, "exchange", cli.Exchange(dc, code, verifier))
}

package fakeprovider_test

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// callback is the application's redirect URI. Nothing listens there: the
// tests never follow the redirect to it.
const callback = "http://127.0.0.1:9/auth/callback"

// noFollow is an HTTP client that stops at the first redirect, as a test
// must when the redirect goes to the application.
var noFollow = &http.Client{
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// start runs a fake with the test callback registered.
func start(t *testing.T, cfg fakeprovider.Config) *fakeprovider.Provider {
	t.Helper()
	cfg.RedirectURIs = append(cfg.RedirectURIs, callback)
	return fakeprovider.StartForTest(t, cfg)
}

func oauthConfig(p *fakeprovider.Provider, style oauth2.AuthStyle, scopes ...string) *oauth2.Config {
	e := p.Endpoints()
	c := p.Config()
	return &oauth2.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: e.AuthURL, TokenURL: e.TokenURL, AuthStyle: style},
		RedirectURL:  callback,
		Scopes:       scopes,
	}
}

// authorize follows the auto-approve redirect for login and returns the
// redirect's query (code and state, or error).
func authorize(t *testing.T, authURL, login string) url.Values {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("fake_auto", "approve")
	if login != "" {
		q.Set("fake_user", login)
	}
	u.RawQuery = q.Encode()
	resp, err := noFollow.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want 302", resp.StatusCode)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != callback {
		t.Fatalf("redirected to %s, want %s", got, callback)
	}
	return loc.Query()
}

// login runs the authorization step with PKCE and returns the code.
func login(t *testing.T, oc *oauth2.Config, verifier, user string, opts ...oauth2.AuthCodeOption) string {
	t.Helper()
	opts = append(opts, oauth2.S256ChallengeOption(verifier))
	q := authorize(t, oc.AuthCodeURL("st-123", opts...), user)
	if q.Get("state") != "st-123" {
		t.Fatalf("state = %q, want st-123 (query %v)", q.Get("state"), q)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in redirect: %v", q)
	}
	return q.Get("code")
}

// retrieveError asserts err is an *oauth2.RetrieveError with the code and
// HTTP status given.
func retrieveError(t *testing.T, err error, code string, status int) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want *oauth2.RetrieveError %s", err, err, code)
	}
	if re.ErrorCode != code {
		t.Errorf("error code %q (%s), want %q", re.ErrorCode, re.ErrorDescription, code)
	}
	if re.Response.StatusCode != status {
		t.Errorf("HTTP status %d, want %d", re.Response.StatusCode, status)
	}
}

// apiGet requests url with an Authorization header (none if auth is "") and
// returns the status, headers and decoded JSON body.
func apiGet(t *testing.T, rawURL, auth string) (int, http.Header, any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("GET %s: body is not JSON: %v: %s", rawURL, err, b)
		}
	}
	return resp.StatusCode, resp.Header, v
}

// postForm posts a form with optional Basic credentials and headers.
func postForm(t *testing.T, rawURL string, form url.Values, basic []string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(basic[0], basic[1])
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// field walks a decoded JSON value: field(v, "error", "message").
func field(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// clock is a settable fake clock for Config.Now. The server reads it from
// its own goroutines, hence the mutex.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

func htmlUnescape(s string) string { return html.UnescapeString(s) }

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

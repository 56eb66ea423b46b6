package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/sdk/client/clienttest"
)

// loggedIn logs in against a fresh fake and returns it, the config and the
// token.
func loggedIn(t *testing.T) (*clienttest.Server, Config, *Token) {
	t.Helper()
	fake := clienttest.NewForTest(t)
	cfg := testConfig(t, fake)
	tok, err := Login(context.Background(), cfg, &testUI{t: t, fake: fake, script: []string{"$"}})
	if err != nil {
		t.Fatal(err)
	}
	return fake, cfg, tok
}

// expireStored makes the stored access token look expired to the client
// (the fake still accepts it).
func expireStored(t *testing.T, cfg Config) *Token {
	t.Helper()
	tok, err := cfg.Store.Load()
	if err != nil {
		t.Fatal(err)
	}
	tok.Expiry = time.Now().Add(10 * time.Second) // within RefreshMargin
	if err := cfg.Store.Save(tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

func get(t *testing.T, hc *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTransportAddsBearerOnlyForItsServer(t *testing.T) {
	fake, cfg, tok := loggedIn(t)
	var otherAuthz string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherAuthz = r.Header.Get("Authorization")
	}))
	defer other.Close()

	hc := &http.Client{Transport: NewTransport(cfg, nil)}
	if code, _ := get(t, hc, fake.URL+"/api/auth/me"); code != 200 {
		t.Fatalf("me: %d", code)
	}
	if got := fake.LastAuthorization(); got != "Bearer "+tok.AccessToken {
		t.Errorf("Authorization %q", got)
	}
	get(t, hc, other.URL+"/")
	if otherAuthz != "" {
		t.Errorf("another origin received Authorization %q", otherAuthz)
	}
	if fake.Refreshes() != 0 {
		t.Errorf("%d refreshes for a fresh token", fake.Refreshes())
	}
}

func TestTransportConcurrentExpiredTokenRefreshesOnce(t *testing.T) {
	fake, cfg, _ := loggedIn(t)
	old := expireStored(t, cfg)
	fake.RefreshDelay = 100 * time.Millisecond
	hc := &http.Client{Transport: NewTransport(cfg, nil)}

	var wg sync.WaitGroup
	codes := make([]int, 20)
	auths := make([]string, 20)
	var mu sync.Mutex
	for i := range 20 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, fake.URL+"/api/echo", strings.NewReader("hello"))
			resp, err := hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			codes[i] = resp.StatusCode
			auths[i] = resp.Request.Header.Get("Authorization")
			mu.Unlock()
		})
	}
	wg.Wait()
	if n := fake.Refreshes(); n != 1 {
		t.Errorf("%d refreshes for 20 concurrent requests, want 1", n)
	}
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: %d", i, c)
		}
	}
	saved, err := cfg.Store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if saved.RefreshToken == old.RefreshToken || !fake.RefreshTokenValid(saved.RefreshToken) || fake.RefreshTokenValid(old.RefreshToken) {
		t.Error("the rotated pair was not saved")
	}
	for i, a := range auths {
		if a != "Bearer "+saved.AccessToken {
			t.Errorf("request %d used %q, want the refreshed token", i, a)
			break
		}
	}
}

func TestTransport401RefreshesAndRetriesOnce(t *testing.T) {
	fake, cfg, _ := loggedIn(t)
	hc := &http.Client{Transport: NewTransport(cfg, nil)}

	// The server stops accepting the access token (still unexpired for the
	// client): one refresh, one retry, with the body sent again.
	fake.RevokeAccess()
	resp, err := hc.Post(fake.URL+"/api/echo", "text/plain", bytes.NewReader([]byte("payload")))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "payload" {
		t.Fatalf("after retry: %d %q", resp.StatusCode, body)
	}
	if fake.Refreshes() != 1 || fake.APICalls() != 2 {
		t.Errorf("refreshes %d, API calls %d; want 1 and 2", fake.Refreshes(), fake.APICalls())
	}

	// A 401 on the retry too is returned, not retried again.
	fake.Fail401(5)
	code, _ := get(t, hc, fake.URL+"/api/echo")
	if code != 401 {
		t.Errorf("status %d, want the 401", code)
	}
	if fake.Refreshes() != 2 || fake.APICalls() != 4 {
		t.Errorf("refreshes %d, API calls %d; want 2 and 4 (one refresh, one retry)", fake.Refreshes(), fake.APICalls())
	}

	// A body that cannot be replayed: no refresh, no retry.
	fake.Fail401(1)
	req, _ := http.NewRequest(http.MethodPost, fake.URL+"/api/echo", io.NopCloser(strings.NewReader("once")))
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || fake.Refreshes() != 2 || fake.APICalls() != 5 {
		t.Errorf("unreplayable body: status %d, refreshes %d, API calls %d; want 401, 2, 5", resp.StatusCode, fake.Refreshes(), fake.APICalls())
	}
}

func TestTransport401WithJustRefreshedTokenIsNotRetried(t *testing.T) {
	fake, cfg, _ := loggedIn(t)
	expireStored(t, cfg)
	fake.Fail401(1)
	hc := &http.Client{Transport: NewTransport(cfg, nil)}
	if code, _ := get(t, hc, fake.URL+"/api/echo"); code != 401 {
		t.Errorf("status %d, want 401", code)
	}
	if fake.Refreshes() != 1 || fake.APICalls() != 1 {
		t.Errorf("refreshes %d, API calls %d; want 1 and 1", fake.Refreshes(), fake.APICalls())
	}
}

func TestTransportInvalidGrantLogsOut(t *testing.T) {
	fake, cfg, _ := loggedIn(t)
	expireStored(t, cfg)
	fake.RevokeAll()
	hc := &http.Client{Transport: NewTransport(cfg, nil)}
	_, err := hc.Get(fake.URL + "/api/echo")
	if !errors.Is(err, ErrNotLoggedIn) || !IsCode(err, CodeInvalidGrant) || !strings.Contains(err.Error(), "grape login") {
		t.Fatalf("err = %v, want ErrNotLoggedIn telling to run grape login", err)
	}
	if _, err := cfg.Store.Load(); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("the stored login is still there: %v", err)
	}
	if fake.APICalls() != 0 {
		t.Errorf("%d API calls made without a token", fake.APICalls())
	}
}

func TestValidToken(t *testing.T) {
	fake, cfg, tok := loggedIn(t)
	got, err := ValidToken(context.Background(), cfg)
	if err != nil || got.AccessToken != tok.AccessToken || fake.Refreshes() != 0 {
		t.Fatalf("fresh: %v, %v, %d refreshes", got, err, fake.Refreshes())
	}
	expireStored(t, cfg)
	got, err = ValidToken(context.Background(), cfg)
	if err != nil || got.AccessToken == tok.AccessToken || !fake.AccessTokenValid(got.AccessToken) || fake.Refreshes() != 1 {
		t.Fatalf("expiring: %v, %v, %d refreshes", got, err, fake.Refreshes())
	}
	if saved, _ := cfg.Store.Load(); saved.AccessToken != got.AccessToken {
		t.Error("refreshed token not saved")
	}

	other := cfg
	other.Server = "https://elsewhere.example"
	if _, err := ValidToken(context.Background(), other); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("for another server: %v, want ErrNotLoggedIn", err)
	}
	cfg.Store.Delete()
	if _, err := ValidToken(context.Background(), cfg); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("without a login: %v", err)
	}
}

// A refresh whose caller gives up still completes and saves the rotated
// pair: losing it would leave only the spent refresh token.
func TestRefreshSurvivesCancelledCaller(t *testing.T) {
	fake, cfg, _ := loggedIn(t)
	old := expireStored(t, cfg)
	fake.RefreshDelay = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := ValidToken(ctx, cfg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if saved, err := cfg.Store.Load(); err == nil && saved.RefreshToken != old.RefreshToken {
			if !fake.RefreshTokenValid(saved.RefreshToken) {
				t.Error("saved refresh token is not valid")
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the rotated pair was never saved")
}

// Another process refreshed meanwhile: its pair is used, not refreshed
// again (which would reuse a spent refresh token).
func TestRefreshUsesPairSavedByAnotherProcess(t *testing.T) {
	fake, cfg, _ := loggedIn(t)
	tr := NewTransport(cfg, nil)
	if _, err := tr.Token(context.Background()); err != nil { // cache the pair
		t.Fatal(err)
	}
	expireStored(t, cfg)
	// The "other process".
	fresh, err := ValidToken(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Make our cached copy look expired: a new Transport built from it
	// would not do; reach into the cache.
	tr.s.mu.Lock()
	tr.s.tok.Expiry = time.Now()
	tr.s.mu.Unlock()
	got, err := tr.Token(context.Background())
	if err != nil || got.AccessToken != fresh.AccessToken {
		t.Fatalf("got %v, %v; want the other process's pair", got, err)
	}
	if fake.Refreshes() != 1 {
		t.Errorf("%d refreshes, want 1", fake.Refreshes())
	}
}

func TestLogout(t *testing.T) {
	fake, cfg, tok := loggedIn(t)
	if err := Logout(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if fake.RefreshTokenValid(tok.RefreshToken) || fake.Logouts() != 1 {
		t.Error("login not revoked on the server")
	}
	if _, err := cfg.Store.Load(); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("file still there: %v", err)
	}
	if err := Logout(context.Background(), cfg); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("second logout: %v", err)
	}
}

func TestLogoutWithServerDownStillDeletesFile(t *testing.T) {
	fake, cfg, _ := loggedIn(t)
	fake.Close()
	err := Logout(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "could not revoke") {
		t.Fatalf("err = %v, want the revoke failure", err)
	}
	if _, err := cfg.Store.Load(); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("file still there: %v", err)
	}
}

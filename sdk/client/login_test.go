package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/sdk/client/clienttest"
)

// testUI plays the user: Open "visits" the login URL like a browser and
// approves the request on the fake; Prompt answers from a script, where
// "$" is the code Arbor showed and "!" a wrong code of the right shape.
type testUI struct {
	t      *testing.T
	fake   *clienttest.Server
	script []string
	// beforePrompt, if set, runs once after approval (an attacker, say).
	afterOpen func(deviceCode string)

	mu       sync.Mutex
	opened   []string
	code     string
	prompts  int
	rejected []int
}

func (u *testUI) Open(loginURL string) error {
	u.mu.Lock()
	u.opened = append(u.opened, loginURL)
	u.mu.Unlock()
	resp, err := http.Get(loginURL)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		u.t.Errorf("login page answered %d", resp.StatusCode)
	}
	lu, _ := url.Parse(loginURL)
	dc := lu.Query().Get("device_code")
	code, err := u.fake.Approve(dc)
	if err != nil {
		return err
	}
	u.mu.Lock()
	u.code = code
	u.mu.Unlock()
	if u.afterOpen != nil {
		u.afterOpen(dc)
	}
	return nil
}

func (u *testUI) Prompt(ctx context.Context) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.prompts >= len(u.script) {
		return "", errors.New("script exhausted")
	}
	s := u.script[u.prompts]
	u.prompts++
	switch s {
	case "$":
		// As a user may type it: lower case, a dash, spaces around.
		return "  " + strings.ToLower(u.code[:3]) + "-" + u.code[3:] + " \n", nil
	case "!":
		return wrongCode(u.code), nil
	}
	return s, nil
}

func (u *testUI) CodeRejected(err error, left int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.rejected = append(u.rejected, left)
}

func wrongCode(code string) string {
	b := []byte(code)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func testConfig(t *testing.T, fake *clienttest.Server) Config {
	t.Helper()
	return Config{
		Server:     fake.URL,
		ClientName: "grape",
		ClientInfo: map[string]string{"hostname": "test", "os": "linux/amd64"},
		Store:      FileStore{Path: t.TempDir() + "/grape/auth.json"},
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestLoginHappyPath(t *testing.T) {
	fake := clienttest.NewForTest(t)
	cfg := testConfig(t, fake)
	ui := &testUI{t: t, fake: fake, script: []string{"$"}}
	tok, err := Login(context.Background(), cfg, ui)
	if err != nil {
		t.Fatal(err)
	}
	starts, exchanges := fake.Starts(), fake.Exchanges()
	if len(starts) != 1 || len(exchanges) != 1 {
		t.Fatalf("starts %d, exchanges %d, want 1 and 1", len(starts), len(exchanges))
	}
	st, ex := starts[0], exchanges[0]
	if !uuidV4.MatchString(st.DeviceCode) || ex.DeviceCode != st.DeviceCode {
		t.Errorf("device code %q / %q, want one UUID v4", st.DeviceCode, ex.DeviceCode)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`).MatchString(ex.CodeVerifier) {
		t.Errorf("verifier %q is not 43-128 characters of the PKCE alphabet", ex.CodeVerifier)
	}
	if st.CodeChallenge == "" || st.CodeChallenge != S256(ex.CodeVerifier) {
		t.Errorf("challenge %q != S256(verifier) %q", st.CodeChallenge, S256(ex.CodeVerifier))
	}
	if strings.Contains(ui.opened[0], ex.CodeVerifier) {
		t.Error("the verifier appears in the login URL")
	}
	if ex.VerificationCode != ui.code {
		t.Errorf("sent code %q, want normalised %q", ex.VerificationCode, ui.code)
	}
	if st.ClientName != "grape" || st.ClientInfo["hostname"] != "test" {
		t.Errorf("client name/info %q %v", st.ClientName, st.ClientInfo)
	}
	if !strings.HasPrefix(ui.opened[0], fake.URL+"/cli/login?device_code="+st.DeviceCode) {
		t.Errorf("opened %q", ui.opened[0])
	}
	if tok.User.Login != "ada" || tok.User.ID != "usr_fake1" || tok.Server != fake.URL {
		t.Errorf("token user/server %+v %q", tok.User, tok.Server)
	}
	if d := time.Until(tok.Expiry); d < 59*time.Minute || d > time.Hour {
		t.Errorf("expiry in %v, want about 1h", d)
	}
	if d := time.Until(tok.RefreshExpiry); d < 89*24*time.Hour {
		t.Errorf("refresh expiry in %v, want about 90 days", d)
	}
	if !fake.AccessTokenValid(tok.AccessToken) || !fake.RefreshTokenValid(tok.RefreshToken) {
		t.Error("returned tokens are not the ones issued")
	}
	saved, err := cfg.Store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if saved.AccessToken != tok.AccessToken || saved.RefreshToken != tok.RefreshToken || saved.User != tok.User || !saved.Expiry.Equal(tok.Expiry) {
		t.Errorf("saved %+v, returned %+v", saved, tok)
	}
}

func TestLoginFallsBackToLoginPageWithoutStart(t *testing.T) {
	fake := clienttest.NewForTest(t)
	fake.NoStart = true
	cfg := testConfig(t, fake)
	ui := &testUI{t: t, fake: fake, script: []string{"$"}}
	if _, err := Login(context.Background(), cfg, ui); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(ui.opened[0])
	if u.Path != "/cli/login" || !uuidV4.MatchString(u.Query().Get("device_code")) {
		t.Errorf("opened %q", ui.opened[0])
	}
	ex := fake.Exchanges()[0]
	if got := u.Query().Get("code_challenge"); got != S256(ex.CodeVerifier) {
		t.Errorf("challenge in URL %q, want S256(verifier)", got)
	}
}

func TestLoginWrongCodeThenRight(t *testing.T) {
	fake := clienttest.NewForTest(t)
	cfg := testConfig(t, fake)
	// A malformed code is refused locally; a wrong one costs an attempt.
	ui := &testUI{t: t, fake: fake, script: []string{"K0QX2", "!", "$"}}
	if _, err := Login(context.Background(), cfg, ui); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Exchanges()); n != 2 {
		t.Errorf("%d exchanges, want 2 (the malformed code is not sent)", n)
	}
	if want := []int{4, 3}; len(ui.rejected) != 2 || ui.rejected[0] != want[0] || ui.rejected[1] != want[1] {
		t.Errorf("rejections told with attempts left %v, want %v", ui.rejected, want)
	}
}

func TestLoginGivesUpAfterFiveWrongCodes(t *testing.T) {
	fake := clienttest.NewForTest(t)
	cfg := testConfig(t, fake)
	ui := &testUI{t: t, fake: fake, script: []string{"!", "!", "!", "!", "!", "$"}}
	_, err := Login(context.Background(), cfg, ui)
	if err == nil || !IsCode(err, CodeInvalidCode) || !strings.Contains(err.Error(), "grape login") {
		t.Fatalf("err = %v, want invalid_code after 5 attempts", err)
	}
	if ui.prompts != 5 || len(fake.Exchanges()) != 5 {
		t.Errorf("%d prompts, %d exchanges, want 5 and 5", ui.prompts, len(fake.Exchanges()))
	}
	if _, err := cfg.Store.Load(); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("store after failed login: %v", err)
	}
}

func TestLoginBurned(t *testing.T) {
	fake := clienttest.NewForTest(t)
	cfg := testConfig(t, fake)
	ui := &testUI{t: t, fake: fake, script: []string{"$", "$"}}
	// Someone else burns the request with 5 wrong codes before the user
	// types the right one.
	ui.afterOpen = func(dc string) {
		for range 5 {
			err := postJSON(context.Background(), &cfg, fake.URL, PathExchange,
				map[string]string{"device_code": dc, "verification_code": wrongCode(ui.code), "code_verifier": strings.Repeat("x", 43)}, nil)
			if !IsCode(err, CodeInvalidCode) {
				t.Errorf("attacker got %v", err)
			}
		}
	}
	_, err := Login(context.Background(), cfg, ui)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodeDeviceCodeBurned || ae.Status != 400 {
		t.Fatalf("err = %v, want device_code_burned", err)
	}
	if !strings.Contains(err.Error(), "grape login") {
		t.Errorf("error %q does not say what to do", err)
	}
	if ui.prompts != 1 {
		t.Errorf("prompted %d times after a burned request, want 1", ui.prompts)
	}
}

func TestLoginExpired(t *testing.T) {
	fake := clienttest.NewForTest(t)
	fake.RequestTTL = time.Nanosecond
	cfg := testConfig(t, fake)
	_, err := Login(context.Background(), cfg, &testUI{t: t, fake: fake, script: []string{"$"}})
	if !IsCode(err, CodeExpiredDeviceCode) {
		t.Fatalf("err = %v, want expired_device_code", err)
	}
}

func TestLoginRefusesPlainHTTPOffLoopback(t *testing.T) {
	_, err := Login(context.Background(), Config{Server: "http://arbor.example"}, &testUI{})
	if err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("err = %v", err)
	}
}

func TestNormalizeCode(t *testing.T) {
	for in, want := range map[string]string{
		" k7qx2m\n": "K7QX2M",
		"K7Q-X2M":   "K7QX2M",
		"k7q x2m":   "K7QX2M",
		"K7Q–X2M":   "K7QX2M",
	} {
		if got := NormalizeCode(in); got != want {
			t.Errorf("NormalizeCode(%q) = %q, want %q", in, got, want)
		}
	}
	if checkCode("K7QX2M") != nil || checkCode("K7QX2") == nil || checkCode("K7QX0M") == nil || checkCode("") == nil {
		t.Error("checkCode")
	}
}

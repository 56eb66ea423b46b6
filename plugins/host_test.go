package plugins_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
)

func TestWellBehavedPlugin(t *testing.T) {
	h, _ := newHost(t, plugins.Policy{})
	f := newFake(t)
	p := load(t, h, "good", f.config())
	ctx := context.Background()

	t.Run("authorize", func(t *testing.T) {
		u, err := p.AuthorizeURL(ctx, plugins.AuthorizeInput{
			Purpose: abi.PurposeGit, RedirectURI: "https://arbor.example/cb", State: "st", CodeChallenge: "ch",
		})
		if err != nil {
			t.Fatal(err)
		}
		want := f.srv.URL + "/oauth/authorize?build=v1&client_id=client-123&code_challenge=ch&code_challenge_method=S256" +
			"&redirect_uri=https%3A%2F%2Farbor.example%2Fcb&response_type=code&scope=repo&state=st"
		if u != want {
			t.Errorf("AuthorizeURL\n got %s\nwant %s", u, want)
		}
		v, err := p.AuthorizeParams(ctx, plugins.AuthorizeInput{Purpose: abi.PurposeLogin})
		if err != nil {
			t.Fatal(err)
		}
		if got := v.Get("scope"); got != "read:user user:email" {
			t.Errorf("login scope = %q, want the manifest's login scopes", got)
		}
	})

	t.Run("exchange", func(t *testing.T) {
		tok, err := p.Exchange(ctx, plugins.ExchangeInput{Code: "good-code", RedirectURI: "https://arbor.example/cb", CodeVerifier: "v"})
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken != "at-1" || tok.RefreshToken != "rt-1" || tok.ExpiresIn != 3600 || !slices.Equal(tok.Scopes, []string{"read:user", "repo"}) {
			t.Errorf("token = %+v", tok)
		}
		tok, err = p.Exchange(ctx, plugins.ExchangeInput{Code: "good-code", CodeVerifier: "form"})
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken != "at-form" || !slices.Equal(tok.Scopes, []string{"repo", "user"}) {
			t.Errorf("form-encoded token = %+v", tok)
		}
	})

	t.Run("exchange invalid_grant", func(t *testing.T) {
		_, err := p.Exchange(ctx, plugins.ExchangeInput{Code: "stale"})
		var pe *plugins.Error
		if !errors.As(err, &pe) || pe.Code != abi.CodeInvalidGrant || pe.Retryable || pe.Status != 400 {
			t.Fatalf("err = %#v, want invalid_grant with status 400", err)
		}
		if !strings.Contains(pe.Error(), "plugin good: exchange: invalid_grant") {
			t.Errorf("message %q does not name plugin, operation and code", pe.Error())
		}
	})

	t.Run("refresh uses basic auth and rotates", func(t *testing.T) {
		tok, err := p.Refresh(ctx, plugins.RefreshInput{RefreshToken: "rt-1"})
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken != "at-rt-1" || tok.RefreshToken != "rt-1-next" || tok.ExpiresIn != 7200 || tok.TokenType != "bearer/v1" {
			t.Errorf("token = %+v", tok)
		}
		f.mu.Lock()
		last := f.auth[len(f.auth)-1]
		f.mu.Unlock()
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(clientID+":"+clientSecret))
		if last != want {
			t.Errorf("refresh Authorization = %q, want client Basic auth", last)
		}
		_, err = p.Refresh(ctx, plugins.RefreshInput{RefreshToken: "revoked"})
		if plugins.CodeOf(err) != abi.CodeInvalidGrant {
			t.Errorf("refresh of a revoked token: %v, want invalid_grant", err)
		}
	})

	t.Run("user", func(t *testing.T) {
		u, err := p.User(ctx, "at-1")
		if err != nil {
			t.Fatal(err)
		}
		if *u != (abi.User{ID: "4242", Login: "octo", Name: "Octo Cat", Email: "octo@example.com", EmailVerified: true}) {
			t.Errorf("user = %+v", u)
		}
		_, err = p.User(ctx, "expired")
		if plugins.CodeOf(err) != abi.CodeInvalidToken {
			t.Errorf("user with a bad token: %v, want invalid_token", err)
		}
	})

	t.Run("repos with pagination", func(t *testing.T) {
		var all []abi.Repo
		cursor := ""
		pages := 0
		for {
			page, err := p.Repos(ctx, plugins.ReposInput{AccessToken: "at-1", Cursor: cursor, PerPage: 30})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			all = append(all, page.Repos...)
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if pages != 4 || len(all) != 100 {
			t.Fatalf("got %d repos in %d pages, want 100 in 4", len(all), pages)
		}
		r := all[99]
		if r.ID != "1099" || r.FullName != "octo/repo-99" || r.Private || r.DefaultBranch != "main" || r.CloneURL != "https://github.example/octo/repo-99.git" {
			t.Errorf("last repo = %+v", r)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		if err := p.Revoke(ctx, plugins.RevokeInput{AccessToken: "at-1"}); err != nil {
			t.Fatal(err)
		}
		if c := f.called(); c[len(c)-1] != "POST /oauth/revoke" {
			t.Errorf("last call %q", c[len(c)-1])
		}
	})

	st := p.Stats()
	if st.Discarded != 0 || st.Created < 1 || st.Version != "1.0.0" {
		t.Errorf("stats = %+v: a well-behaved plugin must not lose instances", st)
	}
}

func TestUnsupportedOperation(t *testing.T) {
	h, _ := newHost(t, plugins.Policy{})
	p := load(t, h, "hostile", plugins.PluginConfig{})
	_, err := p.Repos(context.Background(), plugins.ReposInput{AccessToken: "x"})
	var pe *plugins.Error
	if !errors.As(err, &pe) || pe.Code != abi.CodeUnsupported {
		t.Fatalf("Repos on a login-only plugin: %v, want unsupported", err)
	}
}

func TestLoadRefusesOtherABIVersion(t *testing.T) {
	h, _ := newHost(t, plugins.Policy{})
	_, err := h.LoadDir(context.Background(), pluginDir("abiv2"), plugins.PluginConfig{})
	if err == nil {
		t.Fatal("a module built for ABI v2 loaded")
	}
	if !errors.Is(err, abi.ErrABIVersion) || !strings.Contains(err.Error(), "built for ABI v2") ||
		!strings.Contains(err.Error(), "supports ABI v1") {
		t.Errorf("error %q does not say the module is for ABI v2 and the host speaks v1", err)
	}

	// The same through the manifest.
	dir := t.TempDir()
	copyPlugin(t, "good", dir)
	rewriteManifest(t, dir, func(m map[string]any) { m["abi_version"] = 2; m["future_key"] = true })
	_, err = h.LoadDir(context.Background(), dir, plugins.PluginConfig{})
	if !errors.Is(err, abi.ErrABIVersion) || !strings.Contains(err.Error(), "manifest declares ABI v2") {
		t.Errorf("manifest for ABI v2: %v", err)
	}
}

func TestLoadRefusesMissingExport(t *testing.T) {
	h, _ := newHost(t, plugins.Policy{})
	_, err := h.LoadDir(context.Background(), pluginDir("missingexport"), plugins.PluginConfig{})
	if err == nil {
		t.Fatal("a module without arbor_exchange loaded")
	}
	for _, want := range []string{
		`plugin "missingexport"`,
		"missing export arbor_exchange func(i32, i32) i64",
		`operation "exchange"`,
		"export arbor_user has signature func(i32) i64, want func(i32, i32) i64",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not contain %q", err, want)
		}
	}
}

func TestLoadRefusesHashMismatch(t *testing.T) {
	h, _ := newHost(t, plugins.Policy{})
	dir := t.TempDir()
	copyPlugin(t, "good", dir)
	// Swap in another module behind the manifest's back.
	b, err := os.ReadFile(filepath.Join(pluginDir("hostile"), "hostile.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "good.wasm"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = h.LoadDir(context.Background(), dir, plugins.PluginConfig{})
	if err == nil || !strings.Contains(err.Error(), "but the manifest says") || !strings.Contains(err.Error(), "rebuild the plugin") {
		t.Fatalf("hash mismatch: %v", err)
	}
}

func TestLoadRefusesOperationMismatch(t *testing.T) {
	h, _ := newHost(t, plugins.Policy{})
	dir := t.TempDir()
	copyPlugin(t, "hostile", dir)
	// The module implements exchange and user; claim refresh too.
	rewriteManifest(t, dir, func(m map[string]any) {
		m["operations"] = []string{"authorize", "exchange", "refresh", "user"}
	})
	_, err := h.LoadDir(context.Background(), dir, plugins.PluginConfig{})
	if err == nil {
		t.Fatal("loaded although the manifest claims refresh")
	}
	// The SDK exports every operation, so the mismatch is caught by asking
	// the module what it implements.
	if !strings.Contains(err.Error(), "lists operations [authorize,exchange,refresh,user] but the module implements [authorize,exchange,user]") {
		t.Errorf("error %q", err)
	}
}

func TestLoadRefusesBadManifest(t *testing.T) {
	h, _ := newHost(t, plugins.Policy{})
	for name, edit := range map[string]func(map[string]any){
		"unknown key": func(m map[string]any) { m["allowed_host"] = []string{"x"} },
		"bad kind":    func(m map[string]any) { m["kind"] = "scm" },
		"unknown op": func(m map[string]any) {
			m["operations"] = []string{"authorize", "exchange", "user", "repos", "teleport"}
		},
		"bad host":        func(m map[string]any) { m["allowed_hosts"] = []string{"https://x.example/"} },
		"module path":     func(m map[string]any) { m["module"] = "../good.wasm" },
		"memory too low":  func(m map[string]any) { m["limits"] = map[string]any{"memory_pages": 8} },
		"missing version": func(m map[string]any) { delete(m, "version") },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			copyPlugin(t, "good", dir)
			rewriteManifest(t, dir, edit)
			if _, err := h.LoadDir(context.Background(), dir, plugins.PluginConfig{}); err == nil {
				t.Fatal("loaded")
			} else {
				t.Log(err)
			}
		})
	}
}

// TestRateLimitedRetryAfter: a real plugin's rate_limited result reaches
// callers with RetryAfter as a duration: the provider's value read inside
// the guest (GitHub's secondary limit, a 403 with retry-after), the value a
// plugin reports clamped to 1 s .. 1 h, and 60 s when the result has none
// (what a plugin built before Result.RetryAfter existed encodes).
func TestRateLimitedRetryAfter(t *testing.T) {
	h, _ := newHost(t, plugins.Policy{})
	f := newFake(t)
	good := load(t, h, "good", f.config())
	_, err := good.User(context.Background(), "at-limited")
	var pe *plugins.Error
	if !errors.As(err, &pe) || pe.Code != abi.CodeRateLimited || !pe.Retryable || pe.Status != 403 || pe.RetryAfter != 37*time.Second {
		t.Fatalf("secondary rate limit: %#v", err)
	}
	if plugins.RetryAfterOf(err) != 37*time.Second {
		t.Fatalf("RetryAfterOf = %v", plugins.RetryAfterOf(err))
	}
	// Other errors carry none.
	if _, err := good.User(context.Background(), "at-wrong"); plugins.CodeOf(err) != abi.CodeInvalidToken || plugins.RetryAfterOf(err) != 0 {
		t.Fatalf("invalid token: %v, retry after %v", err, plugins.RetryAfterOf(err))
	}

	hostile := load(t, h, "hostile", plugins.PluginConfig{ClientID: "c", ClientSecret: "s"})
	for _, c := range []struct {
		arg  string
		want time.Duration
	}{
		{"0", 60 * time.Second}, // absent: the documented default
		{"-5", 60 * time.Second},
		{"1", time.Second},
		{"37", 37 * time.Second},
		{"3600", time.Hour},
		{"999999", time.Hour},
	} {
		_, err := exchangeCmd(context.Background(), hostile, "ratelimit:"+c.arg)
		if !errors.As(err, &pe) || pe.Code != abi.CodeRateLimited || pe.RetryAfter != c.want {
			t.Errorf("RetryAfter %s: %#v, want %v", c.arg, err, c.want)
		}
	}
}

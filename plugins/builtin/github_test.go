package builtin_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// The tests below drive the embedded github module against the fake
// GitHub App (fakeprovider.GitHubApp, the default) or OAuth app.

func githubEnv(t *testing.T, fake fakeprovider.Config) *plugintest.Env {
	return plugintest.StartForTest(t, plugintest.Suite{Plugin: plugin(t, "github"), Fake: fake, ExpectClientAuth: fakeprovider.ClientAuthBody})
}

// TestGitHubInstallations: a GitHub App user token lists repositories
// through /user/installations and
// /user/installations/{id}/repositories, never /user/repos, and sees
// exactly the installation's repositories: all of them, a selected
// subset, or none. Paging follows the requested page size.
func TestGitHubInstallations(t *testing.T) {
	e := githubEnv(t, fakeprovider.GitHubApp())
	ctx := t.Context()
	for _, tc := range []struct {
		login     string
		want      int // repositories the token may see
		owned     int // repositories the user owns
		perPage   int
		wantPages int
	}{
		{"octocat", 250, 250, 0, 3},    // installed for all; 100 a page
		{"octocat", 250, 250, 40, 7},   // per_page honoured
		{"monalisa", 45, 60, 20, 3},    // installed for 45 selected repositories
		{"hubot", 0, 2, 0, 1},          // not installed: one empty page
		{"monalisa", 45, 60, 100, 1},   // one page holds them all
		{"octocat", 250, 250, 1000, 3}, // too large a page size is capped at 100
	} {
		t.Run(tc.login, func(t *testing.T) {
			e.Fake.Reset()
			tok, err := e.Login(ctx, tc.login, abi.PurposeGit)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			pages, cursor := 0, ""
			for range 20 {
				page, err := e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: tok.AccessToken, Cursor: cursor, PerPage: tc.perPage})
				if err != nil {
					t.Fatalf("page %d: %v", pages+1, err)
				}
				pages++
				for _, r := range page.Repos {
					names = append(names, r.FullName)
				}
				if cursor = page.NextCursor; cursor == "" {
					break
				}
				if strings.Contains(cursor, "://") || strings.Contains(cursor, tok.AccessToken) {
					t.Errorf("cursor %q is a URL or carries the token", cursor)
				}
			}
			var want []string
			for _, r := range e.Fake.VisibleRepos(tc.login) {
				want = append(want, r.FullName)
			}
			slices.Sort(names)
			slices.Sort(want)
			if len(want) != tc.want || !slices.Equal(names, want) || pages != tc.wantPages {
				t.Errorf("%d repositories in %d pages, want %d (of %d owned) in %d; got %.3q…", len(names), pages, tc.want, tc.owned, tc.wantPages, names)
			}
			if c := e.Fake.CallsTo(fakeprovider.EndpointRepos); slices.ContainsFunc(c, func(c fakeprovider.Call) bool { return c.Path == "/user/repos" }) {
				t.Errorf("a GitHub App token listed /user/repos: %+v", c)
			}
			if n := len(e.Fake.CallsTo(fakeprovider.EndpointInstallations)); n < 1 || n > pages {
				t.Errorf("%d calls to /user/installations for %d pages", n, pages)
			}
			for _, c := range e.Fake.Calls() {
				if c.Status != 200 && c.Endpoint != fakeprovider.EndpointAuthorize && c.Status != 302 {
					t.Errorf("call %s %s answered %d", c.Method, c.Path, c.Status)
				}
			}
		})
	}

	// Cursors are the plugin's own: a URL (even on the API host), a
	// foreign installation path or a malformed one is invalid_request and
	// nothing is sent.
	tok, err := e.Login(ctx, "octocat", abi.PurposeGit)
	if err != nil {
		t.Fatal(err)
	}
	before := len(e.Fake.Calls())
	for _, cursor := range []string{
		e.Fake.URL() + "/user/installations/41000001/repositories?page=2",
		"https://evil.example/user/repos?page=2",
		"i=../../evil&p=2&n=30", "i=41000001&p=0&n=30", "i=41000001&p=2&n=30&x=1", "i=41000001&i=2&p=2&n=30", "i=41000001&p=2&n=101",
	} {
		_, err := e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: tok.AccessToken, Cursor: cursor})
		if code(err) != abi.CodeInvalidRequest {
			t.Errorf("cursor %q: %v, want invalid_request", cursor, err)
		}
	}
	if calls := e.Fake.Calls()[before:]; len(calls) != 0 {
		t.Errorf("a bad cursor reached the provider: %+v", calls)
	}
}

// TestGitHubOAuthAppRepos: an OAuth app's gho_ token lists /user/repos,
// all of the user's repositories, and never the installation endpoints.
func TestGitHubOAuthAppRepos(t *testing.T) {
	e := githubEnv(t, fakeprovider.GitHubOAuthApp())
	tok, err := e.Login(t.Context(), "hubot", abi.PurposeGit)
	if err != nil {
		t.Fatal(err)
	}
	page, err := e.Plugin.Repos(t.Context(), plugins.ReposInput{AccessToken: tok.AccessToken})
	if err != nil || len(page.Repos) != 2 || page.NextCursor != "" {
		t.Fatalf("hubot's repositories: %+v, %v", page, err)
	}
	if n := len(e.Fake.CallsTo(fakeprovider.EndpointInstallations)); n != 0 {
		t.Errorf("%d calls to /user/installations with an OAuth app token", n)
	}
}

// TestGitHubEmailsRateLimited: a rate-limited /user/emails, primary or
// secondary (whose x-ratelimit-remaining is not 0), 403 or 429, makes User
// fail with rate_limited, retryable, instead of signing the user in with
// an unverified address; once the limit passes the verified address comes
// back.
func TestGitHubEmailsRateLimited(t *testing.T) {
	for name, fake := range map[string]func() fakeprovider.Config{"app": fakeprovider.GitHubApp, "oauth-app": fakeprovider.GitHubOAuthApp} {
		t.Run(name, func(t *testing.T) {
			e := githubEnv(t, fake())
			ctx := t.Context()
			tok, err := e.Login(ctx, "octocat", abi.PurposeLogin)
			if err != nil {
				t.Fatal(err)
			}
			for _, kind := range []fakeprovider.RateLimitKind{
				fakeprovider.RateLimitPrimary, fakeprovider.RateLimitPrimary429,
				fakeprovider.RateLimitSecondary, fakeprovider.RateLimitSecondary429,
			} {
				e.Fake.RateLimitNext(fakeprovider.EndpointEmails, 1, kind)
				u, err := e.Plugin.User(ctx, tok.AccessToken)
				var pe *plugins.Error
				if !errors.As(err, &pe) || pe.Code != abi.CodeRateLimited || !pe.Retryable || !strings.Contains(pe.Message, "rate limit") {
					t.Errorf("kind %d: User = %+v, %v; want rate_limited, retryable", kind, u, err)
				}
				c := e.Fake.CallsTo(fakeprovider.EndpointEmails)
				if last := c[len(c)-1]; !last.Injected || (last.Status != 403 && last.Status != 429) {
					t.Errorf("kind %d: the emails call %+v was not the injected rate limit", kind, last)
				}
			}
			u, err := e.Plugin.User(ctx, tok.AccessToken)
			if err != nil || u.Email != "octocat@example.com" || !u.EmailVerified {
				t.Errorf("after the limit: %+v, %v", u, err)
			}
		})
	}
}

// TestGitHubRevoke404: GitHub documents only 204 and 422 for DELETE
// /applications/{client_id}/grant, and the fake answers 404 both to a
// wrong client secret and to a dead grant. The plugin tells them apart
// with GET /user: a live token means the credentials were refused
// (invalid_client, the grant survives); a dead one means the grant is
// gone (invalid_token).
func TestGitHubRevoke404(t *testing.T) {
	e := githubEnv(t, fakeprovider.GitHubApp())
	ctx := t.Context()
	cfg := e.Config
	cfg.ClientSecret = "wrong-secret"
	wrong, err := e.Load(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.Login(ctx, "", abi.PurposeGit)
	if err != nil {
		t.Fatal(err)
	}
	err = wrong.Revoke(ctx, plugins.RevokeInput{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken})
	var pe *plugins.Error
	if !errors.As(err, &pe) || pe.Code != abi.CodeInvalidClient || pe.Retryable || !strings.Contains(pe.Message, "client secret") {
		t.Errorf("revoke with a wrong client secret: %v, want invalid_client naming the client secret", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") || strings.Contains(err.Error(), tok.AccessToken) {
		t.Errorf("the error carries a secret: %v", err)
	}
	if !e.Fake.ValidAccessToken(tok.AccessToken) {
		t.Fatal("the grant died although the revocation was refused")
	}
	if err := e.Plugin.Revoke(ctx, plugins.RevokeInput{AccessToken: tok.AccessToken}); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if err := wrong.Revoke(ctx, plugins.RevokeInput{AccessToken: tok.AccessToken}); code(err) != abi.CodeInvalidToken {
		t.Errorf("revoking a dead grant (even with a wrong secret): %v, want invalid_token", err)
	}
	if err := e.Plugin.Revoke(ctx, plugins.RevokeInput{AccessToken: tok.AccessToken}); code(err) != abi.CodeInvalidToken {
		t.Errorf("revoking again: %v, want invalid_token", err)
	}
}

// TestGitHubRefreshKillsOldToken: after a refresh the GitHub App's old
// access token is refused (invalid_token) and the fake records its use as
// a dead-token call; the refresh itself and the new token are not dead.
func TestGitHubRefreshKillsOldToken(t *testing.T) {
	e := githubEnv(t, fakeprovider.GitHubApp())
	ctx := t.Context()
	tok, err := e.Login(ctx, "", abi.PurposeGit)
	if err != nil {
		t.Fatal(err)
	}
	nt, err := e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: tok.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Plugin.User(ctx, nt.AccessToken); err != nil {
		t.Fatalf("the new access token: %v", err)
	}
	if d := e.Fake.DeadTokenCalls(); len(d) != 0 {
		t.Fatalf("dead-token calls before the old token was used: %+v", d)
	}
	if _, err := e.Plugin.User(ctx, tok.AccessToken); code(err) != abi.CodeInvalidToken {
		t.Errorf("the old access token after the refresh: %v, want invalid_token", err)
	}
	d := e.Fake.DeadTokenCalls()
	if len(d) != 1 || d[0].DeadToken != "replaced" || d[0].Token != fakeprovider.Fingerprint(tok.AccessToken) || d[0].Path != "/user" {
		t.Errorf("dead-token calls %+v, want the /user call with the replaced token", d)
	}
}

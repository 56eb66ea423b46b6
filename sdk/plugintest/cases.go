package plugintest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

// testCase is one row of the table.
type testCase struct {
	name, doc string
	// applies returns why the case does not apply, or "".
	applies func(e *Env) string
	// run reports failures to c; a returned error ends the case.
	run func(ctx context.Context, e *Env, c *checks) error
}

func always(*Env) string { return "" }

func needs(op abi.Op) func(*Env) string {
	return func(e *Env) string {
		if !e.has(op) {
			return "the manifest does not list the " + op.String() + " operation"
		}
		return ""
	}
}

// needsRefresh: the plugin refreshes and the fake issues refresh tokens.
func needsRefresh(e *Env) string {
	if why := needs(abi.OpRefresh)(e); why != "" {
		return why
	}
	if !e.Fake.Config().IssueRefreshTokens {
		return "the fake issues no refresh tokens (Config.IssueRefreshTokens)"
	}
	return ""
}

// maxUsers bounds the fake users a case signs in.
const maxUsers = 3

var allCases = []testCase{
	{"authorize", "the authorization URL: the provider's endpoint, response_type=code, client_id, redirect_uri, state, the manifest's scopes per purpose, the PKCE S256 challenge exactly when the manifest says pkce, no client secret; the provider accepts it",
		always, caseAuthorize},
	{"exchange", "a code is exchanged for the provider's tokens, with expiry, sending the PKCE verifier exactly when the manifest says pkce",
		always, caseExchange},
	{"exchange_bad_code", "a garbage or already used code is invalid_grant, not retryable",
		always, caseExchangeBadCode},
	{"exchange_transient", "a token endpoint answering 503 is provider_error, retryable, and the same code works afterwards",
		always, caseExchangeTransient},
	{"exchange_invalid_client", "a wrong client secret is invalid_client, not retryable",
		always, caseInvalidClient},
	{"client_auth", "token requests authenticate the client in the expected style (Suite.ExpectClientAuth), exactly one style",
		always, caseClientAuth},
	{"refresh", "a refresh token yields a working access token",
		needsRefresh, caseRefresh},
	{"refresh_rotation", "a rotating provider's old refresh token is refused (invalid_grant) after use and the new one works; a non-rotating provider's keeps working",
		needsRefresh, caseRotation},
	{"refresh_invalid_grant", "a garbage or revoked refresh token is invalid_grant, not retryable",
		needsRefresh, caseRefreshInvalidGrant},
	{"refresh_transient", "a token endpoint answering 503 during refresh is provider_error, retryable, and the refresh token still works",
		needsRefresh, caseRefreshTransient},
	{"revoke", "revocation kills the grant's tokens at the provider; a provider without revocation answers unsupported",
		always, caseRevoke},
	{"user", "each fake user's id (stable, distinct), login and e-mail address, verified only when the provider says so, with the login scopes",
		needs(abi.OpUser), caseUser},
	{"user_expired_token", "an expired access token is invalid_token, not retryable",
		needs(abi.OpUser), caseUserExpired},
	{"user_transient", "an API answering 503 is provider_error, retryable",
		needs(abi.OpUser), caseUserTransient},
	{"user_rate_limited", "an API answering 429 is rate_limited, retryable",
		needs(abi.OpUser), caseUserRateLimited},
	{"repos", "every fake user's repositories, paged to the end with the git scopes: the same count and names as the fake, private and default branch mapped; one request per page (per list and page where the provider lists per workspace), none repeated",
		needs(abi.OpRepos), caseRepos},
	{"repos_per_page", "a requested page size is honoured and paging still reaches the end, in as few pages as the provider's lists allow",
		needs(abi.OpRepos), caseReposPerPage},
	{"repos_expired_token", "an expired access token is invalid_token, not retryable",
		needs(abi.OpRepos), caseReposExpired},
}

// expectCode checks that err is a *plugins.Error with code and retryable.
func expectCode(err error, code abi.Code, retryable bool) error {
	if err == nil {
		return fmt.Errorf("got no error, want %s", code)
	}
	var pe *plugins.Error
	if !errors.As(err, &pe) {
		return fmt.Errorf("got %v (%T), want a *plugins.Error with code %s", err, err, code)
	}
	if pe.Code != code {
		return fmt.Errorf("got code %s (%v), want %s", pe.Code, err, code)
	}
	if pe.Retryable != retryable {
		return fmt.Errorf("got retryable=%v (%v), want %v", pe.Retryable, err, retryable)
	}
	return nil
}

// wantCode records a failed check, "what: why", unless err is a
// *plugins.Error with code and retryable (see expectCode).
func (c *checks) wantCode(err error, code abi.Code, retryable bool, what string, args ...any) {
	if err := expectCode(err, code, retryable); err != nil {
		c.errorf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

func caseAuthorize(ctx context.Context, e *Env, c *checks) error {
	fc := e.Fake.Config()
	var purposes []abi.Purpose
	if e.Manifest.Kind.Login() {
		purposes = append(purposes, abi.PurposeLogin)
	}
	if e.Manifest.Kind.Git() {
		purposes = append(purposes, abi.PurposeGit)
	}
	for _, purpose := range purposes {
		_, challenge := newPKCE()
		state := randomString(12)
		raw, err := e.Plugin.AuthorizeURL(ctx, plugins.AuthorizeInput{
			Purpose: purpose, RedirectURI: e.RedirectURI, State: state, CodeChallenge: challenge,
		})
		if err != nil {
			return fmt.Errorf("%s: %w", purpose, err)
		}
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("%s: the authorization URL %q: %w", purpose, raw, err)
		}
		if b := u.Scheme + "://" + u.Host + u.Path; b != e.Config.Endpoints.AuthorizeURL {
			c.errorf("%s: the URL goes to %s, want the authorize endpoint %s", purpose, b, e.Config.Endpoints.AuthorizeURL)
		}
		q := u.Query()
		for k, want := range map[string]string{
			"response_type": "code", "client_id": fc.ClientID, "redirect_uri": e.RedirectURI, "state": state,
		} {
			if got := q.Get(k); got != want {
				c.errorf("%s: %s=%q, want %q (%s)", purpose, k, got, want, raw)
			}
		}
		want := e.Manifest.Scopes.Login
		if purpose == abi.PurposeGit {
			want = e.Manifest.Scopes.Git
		}
		if q.Has("scope") {
			got := strings.FieldsFunc(q.Get("scope"), func(r rune) bool { return r == ' ' || r == ',' })
			if !sameSet(got, want) {
				c.errorf("%s: scope=%q, want the manifest's %s scopes %q", purpose, q.Get("scope"), purpose, want)
			}
		} else if fc.Scopes == nil && len(want) > 0 {
			c.errorf("%s: the URL has no scope parameter, but this provider grants only the scopes requested (manifest: %q)", purpose, want)
		}
		if e.Manifest.PKCE {
			if q.Get("code_challenge") != challenge || q.Get("code_challenge_method") != "S256" {
				c.errorf("%s: code_challenge=%q code_challenge_method=%q, want the S256 challenge %q (the manifest says pkce)",
					purpose, q.Get("code_challenge"), q.Get("code_challenge_method"), challenge)
			}
		} else if q.Has("code_challenge") || q.Has("code_challenge_method") {
			c.errorf("%s: the URL carries a PKCE challenge, but the manifest says pkce: false", purpose)
		}
		if strings.Contains(raw, fc.ClientSecret) {
			c.errorf("%s: the authorization URL contains the client secret", purpose)
		}
		if _, got, err := e.Fake.Approve(ctx, raw, ""); err != nil {
			c.errorf("%s: the provider refused the authorization request: %v", purpose, err)
		} else if got != state {
			c.errorf("%s: the provider returned state %q, want %q", purpose, got, state)
		}
	}
	return nil
}

func caseExchange(ctx context.Context, e *Env, c *checks) error {
	tok, err := e.Login(ctx, "", e.loginPurpose())
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	issued := e.Fake.IssuedTokens()
	if len(issued) != 1 {
		return fmt.Errorf("the fake issued %d token responses, want 1", len(issued))
	}
	it := issued[0]
	if tok.AccessToken != it.AccessToken {
		c.errorf("access token %q, want the one the provider issued (%q)", tok.AccessToken, it.AccessToken)
	}
	if it.RefreshToken != "" && e.has(abi.OpRefresh) && tok.RefreshToken != it.RefreshToken {
		c.errorf("refresh token %q, want the one the provider issued (%q)", tok.RefreshToken, it.RefreshToken)
	}
	if !it.ExpiresAt.IsZero() {
		want := int64(it.ExpiresAt.Sub(it.IssuedAt).Round(time.Second) / time.Second)
		if tok.ExpiresIn < want-2 || tok.ExpiresIn > want+2 {
			c.errorf("expires_in %d, want %d", tok.ExpiresIn, want)
		}
	}
	calls := e.Fake.CallsTo(fakeprovider.EndpointToken)
	if len(calls) != 1 {
		return fmt.Errorf("%d token endpoint calls, want 1", len(calls))
	}
	if calls[0].PKCEVerifier != e.Manifest.PKCE {
		c.errorf("code_verifier sent: %v, want %v (the manifest says pkce: %v)", calls[0].PKCEVerifier, e.Manifest.PKCE, e.Manifest.PKCE)
	}
	if g := calls[0].GrantType; g != "authorization_code" {
		c.errorf("grant_type %q, want authorization_code", g)
	}
	return nil
}

func caseExchangeBadCode(ctx context.Context, e *Env, c *checks) error {
	_, err := e.Plugin.Exchange(ctx, plugins.ExchangeInput{Code: "garbage-" + randomString(12), RedirectURI: e.RedirectURI})
	c.wantCode(err, abi.CodeInvalidGrant, false, "garbage code")
	code, verifier, err := e.authorize(ctx, e.Plugin, "", e.loginPurpose())
	if err != nil {
		return err
	}
	in := plugins.ExchangeInput{Code: code, RedirectURI: e.RedirectURI, CodeVerifier: verifier}
	if _, err := e.Plugin.Exchange(ctx, in); err != nil {
		return fmt.Errorf("first use of a code: %w", err)
	}
	_, err = e.Plugin.Exchange(ctx, in)
	c.wantCode(err, abi.CodeInvalidGrant, false, "code used twice")
	return nil
}

func caseExchangeTransient(ctx context.Context, e *Env, c *checks) error {
	code, verifier, err := e.authorize(ctx, e.Plugin, "", e.loginPurpose())
	if err != nil {
		return err
	}
	in := plugins.ExchangeInput{Code: code, RedirectURI: e.RedirectURI, CodeVerifier: verifier}
	e.Fake.FailNext(fakeprovider.EndpointToken, 1, 503)
	_, err = e.Plugin.Exchange(ctx, in)
	c.wantCode(err, abi.CodeProviderError, true, "token endpoint 503")
	if _, err := e.Plugin.Exchange(ctx, in); err != nil {
		c.errorf("retrying after the 503: %v", err)
	}
	return nil
}

func caseInvalidClient(ctx context.Context, e *Env, c *checks) error {
	cfg := e.Config
	cfg.ClientSecret = "wrong-" + randomString(12)
	p, err := e.Load(ctx, cfg)
	if err != nil {
		return fmt.Errorf("loading the plugin with a wrong secret: %w", err)
	}
	_, err = e.LoginWith(ctx, p, "", e.loginPurpose())
	c.wantCode(err, abi.CodeInvalidClient, false, "wrong client secret")
	return nil
}

func caseClientAuth(ctx context.Context, e *Env, c *checks) error {
	tok, err := e.Login(ctx, "", e.gitPurpose())
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if needsRefresh(e) == "" && tok.RefreshToken != "" {
		if _, err := e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: tok.RefreshToken}); err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
	}
	names := map[fakeprovider.ClientAuth]string{fakeprovider.ClientAuthBody: "body", fakeprovider.ClientAuthBasic: "basic", fakeprovider.ClientAuthNone: "none"}
	grants := e.Fake.Config().Grants
	for _, call := range e.Fake.CallsTo(fakeprovider.EndpointToken) {
		// A grant the fake's description rules (Config.Grants) is
		// expected as described; the others as Suite.ExpectClientAuth says.
		want := names[e.suite.ExpectClientAuth]
		if rule, ok := grants[call.GrantType]; ok {
			want = names[rule.ClientAuth]
		}
		switch {
		case want != "" && call.ClientAuth != want:
			c.errorf("%s grant: client authentication %q, want %q", call.GrantType, call.ClientAuth, want)
		case want == "" && call.ClientAuth != "basic" && call.ClientAuth != "body":
			c.errorf("%s grant: client authentication %q, want exactly one of basic or body", call.GrantType, call.ClientAuth)
		}
		if want == "none" {
			continue // no client_id to check
		}
		if call.ClientID != e.Config.ClientID {
			c.errorf("%s grant: client_id %q, want %q", call.GrantType, call.ClientID, e.Config.ClientID)
		}
	}
	return nil
}

// loginWithRefresh signs in and requires a refresh token. A login-only
// plugin's grant is refreshed only when it is kept to read the groups
// again (abi.AuthorizeRequest.KeepGrant), so such a plugin with the groups
// operation signs in as for a policy that uses its groups: a provider that
// issues refresh tokens only when asked (Google's access_type=offline) is
// asked then.
func loginWithRefresh(ctx context.Context, e *Env) (*abi.Token, error) {
	purpose := e.gitPurpose()
	keep := purpose == abi.PurposeLogin && e.has(abi.OpGroups)
	code, verifier, err := e.authorizeWith(ctx, e.Plugin, "", purpose, keep)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	tok, err := e.Plugin.Exchange(ctx, plugins.ExchangeInput{Code: code, RedirectURI: e.RedirectURI, CodeVerifier: verifier})
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if tok.RefreshToken == "" {
		return nil, errors.New("the exchange returned no refresh token although the plugin refreshes and the provider issues them " +
			"(some providers issue one only when asked, e.g. access_type=offline)")
	}
	return tok, nil
}

func caseRefresh(ctx context.Context, e *Env, c *checks) error {
	tok, err := loginWithRefresh(ctx, e)
	if err != nil {
		return err
	}
	nt, err := e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: tok.RefreshToken})
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	if nt.AccessToken == "" || nt.AccessToken == tok.AccessToken {
		c.errorf("refresh returned access token %q, want a new one", nt.AccessToken)
	}
	if !e.Fake.ValidAccessToken(nt.AccessToken) {
		c.errorf("the refreshed access token is not one the provider issued")
	}
	issued := e.Fake.IssuedTokens()
	if last := issued[len(issued)-1]; !last.ExpiresAt.IsZero() {
		want := int64(last.ExpiresAt.Sub(last.IssuedAt).Round(time.Second) / time.Second)
		if nt.ExpiresIn < want-2 || nt.ExpiresIn > want+2 {
			c.errorf("expires_in %d after refresh, want %d", nt.ExpiresIn, want)
		}
	}
	if e.has(abi.OpUser) {
		if _, err := e.Plugin.User(ctx, nt.AccessToken); err != nil {
			c.errorf("using the refreshed access token: %v", err)
		}
	}
	if calls := e.Fake.CallsTo(fakeprovider.EndpointToken); len(calls) != 2 || calls[1].GrantType != "refresh_token" {
		c.errorf("token endpoint calls %+v, want the code exchange and one refresh_token grant", calls)
	}
	return nil
}

func caseRotation(ctx context.Context, e *Env, c *checks) error {
	tok, err := loginWithRefresh(ctx, e)
	if err != nil {
		return err
	}
	rt1 := tok.RefreshToken
	nt, err := e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: rt1})
	if err != nil {
		return fmt.Errorf("first refresh: %w", err)
	}
	if !e.Fake.Config().RotateRefreshTokens {
		if nt.RefreshToken != "" && nt.RefreshToken != rt1 {
			c.errorf("the provider does not rotate refresh tokens, but the plugin returned a new one %q", nt.RefreshToken)
		}
		if _, err := e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: rt1}); err != nil {
			c.errorf("the provider does not rotate refresh tokens, but reusing one failed: %v", err)
		}
		return nil
	}
	rt2 := nt.RefreshToken
	if rt2 == "" || rt2 == rt1 {
		return fmt.Errorf("the provider rotates refresh tokens, but the refresh returned %q (want the new one, which the caller must store)", rt2)
	}
	_, err = e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: rt1})
	c.wantCode(err, abi.CodeInvalidGrant, false, "reusing the rotated refresh token")
	if _, err := e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: rt2}); err != nil {
		c.errorf("refreshing with the new refresh token: %v", err)
	}
	return nil
}

func caseRefreshInvalidGrant(ctx context.Context, e *Env, c *checks) error {
	_, err := e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: "garbage-" + randomString(16)})
	c.wantCode(err, abi.CodeInvalidGrant, false, "garbage refresh token")
	tok, err := loginWithRefresh(ctx, e)
	if err != nil {
		return err
	}
	e.Fake.RevokeAll()
	_, err = e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: tok.RefreshToken})
	c.wantCode(err, abi.CodeInvalidGrant, false, "revoked refresh token")
	return nil
}

func caseRefreshTransient(ctx context.Context, e *Env, c *checks) error {
	tok, err := loginWithRefresh(ctx, e)
	if err != nil {
		return err
	}
	e.Fake.FailNext(fakeprovider.EndpointToken, 1, 503)
	_, err = e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: tok.RefreshToken})
	c.wantCode(err, abi.CodeProviderError, true, "token endpoint 503")
	if _, err := e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: tok.RefreshToken}); err != nil {
		c.errorf("retrying after the 503: %v", err)
	}
	return nil
}

func caseRevoke(ctx context.Context, e *Env, c *checks) error {
	if !e.has(abi.OpRevoke) {
		err := e.Plugin.Revoke(ctx, plugins.RevokeInput{AccessToken: "x", RefreshToken: "y"})
		c.wantCode(err, abi.CodeUnsupported, false, "revoke on a plugin without the operation")
		return nil
	}
	tok, err := e.Login(ctx, "", e.gitPurpose())
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	err = e.Plugin.Revoke(ctx, plugins.RevokeInput{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken})
	if e.Fake.Config().Revoke == fakeprovider.RevokeNone {
		if err := expectCode(err, abi.CodeUnsupported, false); err != nil {
			c.errorf("the provider has no revocation endpoint, so revoke must answer unsupported: %v", err)
		} else if pe := (*plugins.Error)(nil); errors.As(err, &pe) && len(pe.Message) < 20 {
			c.errorf("the unsupported answer %q should tell the user how to revoke access at the provider", pe.Message)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	calls := e.Fake.CallsTo(fakeprovider.EndpointRevoke)
	if len(calls) == 0 {
		return errors.New("revoke returned no error but the provider's revocation endpoint was not called")
	}
	for _, call := range calls {
		if call.Status < 200 || call.Status > 299 {
			c.errorf("the revocation endpoint answered %d (%s) to %s %s", call.Status, call.Error, call.Method, call.Path)
		}
	}
	if e.Fake.ValidAccessToken(tok.AccessToken) {
		c.errorf("the access token still works after revoke")
	}
	if tok.RefreshToken != "" && e.Fake.ValidRefreshToken(tok.RefreshToken) {
		c.errorf("the refresh token still works after revoke")
	}
	if e.has(abi.OpUser) {
		_, err := e.Plugin.User(ctx, tok.AccessToken)
		c.wantCode(err, abi.CodeInvalidToken, false, "user with the revoked access token")
	}
	return nil
}

// fakeUsers returns the fake's first users.
func fakeUsers(e *Env) []fakeprovider.User {
	us := e.Fake.Config().Users
	return us[:min(len(us), maxUsers)]
}

func caseUser(ctx context.Context, e *Env, c *checks) error {
	flavor := e.Fake.Config().Flavor
	ids := map[string]string{} // id → login
	var firstID string
	for i, fu := range fakeUsers(e) {
		tok, err := e.Login(ctx, fu.Login, e.loginPurpose())
		if err != nil {
			return fmt.Errorf("login as %s: %w", fu.Login, err)
		}
		u, err := e.Plugin.User(ctx, tok.AccessToken)
		if err != nil {
			c.errorf("%s: %v", fu.Login, err)
			continue
		}
		if i == 0 {
			firstID = u.ID
		}
		switch {
		case u.ID == "":
			c.errorf("%s: empty id", fu.Login)
		case ids[u.ID] != "":
			c.errorf("%s: id %q is also %s's", fu.Login, u.ID, ids[u.ID])
		default:
			ids[u.ID] = fu.Login
		}
		switch flavor {
		case fakeprovider.FlavorGeneric, fakeprovider.FlavorGitHub, fakeprovider.FlavorGitLab:
			if want := strconv.FormatInt(fu.ID, 10); u.ID != want {
				c.errorf("%s: id %q, want the provider's numeric id %s", fu.Login, u.ID, want)
			}
		}
		pe := fu.PrimaryEmail()
		if u.Login != fu.Login && (pe == nil || u.Login != pe.Address) {
			c.errorf("%s: login %q, want %q", fu.Login, u.Login, fu.Login)
		}
		if u.Name != "" && u.Name != fu.Name {
			c.errorf("%s: name %q, want %q", fu.Login, u.Name, fu.Name)
		}
		switch {
		case pe == nil:
			if u.EmailVerified {
				c.errorf("%s: e-mail %q marked verified, but the user has no address", fu.Login, u.Email)
			}
		case pe.Verified:
			if u.Email != pe.Address || !u.EmailVerified {
				c.errorf("%s: e-mail %q verified=%v, want the verified primary address %q", fu.Login, u.Email, u.EmailVerified, pe.Address)
			}
		default:
			if u.EmailVerified {
				c.errorf("%s: e-mail %q marked verified, but the provider has not verified the primary address %q", fu.Login, u.Email, pe.Address)
			}
		}
	}
	if firstID != "" {
		us := fakeUsers(e)
		tok, err := e.Login(ctx, us[0].Login, e.loginPurpose())
		if err != nil {
			return fmt.Errorf("second login as %s: %w", us[0].Login, err)
		}
		u, err := e.Plugin.User(ctx, tok.AccessToken)
		if err != nil {
			return fmt.Errorf("%s again: %w", us[0].Login, err)
		}
		if u.ID != firstID {
			c.errorf("%s: id %q on the second sign-in, %q on the first: ids must be stable", us[0].Login, u.ID, firstID)
		}
	}
	return nil
}

func caseUserExpired(ctx context.Context, e *Env, c *checks) error {
	return expiredAccess(ctx, e, c, e.loginPurpose(), func(token string) error {
		_, err := e.Plugin.User(ctx, token)
		return err
	})
}

// expiredAccess signs in for purpose, expires the access token at the
// fake, and checks that call with it fails invalid_token, not retryable.
func expiredAccess(ctx context.Context, e *Env, c *checks, purpose abi.Purpose, call func(token string) error) error {
	tok, err := e.Login(ctx, "", purpose)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	e.Fake.ExpireAccessTokens()
	c.wantCode(call(tok.AccessToken), abi.CodeInvalidToken, false, "expired access token")
	return nil
}

func caseUserTransient(ctx context.Context, e *Env, c *checks) error {
	return apiFailure(ctx, e, c, 503, abi.CodeProviderError)
}

func caseUserRateLimited(ctx context.Context, e *Env, c *checks) error {
	return apiFailure(ctx, e, c, 429, abi.CodeRateLimited)
}

func apiFailure(ctx context.Context, e *Env, c *checks, status int, code abi.Code) error {
	tok, err := e.Login(ctx, "", e.loginPurpose())
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	e.Fake.FailNext(fakeprovider.EndpointUser, 1, status)
	_, err = e.Plugin.User(ctx, tok.AccessToken)
	c.wantCode(err, code, true, "user endpoint %d", status)
	if _, err := e.Plugin.User(ctx, tok.AccessToken); err != nil {
		c.errorf("retrying after the %d: %v", status, err)
	}
	return nil
}

// listAll pages through a user's repositories.
func listAll(ctx context.Context, e *Env, token string, perPage int) (repos []abi.Repo, pages []int, err error) {
	seen := map[string]bool{}
	cursor := ""
	for range 1000 {
		p, err := e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: token, Cursor: cursor, PerPage: perPage})
		if err != nil {
			return nil, nil, fmt.Errorf("page %d: %w", len(pages)+1, err)
		}
		repos = append(repos, p.Repos...)
		pages = append(pages, len(p.Repos))
		if p.NextCursor == "" {
			return repos, pages, nil
		}
		if seen[p.NextCursor] || p.NextCursor == cursor {
			return nil, nil, fmt.Errorf("page %d: cursor %q repeats", len(pages), p.NextCursor)
		}
		seen[p.NextCursor] = true
		cursor = p.NextCursor
	}
	return nil, nil, errors.New("more than 1000 pages")
}

// checkRepos compares a listing with what the fake says the user's token
// can list (fakeprovider.Provider.VisibleRepos): the same full names, each
// once, with ids, URLs, visibility and default branch. A GitLab
// "internal" repository may be reported as private or not.
func checkRepos(c *checks, want []fakeprovider.Repo, login string, repos []abi.Repo) {
	if len(repos) != len(want) {
		c.errorf("%s: %d repositories, the provider lists %d", login, len(repos), len(want))
	}
	byName := make(map[string]fakeprovider.Repo, len(want))
	for _, w := range want {
		byName[w.FullName] = w
	}
	seen := map[string]bool{}
	ids := map[string]bool{}
	var problems []string
	for _, r := range repos {
		w, ok := byName[r.FullName]
		switch {
		case !ok || seen[r.FullName]:
			problems = append(problems, fmt.Sprintf("unexpected or repeated full name %q", r.FullName))
			continue
		case r.ID == "" || ids[r.ID]:
			problems = append(problems, fmt.Sprintf("%s: empty or repeated id %q", r.FullName, r.ID))
		case r.CloneURL == "" && r.HTMLURL == "":
			problems = append(problems, fmt.Sprintf("%s: neither clone nor web URL", r.FullName))
		}
		seen[r.FullName], ids[r.ID] = true, true
		if r.Private != w.Private && !w.Internal {
			problems = append(problems, fmt.Sprintf("%s: private=%v, want %v", r.FullName, r.Private, w.Private))
		}
		if r.DefaultBranch != w.DefaultBranch {
			problems = append(problems, fmt.Sprintf("%s: default branch %q, want %q", r.FullName, r.DefaultBranch, w.DefaultBranch))
		}
	}
	if len(problems) > 5 {
		problems = append(problems[:5], fmt.Sprintf("… %d more", len(problems)-5))
	}
	for _, p := range problems {
		c.errorf("%s: %s", login, p)
	}
}

// checkListingCalls checks the requests a listing made since the fake's
// call number before and returns how many lists (distinct paths of the
// repository list endpoint) it read. Every request to the repository list
// answered 2xx and none was repeated. A provider with one list (GitHub,
// GitLab) takes exactly one request per page. A provider that lists per
// workspace (Bitbucket: /2.0/repositories/{workspace}) may take more: at
// least one per non-empty page and at most one per page plus one per list
// beyond the first (an empty workspace skipped within a call). Requests to
// other endpoints (the workspace list) are at most one per page.
func checkListingCalls(c *checks, e *Env, login string, before int, pages []int) (lists int) {
	calls := e.Fake.Calls()[before:]
	paths := map[string]bool{}
	asked := map[string]bool{}
	reqs, aux, nonEmpty := 0, 0, 0
	auxPath := ""
	for _, call := range calls {
		if call.Endpoint != fakeprovider.EndpointRepos {
			aux++
			auxPath = call.Path
			continue
		}
		reqs++
		paths[call.Path] = true
		if call.Status < 200 || call.Status > 299 {
			c.errorf("%s: GET %s answered %d (%s)", login, call.Path, call.Status, call.Error)
		}
		if k := call.Path + "?" + call.Query; asked[k] {
			c.errorf("%s: %s was requested twice", login, k)
		} else {
			asked[k] = true
		}
	}
	for _, n := range pages {
		if n > 0 {
			nonEmpty++
		}
	}
	lists = len(paths)
	switch {
	case lists <= 1 && reqs != len(pages) && (nonEmpty > 0 || reqs > 0):
		// An empty listing may take no request to a list (a GitHub App
		// installed nowhere: only /user/installations is asked).
		c.errorf("%s: %d pages took %d requests to the repository list", login, len(pages), reqs)
	case lists > 1 && (reqs < nonEmpty || reqs > len(pages)+lists-1):
		c.errorf("%s: %d pages (%d not empty) of %d lists took %d requests to the repository lists, want %d to %d",
			login, len(pages), nonEmpty, lists, reqs, nonEmpty, len(pages)+lists-1)
	}
	if aux > len(pages) {
		c.errorf("%s: %d pages took %d requests to other endpoints (%s, …), want at most one per page", login, len(pages), aux, auxPath)
	}
	return lists
}

func caseRepos(ctx context.Context, e *Env, c *checks) error {
	for _, fu := range fakeUsers(e) {
		tok, err := e.Login(ctx, fu.Login, e.gitPurpose())
		if err != nil {
			return fmt.Errorf("login as %s: %w", fu.Login, err)
		}
		before := len(e.Fake.Calls())
		repos, pages, err := listAll(ctx, e, tok.AccessToken, 0)
		if err != nil {
			c.errorf("%s: %v", fu.Login, err)
			continue
		}
		want := e.Fake.VisibleRepos(fu.Login)
		checkRepos(c, want, fu.Login, repos)
		if len(want) > 100 && len(pages) < 2 {
			c.errorf("%s: %d repositories in %d page(s): pagination was not exercised", fu.Login, len(want), len(pages))
		}
		checkListingCalls(c, e, fu.Login, before, pages)
	}
	return nil
}

func caseReposPerPage(ctx context.Context, e *Env, c *checks) error {
	us := fakeUsers(e)
	i := slices.IndexFunc(us, func(u fakeprovider.User) bool { return len(e.Fake.VisibleRepos(u.Login)) > 25 })
	if i < 0 {
		i = 0
	}
	fu := us[i]
	tok, err := e.Login(ctx, fu.Login, e.gitPurpose())
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	const per = 25
	before := len(e.Fake.Calls())
	repos, pages, err := listAll(ctx, e, tok.AccessToken, per)
	if err != nil {
		return err
	}
	want := e.Fake.VisibleRepos(fu.Login)
	checkRepos(c, want, fu.Login, repos)
	for n, size := range pages {
		if size > per {
			c.errorf("page %d has %d repositories, %d were asked for", n+1, size, per)
			break
		}
	}
	lists := checkListingCalls(c, e, fu.Login, before, pages)
	n := max((len(want)+per-1)/per, 1)
	switch {
	case lists <= 1 && len(pages) != n:
		c.errorf("%d pages of at most %d for %d repositories, want %d", len(pages), per, len(want), n)
	case lists > 1 && (len(pages) < n || len(pages) > n+lists):
		// Each list ends in a partial page at most; an empty list may
		// cost one empty page.
		c.errorf("%d pages of at most %d for %d repositories in %d lists, want %d to %d", len(pages), per, len(want), lists, n, n+lists)
	}
	return nil
}

func caseReposExpired(ctx context.Context, e *Env, c *checks) error {
	return expiredAccess(ctx, e, c, e.gitPurpose(), func(token string) error {
		_, err := e.Plugin.Repos(ctx, plugins.ReposInput{AccessToken: token})
		return err
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

package builtin_test

import (
	"net/url"
	"testing"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

// TestGoogleOfflineAccess: a sign-in whose grant is kept for the groups
// asks Google for offline access and consent, gets a refresh token, and
// the plugin refreshes with it: the documented refresh request (client
// credentials in the body, no scope), an answer without a new refresh
// token, and the old one still good (Google does not rotate). Revoking
// with it ends the grant, and a refresh then is invalid_grant.
func TestGoogleOfflineAccess(t *testing.T) {
	e := env(t, "google")
	ctx := t.Context()
	tok, err := e.LoginWithGroups(ctx, "jane")
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("a sign-in with the grant kept got no refresh token")
	}
	var authz url.Values
	for _, c := range e.Fake.CallsTo(fakeprovider.EndpointAuthorize) {
		if q, _ := url.ParseQuery(c.Query); q.Get("access_type") == "offline" {
			authz = q
		}
	}
	if authz == nil || authz.Get("prompt") != "consent" {
		t.Fatalf("authorization requests %+v: want one with access_type=offline and prompt=consent", e.Fake.CallsTo(fakeprovider.EndpointAuthorize))
	}
	for i := range 2 {
		nt, err := e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: tok.RefreshToken, Scopes: []string{"openid"}})
		if err != nil {
			t.Fatalf("refresh %d: %v", i+1, err)
		}
		if nt.RefreshToken != "" || nt.AccessToken == "" || nt.ExpiresIn < 3590 {
			t.Errorf("refresh %d: refresh token %q, access token %q, expires_in %d", i+1, nt.RefreshToken, nt.AccessToken, nt.ExpiresIn)
		}
		if _, err := e.Plugin.User(ctx, nt.AccessToken); err != nil {
			t.Errorf("refresh %d: the new access token: %v", i+1, err)
		}
	}
	calls := e.Fake.CallsTo(fakeprovider.EndpointToken)
	last := calls[len(calls)-1]
	q, _ := url.ParseQuery(last.Query)
	if last.GrantType != "refresh_token" || last.ClientAuth != "body" || q.Has("scope") || !q.Has("refresh_token") {
		t.Errorf("refresh request %+v: want the refresh grant, client credentials in the body, no scope", last)
	}
	if err := e.Plugin.Revoke(ctx, plugins.RevokeInput{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Plugin.Refresh(ctx, plugins.RefreshInput{RefreshToken: tok.RefreshToken}); code(err) != "invalid_grant" {
		t.Errorf("refresh after revoking: %v, want invalid_grant", err)
	}
}

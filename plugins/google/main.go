// Package google is Arbor's built-in Google sign-in plugin (login only), a
// wasip1 reactor module written only with sdk/plugin.
//
// Google's behaviour, as handled here (docs/provider-plugins.md has the
// details and the documentation followed):
//
//   - Authorization code flow with PKCE (S256) and the scopes
//     "openid email profile"; client credentials in the form body.
//   - The user comes from the OpenID Connect userinfo endpoint: sub (the
//     stable id), email, email_verified, name, picture. Only an address
//     Google marks verified counts as verified.
//   - Offline access only when the grant is kept: a sign-in whose policy
//     uses Google's groups keeps its grant to read the hosted domain again
//     in the background (abi.AuthorizeRequest.KeepGrant), and Google
//     issues a refresh token only to a request with access_type=offline,
//     "the first time that your application exchanges an authorization
//     code"; prompt=consent makes it issue one again to a user who
//     consented before
//     (https://developers.google.com/identity/protocols/oauth2/web-server#offline).
//     A plain sign-in asks online access (the default): one access token,
//     used at once, and no extra consent line for users.
//   - Refresh: the standard refresh grant with the client credentials in
//     the form body (web-server#offline, "Refreshing an access token").
//     Google does not rotate refresh tokens: the answer has none, and the
//     one the grant has stays valid until it is revoked, unused for six
//     months, or (reportedly, for an app still in "Testing") seven days
//     old; then Google answers invalid_grant
//     (https://developers.google.com/identity/protocols/oauth2#expiration).
//   - Revocation: POST /revoke with the token; Google answers 400 for a
//     token that is expired or already revoked, and then the grant may
//     still exist, which the error says.
//
// Build: make plugins, which compiles it with the other built-in plugins
// into one module, plugins/builtin/builtin.wasm (see package builtin).
package google

import (
	"context"

	"github.com/vintner/arbor/sdk/plugin"
)

// The provider is a declaration (sdk/plugin's Provider): the standard code
// and refresh grants, the client credentials in the form body, and the
// user from the userinfo endpoint, with the API's defaults (a Bearer
// token, JSON). A refresh sends only what Google documents for it
// (client_id, client_secret, grant_type, refresh_token): a refreshed token
// keeps the grant's scopes, and Google answers without a refresh token (it
// does not rotate them), so the host keeps the one it has. Code is left
// for the offline access, the login, the revocation and the hosted domain
// (groups.go).
func init() {
	plugin.RegisterAs("google", &plugin.Provider{
		Grants:        plugin.Grants{Auth: plugin.AuthInParams, RefreshWithoutScope: true},
		AuthorizeFunc: authorizeParams,
		UserPath:      userinfo,
		UserFields:    userFields,
		AfterUser:     login,
		RevokeFunc:    revoke,
		GroupsFunc:    groups,
	})
}

// userinfo is the OpenID Connect userinfo endpoint's path under the API
// base.
const userinfo = "/v1/userinfo"

// authorizeParams is the standard authorization URL
// (plugin.DefaultAuthorizeParams: response_type, client_id, redirect_uri,
// scope, state and the PKCE challenge), with access_type=offline and
// prompt=consent when the grant is kept: without them Google issues no
// refresh token, and the kept grant would be dead an hour later.
func authorizeParams(_ context.Context, r *plugin.AuthorizeRequest) (plugin.Values, error) {
	v := plugin.DefaultAuthorizeParams(r)
	if r.KeepGrant {
		v.Set("access_type", "offline")
		v.Set("prompt", "consent")
	}
	return v, nil
}

// revoke revokes the grant through the token it is given (the refresh
// token if there is one, which revokes the whole grant; else the access
// token).
func revoke(ctx context.Context, r *plugin.RevokeRequest) error {
	u := r.Endpoints.RevokeURL
	if u == "" {
		return plugin.ErrInvalidRequest("no revoke URL is configured")
	}
	tok := r.RefreshToken
	if tok == "" {
		tok = r.AccessToken
	}
	if tok == "" {
		return plugin.ErrInvalidRequest("there is no token to revoke")
	}
	resp, err := plugin.PostForm(ctx, u, plugin.Values{"token": {tok}}, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode == 400 {
		return plugin.ErrInvalidToken("POST /revoke: Google refused the token as expired or already revoked (400); " +
			"if the grant still exists, the user can remove it at https://myaccount.google.com/permissions")
	}
	return plugin.CheckResponse("POST", u, resp)
}

var userFields = plugin.UserFields{
	ID: "sub", Email: "email", Name: "name", AvatarURL: "picture",
	Other: func(j *plugin.JSON, key []byte, u *plugin.User) {
		if string(key) != "email_verified" {
			return
		}
		// A boolean in OpenID Connect; some Google endpoints quote it.
		if j.Kind() == '"' {
			u.EmailVerified = j.String() == "true"
		} else {
			u.EmailVerified = j.Bool()
		}
	},
}

// login finishes the user: Google accounts have no user name, the address
// is what people know; no address is not a verified one.
func login(_ context.Context, _ *plugin.Caller, u *plugin.User) error {
	if u.Email == "" {
		u.EmailVerified = false
	}
	u.Login = u.Email
	return nil
}

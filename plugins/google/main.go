// Command google is Arbor's built-in Google sign-in plugin (login only), a
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
//   - No refresh: signing in needs one access token, used at once, so the
//     plugin asks for online access only (a refresh token would need
//     access_type=offline and an extra consent line for users).
//   - Revocation: POST /revoke with the token; Google answers 400 for a
//     token that is expired or already revoked, and then the grant may
//     still exist, which the error says.
//
// Build: make plugins (or GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared).
package main

import (
	"context"

	"github.com/vintner/arbor/sdk/plugin"
)

type google struct{}

var _ interface {
	plugin.Exchanger
	plugin.Revoker
	plugin.UserInfoer
} = (*google)(nil)

func init() { plugin.Register(&google{}) }

func main() {}

// The authorization URL is the standard one (plugin.DefaultAuthorizeParams):
// response_type, client_id, redirect_uri, scope (space-separated), state and
// the PKCE challenge.

// Exchange is the standard code grant. (Not plugin.Grants: Google's plugin
// has no Refresh.)
func (*google) Exchange(ctx context.Context, r *plugin.ExchangeRequest) (*plugin.Token, error) {
	return plugin.ExchangeCode(ctx, r, plugin.AuthInParams)
}

// Revoke revokes the grant through the token it is given (the refresh
// token if there is one, which revokes the whole grant; else the access
// token).
func (*google) Revoke(ctx context.Context, r *plugin.RevokeRequest) error {
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

// api calls the userinfo endpoint with the defaults: a Bearer token, JSON.
var api plugin.API

func (*google) User(ctx context.Context, r *plugin.UserRequest) (*plugin.User, error) {
	user, _, err := api.User(ctx, r, "/v1/userinfo", userFields)
	if err != nil {
		return nil, err
	}
	if user.Email == "" {
		user.EmailVerified = false
	}
	// Google accounts have no user name; the address is what people know.
	user.Login = user.Email
	return user, nil
}

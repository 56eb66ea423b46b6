package plugin

import "context"

// Grants performs the standard OAuth grants against r.Endpoints.TokenURL:
// the authorization code grant (Exchange) and the refresh token grant
// (Refresh), with the provider's client authentication. Embed it in the
// provider type to get both operations; write Exchange or Refresh yourself
// only for a provider that does something else.
//
//	type gitlab struct{ plugin.Grants }
//
//	func init() { plugin.Register(&gitlab{plugin.Grants{Auth: plugin.AuthInParams}}) }
//
// A provider without refresh tokens must not embed it (the manifest lists
// the operations the type has): call ExchangeCode from its own Exchange.
//
//	func (p *acme) Exchange(ctx context.Context, r *plugin.ExchangeRequest) (*plugin.Token, error) {
//		return plugin.ExchangeCode(ctx, r, plugin.AuthInParams)
//	}
type Grants struct {
	// Auth is how the token endpoint authenticates the client:
	// AuthInParams (client_id and client_secret in the form body; also
	// what the zero value does) or AuthInHeader (HTTP Basic).
	Auth AuthStyle
	// RefreshWithoutScope leaves the scope parameter out of the refresh
	// grant (GitHub, Bitbucket: a refreshed token keeps the grant's
	// scopes, and the parameter is not theirs to take).
	RefreshWithoutScope bool
}

var (
	_ Exchanger = Grants{}
	_ Refresher = Grants{}
)

// Exchange is ExchangeCode with g's client authentication.
func (g Grants) Exchange(ctx context.Context, r *ExchangeRequest) (*Token, error) {
	return ExchangeCode(ctx, r, g.Auth)
}

// Refresh is RefreshToken with g's client authentication, without the
// requested scopes if g.RefreshWithoutScope. Providers that rotate refresh
// tokens return the new one in Token.RefreshToken.
func (g Grants) Refresh(ctx context.Context, r *RefreshRequest) (*Token, error) {
	if g.RefreshWithoutScope {
		r.Scopes = nil
	}
	return RefreshToken(ctx, r, g.Auth)
}

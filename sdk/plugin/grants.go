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
	// what the zero value does), AuthInHeader (HTTP Basic) or AuthNone.
	Auth AuthStyle
	// RefreshWithoutScope leaves the scope parameter out of the refresh
	// grant (GitHub, Bitbucket: a refreshed token keeps the grant's
	// scopes, and the parameter is not theirs to take).
	RefreshWithoutScope bool
	// Params is where both grants' parameters go: ParamsInBody (also
	// the zero value) or ParamsInQuery.
	Params Placement
	// RefreshAuth and RefreshParams, when set, replace Auth and Params
	// for the refresh grant alone (Gitee: the code grant sends the
	// client credentials, the refresh grant sends only grant_type and
	// refresh_token, in the query: RefreshAuth AuthNone, RefreshParams
	// ParamsInQuery).
	RefreshAuth   AuthStyle
	RefreshParams Placement
}

// ExchangeStyle is the code grant's TokenStyle.
func (g Grants) ExchangeStyle() TokenStyle { return TokenStyle{Auth: g.Auth, Params: g.Params} }

// RefreshStyle is the refresh grant's TokenStyle.
func (g Grants) RefreshStyle() TokenStyle {
	s := g.ExchangeStyle()
	if g.RefreshAuth != 0 {
		s.Auth = g.RefreshAuth
	}
	if g.RefreshParams != 0 {
		s.Params = g.RefreshParams
	}
	return s
}

var (
	_ Exchanger = Grants{}
	_ Refresher = Grants{}
)

// Exchange is ExchangeCode in g's ExchangeStyle.
func (g Grants) Exchange(ctx context.Context, r *ExchangeRequest) (*Token, error) {
	return exchangeCode(ctx, r, g.ExchangeStyle())
}

// Refresh is RefreshToken in g's RefreshStyle, without the
// requested scopes if g.RefreshWithoutScope. Providers that rotate refresh
// tokens return the new one in Token.RefreshToken.
func (g Grants) Refresh(ctx context.Context, r *RefreshRequest) (*Token, error) {
	if g.RefreshWithoutScope {
		r.Scopes = nil
	}
	return refreshToken(ctx, r, g.RefreshStyle())
}

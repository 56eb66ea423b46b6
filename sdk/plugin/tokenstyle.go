package plugin

import (
	"context"
	"strings"
)

// Placement says where a token request's parameters (grant_type, code,
// refresh_token, …) go.
type Placement int

const (
	// ParamsInBody sends them form-encoded in the POST body (RFC 6749
	// section 4.1.3; every built-in provider). The zero value does the
	// same.
	ParamsInBody Placement = iota + 1
	// ParamsInQuery sends them in the token URL's query string, for a
	// provider that documents its token requests so (Gitee's refresh:
	// POST https://gitee.com/oauth/token?grant_type=refresh_token&refresh_token=…,
	// https://gitee.com/api/v5/oauth_doc). The client secret never goes in
	// a URL: with AuthInParams client_id joins the query and
	// client_secret is the form body, as GitCode, Gitee's sibling,
	// documents its code grant
	// (https://docs.gitcode.com/en/docs/apis/oauth: client_id "query",
	// client_secret "form-data"); otherwise the body is empty.
	ParamsInQuery
)

// TokenStyle is how one grant's token request is sent: the client
// authentication and where the parameters go. The zero value is the RFC
// 6749 default most providers follow: credentials and parameters in the
// form body.
//
//	// Gitee's refresh: parameters in the query, no client credentials.
//	gitee := plugin.TokenStyle{Auth: plugin.AuthNone, Params: plugin.ParamsInQuery}
type TokenStyle struct {
	// Auth is the client authentication: AuthInParams (the default),
	// AuthInHeader (HTTP Basic) or AuthNone.
	Auth AuthStyle
	// Params is where the grant's parameters go: ParamsInBody (the
	// default) or ParamsInQuery.
	Params Placement
}

// Request posts the grant's params to tokenURL in s's style, asks for
// JSON and parses the answer with ParseTokenResponse. params is not
// modified.
//
// # Errors
//
// As ParseTokenResponse: invalid_grant for a refused code or refresh
// token, invalid_client for refused client credentials, rate_limited,
// provider_error; and the host's own errors (host_not_allowed, timeout,
// response_too_large, unavailable).
func (s TokenStyle) Request(ctx context.Context, tokenURL string, c Client, params Values) (*Token, error) {
	h := Header{"Accept": {"application/json"}}
	query := s.Params == ParamsInQuery
	body := make(Values, len(params)+2)
	for k, v := range params {
		body[k] = v
	}
	switch s.Auth {
	case AuthInHeader:
		h.Set("Authorization", BasicAuth(c.ID, c.Secret))
	case AuthNone:
	default:
		body.Set("client_id", c.ID)
	}
	if query {
		sep := "?"
		if strings.Contains(tokenURL, "?") {
			sep = "&"
		}
		tokenURL += sep + body.Encode()
		body = Values{}
	}
	if s.Auth != AuthInHeader && s.Auth != AuthNone && c.Secret != "" {
		body.Set("client_secret", c.Secret)
	}
	req := NewRequest("POST", tokenURL, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	if len(body) > 0 {
		req.Body = []byte(body.Encode())
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := Do(ctx, req)
	if err != nil {
		return nil, err
	}
	return ParseTokenResponse(resp)
}

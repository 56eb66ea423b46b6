package plugin

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/vintner/arbor/sdk/abi"
)

// AuthStyle says how a token request authenticates the client.
type AuthStyle int

const (
	// AuthInParams sends client_id and client_secret in the form body
	// (GitHub, GitLab, Google).
	AuthInParams AuthStyle = iota + 1
	// AuthInHeader sends them with HTTP Basic authentication (Bitbucket;
	// the RFC 6749 section 2.3.1 default).
	AuthInHeader
	// AuthNone sends no client credentials at all, neither client_id nor
	// client_secret: the grant's own parameters identify it (Gitee's
	// refresh grant, https://gitee.com/api/v5/oauth_doc). A public client
	// that must still name itself (RFC 6749 section 4.1.3) uses
	// AuthInParams with no secret configured: client_secret is left out
	// when it is empty.
	AuthNone
)

// BasicAuth returns an Authorization header value for client
// authentication. As RFC 6749 section 2.3.1 requires, id and secret are
// form-encoded before base64, as golang.org/x/oauth2 does.
func BasicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(QueryEscape(id)+":"+QueryEscape(secret)))
}

// DefaultAuthorizeParams returns the standard authorization request
// parameters (RFC 6749 section 4.1.1, PKCE per RFC 7636): response_type,
// client_id, redirect_uri, scope (space separated), state and the code
// challenge. Plugins with an Authorizer usually start from it.
func DefaultAuthorizeParams(r *AuthorizeRequest) Values {
	v := Values{"response_type": {"code"}, "client_id": {r.ClientID}}
	if r.RedirectURI != "" {
		v.Set("redirect_uri", r.RedirectURI)
	}
	if len(r.Scopes) > 0 {
		v.Set("scope", strings.Join(r.Scopes, " "))
	}
	if r.State != "" {
		v.Set("state", r.State)
	}
	if r.CodeChallenge != "" {
		v.Set("code_challenge", r.CodeChallenge)
		m := r.CodeChallengeMethod
		if m == "" {
			m = "S256"
		}
		v.Set("code_challenge_method", m)
	}
	return v
}

// ExchangeCode performs the standard authorization code grant against
// r.Endpoints.TokenURL.
func ExchangeCode(ctx context.Context, r *ExchangeRequest, style AuthStyle) (*Token, error) {
	return exchangeCode(ctx, r, TokenStyle{Auth: style})
}

func exchangeCode(ctx context.Context, r *ExchangeRequest, style TokenStyle) (*Token, error) {
	if r.Code == "" {
		return nil, ErrInvalidRequest("the authorization code is empty")
	}
	if r.Endpoints.TokenURL == "" {
		return nil, ErrInvalidRequest("no token URL is configured for this provider")
	}
	form := Values{"grant_type": {"authorization_code"}, "code": {r.Code}}
	if r.RedirectURI != "" {
		form.Set("redirect_uri", r.RedirectURI)
	}
	if r.CodeVerifier != "" {
		form.Set("code_verifier", r.CodeVerifier)
	}
	return style.Request(ctx, r.Endpoints.TokenURL, r.Client, form)
}

// RefreshToken performs the standard refresh token grant against
// r.Endpoints.TokenURL. Providers that rotate refresh tokens return a new
// one in Token.RefreshToken; the caller must store it.
func RefreshToken(ctx context.Context, r *RefreshRequest, style AuthStyle) (*Token, error) {
	return refreshToken(ctx, r, TokenStyle{Auth: style})
}

func refreshToken(ctx context.Context, r *RefreshRequest, style TokenStyle) (*Token, error) {
	if r.RefreshToken == "" {
		return nil, ErrInvalidGrant("there is no refresh token")
	}
	if r.Endpoints.TokenURL == "" {
		return nil, ErrInvalidRequest("no token URL is configured for this provider")
	}
	form := Values{"grant_type": {"refresh_token"}, "refresh_token": {r.RefreshToken}}
	if len(r.Scopes) > 0 {
		form.Set("scope", strings.Join(r.Scopes, " "))
	}
	return style.Request(ctx, r.Endpoints.TokenURL, r.Client, form)
}

// TokenRequest posts form to a token endpoint with client authentication
// in the given style, asks for JSON, and parses the answer with
// ParseTokenResponse. It is TokenStyle{Auth: style}.Request: use a
// TokenStyle to put the parameters in the query string.
func TokenRequest(ctx context.Context, tokenURL string, c Client, style AuthStyle, form Values) (*Token, error) {
	return TokenStyle{Auth: style}.Request(ctx, tokenURL, c, form)
}

// ParseTokenResponse parses a token endpoint's answer, in JSON or
// form-encoded (GitHub answers form-encoded unless asked for JSON). An
// "error" field is an error even with status 200 (GitHub again); see
// OAuthError for how it is mapped.
//
// A rate limit (RateLimit: a 429 whatever its body says, GitHub's 403
// forms) is rate_limited with the wait the provider asked for, not the
// provider_error its OAuth error body would make it.
func ParseTokenResponse(r *Response) (*Token, error) {
	if wait, limited := RateLimit(r); limited {
		return nil, &Error{Code: abi.CodeRateLimited, Status: r.StatusCode, Retryable: true, RetryAfter: wait,
			Message: "the token endpoint answered status " + strconv.Itoa(r.StatusCode) + ": rate limited, retry after " + strconv.Itoa(wait) + " s"}
	}
	f, err := tokenFields(r)
	if err != nil {
		return nil, err
	}
	if f.err != "" {
		return nil, OAuthError(r.StatusCode, f.err, f.desc)
	}
	if !r.OK() {
		return nil, ErrProvider(r.StatusCode, "the token endpoint answered status "+strconv.Itoa(r.StatusCode))
	}
	if f.tok.AccessToken == "" {
		return nil, ErrProvider(r.StatusCode, "the token response has no access_token")
	}
	return &f.tok, nil
}

type tokenResponse struct {
	tok       Token
	err, desc string
}

func tokenFields(r *Response) (tokenResponse, error) {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	body := strings.TrimSpace(string(r.Body))
	isJSON := ct == "application/json" || strings.HasSuffix(ct, "+json") ||
		(ct != "application/x-www-form-urlencoded" && strings.HasPrefix(body, "{"))
	var t tokenResponse
	if isJSON {
		j := NewJSON(r.Body)
		j.Object(func(key []byte) {
			switch string(key) {
			case "access_token":
				t.tok.AccessToken = j.String()
			case "token_type":
				t.tok.TokenType = j.String()
			case "refresh_token":
				t.tok.RefreshToken = j.String()
			case "expires_in":
				t.tok.ExpiresIn = j.Int()
			case "refresh_token_expires_in":
				t.tok.RefreshExpiresIn = j.Int()
			case "scope":
				if j.Kind() == '[' {
					j.Array(func() { t.tok.Scopes = append(t.tok.Scopes, j.String()) })
				} else {
					t.tok.Scopes = splitScopes(j.String())
				}
			case "id_token":
				t.tok.IDToken = j.String()
			case "error":
				if j.Kind() == '"' {
					t.err = j.String()
				} else if !j.Null() {
					j.Skip()
					t.err = "error"
				}
			case "error_description":
				if j.Kind() == '"' {
					t.desc = j.String()
				}
			}
		})
		if err := j.Err(); err != nil {
			if !r.OK() {
				return tokenResponse{}, ErrProvider(r.StatusCode, "the token endpoint answered status "+strconv.Itoa(r.StatusCode))
			}
			return tokenResponse{}, ErrProvider(r.StatusCode, "the token response is not valid JSON: "+err.Error())
		}
		return t, nil
	}
	v, err := ParseQuery(body)
	if err != nil {
		if !r.OK() {
			return tokenResponse{}, ErrProvider(r.StatusCode, "the token endpoint answered status "+strconv.Itoa(r.StatusCode))
		}
		return tokenResponse{}, ErrProvider(r.StatusCode, "the token response is neither JSON nor form-encoded")
	}
	t.tok = Token{
		AccessToken: v.Get("access_token"), TokenType: v.Get("token_type"), RefreshToken: v.Get("refresh_token"),
		ExpiresIn: atoi64(v.Get("expires_in")), RefreshExpiresIn: atoi64(v.Get("refresh_token_expires_in")),
		Scopes: splitScopes(v.Get("scope")), IDToken: v.Get("id_token"),
	}
	t.err, t.desc = v.Get("error"), v.Get("error_description")
	return t, nil
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// splitScopes splits a scope string on spaces (RFC 6749) or commas
// (GitHub).
func splitScopes(s string) []string {
	if s == "" {
		return nil
	}
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

// OAuthError maps an OAuth error response (RFC 6749 section 5.2, plus
// GitHub's variants) to an *Error: invalid_grant, bad_verification_code,
// bad_refresh_token and expired_token become invalid_grant; invalid_client,
// unauthorized_client and incorrect_client_credentials become
// invalid_client; invalid_request and invalid_scope become invalid_request;
// slow_down becomes rate_limited; everything else is provider_error
// (retryable for server_error, temporarily_unavailable and 5xx).
func OAuthError(status int, code, description string) *Error {
	msg := "the provider answered " + code
	if description != "" {
		msg += ": " + description
	}
	e := &Error{Message: msg, Status: status}
	switch code {
	case "invalid_grant", "bad_verification_code", "bad_refresh_token", "expired_token":
		e.Code = abi.CodeInvalidGrant
	case "invalid_client", "unauthorized_client", "incorrect_client_credentials":
		e.Code = abi.CodeInvalidClient
	case "invalid_request", "invalid_scope":
		e.Code = abi.CodeInvalidRequest
	case "slow_down":
		e.Code, e.Retryable = abi.CodeRateLimited, true
	case "server_error", "temporarily_unavailable":
		e.Code, e.Retryable = abi.CodeProviderError, true
	default:
		e.Code, e.Retryable = abi.CodeProviderError, status >= 500
	}
	return e
}

package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/clilogin"
)

// The CLI login's paths: the JSON API's (CLI.Routes) and the pages'
// (gateway/pages' CLI), whose URLs the API hands out.
const (
	PathCLIStart    = "/api/auth/cli/start"
	PathCLIExchange = "/api/auth/cli/exchange"
	PathCLIRefresh  = "/api/auth/cli/refresh"
	PathCLILogout   = "/api/auth/cli/logout"
	PathMe          = "/api/auth/me"

	PathCLILogin   = "/cli/login"
	PathCLIApprove = "/cli/login/approve"
	PathCLIDeny    = "/cli/login/deny"

	// RFC 8628.
	PathDeviceCode   = "/oauth/device/code"
	PathToken        = "/oauth/token"
	PathMetadata     = "/.well-known/oauth-authorization-server"
	PathDevice       = "/device"
	PathDeviceDecide = "/device/approve"

	// GrantDeviceCode is the device code grant type.
	GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
)

// CLIOptions configure the CLI login API.
type CLIOptions struct {
	// Service is CLI login. Required.
	Service *clilogin.Service
	// Chain finds the caller of /api/auth/me. Required.
	Chain *authn.Chain
	// PublicURL prefixes the URLs handed out (login page, RFC 8628
	// endpoints).
	PublicURL string
}

// CLI is the CLI login's JSON API: Grape's start, exchange, refresh,
// logout and me, and RFC 8628's device authorization and token endpoints
// and the authorization server metadata.
type CLI struct {
	opts CLIOptions
}

// NewCLI checks opts.
func NewCLI(opts CLIOptions) (*CLI, error) {
	if opts.Service == nil || opts.Chain == nil {
		return nil, errors.New("api: CLIOptions.Service and Chain are required")
	}
	return &CLI{opts: opts}, nil
}

// Routes registers the API; mount with gateway.ClassAPI.
func (a *CLI) Routes(r fiber.Router) {
	r.Post(PathCLIStart, a.start)
	r.Post(PathCLIExchange, a.exchange)
	r.Post(PathCLIRefresh, a.refresh)
	r.Post(PathCLILogout, a.logout)
	r.Get(PathMe, a.me)
	r.Post(PathDeviceCode, a.deviceCode)
	r.Post(PathToken, a.token)
	r.Get(PathMetadata, a.metadata)
}

// CLIFrom is who sent c, for service/clilogin.
func CLIFrom(c *fiber.Ctx) clilogin.From {
	addr := gateway.ClientIP(c)
	if addr == "" {
		addr = c.IP()
	}
	return clilogin.From{Addr: addr, UserAgent: string(c.Request().Header.UserAgent()), RequestID: gateway.RequestID(c)}
}

type startRequest struct {
	DeviceCode    string `json:"device_code"`
	CodeChallenge string `json:"code_challenge"`
	// ClientName is accepted for older Grape versions and ignored: the
	// approval page always names the client config ui.cli_name.
	ClientName string            `json:"client_name"`
	ClientInfo map[string]string `json:"client_info"`
}

// start records a CLI's announcement and answers the login page's URL.
func (a *CLI) start(c *fiber.Ctx) error {
	var req startRequest
	if err := json.Unmarshal(reqbody.Raw(c), &req); err != nil {
		return httperr.New(400, "invalid_request", "The body must be JSON: {device_code, code_challenge, client_name, client_info}")
	}
	err := a.opts.Service.Start(c.UserContext(), CLIFrom(c), clilogin.StartRequest{
		DeviceCode: req.DeviceCode, CodeChallenge: req.CodeChallenge, ClientInfo: req.ClientInfo,
	})
	if err != nil {
		return CLIAnswer(err)
	}
	c.Status(http.StatusCreated)
	return c.JSON(fiber.Map{
		"login_url":  a.opts.PublicURL + PathCLILogin + "?device_code=" + url.QueryEscape(req.DeviceCode),
		"expires_in": int(a.opts.Service.FlowTTL() / time.Second),
	})
}

type exchangeRequest struct {
	DeviceCode       string `json:"device_code"`
	VerificationCode string `json:"verification_code"`
	CodeVerifier     string `json:"code_verifier"`
}

// exchange trades an approved device code and its verification code for
// tokens.
func (a *CLI) exchange(c *fiber.Ctx) error {
	var req exchangeRequest
	if err := json.Unmarshal(reqbody.Raw(c), &req); err != nil || req.DeviceCode == "" {
		return httperr.New(400, "invalid_request", "The body must be JSON: {device_code, verification_code, code_verifier}")
	}
	t, err := a.opts.Service.Exchange(c.UserContext(), CLIFrom(c), req.DeviceCode, req.VerificationCode, req.CodeVerifier)
	if err != nil {
		return CLIAnswer(err)
	}
	return sendTokens(c, t)
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// refresh rotates a refresh token (service/clilogin's package doc).
func (a *CLI) refresh(c *fiber.Ctx) error {
	var req refreshRequest
	if err := json.Unmarshal(reqbody.Raw(c), &req); err != nil || req.RefreshToken == "" {
		return httperr.New(400, "invalid_request", "The body must be JSON: {refresh_token}")
	}
	t, err := a.opts.Service.Refresh(c.UserContext(), CLIFrom(c), req.RefreshToken, "")
	if err != nil {
		return CLIAnswer(err)
	}
	return sendTokens(c, t)
}

// logout revokes the login of the presented refresh or access token.
func (a *CLI) logout(c *fiber.Ctx) error {
	var req refreshRequest
	_ = json.Unmarshal(reqbody.Raw(c), &req)
	access, _ := authn.BearerToken(c)
	if err := a.opts.Service.Logout(c.UserContext(), CLIFrom(c), req.RefreshToken, access); err != nil {
		return CLIAnswer(err)
	}
	return c.SendStatus(http.StatusNoContent)
}

// me answers who the bearer token (or session) belongs to.
func (a *CLI) me(c *fiber.Ctx) error {
	id, err := a.opts.Chain.Who(c)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"user_id": id.UserID, "email": id.Email, "login": id.Login})
}

// tokenResponse is the body of a successful exchange or refresh.
type tokenResponse struct {
	AccessToken      string   `json:"access_token"`
	RefreshToken     string   `json:"refresh_token"`
	TokenType        string   `json:"token_type"`
	ExpiresIn        int64    `json:"expires_in"`
	RefreshExpiresIn int64    `json:"refresh_expires_in"`
	Scope            string   `json:"scope"`
	User             userJSON `json:"user"`
}

type userJSON struct {
	ID    string `json:"id"`
	Email string `json:"email,omitempty"`
	Login string `json:"login,omitempty"`
}

func sendTokens(c *fiber.Ctx, t clilogin.Tokens) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderPragma, "no-cache")
	return c.JSON(tokenResponse{
		AccessToken: t.Access, RefreshToken: t.Refresh, TokenType: "Bearer",
		ExpiresIn:        int64(t.ExpiresIn / time.Second),
		RefreshExpiresIn: int64(t.RefreshExpiresIn / time.Second),
		Scope:            t.Scopes.String(),
		User:             userJSON{ID: t.User.ID, Email: t.User.Email, Login: t.User.Login},
	})
}

// deviceCode is RFC 8628's device authorization endpoint.
func (a *CLI) deviceCode(c *fiber.Ctx) error {
	clientID := reqbody.FormValue(c, "client_id")
	if clientID == "" {
		return oauthError(c, 400, "invalid_request", "client_id is required")
	}
	d, err := a.opts.Service.DeviceAuthorize(c.UserContext(), CLIFrom(c), clientID, reqbody.FormValue(c, "scope"))
	if err != nil {
		return cliOAuthAnswer(c, err)
	}
	verify := a.opts.PublicURL + PathDevice
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{
		"device_code":               d.DeviceCode,
		"user_code":                 d.UserCode,
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?user_code=" + url.QueryEscape(d.UserCode),
		"expires_in":                int(d.ExpiresIn / time.Second),
		"interval":                  d.Interval,
		"scope":                     d.Scopes.String(),
	})
}

// token is the token endpoint: the device code grant and refresh_token.
func (a *CLI) token(c *fiber.Ctx) error {
	clientID := reqbody.FormValue(c, "client_id")
	if _, ok := a.opts.Service.Client(clientID); !ok && clientID != "" {
		return cliOAuthAnswer(c, clilogin.ErrUnknownClient)
	}
	switch reqbody.FormValue(c, "grant_type") {
	case GrantDeviceCode:
		dc := reqbody.FormValue(c, "device_code")
		if dc == "" {
			return oauthError(c, 400, "invalid_request", "device_code is required")
		}
		t, err := a.opts.Service.DeviceToken(c.UserContext(), CLIFrom(c), clientID, dc)
		if err != nil {
			return cliOAuthAnswer(c, err)
		}
		return sendTokens(c, t)
	case "refresh_token":
		t, err := a.opts.Service.Refresh(c.UserContext(), CLIFrom(c), reqbody.FormValue(c, "refresh_token"), clientID)
		if err != nil {
			e := CLIAnswer(err)
			if e.Code == CodeCLIInvalidGrant {
				return oauthError(c, 400, "invalid_grant", e.Message)
			}
			return e
		}
		return sendTokens(c, t)
	case "":
		return oauthError(c, 400, "invalid_request", "grant_type is required")
	default:
		return oauthError(c, 400, "unsupported_grant_type", "This server issues tokens for the device_code and refresh_token grants only")
	}
}

func (a *CLI) metadata(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	return c.JSON(fiber.Map{
		"issuer":                                a.opts.PublicURL,
		"device_authorization_endpoint":         a.opts.PublicURL + PathDeviceCode,
		"token_endpoint":                        a.opts.PublicURL + PathToken,
		"grant_types_supported":                 []string{GrantDeviceCode, "refresh_token"},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"response_types_supported":              []string{},
		"scopes_supported":                      scope.Names(),
	})
}

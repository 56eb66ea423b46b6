package cliauth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/service/clilogin/clitoken"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/gateway/pages"
)

// RFC 8628, the OAuth 2.0 Device Authorization Grant, for stock OAuth
// clients (golang.org/x/oauth2's DeviceAuth, gh-style tools). It shares the
// refresh families, tokens and approval rules of the Grape flow; only the
// wire format differs.
const (
	PathDeviceCode   = "/oauth/device/code"
	PathToken        = "/oauth/token"
	PathDevice       = "/device"
	PathDeviceDecide = "/device/approve"
	PathMetadata     = "/.well-known/oauth-authorization-server"

	// GrantDeviceCode is the device code grant type.
	GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	// UserCodeAlphabet is RFC 8628's suggestion: 20 consonants, no vowels
	// (no words) and nothing easily confused.
	UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLength   = 8
	// DefaultInterval is the polling interval clients are told, seconds.
	DefaultInterval = 5
)

// DeviceRoutes registers the RFC 8628 endpoints: the device authorization
// and token endpoints and the metadata (gateway.ClassAPI), and the user
// code pages (gateway.ClassAuth) through DevicePageRoutes.
func (a *CLIAuth) DeviceRoutes(r fiber.Router) {
	r.Post(PathDeviceCode, a.deviceCode)
	r.Post(PathToken, a.token)
	r.Get(PathMetadata, a.metadata)
}

// DevicePageRoutes registers /device.
func (a *CLIAuth) DevicePageRoutes(r fiber.Router) {
	r.Get(PathDevice, a.devicePage)
	r.Post(PathDevice, a.deviceLookup)
	r.Post(PathDeviceDecide, a.deviceDecide)
}

// oauthError answers in RFC 6749's error format.
func oauthError(c *fiber.Ctx, status int, code, desc string) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(status).JSON(fiber.Map{"error": code, "error_description": desc})
}

func newUserCode() (string, error) {
	// 256 is not a multiple of 20: reject bytes >= 240 to stay uniform.
	out := make([]byte, 0, userCodeLength)
	var buf [16]byte
	for len(out) < userCodeLength {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", err
		}
		for _, b := range buf {
			if b < 240 && len(out) < userCodeLength {
				out = append(out, UserCodeAlphabet[int(b)%len(UserCodeAlphabet)])
			}
		}
	}
	return string(out), nil
}

// formatUserCode shows a stored user code as XXXX-XXXX.
func formatUserCode(s string) string {
	if len(s) != userCodeLength {
		return s
	}
	return s[:4] + "-" + s[4:]
}

// invalidClient answers a client_id that is not registered.
func invalidClient(c *fiber.Ctx) error {
	return oauthError(c, 400, "invalid_client", "This client_id is not registered with Arbor (config cli.device_clients)")
}

// client returns the registered client of a request's client_id.
func (a *CLIAuth) client(c *fiber.Ctx) (DeviceClient, bool) {
	d, ok := a.clients[reqbody.FormValue(c, "client_id")]
	return d, ok
}

func (a *CLIAuth) deviceCode(c *fiber.Ctx) error {
	if reqbody.FormValue(c, "client_id") == "" {
		return oauthError(c, 400, "invalid_request", "client_id is required")
	}
	// Checked before anything is stored or counted: an unregistered client
	// costs a map lookup.
	client, ok := a.client(c)
	if !ok {
		return invalidClient(c)
	}
	granted := client.Scopes
	if raw := reqbody.FormValue(c, "scope"); raw != "" {
		asked, err := scope.Parse(raw)
		if err != nil || asked == 0 {
			return oauthError(c, 400, "invalid_scope", "Unknown scope; the scopes are "+strings.Join(scope.Names(), ", "))
		}
		if !client.Scopes.Has(asked) {
			return oauthError(c, 400, "invalid_scope", "This client may ask only for: "+client.Scopes.String())
		}
		granted = asked
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return httperr.Internal(err)
	}
	dc := base64.RawURLEncoding.EncodeToString(raw)
	now := a.opts.Now().UTC()
	expires := now.Add(a.opts.FlowTTL + pendingRetention)
	if _, err := a.takeSlot(c, dc, now, expires); err != nil {
		var be *busyError
		if errors.As(err, &be) {
			be.setRetryAfter(c)
			return be.httpError()
		}
		return httperr.Internal(err)
	}
	var uc string
	for attempt := 0; ; attempt++ {
		var err error
		if uc, err = newUserCode(); err != nil {
			return httperr.Internal(err)
		}
		err = a.opts.Store.CreateDeviceCode(c.UserContext(), data.DeviceCode{
			Code: dc, Kind: data.DeviceKindRFC8628, UserCode: uc, ClientID: client.ID, ClientInfo: machineInfo(c, nil),
			Scope: granted.String(), State: data.DevicePending, Interval: DefaultInterval,
			CreatedAt: now, ExpiresAt: expires,
		})
		if err == nil {
			a.pending.stored(dc)
			break
		}
		if !errors.Is(err, data.ErrAlreadyExists) || attempt == 3 {
			a.pending.release(dc)
			return httperr.StoreUnavailable(err, "Arbor could not store the device authorization")
		}
	}
	verify := a.opts.PublicURL + PathDevice
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{
		"device_code":               dc,
		"user_code":                 formatUserCode(uc),
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?user_code=" + url.QueryEscape(formatUserCode(uc)),
		"expires_in":                int(a.opts.FlowTTL / time.Second),
		"interval":                  DefaultInterval,
		"scope":                     granted.String(),
	})
}

// normalizeUserCode upper-cases and drops separators.
func normalizeUserCode(s string) string { return NormalizeCode(s) }

func (a *CLIAuth) devicePage(c *fiber.Ctx) error {
	id, ok, err := a.opts.Chain.Page(c)
	if !ok {
		return err
	}
	return a.render(c, 200, "device-enter", map[string]any{
		"Title": "Connect a device", "Who": pages.Who(id), "CSRF": a.opts.Sessions.CSRFToken(id.SessionID),
		"UserCode": clean(c.Query("user_code"), 12),
	})
}

// deviceLookup finds the pending request of a typed user code and asks
// for a decision.
func (a *CLIAuth) deviceLookup(c *fiber.Ctx) error {
	id, err := a.formUser(c)
	if err != nil {
		return err
	}
	uc := normalizeUserCode(reqbody.FormValue(c, "user_code"))
	again := func(msg string) error {
		return a.render(c, 400, "device-enter", map[string]any{
			"Title": "Connect a device", "Who": pages.Who(id), "CSRF": a.opts.Sessions.CSRFToken(id.SessionID), "Notice": msg,
		})
	}
	if len(uc) != userCodeLength {
		return again("That is not a device code: it has 8 letters, like BCDF-GHJK.")
	}
	d, err := a.opts.Store.GetDeviceCodeByUserCode(c.UserContext(), uc)
	client, registered := a.clients[d.ClientID]
	if err != nil || d.Kind != data.DeviceKindRFC8628 || a.expired(d, a.opts.Now()) || d.State != data.DevicePending || !registered {
		return again("No pending request has that code. Check it, or start again on the device.")
	}
	// Everything shown comes from the configuration or from what Arbor saw,
	// except the User-Agent, which is labelled as the device's own claim.
	return a.render(c, 200, "device-confirm", map[string]any{
		"Title": "Allow device", "Who": pages.Who(id), "CSRF": a.opts.Sessions.CSRFToken(id.SessionID),
		"ClientName": client.Name, "ClientID": client.ID, "Scopes": (scope.ParseKnown(d.Scope) & client.Scopes).Words(a.opts.WorkerName),
		"Machine": machineOf(d.ClientInfo), "UserCode": formatUserCode(uc),
		"Requested": d.CreatedAt.UTC().Format(time.DateTime + " UTC"),
	})
}

func (a *CLIAuth) deviceDecide(c *fiber.Ctx) error {
	id, err := a.formUser(c)
	if err != nil {
		return err
	}
	uc := normalizeUserCode(reqbody.FormValue(c, "user_code"))
	approve := reqbody.FormValue(c, "decision") == "approve"
	ctx := c.UserContext()
	d, err := a.opts.Store.GetDeviceCodeByUserCode(ctx, uc)
	if _, registered := a.clients[d.ClientID]; err != nil || d.Kind != data.DeviceKindRFC8628 || !registered {
		return a.done(c, 404, id, "Unknown code", "No pending request has that code. Start again on the device.")
	}
	now := a.opts.Now().UTC()
	_, err = a.opts.Store.UpdateDeviceCode(ctx, d.Code, func(cur data.DeviceCode) (data.DeviceCode, error) {
		if cur.State != data.DevicePending || a.expired(cur, now) {
			return cur, errFinished
		}
		if approve {
			cur.State, cur.UserID, cur.ApprovedAt = data.DeviceApproved, id.UserID, now
			// Kept past the flow so that a late poll is told expired_token.
			cur.ExpiresAt = cur.CreatedAt.Add(a.opts.FlowTTL + retention)
		} else {
			cur.State = data.DeviceDenied
		}
		return cur, nil
	})
	if err != nil {
		return a.done(c, 410, id, "Request finished", "This request was already decided or has expired. Start again on the device.")
	}
	a.pending.release(d.Code)
	if !approve {
		return a.done(c, 200, id, "Device refused", "Nothing was granted. You can close this page.")
	}
	a.audit(c, data.AuditEvent{Action: "device.approve", Actor: id.UserID, UserID: id.UserID, Target: d.ClientID, Outcome: "ok"})
	return a.done(c, 200, id, "Device connected", "Return to your device: it is signed in as you. You can close this page.")
}

// token is the token endpoint: the device code grant and refresh_token.
func (a *CLIAuth) token(c *fiber.Ctx) error {
	if _, ok := a.client(c); !ok && reqbody.FormValue(c, "client_id") != "" {
		return invalidClient(c)
	}
	switch reqbody.FormValue(c, "grant_type") {
	case GrantDeviceCode:
		return a.deviceToken(c)
	case "refresh_token":
		t, err := a.RefreshToken(c, reqbody.FormValue(c, "refresh_token"), reqbody.FormValue(c, "client_id"))
		if err != nil {
			e := httperr.From(err)
			if e.Code == CodeInvalidGrant {
				return oauthError(c, 400, "invalid_grant", e.Message)
			}
			return err
		}
		return a.tokens(c, t.user, t.family, t.jti)
	case "":
		return oauthError(c, 400, "invalid_request", "grant_type is required")
	default:
		return oauthError(c, 400, "unsupported_grant_type", "This server issues tokens for the device_code and refresh_token grants only")
	}
}

func (a *CLIAuth) deviceToken(c *fiber.Ctx) error {
	ctx := c.UserContext()
	dc := reqbody.FormValue(c, "device_code")
	if dc == "" {
		return oauthError(c, 400, "invalid_request", "device_code is required")
	}
	now := a.opts.Now().UTC()
	d, err := a.opts.Store.GetDeviceCode(ctx, dc)
	if err != nil || d.Kind != data.DeviceKindRFC8628 {
		return oauthError(c, 400, "invalid_grant", "Unknown device_code")
	}
	if cid := reqbody.FormValue(c, "client_id"); cid != "" && cid != d.ClientID {
		return oauthError(c, 400, "invalid_grant", "The device_code was issued to another client")
	}
	if _, ok := a.clients[d.ClientID]; !ok {
		// Registered when the request started, removed since.
		return invalidClient(c)
	}
	switch {
	case !d.ConsumedAt.IsZero():
		return oauthError(c, 400, "invalid_grant", "The device_code was already used")
	case a.expired(d, now):
		return oauthError(c, 400, "expired_token", "The device_code expired; start again")
	case d.State == data.DeviceDenied:
		return oauthError(c, 400, "access_denied", "The user denied the request")
	case d.State == data.DevicePending:
		// A client polling faster than its interval is told to slow down,
		// and its interval grows by 5 s (RFC 8628 3.5). The bookkeeping is
		// in memory: a poll that changes nothing writes nothing.
		if a.pending.poll(dc, now, d.CreatedAt.Add(a.opts.FlowTTL+pendingRetention)) {
			return oauthError(c, 400, "slow_down", "Polling too fast; wait longer between requests")
		}
		return oauthError(c, 400, "authorization_pending", "The user has not decided yet")
	}
	d, err = a.opts.Store.ConsumeDeviceCode(ctx, dc, func(cur data.DeviceCode) error {
		if cur.State != data.DeviceApproved || cur.UserID == "" {
			return errFinished
		}
		return nil
	})
	if err != nil {
		return oauthError(c, 400, "invalid_grant", "The device_code was already used")
	}
	a.pending.release(dc)
	user, err := a.opts.Store.GetUser(ctx, d.UserID)
	if err != nil {
		return httperr.StoreUnavailable(err, "Arbor could not read the user")
	}
	fid, err1 := clitoken.NewID()
	jti, err2 := clitoken.NewID()
	if err := errors.Join(err1, err2); err != nil {
		return httperr.Internal(err)
	}
	info := map[string]string{"flow": flowRFC8628}
	for k, v := range d.ClientInfo {
		info[k] = v
	}
	f := data.RefreshFamily{
		ID: fid, UserID: user.ID, ClientID: d.ClientID, ClientInfo: info, Scope: d.Scope,
		CurrentJTI: jti, Generation: 1, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(a.opts.Tokens.RefreshTTL()),
	}
	if err := a.opts.Store.CreateRefreshFamily(ctx, f); err != nil {
		return httperr.StoreUnavailable(err, "Arbor could not record the login")
	}
	a.audit(c, data.AuditEvent{Action: "device.login", Actor: user.ID, UserID: user.ID, Target: d.ClientID, Outcome: "ok"})
	return a.tokens(c, user, f, jti)
}

func (a *CLIAuth) metadata(c *fiber.Ctx) error {
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

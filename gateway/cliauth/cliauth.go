// Package cliauth is the server side of CLI login (Grape): the device code
// and verification code flow, token exchange, rotating refresh with reuse
// detection, logout, and bearer authentication of API requests.
//
// # The flow and its defences
//
// The CLI picks a random device code (and may keep a PKCE-style verifier
// whose S256 challenge it sends along) and opens /cli/login in the browser.
// The signed-in user sees what asks for access and must press Approve (a
// CSRF-protected POST); only then does Arbor mint a 6-character
// verification code, bound to that device code and that user, and show it.
// The user types it in the terminal and the CLI exchanges device code,
// verification code and verifier for tokens.
//
//   - The verification code comes from crypto/rand over 32 symbols (no
//     0/O, 1/I), 30 bits; it is stored only as an HMAC, and the device
//     code burns after 5 wrong codes from anywhere, so guessing is hopeless
//     (5 tries in 10^9).
//   - The device code binds to the first signed-in user who opens it; no
//     other user can approve it.
//   - Each wrong code is counted in the same atomic store update that
//     checks it, so parallel guesses cannot evaluate more than 5 codes.
//   - Exactly one exchange succeeds (the store's atomic consume), within 10
//     minutes of the start.
//   - Anonymous starts are bounded (limits.go): a global and a per-address
//     cap on pending, unapproved requests, which live 10 minutes; polls
//     write nothing.
//   - Unknown, expired, burned and used device codes get distinct stable
//     errors; a wrong code never learns anything about the right one.
//
// # Refresh tokens
//
// Every login is a refresh-token family (data.RefreshFamily). A refresh
// rotates: the presented token must be the family's current one; it is
// replaced, and the one before it stays acceptable only for a short grace
// window (a response lost on the network). Presenting any older token is
// reuse, a sign that a token was stolen: the whole family is revoked and
// the event is audited. Access tokens name their family, and bearer
// authentication checks that the family is alive, so logout and reuse
// detection end access at once, not an hour later.
package cliauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authn/clitoken"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/gateway/pages"
)

// Paths.
const (
	PathStart    = "/api/auth/cli/start"
	PathLogin    = "/cli/login"
	PathApprove  = "/cli/login/approve"
	PathDeny     = "/cli/login/deny"
	PathExchange = "/api/auth/cli/exchange"
	PathRefresh  = "/api/auth/cli/refresh"
	PathLogout   = "/api/auth/cli/logout"
	PathMe       = "/api/auth/me"
)

// Defaults.
const (
	DefaultFlowTTL      = 10 * time.Minute
	DefaultMaxAttempts  = 5
	DefaultRefreshGrace = 10 * time.Second
	// retention keeps a device code record after its flow expired, so that
	// a late exchange is told "expired", not "unknown".
	retention = time.Hour
	// CodeAlphabet is the verification code's 32 symbols: no 0/O, 1/I.
	CodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	CodeLength   = 6
)

// Stable error codes of the exchange.
const (
	CodeUnknownDevice = "unknown_device_code"
	CodeExpiredDevice = "expired_device_code"
	CodeBurnedDevice  = "device_code_burned"
	CodeUsedDevice    = "device_code_used"
	CodeInvalidCode   = "invalid_code"
	CodeInvalidVerif  = "invalid_verifier"
	CodeInvalidGrant  = "invalid_grant"
)

// Store is what CLI login needs from the store.
type Store interface {
	data.Users
	data.DeviceCodes
	data.RefreshFamilies
	data.Audit
}

// Sessions is what the approval page needs of session.Manager.
type Sessions interface {
	CSRFToken(sid string) string
	CheckCSRF(sid, token string) bool
}

// Options configure CLI login.
type Options struct {
	Store    Store
	Tokens   *clitoken.Signer
	Sessions Sessions
	// Chain finds the caller of the pages and of /api/auth/me (package
	// authn). Required. The chain's CLI authenticator is this CLIAuth
	// (Authenticate), so build the chain with a function that calls it.
	Chain *authn.Chain
	// CodeKey keys the HMAC under which verification codes are stored
	// (32+ bytes; derive it from CLI_JWT_SECRET).
	CodeKey      []byte
	PublicURL    string
	FlowTTL      time.Duration
	MaxAttempts  int
	RefreshGrace time.Duration
	// MaxPendingDevices caps the pending, unapproved device requests this
	// process created (all flows); MaxPendingPerAddress caps them per client
	// address. Defaults DefaultMaxPendingDevices and
	// DefaultMaxPendingPerAddress. See limits.go.
	MaxPendingDevices    int
	MaxPendingPerAddress int
	// DeviceClients are the RFC 8628 clients /oauth/device/code accepts
	// (clients.go); none by default.
	DeviceClients []DeviceClient
	Now           func() time.Time
	Logger        *slog.Logger
	// AppName and WorkerName are the product names the pages speak of
	// (config ui.app_name and ui.worker_name). Empty: config.DefaultAppName
	// and config.DefaultWorkerName.
	AppName, WorkerName string
	// CLIName is what the approval page calls the first-party CLI
	// (config ui.cli_name). Empty: config.DefaultCLIName.
	CLIName string
}

// CLIAuth serves CLI login.
type CLIAuth struct {
	opts    Options
	tmpl    *template.Template
	pending *pendingSlots
	clients map[string]DeviceClient
}

//go:embed assets
var assets embed.FS

// New checks opts.
func New(opts Options) (*CLIAuth, error) {
	if opts.Store == nil || opts.Tokens == nil || opts.Sessions == nil || opts.Chain == nil {
		return nil, errors.New("cliauth: Options.Store, Tokens, Sessions and Chain are required")
	}
	if len(opts.CodeKey) < 32 {
		return nil, errors.New("cliauth: Options.CodeKey must be at least 32 bytes")
	}
	if opts.FlowTTL <= 0 {
		opts.FlowTTL = DefaultFlowTTL
	}
	if opts.FlowTTL > DefaultFlowTTL {
		return nil, errors.New("cliauth: Options.FlowTTL may not exceed 10 minutes (unapproved requests live at most that long)")
	}
	if opts.MaxPendingDevices <= 0 {
		opts.MaxPendingDevices = DefaultMaxPendingDevices
	}
	if opts.MaxPendingPerAddress <= 0 {
		opts.MaxPendingPerAddress = DefaultMaxPendingPerAddress
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.RefreshGrace < 0 {
		opts.RefreshGrace = 0
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	clients, err := newClientRegistry(opts.DeviceClients)
	if err != nil {
		return nil, err
	}
	names := pages.Names{App: opts.AppName, Worker: opts.WorkerName}.WithDefaults()
	opts.AppName, opts.WorkerName = names.App, names.Worker
	if opts.CLIName == "" {
		opts.CLIName = config.DefaultCLIName
	}
	tmpl, err := pages.Templates(names, assets, "assets/pages.html")
	if err != nil {
		return nil, fmt.Errorf("cliauth: parsing templates: %w", err)
	}
	return &CLIAuth{opts: opts, tmpl: tmpl, pending: newPendingSlots(opts.MaxPendingDevices, opts.MaxPendingPerAddress), clients: clients}, nil
}

// PageRoutes registers the browser pages; mount with gateway.ClassAuth.
func (a *CLIAuth) PageRoutes(r fiber.Router) {
	r.Get(PathLogin, a.loginPage)
	r.Post(PathApprove, a.approve)
	r.Post(PathDeny, a.deny)
}

// APIRoutes registers the JSON API; mount with gateway.ClassAPI.
func (a *CLIAuth) APIRoutes(r fiber.Router) {
	r.Post(PathStart, a.start)
	r.Post(PathExchange, a.exchange)
	r.Post(PathRefresh, a.refresh)
	r.Post(PathLogout, a.logout)
	r.Get(PathMe, a.me)
}

// validDeviceCode accepts what a CLI may pick: 16 to 128 characters of
// letters, digits and '-' (a UUID is 36).
func validDeviceCode(s string) bool {
	if len(s) < 16 || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validChallenge accepts a base64url SHA-256 (43 characters).
func validChallenge(s string) bool {
	if s == "" {
		return true
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

func apiError(status int, code, msg string) *httperr.Error { return httperr.New(status, code, msg) }

type startRequest struct {
	DeviceCode    string `json:"device_code"`
	CodeChallenge string `json:"code_challenge"`
	// ClientName is accepted for older Grape versions and ignored: the
	// approval page always names the client Options.CLIName.
	ClientName string            `json:"client_name"`
	ClientInfo map[string]string `json:"client_info"`
}

// start records a CLI's announcement: its device code, challenge and a
// description of the machine, shown on the approval page as reported by
// the device.
func (a *CLIAuth) start(c *fiber.Ctx) error {
	var req startRequest
	if err := json.Unmarshal(reqbody.Raw(c), &req); err != nil {
		return apiError(400, "invalid_request", "The body must be JSON: {device_code, code_challenge, client_name, client_info}")
	}
	if err := a.create(c, req); err != nil {
		var be *busyError
		if errors.As(err, &be) {
			be.setRetryAfter(c)
			return be.httpError()
		}
		return err
	}
	c.Status(http.StatusCreated)
	return c.JSON(fiber.Map{
		"login_url":  a.opts.PublicURL + PathLogin + "?device_code=" + url.QueryEscape(req.DeviceCode),
		"expires_in": int(a.opts.FlowTTL / time.Second),
	})
}

// create stores a new pending device code, within the caps on pending
// requests (a *busyError past them).
func (a *CLIAuth) create(c *fiber.Ctx, req startRequest) error {
	if !validDeviceCode(req.DeviceCode) {
		return apiError(400, "invalid_request", "device_code must be 16 to 128 letters, digits or '-' (a UUID)")
	}
	if !validChallenge(req.CodeChallenge) {
		return apiError(400, "invalid_request", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
	}
	info := map[string]string{}
	for k, v := range req.ClientInfo {
		if len(info) >= 8 {
			break
		}
		if k = clean(k, 32); k != "" && !strings.HasPrefix(k, infoPrefix) {
			info[k] = clean(v, 128)
		}
	}
	info = machineInfo(c, info)
	now := a.opts.Now().UTC()
	expires := now.Add(a.opts.FlowTTL + pendingRetention)
	took, err := a.takeSlot(c, req.DeviceCode, now, expires)
	if err != nil {
		return err
	}
	err = a.opts.Store.CreateDeviceCode(c.UserContext(), data.DeviceCode{
		Code: req.DeviceCode, Kind: data.DeviceKindCLI, ClientID: GrapeClientID, ClientInfo: info,
		CodeChallenge: req.CodeChallenge, State: data.DevicePending,
		CreatedAt: now, ExpiresAt: expires,
	})
	switch {
	case err != nil && took:
		a.pending.release(req.DeviceCode)
	case err == nil:
		a.pending.stored(req.DeviceCode)
	}
	if errors.Is(err, data.ErrAlreadyExists) {
		return apiError(409, "device_code_exists", "This device code is in use; make a new random one")
	}
	if err != nil {
		return httperr.StoreUnavailable(err, "Arbor could not store the login request")
	}
	return nil
}

func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	return strings.TrimSpace(s)
}

func (a *CLIAuth) expired(d data.DeviceCode, now time.Time) bool {
	return !now.Before(d.CreatedAt.Add(a.opts.FlowTTL))
}

func (a *CLIAuth) render(c *fiber.Ctx, status int, name string, v map[string]any) error {
	v["RequestID"] = gateway.RequestID(c)
	return pages.Render(c, a.tmpl, status, name, v)
}

func (a *CLIAuth) done(c *fiber.Ctx, status int, id authn.Identity, heading, msg string) error {
	if status >= 400 {
		// A browser gets the error page; any other client the same error
		// as JSON.
		return a.errorPage(c, id, httperr.New(status, pageCode(status), heading+": "+msg), heading, msg)
	}
	return a.render(c, status, "done", map[string]any{"Title": heading, "Who": pages.Who(id), "Heading": heading, "Message": msg})
}

// loginPage shows what asks for access, binding the device code to the
// first signed-in user who opens it.
func (a *CLIAuth) loginPage(c *fiber.Ctx) error {
	id, ok, err := a.opts.Chain.Page(c)
	if !ok {
		return err
	}
	ctx := c.UserContext()
	code := c.Query("device_code")
	if !validDeviceCode(code) {
		return a.done(c, 400, id, "Invalid login link", "The link is missing its device code or the code is malformed. Run the login command again.")
	}
	d, err := a.opts.Store.GetDeviceCode(ctx, code)
	if errors.Is(err, data.ErrNotFound) {
		// Not announced: the link itself starts the request.
		if cerr := a.create(c, startRequest{DeviceCode: code, CodeChallenge: c.Query("code_challenge")}); cerr != nil {
			var be *busyError
			if errors.As(cerr, &be) {
				return a.busyPage(c, id, be)
			}
			return a.done(c, 400, id, "Invalid login link", httperr.From(cerr).Message)
		}
		d, err = a.opts.Store.GetDeviceCode(ctx, code)
	}
	if err != nil {
		return a.done(c, 503, id, "Try again", "Arbor could not read the login request. Please reload in a moment.")
	}
	now := a.opts.Now()
	switch {
	case d.Kind != data.DeviceKindCLI:
		return a.done(c, 400, id, "Invalid login link", "This is not a CLI login request.")
	case a.expired(d, now):
		return a.done(c, 410, id, "Login request expired", "This login request is more than 10 minutes old. Run the login command again.")
	case d.ConsumedAt.IsZero() == false || d.State == data.DeviceBurned || d.State == data.DeviceDenied:
		return a.done(c, 410, id, "Login request finished", "This login request was already used or refused. Run the login command again.")
	case d.UserID != "" && d.UserID != id.UserID:
		return a.done(c, 403, id, "Not your login request", "Another user opened this login request first. Run the login command again.")
	}
	if d.UserID == "" {
		_, err = a.opts.Store.UpdateDeviceCode(ctx, code, func(cur data.DeviceCode) (data.DeviceCode, error) {
			if cur.UserID != "" && cur.UserID != id.UserID {
				return cur, errOtherUser
			}
			cur.UserID = id.UserID
			return cur, nil
		})
		if errors.Is(err, errOtherUser) {
			return a.done(c, 403, id, "Not your login request", "Another user opened this login request first. Run the login command again.")
		}
		if err != nil {
			return a.done(c, 503, id, "Try again", "Arbor could not update the login request. Please reload in a moment.")
		}
	}
	return a.render(c, 200, "confirm", map[string]any{
		"Title": "Approve CLI login", "Who": pages.Who(id), "ClientName": a.opts.CLIName, "Machine": machineOf(d.ClientInfo),
		"Scopes":    scope.All.Words(a.opts.WorkerName),
		"Requested": d.CreatedAt.UTC().Format(time.DateTime + " UTC"),
		"Expires":   "at " + d.CreatedAt.Add(a.opts.FlowTTL).UTC().Format(time.TimeOnly+" UTC"),
		"CSRF":      a.opts.Sessions.CSRFToken(id.SessionID), "DeviceCode": d.Code,
	})
}

var errOtherUser = errors.New("cliauth: device code belongs to another user")

// busyPage answers a start past the caps on pending requests: 503 busy
// with Retry-After, as a page for a browser and as JSON otherwise.
func (a *CLIAuth) busyPage(c *fiber.Ctx, id authn.Identity, be *busyError) error {
	be.setRetryAfter(c)
	return a.errorPage(c, id, be.httpError(), "Too many login requests",
		"Arbor has too many login requests waiting for approval right now. Wait a minute, then run the login command again.")
}

// errorPage answers e with the layout's error page (pages.Error), titled
// heading and saying msg, to a browser, and with e as JSON otherwise.
func (a *CLIAuth) errorPage(c *fiber.Ctx, id authn.Identity, e *httperr.Error, heading, msg string) error {
	return pages.Error(c, a.tmpl, e, pages.ErrorPage{
		Title: heading, Who: pages.Who(id), RequestID: gateway.RequestID(c), Message: msg, ID: "cli-done",
	})
}

// formUser authenticates a page POST and checks its CSRF token and origin.
func (a *CLIAuth) formUser(c *fiber.Ctx) (authn.Identity, error) {
	id, err := a.opts.Chain.Form(c)
	if err != nil {
		return id, err
	}
	if gateway.CrossSite(c, a.opts.PublicURL) || !a.opts.Sessions.CheckCSRF(id.SessionID, reqbody.FormValue(c, "csrf")) {
		return id, httperr.New(403, "csrf_invalid", "This form was not sent from the approval page; reload it and try again")
	}
	return id, nil
}

// newCode returns a verification code: CodeLength symbols of CodeAlphabet,
// each from one random byte. 256 is a multiple of 32, so b%32 is uniform.
func newCode() (string, error) {
	var b [CodeLength]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	out := make([]byte, CodeLength)
	for i, x := range b {
		out[i] = CodeAlphabet[int(x)%len(CodeAlphabet)]
	}
	return string(out), nil
}

// NormalizeCode upper-cases a typed code and drops spaces and dashes.
func NormalizeCode(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

func (a *CLIAuth) codeHash(deviceCode, code string) string {
	m := hmac.New(sha256.New, a.opts.CodeKey)
	m.Write([]byte("arbor-cli-code\x00" + deviceCode + "\x00" + NormalizeCode(code)))
	return hex.EncodeToString(m.Sum(nil))
}

// approve mints the verification code after the user pressed Approve.
func (a *CLIAuth) approve(c *fiber.Ctx) error {
	id, err := a.formUser(c)
	if err != nil {
		return err
	}
	dc := reqbody.FormValue(c, "device_code")
	code, err := newCode()
	if err != nil {
		return httperr.Internal(err)
	}
	now := a.opts.Now().UTC()
	d, err := a.opts.Store.UpdateDeviceCode(c.UserContext(), dc, func(cur data.DeviceCode) (data.DeviceCode, error) {
		switch {
		case cur.Kind != data.DeviceKindCLI:
			return cur, errNotCLI
		case cur.UserID != id.UserID:
			return cur, errOtherUser
		case a.expired(cur, now):
			return cur, errExpired
		case cur.State == data.DeviceBurned || cur.State == data.DeviceDenied:
			return cur, errFinished
		}
		// Approving again (a reload) replaces the code: it was shown
		// only once and is not stored in the clear.
		cur.State, cur.ApprovedAt = data.DeviceApproved, now
		cur.VerificationHash = a.codeHash(cur.Code, code)
		// Approved by a signed-in user: kept past the flow so that a late
		// exchange is told "expired", and no longer pending.
		cur.ExpiresAt = cur.CreatedAt.Add(a.opts.FlowTTL + retention)
		return cur, nil
	})
	if err == nil {
		a.pending.release(d.Code)
	}
	switch {
	case errors.Is(err, data.ErrNotFound), errors.Is(err, errNotCLI):
		return a.done(c, 404, id, "Unknown login request", "This login request does not exist. Run the login command again.")
	case errors.Is(err, errOtherUser):
		return a.done(c, 403, id, "Not your login request", "Another user opened this login request first.")
	case errors.Is(err, errExpired):
		return a.done(c, 410, id, "Login request expired", "Run the login command again.")
	case errors.Is(err, errFinished), errors.Is(err, data.ErrConsumed):
		return a.done(c, 410, id, "Login request finished", "This login request was already used or refused.")
	case err != nil:
		return httperr.StoreUnavailable(err, "Arbor could not record the approval")
	}
	a.audit(c, data.AuditEvent{Action: "cli.approve", Actor: id.UserID, UserID: id.UserID, Target: d.ClientID, Outcome: "ok"})
	return a.render(c, 200, "code", map[string]any{
		"Title": "Verification code", "Who": pages.Who(id), "Code": code,
		"Expires": "at " + d.CreatedAt.Add(a.opts.FlowTTL).UTC().Format(time.TimeOnly+" UTC"),
	})
}

var (
	errNotCLI   = errors.New("cliauth: not a CLI device code")
	errExpired  = errors.New("cliauth: device code expired")
	errFinished = errors.New("cliauth: device code finished")
)

func (a *CLIAuth) deny(c *fiber.Ctx) error {
	id, err := a.formUser(c)
	if err != nil {
		return err
	}
	dc := reqbody.FormValue(c, "device_code")
	_, err = a.opts.Store.UpdateDeviceCode(c.UserContext(), dc, func(cur data.DeviceCode) (data.DeviceCode, error) {
		if cur.UserID != id.UserID {
			return cur, errOtherUser
		}
		cur.State, cur.VerificationHash = data.DeviceDenied, ""
		return cur, nil
	})
	if err == nil {
		a.pending.release(dc)
	}
	switch {
	case errors.Is(err, errOtherUser):
		return a.done(c, 403, id, "Not your login request", "Another user opened this login request first.")
	case errors.Is(err, data.ErrNotFound):
		return a.done(c, 404, id, "Unknown login request", "This login request does not exist.")
	case errors.Is(err, data.ErrConsumed):
		return a.done(c, 410, id, "Login already completed",
			"This login was already completed, so refusing it now changes nothing. To end it, revoke it under Command-line logins on your account page.")
	case err != nil:
		return httperr.StoreUnavailable(err, "Arbor could not record the refusal")
	}
	return a.done(c, 200, id, "Login refused", "The command-line login was refused. Nothing was granted.")
}

func (a *CLIAuth) audit(c *fiber.Ctx, e data.AuditEvent) {
	e.RequestID, e.IP = gateway.RequestID(c), gateway.ClientIP(c)
	if _, err := a.opts.Store.AppendAudit(context.WithoutCancel(c.UserContext()), e); err != nil {
		gateway.Logger(c).Error("writing an audit event failed", "action", e.Action, "err", err)
	}
}

type exchangeRequest struct {
	DeviceCode       string `json:"device_code"`
	VerificationCode string `json:"verification_code"`
	CodeVerifier     string `json:"code_verifier"`
}

// exchange trades an approved device code and its verification code for
// tokens.
func (a *CLIAuth) exchange(c *fiber.Ctx) error {
	var req exchangeRequest
	if err := json.Unmarshal(reqbody.Raw(c), &req); err != nil || req.DeviceCode == "" {
		return apiError(400, "invalid_request", "The body must be JSON: {device_code, verification_code, code_verifier}")
	}
	ctx := c.UserContext()
	now := a.opts.Now()
	code := NormalizeCode(req.VerificationCode)
	if code == "" {
		// No code yet (a client polling): answered from a read, counted as
		// no attempt, and nothing is written.
		d, err := a.opts.Store.GetDeviceCode(ctx, req.DeviceCode)
		switch {
		case errors.Is(err, data.ErrNotFound), errors.Is(err, data.ErrInvalid):
			return apiError(400, CodeUnknownDevice, "No such login request; run the login command again")
		case err != nil:
			return httperr.StoreUnavailable(err, "Arbor could not read the login request")
		}
		if fe := a.deviceState(d, now); fe != nil {
			return fe
		}
		return apiError(400, CodeInvalidCode, "The verification code is wrong (or the login is not approved yet)")
	}
	// The code is checked, and a wrong one counted, in one atomic update:
	// parallel guesses are serialised by the store, so no more than
	// MaxAttempts codes are ever evaluated against a device code. A right
	// code changes nothing here (errCodeRight aborts the update).
	var (
		verdict *httperr.Error
		burned  bool
		hash    string
	)
	d, err := a.opts.Store.UpdateDeviceCode(ctx, req.DeviceCode, func(cur data.DeviceCode) (data.DeviceCode, error) {
		verdict, burned = nil, false // fn may run more than once
		if fe := a.deviceState(cur, now); fe != nil {
			return cur, fe
		}
		hash = a.codeHash(cur.Code, code)
		verifierOK := cur.CodeChallenge == "" || s256(req.CodeVerifier) == cur.CodeChallenge
		codeOK := cur.State == data.DeviceApproved && cur.VerificationHash != "" &&
			subtle.ConstantTimeCompare([]byte(hash), []byte(cur.VerificationHash)) == 1
		if codeOK && verifierOK {
			return cur, errCodeRight
		}
		cur.FailedAttempts++
		if cur.FailedAttempts >= a.opts.MaxAttempts {
			cur.State, cur.VerificationHash, burned = data.DeviceBurned, "", true
		}
		verdict = apiError(400, CodeInvalidVerif, "The code_verifier does not match the login request's code_challenge")
		if !codeOK {
			verdict = apiError(400, CodeInvalidCode, "The verification code is wrong (or the login is not approved yet)")
		}
		return cur, nil
	})
	var fe *httperr.Error
	switch {
	case errors.Is(err, errCodeRight):
	case err == nil:
		if burned {
			a.audit(c, data.AuditEvent{Action: "cli.device_code_burned", UserID: d.UserID, Target: d.ClientID, Outcome: "burned"})
			gateway.Logger(c).Warn("a CLI login request was burned after too many wrong codes", "user_id", d.UserID)
		}
		return verdict
	case errors.Is(err, data.ErrConsumed):
		return apiError(400, CodeUsedDevice, "This login request was already exchanged; run the login command again")
	case errors.As(err, &fe):
		return fe
	case errors.Is(err, data.ErrNotFound), errors.Is(err, data.ErrInvalid):
		return apiError(400, CodeUnknownDevice, "No such login request; run the login command again")
	default:
		return httperr.StoreUnavailable(err, "Arbor could not read the login request")
	}
	// Exactly one exchange wins; the check runs again on the current record.
	d, err = a.opts.Store.ConsumeDeviceCode(ctx, req.DeviceCode, func(cur data.DeviceCode) error {
		if fe := a.deviceState(cur, now); fe != nil {
			return fe
		}
		if cur.State != data.DeviceApproved || subtle.ConstantTimeCompare([]byte(hash), []byte(cur.VerificationHash)) != 1 {
			return apiError(400, CodeInvalidCode, "The verification code is wrong (or the login is not approved yet)")
		}
		return nil
	})
	var he *httperr.Error
	switch {
	case errors.Is(err, data.ErrConsumed):
		return apiError(400, CodeUsedDevice, "This login request was already exchanged; run the login command again")
	case errors.As(err, &he):
		return he
	case errors.Is(err, data.ErrNotFound):
		return apiError(400, CodeUnknownDevice, "No such login request; run the login command again")
	case err != nil:
		return httperr.StoreUnavailable(err, "Arbor could not complete the login")
	}
	a.pending.release(req.DeviceCode)
	user, err := a.opts.Store.GetUser(ctx, d.UserID)
	if err != nil {
		return httperr.StoreUnavailable(err, "Arbor could not read the user")
	}
	fid, err := clitoken.NewID()
	if err != nil {
		return httperr.Internal(err)
	}
	jti, err := clitoken.NewID()
	if err != nil {
		return httperr.Internal(err)
	}
	nowUTC := now.UTC()
	f := data.RefreshFamily{
		ID: fid, UserID: user.ID, ClientID: d.ClientID, ClientInfo: d.ClientInfo,
		CurrentJTI: jti, Generation: 1, CreatedAt: nowUTC, LastUsedAt: nowUTC,
		ExpiresAt: nowUTC.Add(a.opts.Tokens.RefreshTTL()), Scope: scope.All.String(),
	}
	if err := a.opts.Store.CreateRefreshFamily(ctx, f); err != nil {
		return httperr.StoreUnavailable(err, "Arbor could not record the login")
	}
	a.audit(c, data.AuditEvent{Action: "cli.login", Actor: user.ID, UserID: user.ID, Target: d.ClientID, Outcome: "ok",
		Details: map[string]string{"family": fid}})
	return a.tokens(c, user, f, jti)
}

// deviceState refuses device codes that cannot be exchanged any more.
func (a *CLIAuth) deviceState(d data.DeviceCode, now time.Time) *httperr.Error {
	switch {
	case d.Kind != data.DeviceKindCLI:
		return apiError(400, CodeUnknownDevice, "No such login request; run the login command again")
	case !d.ConsumedAt.IsZero():
		return apiError(400, CodeUsedDevice, "This login request was already exchanged; run the login command again")
	case d.State == data.DeviceBurned:
		return apiError(400, CodeBurnedDevice, "Too many wrong codes: this login request is burned; run the login command again")
	case d.State == data.DeviceDenied:
		return apiError(400, "access_denied", "The login was refused in the browser")
	case a.expired(d, now):
		return apiError(400, CodeExpiredDevice, "This login request is more than 10 minutes old; run the login command again")
	}
	return nil
}

// errCodeRight ends the exchange's checking update without a write: the
// code and verifier are right, and the consume comes next.
var errCodeRight = errors.New("cliauth: the verification code is right")

func s256(verifier string) string {
	if verifier == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
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

// tokens mints an access token and the refresh token jti of family f.
func (a *CLIAuth) tokens(c *fiber.Ctx, u data.User, f data.RefreshFamily, jti string) error {
	granted := a.grantedScopes(f)
	if granted == 0 {
		return invalidGrant("This device client is no longer registered with Arbor; its logins have ended")
	}
	sub := clitoken.Subject{UserID: u.ID, Email: u.Email, Login: u.Login, Scopes: granted}
	ajti, err := clitoken.NewID()
	if err != nil {
		return httperr.Internal(err)
	}
	access, aexp, err := a.opts.Tokens.Mint(clitoken.TypeAccess, sub, f.ID, ajti)
	if err != nil {
		return httperr.Internal(err)
	}
	refresh, _, err := a.opts.Tokens.Mint(clitoken.TypeRefresh, sub, f.ID, jti)
	if err != nil {
		return httperr.Internal(err)
	}
	now := a.opts.Now()
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderPragma, "no-cache")
	return c.JSON(tokenResponse{
		AccessToken: access, RefreshToken: refresh, TokenType: "Bearer",
		ExpiresIn:        int64(aexp.Sub(now.Truncate(time.Second)) / time.Second),
		RefreshExpiresIn: int64(f.ExpiresAt.Sub(now) / time.Second),
		Scope:            granted.String(),
		User:             userJSON{ID: u.ID, Email: u.Email, Login: u.Login},
	})
}

// pageCode is the stable error code of a login page's failure status.
func pageCode(status int) string {
	switch status {
	case http.StatusServiceUnavailable:
		return httperr.CodeStoreUnavailable
	case http.StatusGone:
		return "login_request_gone"
	case http.StatusForbidden:
		return "login_request_taken"
	default:
		return "invalid_login_request"
	}
}

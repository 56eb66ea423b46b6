package pages

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/api"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/internal/printable"
	"github.com/vintner/arbor/service/clilogin"
)

// The CLI login's pages: Grape's approval (/cli/login, approve, deny) and
// RFC 8628's /device, where a signed-in person decides on a request a CLI
// or device started (service/clilogin does the work; its errors get the
// answers of api.CLIAnswer, the JSON API's).

// CLISessions is what the CLI pages need of session.Manager: the CSRF
// token of their forms.
type CLISessions = CSRF

// CLIOptions configure the CLI login pages.
type CLIOptions struct {
	// Service is CLI login. Required.
	Service *clilogin.Service
	// Sessions checks the forms' CSRF tokens. Required.
	Sessions CLISessions
	// Chain finds the signed-in person. Required.
	Chain *authn.Chain
	// PublicURL is Arbor's origin, for CrossSite.
	PublicURL string
	// AppName and WorkerName are the product names the pages speak of
	// (config ui.app_name and ui.worker_name). Empty: config.DefaultAppName
	// and config.DefaultWorkerName.
	AppName, WorkerName string
	// CLIName is what the approval page calls the first-party CLI
	// (config ui.cli_name). Empty: config.DefaultCLIName.
	CLIName string
}

// CLI serves the CLI login pages.
type CLI struct {
	opts CLIOptions
	tmpl *template.Template
}

// NewCLI checks opts and parses the pages.
func NewCLI(opts CLIOptions) (*CLI, error) {
	if opts.Service == nil || opts.Sessions == nil || opts.Chain == nil {
		return nil, errors.New("pages: CLIOptions.Service, Sessions and Chain are required")
	}
	names := Names{App: opts.AppName, Worker: opts.WorkerName}.WithDefaults()
	opts.AppName, opts.WorkerName = names.App, names.Worker
	if opts.CLIName == "" {
		opts.CLIName = config.DefaultCLIName
	}
	tmpl, err := Templates(names, assets, "assets/cli.html")
	if err != nil {
		return nil, fmt.Errorf("pages: parsing the CLI pages: %w", err)
	}
	return &CLI{opts: opts, tmpl: tmpl}, nil
}

// Routes registers the pages; mount with gateway.ClassAuth.
func (p *CLI) Routes(r fiber.Router) {
	r.Get(api.PathCLILogin, p.loginPage)
	r.Post(api.PathCLIApprove, p.approve)
	r.Post(api.PathCLIDeny, p.deny)
	r.Get(api.PathDevice, p.devicePage)
	r.Post(api.PathDevice, p.deviceLookup)
	r.Post(api.PathDeviceDecide, p.deviceDecide)
}

func (p *CLI) render(c *fiber.Ctx, status int, name string, v map[string]any) error {
	v["RequestID"] = gateway.RequestID(c)
	return Render(c, p.tmpl, status, name, v)
}

func (p *CLI) done(c *fiber.Ctx, status int, id authn.Identity, heading, msg string) error {
	if status >= 400 {
		// A browser gets the error page; any other client the same error
		// as JSON.
		return p.errorPage(c, id, httperr.New(status, cliPageCode(status), heading+": "+msg), heading, msg)
	}
	return p.render(c, status, "done", map[string]any{"Title": heading, "Who": Who(id), "Heading": heading, "Message": msg})
}

// errorPage answers e with the layout's error page (Error), titled
// heading and saying msg, to a browser, and with e as JSON otherwise.
func (p *CLI) errorPage(c *fiber.Ctx, id authn.Identity, e *httperr.Error, heading, msg string) error {
	return Error(c, p.tmpl, e, ErrorPage{
		Title: heading, Who: Who(id), RequestID: gateway.RequestID(c), Message: msg, ID: "cli-done",
	})
}

// busyPage answers a start past the caps on pending requests: 503 busy
// with Retry-After (api.CLIAnswer), as a page for a browser and as JSON
// otherwise.
func (p *CLI) busyPage(c *fiber.Ctx, id authn.Identity, err error) error {
	return p.errorPage(c, id, api.CLIAnswer(err), "Too many login requests",
		"Arbor has too many login requests waiting for approval right now. Wait a minute, then run the login command again.")
}

// cliPageCode is the stable error code of a login page's failure status.
func cliPageCode(status int) string {
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

// formUser authenticates a page POST and checks its CSRF token and origin.
func (p *CLI) formUser(c *fiber.Ctx) (authn.Identity, error) {
	id, err := p.opts.Chain.Form(c)
	if err != nil {
		return id, err
	}
	if !FromOwnPage(c, p.opts.PublicURL, p.opts.Sessions, id.SessionID) {
		return id, httperr.New(403, "csrf_invalid", "This form was not sent from the approval page; reload it and try again")
	}
	return id, nil
}

// loginPage shows what asks for access, binding the device code to the
// first signed-in user who opens it; a link whose device code was not
// announced starts the request itself.
func (p *CLI) loginPage(c *fiber.Ctx) error {
	id, ok, err := p.opts.Chain.Page(c)
	if !ok {
		return err
	}
	ctx := c.UserContext()
	code := c.Query("device_code")
	req, err := p.opts.Service.Open(ctx, id.UserID, code)
	if errors.Is(err, clilogin.ErrUnknownDevice) {
		serr := p.opts.Service.Start(ctx, api.CLIFrom(c), clilogin.StartRequest{DeviceCode: code, CodeChallenge: c.Query("code_challenge")})
		var be *clilogin.BusyError
		switch {
		case errors.As(serr, &be):
			return p.busyPage(c, id, serr)
		case serr != nil:
			return p.done(c, 400, id, "Invalid login link", api.CLIAnswer(serr).Message)
		}
		req, err = p.opts.Service.Open(ctx, id.UserID, code)
	}
	var se *clilogin.StoreError
	switch {
	case err == nil:
	case errors.Is(err, clilogin.ErrInvalidDeviceCode):
		return p.done(c, 400, id, "Invalid login link", "The link is missing its device code or the code is malformed. Run the login command again.")
	case errors.As(err, &se):
		return p.done(c, 503, id, "Try again", "Arbor could not "+se.What+". Please reload in a moment.")
	case errors.Is(err, clilogin.ErrNotCLI):
		return p.done(c, 400, id, "Invalid login link", "This is not a CLI login request.")
	case errors.Is(err, clilogin.ErrExpired):
		return p.done(c, 410, id, "Login request expired", "This login request is more than 10 minutes old. Run the login command again.")
	case errors.Is(err, clilogin.ErrUsed), errors.Is(err, clilogin.ErrBurned), errors.Is(err, clilogin.ErrDenied):
		return p.done(c, 410, id, "Login request finished", "This login request was already used or refused. Run the login command again.")
	case errors.Is(err, clilogin.ErrOtherUser):
		return p.done(c, 403, id, "Not your login request", "Another user opened this login request first. Run the login command again.")
	default:
		return p.done(c, 503, id, "Try again", "Arbor could not read the login request. Please reload in a moment.")
	}
	return p.render(c, 200, "confirm", map[string]any{
		"Title": "Approve CLI login", "Who": Who(id), "ClientName": p.opts.CLIName, "Machine": req.Machine,
		"Scopes":    req.Scopes.Words(p.opts.WorkerName),
		"Requested": req.Requested.UTC().Format(time.DateTime + " UTC"),
		"Expires":   "at " + req.Expires.UTC().Format(time.TimeOnly+" UTC"),
		"CSRF":      p.opts.Sessions.CSRFToken(id.SessionID), "DeviceCode": req.DeviceCode,
	})
}

// approve mints the verification code after the user pressed Approve.
func (p *CLI) approve(c *fiber.Ctx) error {
	id, err := p.formUser(c)
	if err != nil {
		return err
	}
	code, expires, err := p.opts.Service.Approve(c.UserContext(), api.CLIFrom(c), id.UserID, reqbody.FormValue(c, "device_code"))
	switch {
	case errors.Is(err, clilogin.ErrUnknownDevice):
		return p.done(c, 404, id, "Unknown login request", "This login request does not exist. Run the login command again.")
	case errors.Is(err, clilogin.ErrOtherUser):
		return p.done(c, 403, id, "Not your login request", "Another user opened this login request first.")
	case errors.Is(err, clilogin.ErrExpired):
		return p.done(c, 410, id, "Login request expired", "Run the login command again.")
	case errors.Is(err, clilogin.ErrUsed), errors.Is(err, clilogin.ErrBurned), errors.Is(err, clilogin.ErrDenied):
		return p.done(c, 410, id, "Login request finished", "This login request was already used or refused.")
	case err != nil:
		return api.CLIAnswer(err)
	}
	return p.render(c, 200, "code", map[string]any{
		"Title": "Verification code", "Who": Who(id), "Code": code,
		"Expires": "at " + expires.UTC().Format(time.TimeOnly+" UTC"),
	})
}

// deny refuses the request: nothing is granted.
func (p *CLI) deny(c *fiber.Ctx) error {
	id, err := p.formUser(c)
	if err != nil {
		return err
	}
	err = p.opts.Service.Deny(c.UserContext(), id.UserID, reqbody.FormValue(c, "device_code"))
	switch {
	case errors.Is(err, clilogin.ErrOtherUser):
		return p.done(c, 403, id, "Not your login request", "Another user opened this login request first.")
	case errors.Is(err, clilogin.ErrUnknownDevice):
		return p.done(c, 404, id, "Unknown login request", "This login request does not exist.")
	case errors.Is(err, clilogin.ErrUsed):
		return p.done(c, 410, id, "Login already completed",
			"This login was already completed, so refusing it now changes nothing. To end it, revoke it under Command-line logins on your account page.")
	case err != nil:
		return api.CLIAnswer(err)
	}
	return p.done(c, 200, id, "Login refused", "The command-line login was refused. Nothing was granted.")
}

// devicePage asks for the code an RFC 8628 device shows.
func (p *CLI) devicePage(c *fiber.Ctx) error {
	id, ok, err := p.opts.Chain.Page(c)
	if !ok {
		return err
	}
	return p.render(c, 200, "device-enter", map[string]any{
		"Title": "Connect a device", "Who": Who(id), "CSRF": p.opts.Sessions.CSRFToken(id.SessionID),
		"UserCode": printable.Clean(c.Query("user_code"), 12),
	})
}

// deviceLookup finds the pending request of a typed user code and asks
// for a decision.
func (p *CLI) deviceLookup(c *fiber.Ctx) error {
	id, err := p.formUser(c)
	if err != nil {
		return err
	}
	req, err := p.opts.Service.LookUp(c.UserContext(), reqbody.FormValue(c, "user_code"))
	if err != nil {
		msg := "No pending request has that code. Check it, or start again on the device."
		if errors.Is(err, clilogin.ErrNotUserCode) {
			msg = "That is not a device code: it has 8 letters, like BCDF-GHJK."
		}
		return p.render(c, 400, "device-enter", map[string]any{
			"Title": "Connect a device", "Who": Who(id), "CSRF": p.opts.Sessions.CSRFToken(id.SessionID), "Notice": msg,
		})
	}
	// Everything shown comes from the configuration or from what Arbor saw,
	// except the User-Agent, which is labelled as the device's own claim.
	return p.render(c, 200, "device-confirm", map[string]any{
		"Title": "Allow device", "Who": Who(id), "CSRF": p.opts.Sessions.CSRFToken(id.SessionID),
		"ClientName": req.ClientName, "ClientID": req.ClientID, "Scopes": req.Scopes.Words(p.opts.WorkerName),
		"Machine": req.Machine, "UserCode": req.UserCode,
		"Requested": req.Requested.UTC().Format(time.DateTime + " UTC"),
	})
}

// deviceDecide records the person's decision on a device's request.
func (p *CLI) deviceDecide(c *fiber.Ctx) error {
	id, err := p.formUser(c)
	if err != nil {
		return err
	}
	approve := reqbody.FormValue(c, "decision") == "approve"
	err = p.opts.Service.Decide(c.UserContext(), api.CLIFrom(c), id.UserID, reqbody.FormValue(c, "user_code"), approve)
	switch {
	case errors.Is(err, clilogin.ErrUnknownUserCode):
		return p.done(c, 404, id, "Unknown code", "No pending request has that code. Start again on the device.")
	case err != nil:
		return p.done(c, 410, id, "Request finished", "This request was already decided or has expired. Start again on the device.")
	case !approve:
		return p.done(c, 200, id, "Device refused", "Nothing was granted. You can close this page.")
	}
	return p.done(c, 200, id, "Device connected", "Return to your device: it is signed in as you. You can close this page.")
}

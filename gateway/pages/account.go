package pages

// The account page (/auth/account): who the signed-in person is, their
// sign-in methods (and the providers they may link), their browser
// sessions and their command-line logins, each of which they may end.
// Signing in, linking and signing out are sign-in's (package
// gateway/signin); this page links to them.

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/providers"
)

// Paths of the account page and its forms.
const (
	PathAccount    = "/auth/account"
	PathEndSession = "/auth/sessions/end"
	PathRevokeCLI  = "/auth/cli-logins/revoke"
)

// AccountStore is what the account page reads and records.
type AccountStore interface {
	data.Users
	data.Identities
	data.Audit
}

// AccountSessions is what the account page needs of session.Manager.
type AccountSessions interface {
	CSRF
	List(ctx context.Context, userID string) ([]data.Session, error)
	EndSession(ctx context.Context, userID, sid string) error
}

// LoginProviders lists the providers people sign in with, ordered for
// display (*providers.Set is one).
type LoginProviders interface {
	Login() []providers.Info
}

// CLILogins lists and revokes CLI logins (service/clilogin).
type CLILogins interface {
	Logins(ctx context.Context, userID string) ([]data.RefreshFamily, error)
	RevokeLogin(ctx context.Context, userID, familyID string) error
}

// AccountOptions configure the account page.
type AccountOptions struct {
	Store     AccountStore
	Sessions  AccountSessions
	Providers LoginProviders
	// CLILogins, if set, lists and revokes the user's CLI logins.
	CLILogins CLILogins
	// Chain finds the signed-in person (package authn).
	Chain *authn.Chain
	// PublicURL is Arbor's external origin; a form posted from another
	// site is refused.
	PublicURL string
	// SignIn is the sign-in page's path, and LinkPrefix + a provider's
	// name the path that links it (signin.PathSignIn, signin.PathLink).
	SignIn, LinkPrefix string
	// SignOut signs this browser out (sign-in's logout): ending one's own
	// session from the list is signing out.
	SignOut fiber.Handler
	// AppName is the app's name in the page's messages (config
	// ui.app_name). Empty: config.DefaultAppName.
	AppName string
}

// Account serves the account page and its forms.
type Account struct {
	opts AccountOptions
	tmpl *template.Template
}

// NewAccount checks opts.
func NewAccount(opts AccountOptions) (*Account, error) {
	if opts.Store == nil || opts.Sessions == nil || opts.Providers == nil || opts.Chain == nil || opts.SignOut == nil ||
		opts.SignIn == "" || opts.LinkPrefix == "" {
		return nil, errors.New("pages: AccountOptions.Store, Sessions, Providers, Chain, SignIn, LinkPrefix and SignOut are required")
	}
	names := Names{App: opts.AppName}.WithDefaults()
	opts.AppName = names.App
	tmpl, err := Templates(names, assets, "assets/account.html")
	if err != nil {
		return nil, fmt.Errorf("pages: parsing the account templates: %w", err)
	}
	return &Account{opts: opts, tmpl: tmpl}, nil
}

// Routes registers the account page and its forms; mount with
// gateway.ClassAuth.
func (a *Account) Routes(r fiber.Router) {
	r.Get(PathAccount, a.account)
	r.Post(PathEndSession, a.endSession)
	r.Post(PathRevokeCLI, a.revokeCLI)
}

type sessionRow struct {
	ID, UserAgent, IP, Created, LastSeen string
	Current                              bool
}

type identityRow struct {
	Provider, DisplayName, Login, Email string
}

type linkButton struct {
	Name, DisplayName, Href string
}

type cliRow struct {
	ID, Client, Machine, Created, LastUsed string
}

// signedIn finds the signed-in person (authn.Chain.Session); without one,
// the browser is sent to sign in and back to the account page, with
// status (302 for the page, 303 for a form).
func (a *Account) signedIn(c *fiber.Ctx, status int) (authn.Identity, bool, error) {
	id, out, _ := a.opts.Chain.Session(c)
	if out != authn.Authenticated {
		return id, false, c.Redirect(a.opts.SignIn+"?return_to="+url.QueryEscape(PathAccount), status)
	}
	return id, true, nil
}

// fail shows a failed step as sign-in's error page (StepError).
func (a *Account) fail(c *fiber.Ctx, e *httperr.Error, title string) error {
	return StepError(c, a.tmpl, e, title, a.opts.SignIn)
}

// form checks that a form comes from the account page, and answers one
// that does not.
func (a *Account) form(c *fiber.Ctx, id authn.Identity) (bool, error) {
	if FromOwnPage(c, a.opts.PublicURL, a.opts.Sessions, id.SessionID) {
		return true, nil
	}
	return false, a.fail(c, httperr.New(http.StatusForbidden, "csrf_invalid",
		"This form was not sent from your "+a.opts.AppName+" account page. Go back, reload the page and try again."), "Request refused")
}

// audit appends an audit event of the user's own; a failure is logged,
// never fatal to the request.
func (a *Account) audit(c *fiber.Ctx, action, userID string) {
	e := data.AuditEvent{Action: action, Actor: userID, UserID: userID, Outcome: "ok", RequestID: gateway.RequestID(c), IP: gateway.ClientIP(c)}
	if _, err := a.opts.Store.AppendAudit(context.WithoutCancel(c.UserContext()), e); err != nil {
		gateway.Logger(c).Error("writing an audit event failed", "action", e.Action, "err", err)
	}
}

// account shows the user, their sign-in methods and their sessions.
func (a *Account) account(c *fiber.Ctx) error {
	id, ok, err := a.signedIn(c, http.StatusFound)
	if !ok {
		return err
	}
	ctx := c.UserContext()
	unavailable := func(err error) error {
		return a.fail(c, httperr.StoreUnavailable(err, "Arbor could not read your account. Please try again in a moment."), "Account unavailable")
	}
	user, err := a.opts.Store.GetUser(ctx, id.UserID)
	if err != nil {
		return unavailable(err)
	}
	idents, err := a.opts.Store.ListIdentities(ctx, id.UserID)
	if err != nil {
		return unavailable(err)
	}
	sessions, err := a.opts.Sessions.List(ctx, id.UserID)
	if err != nil {
		return unavailable(err)
	}
	display := map[string]string{}
	for _, p := range a.opts.Providers.Login() {
		display[p.Name] = p.DisplayName
	}
	linked := map[string]bool{}
	var identRows []identityRow
	for _, in := range idents {
		linked[in.Provider] = true
		dn := display[in.Provider]
		if dn == "" {
			dn = in.Provider
		}
		identRows = append(identRows, identityRow{Provider: in.Provider, DisplayName: dn, Login: in.Login, Email: in.Email})
	}
	var linkable []linkButton
	for _, p := range a.opts.Providers.Login() {
		if !linked[p.Name] {
			linkable = append(linkable, linkButton{Name: p.Name, DisplayName: p.DisplayName, Href: a.opts.LinkPrefix + url.PathEscape(p.Name)})
		}
	}
	var rows []sessionRow
	for _, s := range sessions {
		ua := s.UserAgent
		if ua == "" {
			ua = "(unknown browser)"
		}
		rows = append(rows, sessionRow{
			ID: s.ID, UserAgent: ua, IP: s.IP, Current: s.ID == id.SessionID,
			Created: s.CreatedAt.Format(time.DateTime + " MST"), LastSeen: s.LastSeenAt.Format(time.DateTime + " MST"),
		})
	}
	var cliRows []cliRow
	if a.opts.CLILogins != nil {
		fams, err := a.opts.CLILogins.Logins(ctx, id.UserID)
		if err != nil {
			return unavailable(err)
		}
		for _, f := range fams {
			machine := f.ClientInfo["hostname"]
			if osName := f.ClientInfo["os"]; osName != "" {
				machine = strings.TrimSpace(machine + " (" + osName + ")")
			}
			cliRows = append(cliRows, cliRow{ID: f.ID, Client: f.ClientID, Machine: machine,
				Created: f.CreatedAt.Format(time.DateTime + " MST"), LastUsed: f.LastUsedAt.Format(time.DateTime + " MST")})
		}
	}
	notice := ""
	switch {
	case c.Query("cli_revoked") != "":
		notice = "That command-line login is revoked."
	case c.Query("ended") != "":
		notice = "That session is signed out."
	case c.Query("linked") != "":
		notice = "Sign-in method linked."
	}
	return Render(c, a.tmpl, http.StatusOK, "account", map[string]any{
		"Title": "Your account", "Who": Who(id), "RequestID": gateway.RequestID(c), "Notice": notice,
		"User": user, "Identities": identRows, "Linkable": linkable, "Sessions": rows, "CLILogins": cliRows,
		"CSRF": a.opts.Sessions.CSRFToken(id.SessionID),
	})
}

// endSession signs out one of the user's other browsers.
func (a *Account) endSession(c *fiber.Ctx) error {
	id, ok, err := a.signedIn(c, http.StatusSeeOther)
	if !ok {
		return err
	}
	if ok, err := a.form(c, id); !ok {
		return err
	}
	target := reqbody.FormValue(c, "id")
	if target == id.SessionID {
		return a.opts.SignOut(c)
	}
	switch err := a.opts.Sessions.EndSession(c.UserContext(), id.UserID, target); {
	case errors.Is(err, session.ErrNotFound):
		// Already ended (or not theirs): the page will show the truth.
	case err != nil:
		return a.fail(c, httperr.StoreUnavailable(err, "Please try again in a moment."), "Could not end the session")
	default:
		a.audit(c, "session.end_other", id.UserID)
	}
	return c.Redirect(PathAccount+"?ended=1", http.StatusSeeOther)
}

// revokeCLI ends one of the user's CLI logins.
func (a *Account) revokeCLI(c *fiber.Ctx) error {
	id, ok, err := a.signedIn(c, http.StatusSeeOther)
	if !ok {
		return err
	}
	if ok, err := a.form(c, id); !ok {
		return err
	}
	if a.opts.CLILogins == nil {
		return c.Redirect(PathAccount, http.StatusSeeOther)
	}
	switch err := a.opts.CLILogins.RevokeLogin(c.UserContext(), id.UserID, reqbody.FormValue(c, "id")); {
	case err == nil:
		a.audit(c, "cli.revoke", id.UserID)
	case errors.Is(err, data.ErrNotFound):
	default:
		return a.fail(c, httperr.StoreUnavailable(err, "Please try again in a moment."), "Could not revoke the login")
	}
	return c.Redirect(PathAccount+"?cli_revoked=1", http.StatusSeeOther)
}

package webauth

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
)

type sessionRow struct {
	ID, UserAgent, IP, Created, LastSeen string
	Current                              bool
}

type identityRow struct {
	Provider, DisplayName, Login, Email string
}

// account shows the user, their sign-in methods and their sessions.
func (w *WebAuth) account(c *fiber.Ctx) error {
	id, err := w.opts.Sessions.Authenticate(c)
	if err != nil {
		return c.Redirect(PathSignIn+"?return_to="+url.QueryEscape(PathAccount), http.StatusFound)
	}
	ctx := c.UserContext()
	unavailable := func(err error) error {
		return w.showError(c, storeFailed("Account unavailable",
			"Arbor could not read your account. Please try again in a moment.", err))
	}
	user, err := w.opts.Store.GetUser(ctx, id.UserID)
	if err != nil {
		return unavailable(err)
	}
	idents, err := w.opts.Store.ListIdentities(ctx, id.UserID)
	if err != nil {
		return unavailable(err)
	}
	sessions, err := w.opts.Sessions.List(ctx, id.UserID)
	if err != nil {
		return unavailable(err)
	}
	display := map[string]string{}
	for _, p := range w.opts.Providers.Login() {
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
	var linkable []providerButton
	for _, p := range w.opts.Providers.Login() {
		if !linked[p.Name] {
			linkable = append(linkable, providerButton{Name: p.Name, DisplayName: p.DisplayName, Href: PathLink + url.PathEscape(p.Name)})
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
	type cliRow struct {
		ID, Client, Machine, Created, LastUsed string
	}
	var cliRows []cliRow
	if w.opts.CLILogins != nil {
		fams, err := w.opts.CLILogins.Logins(ctx, id.UserID)
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
	return w.render(c, http.StatusOK, "account", struct {
		pageData
		User       data.User
		Identities []identityRow
		Linkable   []providerButton
		Sessions   []sessionRow
		CLILogins  []cliRow
		CSRF       string
	}{
		pageData:   pageData{Title: "Your account", RequestID: gateway.RequestID(c), Identity: &id, Notice: notice},
		User:       user,
		Identities: identRows,
		Linkable:   linkable,
		Sessions:   rows,
		CLILogins:  cliRows,
		CSRF:       w.opts.Sessions.CSRFToken(id.SessionID),
	})
}

// endSession signs out one of the user's other browsers.
func (w *WebAuth) endSession(c *fiber.Ctx) error {
	id, err := w.opts.Sessions.Authenticate(c)
	if err != nil {
		return c.Redirect(PathSignIn+"?return_to="+url.QueryEscape(PathAccount), http.StatusSeeOther)
	}
	if fe := w.checkForm(c, id); fe != nil {
		return w.showError(c, fe)
	}
	target := reqbody.FormValue(c, "id")
	if target == id.SessionID {
		return w.logout(c)
	}
	switch err := w.opts.Sessions.EndSession(c.UserContext(), id.UserID, target); {
	case errors.Is(err, session.ErrNotFound):
		// Already ended (or not theirs): the page will show the truth.
	case err != nil:
		return w.showError(c, storeFailed("Could not end the session",
			"Please try again in a moment.", err))
	default:
		w.audit(c, data.AuditEvent{Action: "session.end_other", Actor: id.UserID, UserID: id.UserID, Outcome: "ok"})
	}
	return c.Redirect(PathAccount+"?ended=1", http.StatusSeeOther)
}

// whoami answers, as JSON, who is signed in: for single-page apps that want
// to know without a round trip through their own backend.
func (w *WebAuth) whoami(c *fiber.Ctx) error {
	gateway.SetRouteClass(c, gateway.ClassAPI)
	id, err := w.opts.Sessions.Authenticate(c)
	if err != nil {
		if errors.Is(err, session.ErrInvalid) || errors.Is(err, session.ErrEnded) {
			w.opts.Sessions.ClearCookie(c)
		}
		if !errors.Is(err, session.ErrNoSession) && !errors.Is(err, session.ErrInvalid) && !errors.Is(err, session.ErrEnded) {
			return httperr.StoreUnavailable(err, "Arbor could not check the session")
		}
		c.Set(fiber.HeaderWWWAuthenticate, `Cookie realm="arbor"`)
		return httperr.New(http.StatusUnauthorized, httperr.CodeUnauthenticated, "Not signed in")
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"user_id": id.UserID, "email": id.Email, "login": id.Login})
}

// revokeCLI ends one of the user's CLI logins.
func (w *WebAuth) revokeCLI(c *fiber.Ctx) error {
	id, err := w.opts.Sessions.Authenticate(c)
	if err != nil {
		return c.Redirect(PathSignIn+"?return_to="+url.QueryEscape(PathAccount), http.StatusSeeOther)
	}
	if fe := w.checkForm(c, id); fe != nil {
		return w.showError(c, fe)
	}
	if w.opts.CLILogins == nil {
		return c.Redirect(PathAccount, http.StatusSeeOther)
	}
	switch err := w.opts.CLILogins.RevokeLogin(c.UserContext(), id.UserID, reqbody.FormValue(c, "id")); {
	case err == nil:
		w.audit(c, data.AuditEvent{Action: "cli.revoke", Actor: id.UserID, UserID: id.UserID, Outcome: "ok"})
	case errors.Is(err, data.ErrNotFound):
	default:
		return w.showError(c, storeFailed("Could not revoke the login", "Please try again in a moment.", err))
	}
	return c.Redirect(PathAccount+"?cli_revoked=1", http.StatusSeeOther)
}

package signin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/gateway/internal/flowstate"
	"github.com/vintner/arbor/gateway/pages"
	"github.com/vintner/arbor/gateway/signin/returnto"
	"github.com/vintner/arbor/internal/printable"
	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/service/membership"
)

// Purposes of a flow (flowstate.State.Purpose).
const (
	purposeLogin   = "login"
	purposeLink    = "link"
	purposeConnect = "connect"
)

// maxCarriedReturn is the longest return path a sign-in carries in its
// state; a longer one falls back to Options.AfterSignIn, so the state
// stays well under flowstate.MaxLen.
const maxCarriedReturn = 512

// maxProfileField caps what Arbor keeps of a provider's login, name or
// e-mail.
const maxProfileField = 320

type providerButton struct {
	Name, DisplayName, Href string
}

// flowPaths are the steps of the sign-in flow itself: never a place to
// return to (they make no sense there, or loop). The account page is not
// one.
var flowPaths = []string{PathSignIn, PathStart, PathLink, PathCallback, PathLogout}

// FlowPaths returns the paths of the sign-in flow that a return path must
// not point at (returnto.OrDefault's avoid); authz.GateOptions.FlowPaths.
func FlowPaths() []string { return append([]string(nil), flowPaths...) }

// returnPath validates a return path from a query or form; anything that
// is not a same-origin path, or is a step of the flow, falls back to def.
func returnPath(raw, def string) string { return returnto.OrDefault(raw, def, flowPaths) }

func (w *SignIn) signIn(c *fiber.Ctx) error {
	rt := returnPath(c.Query("return_to"), w.opts.AfterSignIn)
	id, out, _ := w.opts.Chain.Session(c)
	signedIn := out == authn.Authenticated
	if signedIn && c.Query("signed_out") == "" {
		return c.Redirect(rt, http.StatusFound)
	}
	var buttons []providerButton
	for _, p := range w.opts.Providers.Login() {
		href := PathStart + url.PathEscape(p.Name)
		if rt != w.opts.AfterSignIn {
			href += "?return_to=" + url.QueryEscape(rt)
		}
		buttons = append(buttons, providerButton{Name: p.Name, DisplayName: p.DisplayName, Href: href})
	}
	pd := pageData{Title: "Sign in", RequestID: gateway.RequestID(c)}
	if signedIn {
		pd.Identity = &id
	}
	if c.Query("signed_out") != "" {
		pd.Notice = "You are signed out."
	}
	status, loading := http.StatusOK, !w.opts.Providers.Ready()
	if loading {
		// Only right after start: the plugins load in the background.
		// The page refreshes itself (no script needed) until they have.
		status = http.StatusServiceUnavailable
		pd.Refresh = true
		c.Set(fiber.HeaderRetryAfter, "2")
	}
	return w.render(c, status, "sign-in", struct {
		pageData
		Providers []providerButton
		Loading   bool
	}{pd, buttons, loading})
}

// start begins a sign-in with a provider.
func (w *SignIn) start(c *fiber.Ctx) error {
	return w.begin(c, purposeLogin, "", returnPath(c.Query("return_to"), w.opts.AfterSignIn))
}

// link begins linking another provider to the signed-in user.
func (w *SignIn) link(c *fiber.Ctx) error {
	id, out, _ := w.opts.Chain.Session(c)
	if out != authn.Authenticated {
		return c.Redirect(PathSignIn+"?return_to="+url.QueryEscape(pages.PathAccount), http.StatusFound)
	}
	return w.begin(c, purposeLink, id.UserID, pages.PathAccount)
}

func (w *SignIn) begin(c *fiber.Ctx, purpose, userID, rt string) error {
	name := c.Params("provider")
	p, _, ok := w.provider(name, purpose)
	if !ok {
		return w.showError(c, fail(http.StatusNotFound, httperr.CodeUnknownProvider, "Unknown provider",
			"There is no provider by that name here. Pick one on the sign-in or Integrations page.", nil))
	}
	ctx := c.UserContext()
	binding := c.Cookies(w.flow)
	if !wellFormedSecret(binding) {
		// One binding value serves every sign-in this browser starts in
		// the next StateTTL, so two tabs signing in at once both work.
		var err error
		if binding, err = randomString(32); err != nil {
			return w.showError(c, fail(http.StatusInternalServerError, "internal_error", "Sign-in could not start", "Please try again.", err))
		}
	}
	verifier, err := randomString(32)
	if err != nil {
		return w.showError(c, fail(http.StatusInternalServerError, "internal_error", "Sign-in could not start", "Please try again.", err))
	}
	if len(rt) > maxCarriedReturn {
		// It would make the state too long for some providers' URLs.
		rt = w.opts.AfterSignIn
	}
	redirectURI := w.opts.PublicURL + PathCallback + name
	// Nothing is stored: the state travels sealed in the state parameter
	// (package flowstate).
	stateValue, err := w.states.Seal(flowstate.State{
		Provider:    name,
		Purpose:     purpose,
		UserID:      userID,
		Verifier:    verifier,
		RedirectURI: redirectURI,
		ReturnTo:    rt,
		ExpiresAt:   w.opts.Now().Add(w.opts.StateTTL),
	}, binding)
	if err != nil {
		return w.showError(c, fail(http.StatusInternalServerError, "internal_error", "Sign-in could not start", "Please try again.", err))
	}
	challenge := sha256.Sum256([]byte(verifier))
	abiPurpose := abi.PurposeLogin
	if purpose == purposeConnect {
		abiPurpose = abi.PurposeGit
	}
	authURL, err := p.AuthorizeURL(ctx, plugins.AuthorizeInput{
		Purpose:       abiPurpose,
		RedirectURI:   redirectURI,
		State:         stateValue,
		CodeChallenge: base64.RawURLEncoding.EncodeToString(challenge[:]),
		// The policy reads this provider's groups: ask for their scopes.
		WithGroups: purpose != purposeConnect && w.opts.Admission != nil && w.opts.Admission.GroupProvider(name),
	})
	if err != nil {
		return w.showError(c, fail(http.StatusBadGateway, "provider_error", "Sign-in could not start",
			"The sign-in provider's plugin failed. Please try again; if it keeps failing, tell the operator.", err))
	}
	c.Cookie(&fiber.Cookie{
		Name:     w.flow,
		Value:    binding,
		Path:     "/",
		MaxAge:   int(w.opts.StateTTL / time.Second),
		Secure:   w.opts.Secure,
		HTTPOnly: true,
		// Lax: the cookie must come back on the provider's top-level
		// redirect to the callback.
		SameSite: fiber.CookieSameSiteLaxMode,
	})
	pages.Headers(c)
	return c.Redirect(authURL, http.StatusFound)
}

// callback finishes a sign-in or link.
func (w *SignIn) callback(c *fiber.Ctx) error {
	if fe := w.finish(c); fe != nil {
		return w.showError(c, fe)
	}
	return nil
}

func (w *SignIn) finish(c *fiber.Ctx) *flowError {
	ctx := c.UserContext()
	name := c.Params("provider")
	stateValue := c.Query("state")
	if stateValue == "" {
		return fail(http.StatusBadRequest, "state_missing", "Sign-in failed",
			"The provider sent you back without the sign-in request's state. Start again from the sign-in page.", nil)
	}
	// Until the provider has exchanged the code, nothing here writes to
	// the store: a failed callback leaves no trace.
	st, err := w.states.Open(stateValue, name, c.Cookies(w.flow), w.opts.Now())
	switch {
	case errors.Is(err, flowstate.ErrProvider):
		return fail(http.StatusBadRequest, "state_mismatch", "Sign-in failed",
			"The provider's answer does not match the sign-in you started. Start again from the sign-in page.",
			fmt.Errorf("a state made for another provider arrived at the callback of %q: %w", name, err))
	case errors.Is(err, flowstate.ErrBinding):
		return fail(http.StatusBadRequest, "state_mismatch", "Sign-in failed",
			"This sign-in was started in another browser (or its cookie was lost). Start again from the sign-in page.", err)
	case err != nil:
		return fail(http.StatusBadRequest, "state_invalid", "Sign-in expired",
			"This sign-in link has expired or was already used. Start again from the sign-in page.", err)
	}
	// A state already spent is refused before its code reaches the
	// provider, which may revoke what it issued for a code used twice
	// (RFC 6749 section 4.1.2). This is a read; markSpent below is the
	// atomic check.
	switch _, err := w.opts.Store.GetOAuthState(ctx, spentKey(st.ID)); {
	case err == nil:
		return fail(http.StatusBadRequest, "state_invalid", "Sign-in expired",
			"This sign-in link has expired or was already used. Start again from the sign-in page.",
			errors.New("the state was already spent"))
	case !errors.Is(err, data.ErrNotFound):
		return storeFailed("Sign-in failed",
			"Arbor could not check the sign-in request. Please try again in a moment.", err)
	}
	if e := c.Query("error"); e != "" {
		if e == "access_denied" {
			return fail(http.StatusForbidden, "access_denied", "Sign-in cancelled",
				"You did not allow "+w.opts.AppName+" to use your account. Nothing was changed.", nil)
		}
		return fail(http.StatusBadGateway, "provider_error", "Sign-in failed",
			"The sign-in provider reported an error ("+safeCode(e)+"). Please try again.", nil)
	}
	code := c.Query("code")
	if code == "" {
		return fail(http.StatusBadRequest, "code_missing", "Sign-in failed",
			"The provider sent you back without an authorization code. Start again from the sign-in page.", nil)
	}
	p, _, ok := w.provider(name, st.Purpose)
	if !ok {
		return fail(http.StatusNotFound, httperr.CodeUnknownProvider, "Unknown provider",
			"This provider is no longer available.", nil)
	}
	tok, err := p.Exchange(ctx, plugins.ExchangeInput{Code: code, RedirectURI: st.RedirectURI, CodeVerifier: st.Verifier})
	if err != nil {
		if plugins.CodeOf(err) == abi.CodeRateLimited {
			return providerRateLimited(err)
		}
		if plugins.CodeOf(err) == "invalid_grant" {
			return fail(http.StatusBadRequest, "code_invalid", "Sign-in failed",
				"The provider did not accept the authorization code (it may have been used already). Start again from the sign-in page.", err)
		}
		return fail(http.StatusBadGateway, "provider_exchange_failed", "Sign-in failed",
			"Arbor could not complete the sign-in with the provider. Please try again.", err)
	}
	// The provider has vouched: now the state is spent, once.
	if fe := w.markSpent(ctx, st); fe != nil {
		return fe
	}
	pu, err := p.User(ctx, tok.AccessToken)
	if err != nil {
		if plugins.CodeOf(err) == abi.CodeRateLimited {
			// Never sign in with less than the provider tells when it is
			// not limiting: no session, no connection.
			return providerRateLimited(err)
		}
		return fail(http.StatusBadGateway, "provider_user_failed", "Sign-in failed",
			"Arbor could not ask the provider who you are. Please try again.", err)
	}
	if pu.ID == "" {
		return fail(http.StatusBadGateway, "provider_user_failed", "Sign-in failed",
			"The provider did not say who you are. Please try again.", errors.New("plugin returned a user without an id"))
	}
	prof := cleanProfile(pu)

	switch st.Purpose {
	case purposeLink:
		return w.finishLink(c, name, st, prof, tok)
	case purposeConnect:
		return w.finishConnect(c, name, st, tok, pu)
	}
	// The policy decides before anything is written for the person.
	var adm membership.Admission
	if w.opts.Admission != nil {
		var fe *flowError
		if adm, fe = w.admit(c, name, prof, tok); fe != nil {
			return fe
		}
	}
	user, created, fe := w.resolveUser(ctx, name, prof)
	if fe != nil {
		return fe
	}
	if w.opts.Admission != nil {
		err := w.opts.Admission.Keep(ctx, user.ID, name, prof.subject, tok, adm)
		if refused, ok := errors.AsType[*membership.RefusedError](err); ok {
			return w.refused(c, name, user.ID, refused.Verdict)
		}
		if err != nil {
			return storeFailed("Sign-in failed",
				"Arbor could not save what your sign-in provider said about you. Please try again in a moment.", err)
		}
	}
	if _, err := w.opts.Sessions.Start(c, user); err != nil {
		return storeFailed("Sign-in failed",
			"Arbor could not start your session. Please try again in a moment.", err)
	}
	w.audit(c, data.AuditEvent{Action: "session.sign_in", Actor: user.ID, UserID: user.ID, Target: name, Outcome: "ok",
		Details: map[string]string{"new_user": fmt.Sprint(created)}})
	gateway.Logger(c).Info("signed in", "user_id", user.ID, "provider", name, "new_user", created)
	pages.Headers(c)
	return redirect(c, returnPath(st.ReturnTo, w.opts.AfterSignIn))
}

// CodeProviderRateLimited is the sign-in's answer when the provider rate
// limited the code exchange or the user lookup (the same code as package
// connections uses).
const CodeProviderRateLimited = "provider_rate_limited"

// providerRateLimited is a sign-in the provider rate limited: 503 with the
// provider's wait as Retry-After. Nothing was signed in or connected.
func providerRateLimited(err error) *flowError {
	wait := plugins.RetryAfterOf(err)
	if wait <= 0 {
		wait = abi.DefaultRetryAfter * time.Second
	}
	secs := httperr.RetryAfterSeconds(wait)
	in := fmt.Sprint(secs, " seconds")
	if secs == 1 {
		in = "1 second"
	}
	fe := fail(http.StatusServiceUnavailable, CodeProviderRateLimited, "Sign-in failed",
		"The provider is limiting how often Arbor may ask it right now, so the sign-in could not be completed. Nothing was changed; start again from the sign-in page in "+in+".", err)
	fe.retryAfter = time.Duration(secs) * time.Second
	return fe
}

// spentKey is the store id of the marker that says the sign-in id is
// spent.
func spentKey(id string) string { return "spent:" + id }

// markSpent records that st is spent, for as long as st could still be
// opened (and at least a minute, should the exchange have outlasted the
// state). Of concurrent callbacks with the same state, exactly one gets
// past here (CreateOAuthState is atomic).
func (w *SignIn) markSpent(ctx context.Context, st flowstate.State) *flowError {
	now := w.opts.Now().UTC()
	err := w.opts.Store.CreateOAuthState(ctx, data.OAuthState{
		ID:        spentKey(st.ID),
		Provider:  st.Provider,
		Purpose:   st.Purpose,
		UserID:    st.UserID,
		CreatedAt: now,
		ExpiresAt: later(st.ExpiresAt, now.Add(time.Minute)),
	})
	switch {
	case errors.Is(err, data.ErrAlreadyExists):
		return fail(http.StatusBadRequest, "state_invalid", "Sign-in expired",
			"This sign-in link has expired or was already used. Start again from the sign-in page.",
			errors.New("the state was spent by a concurrent callback"))
	case err != nil:
		return storeFailed("Sign-in failed",
			"Arbor could not record the sign-in request as used. Please try again in a moment.", err)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func redirect(c *fiber.Ctx, to string) *flowError {
	if err := c.Redirect(to, http.StatusFound); err != nil {
		return fail(http.StatusInternalServerError, "internal_error", "Sign-in failed", "Please try again.", err)
	}
	return nil
}

// profile is the provider's account, cleaned.
type profile struct {
	subject, login, name, email string
	emailVerified               bool
}

func cleanProfile(u *abi.User) profile {
	return profile{
		subject:       clean(u.ID),
		login:         clean(u.Login),
		name:          clean(u.Name),
		email:         strings.ToLower(clean(u.Email)),
		emailVerified: u.EmailVerified && u.Email != "",
	}
}

// clean drops control characters (a provider's login must not be able to
// inject a header line) and caps the length.
func clean(s string) string { return printable.Clean(s, maxProfileField) }

// safeCode keeps an error code from the provider printable and short.
func safeCode(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 40 {
			break
		}
		if r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// resolveUser finds the user of (provider, subject), or links by verified
// e-mail when allowed, or creates a new user.
func (w *SignIn) resolveUser(ctx context.Context, provider string, p profile) (data.User, bool, *flowError) {
	storeFail := func(err error) *flowError {
		return storeFailed("Sign-in failed",
			"Arbor could not read or save your account. Please try again in a moment.", err)
	}
	now := w.opts.Now().UTC()
	for attempt := 0; attempt < 3; attempt++ {
		ident, err := w.opts.Store.UpdateIdentity(ctx, provider, p.subject, func(id data.Identity) (data.Identity, error) {
			id.Login, id.Email, id.EmailVerified, id.LastLoginAt = p.login, p.email, p.emailVerified, now
			return id, nil
		})
		if err == nil {
			u, err := w.opts.Store.GetUser(ctx, ident.UserID)
			if err != nil {
				return data.User{}, false, storeFail(err)
			}
			return u, false, nil
		}
		if !errors.Is(err, data.ErrNotFound) {
			return data.User{}, false, storeFail(err)
		}
		// A new identity: an existing user by verified e-mail, or a new user.
		var user data.User
		created := false
		if w.opts.LinkByVerifiedEmail && p.emailVerified {
			user, err = w.userByVerifiedEmail(ctx, p.email)
			if err != nil && !errors.Is(err, data.ErrNotFound) {
				return data.User{}, false, storeFail(err)
			}
		}
		if user.ID == "" {
			if user, err = w.newUser(ctx, p, now); err != nil {
				return data.User{}, false, storeFail(err)
			}
			created = true
		}
		err = w.opts.Store.CreateIdentity(ctx, data.Identity{
			Provider: provider, Subject: p.subject, UserID: user.ID,
			Login: p.login, Email: p.email, EmailVerified: p.emailVerified,
			CreatedAt: now, LastLoginAt: now,
		})
		if err == nil {
			return user, created, nil
		}
		if created {
			_ = w.opts.Store.DeleteUser(context.WithoutCancel(ctx), user.ID)
		}
		if !errors.Is(err, data.ErrAlreadyExists) {
			return data.User{}, false, storeFail(err)
		}
		// A concurrent sign-in of the same account created it first: use it.
	}
	return data.User{}, false, storeFail(errors.New("identity kept changing during sign-in"))
}

func (w *SignIn) newUser(ctx context.Context, p profile, now time.Time) (data.User, error) {
	id, err := newUserID()
	if err != nil {
		return data.User{}, err
	}
	u := data.User{ID: id, Login: p.login, Name: p.name, CreatedAt: now, UpdatedAt: now}
	if p.emailVerified {
		// Only a verified address is vouched for to the upstream.
		u.Email = p.email
	}
	return u, w.opts.Store.CreateUser(ctx, u)
}

// userByVerifiedEmail finds the user one of whose identities has the same
// verified e-mail address.
//
// It scans the users: linking by e-mail is off by default and sign-ins of
// new identities are rare, so an index is not yet worth its upkeep.
func (w *SignIn) userByVerifiedEmail(ctx context.Context, email string) (data.User, error) {
	users, err := w.opts.Store.ListUsers(ctx)
	if err != nil {
		return data.User{}, err
	}
	for _, u := range users {
		if !strings.EqualFold(u.Email, email) {
			continue
		}
		ids, err := w.opts.Store.ListIdentities(ctx, u.ID)
		if err != nil {
			return data.User{}, err
		}
		for _, id := range ids {
			if id.EmailVerified && strings.EqualFold(id.Email, email) {
				return u, nil
			}
		}
	}
	return data.User{}, data.ErrNotFound
}

// finishLink adds the provider identity to the signed-in user who started
// the link.
func (w *SignIn) finishLink(c *fiber.Ctx, provider string, st flowstate.State, p profile, tok *abi.Token) *flowError {
	ctx := c.UserContext()
	cur, out, err := w.opts.Chain.Session(c)
	if out != authn.Authenticated || cur.UserID != st.UserID {
		return fail(http.StatusForbidden, "link_requires_session", "Linking failed",
			"Linking a sign-in method needs the same signed-in session that started it. Sign in and try again from your account page.", err)
	}
	now := w.opts.Now().UTC()
	existing, err := w.opts.Store.GetIdentity(ctx, provider, p.subject)
	switch {
	case err == nil && existing.UserID != cur.UserID:
		return fail(http.StatusConflict, "identity_in_use", "Linking failed",
			"That account already signs in to another "+w.opts.AppName+" user. Sign in with it and delete that user first, or use another account.", nil)
	case err == nil:
		// Already linked to this user: nothing to do.
	case errors.Is(err, data.ErrNotFound):
		err = w.opts.Store.CreateIdentity(ctx, data.Identity{
			Provider: provider, Subject: p.subject, UserID: cur.UserID,
			Login: p.login, Email: p.email, EmailVerified: p.emailVerified, CreatedAt: now,
		})
		if errors.Is(err, data.ErrAlreadyExists) {
			return fail(http.StatusConflict, "identity_in_use", "Linking failed", "That account was just linked elsewhere.", err)
		}
		if err != nil {
			return storeFailed("Linking failed", "Please try again in a moment.", err)
		}
		w.audit(c, data.AuditEvent{Action: "identity.link", Actor: cur.UserID, UserID: cur.UserID, Target: provider, Outcome: "ok"})
	default:
		return storeFailed("Linking failed", "Please try again in a moment.", err)
	}
	if w.opts.Admission != nil {
		// The policy may count this provider's groups: keep its grant.
		if err := w.opts.Admission.Link(ctx, cur.UserID, provider, p.subject, tok); err != nil {
			return storeFailed("Linking failed",
				"The sign-in method is linked, but Arbor could not save what it says about you. Please link it again in a moment.", err)
		}
	}
	pages.Headers(c)
	return redirect(c, pages.PathAccount+"?linked="+url.QueryEscape(provider))
}

// BeginConnect starts connecting provider as a Git provider for the
// signed-in user (the Integrations page's "Connect"): the same flow as
// sign-in, with the provider's repository scopes, ending at returnTo.
func (w *SignIn) BeginConnect(c *fiber.Ctx, returnTo string) error {
	id, out, _ := w.opts.Chain.Session(c)
	if out != authn.Authenticated {
		return c.Redirect(PathSignIn+"?return_to="+url.QueryEscape(returnTo), http.StatusFound)
	}
	if w.opts.Connector == nil {
		return w.showError(c, fail(http.StatusNotFound, httperr.CodeUnknownProvider, "Connections are not available", "This Arbor does not store Git connections.", nil))
	}
	return w.begin(c, purposeConnect, id.UserID, returnPath(returnTo, w.opts.AfterSignIn))
}

// finishConnect stores the Git connection for the signed-in user who
// started it.
func (w *SignIn) finishConnect(c *fiber.Ctx, provider string, st flowstate.State, tok *abi.Token, u *abi.User) *flowError {
	cur, out, err := w.opts.Chain.Session(c)
	if out != authn.Authenticated || cur.UserID != st.UserID {
		return fail(http.StatusForbidden, "connect_requires_session", "Connecting failed",
			"Connecting a Git provider needs the same signed-in session that started it. Sign in and try again from the Integrations page.", err)
	}
	if w.opts.Connector == nil {
		return fail(http.StatusNotFound, httperr.CodeUnknownProvider, "Connecting failed", "This Arbor does not store Git connections.", nil)
	}
	if err := w.opts.Connector.Connect(c.UserContext(), cur.UserID, provider, tok, u); err != nil {
		return storeFailed("Connecting failed",
			"Arbor could not save the connection. Please try again in a moment.", err)
	}
	gateway.Logger(c).Info("git provider connected", "user_id", cur.UserID, "provider", provider)
	pages.Headers(c)
	return redirect(c, returnPath(st.ReturnTo, w.opts.AfterSignIn))
}

// logoutPage asks before signing out (a GET never changes state).
func (w *SignIn) logoutPage(c *fiber.Ctx) error {
	id, out, _ := w.opts.Chain.Session(c)
	if out != authn.Authenticated {
		return c.Redirect(PathSignIn, http.StatusFound)
	}
	return w.render(c, http.StatusOK, "logout", struct {
		pageData
		CSRF string
	}{pageData{Title: "Sign out", RequestID: gateway.RequestID(c), Identity: &id}, w.opts.Sessions.CSRFToken(id.SessionID)})
}

func (w *SignIn) checkForm(c *fiber.Ctx, id authn.Identity) *flowError {
	if !pages.FromOwnPage(c, w.opts.PublicURL, w.opts.Sessions, id.SessionID) {
		return fail(http.StatusForbidden, "csrf_invalid", "Request refused",
			"This form was not sent from your "+w.opts.AppName+" account page. Go back, reload the page and try again.", nil)
	}
	return nil
}

// Logout ends the current session (the sign-out form's POST, and the
// account page's "Sign out there" on this browser's own session).
func (w *SignIn) Logout(c *fiber.Ctx) error {
	id, out, _ := w.opts.Chain.Session(c)
	if out != authn.Authenticated {
		// Already signed out (or never signed in): nothing to end.
		w.opts.Sessions.ClearCookie(c)
		return c.Redirect(PathSignIn+"?signed_out=1", http.StatusSeeOther)
	}
	if fe := w.checkForm(c, id); fe != nil {
		return w.showError(c, fe)
	}
	if err := w.opts.Sessions.EndCurrent(c); err != nil {
		return w.showError(c, storeFailed("Sign-out failed",
			"Arbor could not end your session. Please try again in a moment.", err))
	}
	w.audit(c, data.AuditEvent{Action: "session.sign_out", Actor: id.UserID, UserID: id.UserID, Outcome: "ok"})
	pages.Headers(c)
	return c.Redirect(PathSignIn+"?signed_out=1", http.StatusSeeOther)
}

// newUserID returns "usr_" and 128 random bits in lower-case base32.
func newUserID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "usr_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// wellFormedSecret reports whether s looks like a value randomString(32)
// made (43 base64url characters).
func wellFormedSecret(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

package fakeprovider

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// authRequest is a validated authorization request (RFC 6749 section
// 4.1.1, RFC 7636 section 4.3).
type authRequest struct {
	params       url.Values // as received, for the consent form
	redirectURI  string     // the one to use (registered default if absent)
	redirectSent bool
	state        string
	scopes       []string
	challenge    string
	nonce        string
	offline      bool
}

// handleAuthorize serves the consent page (GET) and its form (POST).
// Errors about the client or the redirect URI are shown as a page, never
// redirected (RFC 6749 section 4.1.2.1); all others go back to the client.
func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request, c *Call) {
	var q url.Values
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		q = r.URL.Query()
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			errorPage(w, p.cfg.Name, http.StatusBadRequest, "invalid_request", "The consent form could not be read.")
			return
		}
		q = r.PostForm
	default:
		w.Header().Set("Allow", "GET, POST")
		errorPage(w, p.cfg.Name, http.StatusMethodNotAllowed, "invalid_request", "Use GET or POST.")
		return
	}
	c.Query = redact(q)
	c.ClientID = q.Get("client_id")
	c.CodeChallenge = q.Get("code_challenge") != ""

	if q.Get("client_id") != p.cfg.ClientID {
		c.Error = "invalid_client"
		errorPage(w, p.cfg.Name, http.StatusBadRequest, "invalid_client", "No application is registered with this client_id.")
		return
	}
	ar := &authRequest{params: q, state: q.Get("state"), nonce: q.Get("nonce"),
		scopes: strings.Fields(q.Get("scope")), offline: q.Get("access_type") == "offline"}
	var ok bool
	ar.redirectURI, ar.redirectSent, ok = p.pickRedirect(q.Get("redirect_uri"))
	if !ok {
		c.Error = "redirect_uri_mismatch"
		p.mu.Lock()
		registered := slices.Clone(p.redirects)
		p.mu.Unlock()
		if p.cfg.RedirectMismatchRedirects && len(registered) > 0 {
			p.redirectError(w, r, registered[0], ar.state, OAuthError{"redirect_uri_mismatch",
				"The redirect_uri MUST match the registered callback URL for this application."})
			return
		}
		errorPage(w, p.cfg.Name, http.StatusBadRequest, "redirect_uri_mismatch",
			"The redirect_uri is missing or is not registered for this application (exact match required).")
		return
	}
	fail := func(code, desc string) {
		c.Error = code
		p.redirectError(w, r, ar.redirectURI, ar.state, OAuthError{code, desc})
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "Only response_type=code is supported.")
		return
	}
	if p.cfg.PKCE != PKCEIgnore {
		ar.challenge = q.Get("code_challenge")
		switch {
		case ar.challenge != "" && q.Get("code_challenge_method") != "S256":
			fail("invalid_request", "code_challenge_method must be S256.")
			return
		case ar.challenge != "" && !validPKCE(ar.challenge):
			fail("invalid_request", "code_challenge is malformed.")
			return
		case ar.challenge == "" && p.cfg.PKCE == PKCERequired:
			fail("invalid_request", "code_challenge is required.")
			return
		}
	}

	decision, login := q.Get("decision"), q.Get("fake_user")
	if r.Method != http.MethodPost {
		decision = q.Get("fake_auto")
		if decision == "" && p.cfg.AutoApprove {
			decision = "approve"
		}
		if login == "" {
			login = q.Get("login_hint")
		}
	}
	switch decision {
	case "":
		if r.Method == http.MethodPost {
			errorPage(w, p.cfg.Name, http.StatusBadRequest, "invalid_request", "Choose Approve or Deny.")
			return
		}
		p.consentPage(w, ar, login)
	case "deny":
		c.Error = p.cfg.Errors.AccessDenied.Code
		p.redirectError(w, r, ar.redirectURI, ar.state, p.cfg.Errors.AccessDenied)
	case "approve":
		u := p.findUser(login)
		if u == nil {
			c.Error = "unknown_user"
			errorPage(w, p.cfg.Name, http.StatusBadRequest, "invalid_request", "No fake user "+strconv.Quote(login)+".")
			return
		}
		c.User = u.Login
		code := randomString(20, alnum)
		p.mu.Lock()
		p.codes[code] = &authCode{
			user: u, redirectURI: ar.redirectURI, redirectSent: ar.redirectSent,
			challenge: ar.challenge, scopes: p.grantScopes(ar.scopes), nonce: ar.nonce,
			offline: ar.offline, expires: p.cfg.Now().Add(p.cfg.CodeLifetime),
		}
		p.mu.Unlock()
		dest, _ := url.Parse(ar.redirectURI)
		dq := dest.Query()
		dq.Set("code", code)
		if ar.state != "" {
			dq.Set("state", ar.state)
		}
		if p.cfg.Flavor == FlavorGoogle {
			dq.Set("scope", strings.Join(p.grantScopes(ar.scopes), " "))
			dq.Set("authuser", "0")
			dq.Set("prompt", "consent")
		}
		dest.RawQuery = dq.Encode()
		http.Redirect(w, r, dest.String(), http.StatusFound)
	default:
		errorPage(w, p.cfg.Name, http.StatusBadRequest, "invalid_request", "Unknown decision "+strconv.Quote(decision)+".")
	}
}

// pickRedirect returns the redirect URI to use for a requested one.
func (p *Provider) pickRedirect(requested string) (uri string, sent, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if requested == "" {
		if len(p.redirects) == 1 {
			return p.redirects[0], false, true
		}
		return "", false, false
	}
	if slices.Contains(p.redirects, requested) {
		return requested, true, true
	}
	if p.cfg.AllowAnyRedirect {
		if u, err := url.Parse(requested); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Fragment == "" {
			return requested, true, true
		}
	}
	return "", false, false
}

func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, to, state string, e OAuthError) {
	dest, err := url.Parse(to)
	if err != nil {
		errorPage(w, p.cfg.Name, http.StatusBadRequest, e.Code, e.Description)
		return
	}
	q := dest.Query()
	q.Set("error", e.Code)
	if e.Description != "" {
		q.Set("error_description", e.Description)
	}
	if p.cfg.Errors.URI != "" {
		q.Set("error_uri", p.cfg.Errors.URI)
	}
	if state != "" {
		q.Set("state", state)
	}
	dest.RawQuery = q.Encode()
	http.Redirect(w, r, dest.String(), http.StatusFound)
}

// findUser returns the user with that login or e-mail address; "" means the
// first user.
func (p *Provider) findUser(login string) *User {
	if login == "" {
		return &p.cfg.Users[0]
	}
	for i := range p.cfg.Users {
		u := &p.cfg.Users[i]
		if strings.EqualFold(u.Login, login) {
			return u
		}
		for _, e := range u.Emails {
			if strings.EqualFold(e.Address, login) {
				return u
			}
		}
	}
	return nil
}

func (p *Provider) grantScopes(requested []string) []string {
	switch {
	case p.cfg.Scopes != nil:
		return slices.Clone(p.cfg.Scopes)
	case len(requested) == 0:
		return slices.Clone(p.cfg.DefaultScopes)
	}
	return slices.Compact(slices.Clone(requested))
}

// handleToken serves the authorization_code and refresh_token grants
// (RFC 6749 sections 4.1.3 and 6).
func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request, c *Call) {
	if !p.parsePost(w, r, c, "The token endpoint accepts POST only.", true) {
		return
	}
	f, auth, ok := p.tokenParams(w, r, c)
	if !ok {
		return
	}
	c.Query = redact(f)
	c.GrantType = f.Get("grant_type")
	c.PKCEVerifier = f.Get("code_verifier") != ""
	if !p.authenticateClientAs(w, r, c, f, true, auth) {
		return
	}
	grantType := c.GrantType
	if grantType == "" && p.cfg.GrantTypeOptional && f.Has("code") {
		grantType = "authorization_code"
	}
	var (
		body   fields
		status int
		oe     OAuthError
	)
	switch grantType {
	case "authorization_code":
		body, status, oe = p.redeemCode(r, f, c)
	case "refresh_token":
		body, status, oe = p.redeemRefresh(r, f, c)
	default:
		status, oe = http.StatusBadRequest, OAuthError{"unsupported_grant_type", "Supported grant types: authorization_code, refresh_token."}
	}
	if body == nil {
		p.oauthError(w, r, c, status, oe, true)
		return
	}
	p.writeTokenBody(w, r, http.StatusOK, body)
}

// authenticateClient checks the client credentials of a token or RFC 7009
// revocation request and records how they came. On failure it has
// answered.
func (p *Provider) authenticateClient(w http.ResponseWriter, r *http.Request, c *Call, f url.Values, tokenEndpoint bool) bool {
	return p.authenticateClientAs(w, r, c, f, tokenEndpoint, p.cfg.ClientAuth)
}

// authenticateClientAs is authenticateClient with the accepted style
// given (a grant's, see Config.Grants).
func (p *Provider) authenticateClientAs(w http.ResponseWriter, r *http.Request, c *Call, f url.Values, tokenEndpoint bool, mode ClientAuth) bool {
	bid, bsecret, hasBasic := r.BasicAuth()
	if hasBasic {
		// RFC 6749 section 2.3.1: form-encoded before Basic, as
		// golang.org/x/oauth2 sends them.
		if v, err := url.QueryUnescape(bid); err == nil {
			bid = v
		}
		if v, err := url.QueryUnescape(bsecret); err == nil {
			bsecret = v
		}
	}
	hasBody := f.Has("client_secret")
	id, secret := f.Get("client_id"), f.Get("client_secret")
	switch {
	case hasBasic && hasBody:
		c.ClientAuth = "both"
	case hasBasic:
		c.ClientAuth = "basic"
	case hasBody:
		c.ClientAuth = "body"
	default:
		c.ClientAuth = "none"
	}
	if hasBasic {
		c.ClientID = bid
	} else {
		c.ClientID = id
	}
	if c.ClientAuth == "both" {
		p.oauthError(w, r, c, http.StatusBadRequest, OAuthError{"invalid_request",
			"Use one client authentication method, not several (RFC 6749 section 2.3)."}, tokenEndpoint)
		return false
	}
	if mode == ClientAuthNone {
		if c.ClientAuth != "none" {
			p.oauthError(w, r, c, http.StatusBadRequest, OAuthError{"invalid_request",
				"This grant takes no client authentication; send no client_secret and no Authorization header."}, tokenEndpoint)
			return false
		}
		return true
	}
	allowed := (hasBasic && mode != ClientAuthBody) || (hasBody && mode != ClientAuthBasic)
	if hasBasic {
		if id != "" && id != bid {
			allowed = false
		}
		id, secret = bid, bsecret
	}
	if !allowed || id != p.cfg.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(p.cfg.ClientSecret)) != 1 {
		p.oauthError(w, r, c, http.StatusUnauthorized, p.cfg.Errors.InvalidClient, tokenEndpoint)
		return false
	}
	return true
}

func (p *Provider) redeemCode(r *http.Request, f url.Values, c *Call) (fields, int, OAuthError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	ac := p.codes[f.Get("code")]
	switch {
	case ac == nil || !now.Before(ac.expires):
		return nil, http.StatusBadRequest, p.cfg.Errors.BadCode
	case ac.used:
		if p.cfg.RevokeOnCodeReuse {
			p.revokeGrantLocked(ac.grant)
		}
		return nil, http.StatusBadRequest, p.cfg.Errors.BadCode
	}
	c.User = ac.user.Login
	if f.Has("redirect_uri") && f.Get("redirect_uri") != ac.redirectURI ||
		!f.Has("redirect_uri") && ac.redirectSent && !p.cfg.RedirectURIOptionalAtToken {
		return nil, http.StatusBadRequest, p.cfg.Errors.RedirectMismatch
	}
	if p.cfg.PKCE != PKCEIgnore {
		v := f.Get("code_verifier")
		switch {
		case ac.challenge != "" && (v == "" || !validPKCE(v) || s256(v) != ac.challenge):
			return nil, http.StatusBadRequest, p.cfg.Errors.BadVerifier
		case ac.challenge == "" && v != "":
			e := p.cfg.Errors.BadVerifier
			e.Description = "A code_verifier was sent but the authorization request had no code_challenge."
			return nil, http.StatusBadRequest, e
		}
	}
	ac.used = true
	p.nextGrant++
	ac.grant = p.nextGrant
	return p.issueLocked(r, ac.grant, ac.user, ac.scopes, ac.nonce, "authorization_code", p.refreshAllowed(ac.offline), ""), 0, OAuthError{}
}

func (p *Provider) redeemRefresh(r *http.Request, f url.Values, c *Call) (fields, int, OAuthError) {
	tok := f.Get("refresh_token")
	c.Token = Fingerprint(tok)
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.refresh[tok]
	if t == nil {
		return nil, http.StatusBadRequest, p.cfg.Errors.BadRefreshToken
	}
	if c.DeadToken = t.dead(p.cfg.Now()); c.DeadToken != "" {
		c.User = t.user.Login
		return nil, http.StatusBadRequest, p.cfg.Errors.BadRefreshToken
	}
	c.User = t.user.Login
	if s := strings.Fields(f.Get("scope")); len(s) > 0 {
		for _, x := range s {
			if !slices.Contains(t.scopes, x) {
				return nil, http.StatusBadRequest, OAuthError{"invalid_scope", "The requested scope exceeds the scope originally granted."}
			}
		}
	}
	keep := tok
	if p.cfg.RotateRefreshTokens {
		t.replaced = true
		keep = ""
	}
	if p.cfg.InvalidateAccessOnRefresh {
		for _, a := range p.access {
			if a.grant == t.grant {
				a.replaced = true
			}
		}
	}
	return p.issueLocked(r, t.grant, t.user, t.scopes, "", "refresh_token", p.cfg.RotateRefreshTokens, keep), 0, OAuthError{}
}

func (p *Provider) refreshAllowed(offline bool) bool {
	return p.cfg.IssueRefreshTokens &&
		(!p.cfg.RefreshOnlyWhenExpiring || p.accessLifetime > 0) &&
		(!p.cfg.RefreshRequiresOffline || offline)
}

// issueLocked mints an access token (and a refresh token when withRefresh)
// and returns the response fields. existingRefresh names the refresh token
// a non-rotating refresh keeps using, for IssuedTokens.
func (p *Provider) issueLocked(r *http.Request, grant int, u *User, scopes []string, nonce, grantType string, withRefresh bool, existingRefresh string) fields {
	now := p.cfg.Now()
	life := p.accessLifetime
	prefix := p.cfg.AccessTokenPrefix
	if life <= 0 && p.cfg.NonExpiringAccessTokenPrefix != "" {
		prefix = p.cfg.NonExpiringAccessTokenPrefix
	}
	is := &issue{access: prefix + randomString(p.cfg.TokenLength, alnum), user: u,
		scopes: slices.Clone(scopes), grantType: grantType, at: now}
	if life > 0 {
		is.exp = now.Add(life)
	}
	p.access[is.access] = &accessToken{grant: grant, user: u, scopes: is.scopes, expires: is.exp}
	if withRefresh {
		is.refresh = p.cfg.RefreshTokenPrefix + randomString(p.cfg.TokenLength, alnum)
		if p.cfg.RefreshTokenLifetime > 0 {
			is.rexp = now.Add(p.cfg.RefreshTokenLifetime)
		}
		p.refresh[is.refresh] = &refreshToken{grant: grant, user: u, scopes: is.scopes, expires: is.rexp}
	} else if existingRefresh != "" {
		is.rexp = p.refresh[existingRefresh].expires
	}
	p.issues = append(p.issues, is)

	tr := p.cfg.Token
	body := fields{{"access_token", is.access}, {"token_type", tr.TokenType}}
	if life > 0 {
		body = append(body, kv{"expires_in", seconds(life)})
	}
	if is.refresh != "" {
		body = append(body, kv{"refresh_token", is.refresh})
		if tr.RefreshTokenExpiresIn && p.cfg.RefreshTokenLifetime > 0 {
			body = append(body, kv{"refresh_token_expires_in", seconds(p.cfg.RefreshTokenLifetime)})
		}
	}
	body = append(body, kv{tr.ScopeField, strings.Join(scopes, tr.ScopeSeparator)})
	if tr.CreatedAt {
		body = append(body, kv{"created_at", now.Unix()})
	}
	if tr.GrantTypeAsState {
		body = append(body, kv{"state", grantType})
	}
	if tr.IDToken && slices.Contains(scopes, "openid") {
		body = append(body, kv{"id_token", p.idToken(r, u, scopes, nonce, now)})
	}
	return body
}

// idToken is an UNSIGNED placeholder (alg "none"): enough for code that
// only decodes claims, useless for code that verifies signatures — which is
// the point: verify against the real provider, use userinfo here.
func (p *Provider) idToken(r *http.Request, u *User, scopes []string, nonce string, now time.Time) string {
	claims := map[string]any{
		"iss": p.base(r), "sub": googleSub(u), "aud": p.cfg.ClientID, "azp": p.cfg.ClientID,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if slices.Contains(scopes, "email") {
		if e := u.PrimaryEmail(); e != nil {
			claims["email"], claims["email_verified"] = e.Address, e.Verified
		}
	}
	if slices.Contains(scopes, "profile") {
		claims["name"] = u.Name
	}
	if hd := p.googleHostedDomainLocked(u); hd != "" && p.cfg.Flavor == FlavorGoogle {
		claims["hd"] = hd
	}
	hdr, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	pl, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(hdr) + "." + enc.EncodeToString(pl) + "."
}

// oauthError answers an RFC 6749 section 5.2 error. GitHub's token endpoint
// (ErrorsWithStatus200) says 200 instead.
func (p *Provider) oauthError(w http.ResponseWriter, r *http.Request, c *Call, status int, e OAuthError, tokenEndpoint bool) {
	c.Error = e.Code
	if tokenEndpoint && p.cfg.Token.ErrorsWithStatus200 {
		status = http.StatusOK
	}
	if status == http.StatusUnauthorized && c.ClientAuth == "basic" {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+p.cfg.Name+`"`)
	}
	body := fields{{"error", e.Code}}
	if e.Description != "" {
		body = append(body, kv{"error_description", e.Description})
	}
	if p.cfg.Errors.URI != "" {
		body = append(body, kv{"error_uri", p.cfg.Errors.URI})
	}
	if !tokenEndpoint {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, status, body)
		return
	}
	p.writeTokenBody(w, r, status, body)
}

// writeTokenBody encodes a token endpoint answer in the configured format.
func (p *Provider) writeTokenBody(w http.ResponseWriter, r *http.Request, status int, body fields) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	asJSON := true
	switch p.cfg.Token.Format {
	case TokenForm:
		asJSON = false
	case TokenFormUnlessAcceptJSON:
		asJSON = acceptsJSON(r.Header.Values("Accept"))
	}
	if asJSON {
		writeJSON(w, status, body)
		return
	}
	v := url.Values{}
	for _, f := range body {
		v.Set(f.k, fmt.Sprint(f.v))
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(v.Encode()))
}

// parsePost refuses a method other than POST (405, Allow: POST, with the
// message notPost) and a body that is not a form (400), and parses the
// form. tokenEndpoint is oauthError's, for the 400.
func (p *Provider) parsePost(w http.ResponseWriter, r *http.Request, c *Call, notPost string, tokenEndpoint bool) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		p.oauthError(w, r, c, http.StatusMethodNotAllowed, OAuthError{"invalid_request", notPost}, false)
		return false
	}
	if err := r.ParseForm(); err != nil {
		p.oauthError(w, r, c, http.StatusBadRequest, OAuthError{"invalid_request", "The request body is not a valid form."}, tokenEndpoint)
		return false
	}
	return true
}

func acceptsJSON(accept []string) bool {
	for _, a := range accept {
		for _, part := range strings.Split(a, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(mt), "application/json") {
				return true
			}
		}
	}
	return false
}

// handleRevoke serves the configured revocation style.
func (p *Provider) handleRevoke(w http.ResponseWriter, r *http.Request, c *Call, params map[string]string) {
	switch p.cfg.Revoke {
	case RevokeRFC7009:
		if !p.parsePost(w, r, c, "Use POST.", false) {
			return
		}
		c.Query = redact(r.PostForm)
		if !p.authenticateClient(w, r, c, r.PostForm, false) {
			return
		}
		tok := r.PostForm.Get("token")
		if tok == "" {
			p.oauthError(w, r, c, http.StatusBadRequest, OAuthError{"invalid_request", "token is required."}, false)
			return
		}
		c.Token = Fingerprint(tok)
		if p.cfg.RevokeIgnoresExpired && p.pairedAccessExpired(tok) {
			writeJSON(w, http.StatusOK, struct{}{}) // and nothing is revoked
			return
		}
		p.revoke(tok, c, false) // RFC 7009 section 2.2: unknown tokens are not an error
		writeJSON(w, http.StatusOK, struct{}{})

	case RevokeGoogle:
		if !p.parsePost(w, r, c, "Use POST.", false) {
			return
		}
		c.Query = redact(r.Form)
		tok := r.Form.Get("token")
		c.Token = Fingerprint(tok)
		if tok == "" || !p.revoke(tok, c, false) {
			p.oauthError(w, r, c, http.StatusBadRequest, OAuthError{"invalid_token", "Token expired or revoked"}, false)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})

	case RevokeGitHubGrant:
		if r.Method != http.MethodDelete {
			p.apiError(w, r, c, http.StatusNotFound, apiNotFound)
			return
		}
		id, secret, ok := r.BasicAuth()
		c.ClientAuth, c.ClientID = "none", id
		if ok {
			c.ClientAuth = "basic"
		}
		// "Delete an app authorization" documents only 204 and 422
		// (https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-authorization).
		// What wrong client credentials get is not documented; the fake
		// takes the unkind reading: the same 404 as an unknown token, so
		// a client cannot tell "already revoked" from "your secret is
		// wrong" by the status alone.
		if !ok || id != p.cfg.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(p.cfg.ClientSecret)) != 1 {
			p.apiError(w, r, c, http.StatusNotFound, apiNotFound)
			return
		}
		if params["client_id"] != id {
			p.apiError(w, r, c, http.StatusNotFound, apiNotFound)
			return
		}
		var in struct {
			AccessToken string `json:"access_token"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		if err := dec.Decode(&in); err != nil || in.AccessToken == "" {
			p.apiError(w, r, c, http.StatusUnprocessableEntity, apiValidation)
			return
		}
		c.Token = Fingerprint(in.AccessToken)
		p.mu.Lock()
		t := p.access[in.AccessToken]
		p.mu.Unlock()
		if t == nil || !p.revoke(in.AccessToken, c, true) {
			p.apiError(w, r, c, http.StatusNotFound, apiNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// revoke kills tok and, per RevokeAllForUser, either every token of the
// user or the tokens of tok's authorization. It reports whether tok was a
// live token (not revoked; not expired unless allowExpired).
func (p *Provider) revoke(tok string, c *Call, allowExpired bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	var (
		grant int
		user  *User
	)
	// usable: a live token, or (allowExpired) one that merely expired.
	usable := func(why string) bool { return why == "" || allowExpired && why == "expired" }
	switch a, r := p.access[tok], p.refresh[tok]; {
	case a != nil:
		c.DeadToken, grant, user = a.dead(now), a.grant, a.user
	case r != nil:
		c.DeadToken, grant, user = r.dead(now), r.grant, r.user
	default:
		return false
	}
	if !usable(c.DeadToken) {
		return false
	}
	c.User = user.Login
	if !p.cfg.RevokeAllForUser {
		p.revokeGrantLocked(grant)
		return true
	}
	p.revokeLocked(func(_ int, u *User) bool { return u == user })
	return true
}

func (p *Provider) revokeGrantLocked(grant int) {
	if grant != 0 {
		p.revokeLocked(func(g int, _ *User) bool { return g == grant })
	}
}

// revokeLocked revokes every access and refresh token whose grant and user
// match. p.mu is held.
func (p *Provider) revokeLocked(match func(grant int, user *User) bool) {
	for _, t := range p.access {
		if match(t.grant, t.user) {
			t.revoked = true
		}
	}
	for _, t := range p.refresh {
		if match(t.grant, t.user) {
			t.revoked = true
		}
	}
}

// validPKCE checks RFC 7636 section 4.1's verifier syntax, which the S256
// challenge (43 base64url characters) also satisfies.
func validPKCE(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for _, ch := range []byte(s) {
		switch {
		case 'A' <= ch && ch <= 'Z', 'a' <= ch && ch <= 'z', '0' <= ch && ch <= '9',
			ch == '-', ch == '.', ch == '_', ch == '~':
		default:
			return false
		}
	}
	return true
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// seconds rounds d up to whole seconds, at least 1, so a short test
// lifetime never reads as "no expiry".
func seconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// kv and fields keep JSON members in a stable, provider-like order.
type kv struct {
	k string
	v any
}

type fields []kv

func (f fields) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, x := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(x.k)
		v, err := json.Marshal(x.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

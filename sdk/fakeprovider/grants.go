package fakeprovider

import (
	"net/http"
	"net/url"
)

// tokenParams returns a token request's parameters and the client
// authentication its grant accepts, following Config.Grants. Without
// Grants they are the form body's and Config.ClientAuth, as RFC 6749
// section 4.1.3 has it (the query is not read). With Grants, a grant's
// parameters must be where its rule says (the others are refused with
// invalid_request naming the right place), and a client_secret is taken
// from the body only: one in the URL is refused. On failure it has
// answered.
func (p *Provider) tokenParams(w http.ResponseWriter, r *http.Request, c *Call) (url.Values, ClientAuth, bool) {
	body := r.PostForm
	if len(p.cfg.Grants) == 0 {
		return body, p.cfg.ClientAuth, true
	}
	query := r.URL.Query()
	grant := body.Get("grant_type")
	if grant == "" {
		grant = query.Get("grant_type")
	}
	if grant == "" && p.cfg.GrantTypeOptional && (body.Has("code") || query.Has("code")) {
		grant = "authorization_code"
	}
	rule, ok := p.cfg.Grants[grant]
	if !ok {
		rule = GrantRule{Params: ParamsInBody, ClientAuth: p.cfg.ClientAuth}
	}
	fail := func(desc string) (url.Values, ClientAuth, bool) {
		c.Query, c.GrantType = redact(query), grant
		p.oauthError(w, r, c, http.StatusBadRequest, OAuthError{"invalid_request", desc}, true)
		return nil, 0, false
	}
	if query.Has("client_secret") {
		return fail("client_secret must not be sent in the URL.")
	}
	src, other, otherName := body, query, "query string"
	if rule.Params == ParamsInQuery {
		src, other, otherName = query, body, "request body"
	}
	for _, name := range grantParams {
		if other.Has(name) {
			return fail("The " + grant + " grant takes its parameters in the " + rule.Params.String() +
				", not in the " + otherName + " (" + name + ").")
		}
	}
	f := url.Values{}
	for k, vs := range src {
		f[k] = vs
	}
	// The client's credentials come in the body whatever the placement
	// (the client_id may also come with the parameters, as Gitee's
	// documentation shows it in the query).
	for _, k := range []string{"client_id", "client_secret"} {
		if body.Has(k) {
			f[k] = body[k]
		}
	}
	return f, rule.ClientAuth, true
}

package pages

import (
	"html/template"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/membership"
)

// DeniedTitle is the title of the page of a policy refusal.
const DeniedTitle = "Access denied"

// deniedCodes are the codes of the policy's refusals (membership.Code*).
var deniedCodes = map[string]bool{
	membership.CodeNotAllowed:             true,
	membership.CodeRouteNotAllowed:        true,
	membership.CodeAccountDisabled:        true,
	membership.CodeMembershipsUnavailable: true,
}

// Denied answers a refused Verdict (the policy's, package
// gateway/authz/policy) with a page that explains: titled DeniedTitle
// unless p says otherwise, the rule in words, then what to do, marked
// data-error with the Verdict's stable code; to a client that is not a
// browser, httperr.Denied's JSON (403, "error", "rule", "fix"). Sign-in
// calls it for a refused sign-in (with p.Back to sign in with another
// account); a refused request elsewhere returns httperr.Denied and gets
// the same words through HTTPErrorPage. Every word comes from the
// configuration, never from the request.
func Denied(c *fiber.Ctx, t *template.Template, v membership.Verdict, p ErrorPage) error {
	e := httperr.Denied(v)
	if p.Title == "" {
		p.Title = DeniedTitle
	}
	p.Code = e.Code
	if v.Rule != "" {
		p.Message, p.Fix = v.Rule, v.Fix
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return Error(c, t, e, p)
}

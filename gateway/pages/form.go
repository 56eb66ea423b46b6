package pages

import (
	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/edge/reqbody"
)

// CSRF is what a page's forms need of the session manager
// (session.Manager): a token to put in each form, and its check.
type CSRF interface {
	CSRFToken(sid string) string
	CheckCSRF(sid, token string) bool
}

// FromOwnPage reports whether a form post comes from one of Arbor's own
// pages: not cross-site (gateway.CrossSite) and carrying the CSRF token of
// the session sid in its "csrf" field.
func FromOwnPage(c *fiber.Ctx, publicURL string, csrf CSRF, sid string) bool {
	return !gateway.CrossSite(c, publicURL) && csrf.CheckCSRF(sid, reqbody.FormValue(c, "csrf"))
}

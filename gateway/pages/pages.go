// Package pages is Arbor's own HTML pages, each a file with its routes:
// the Integrations page (integrations.go), the Workers page (workers.go)
// and the account page (account.go). It also holds what every page Arbor
// renders (sign-in's and the CLI's too) shares: the response headers that
// keep them uncached, unframed and script-free; the check that a form
// comes from Arbor's own page (FromOwnPage); the layout every page starts
// and ends with (Templates, Render); and the one error page those pages
// show (Error, StepError), JSON for clients that are not browsers. One
// copy, so the pages cannot drift apart in what they defend against or how
// they fail.
//
// The pages call the services (package service/...) and map their errors
// with api.Answer, as the JSON APIs do (package gateway/api).
package pages

import "github.com/gofiber/fiber/v2"

// CSP allows Arbor's stylesheet and nothing else: no script at all.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Headers marks a page as never cached, never framed, script-free, and
// sent without a Referer (a callback URL holds a code).
func Headers(c *fiber.Ctx) {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentSecurityPolicy, CSP)
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
}

// Package pagesec holds what every HTML page Arbor renders itself (sign-in,
// account, Integrations, CLI approval) shares: the response headers that
// keep them uncached, unframed and script-free, and the check that a form
// post comes from Arbor's own origin. One copy, so the pages cannot drift
// apart in what they defend against.
package pagesec

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

// CrossSite reports a request that the browser says comes from another
// site: Sec-Fetch-Site cross-site or same-site (a sibling subdomain), or an
// Origin other than publicURL. "Origin: null" counts as cross-site: a
// browser sends it from sandboxed frames, data: and file: documents and
// after cross-origin redirects, never from Arbor's own pages. Requests
// without either header (non-browser clients) are not cross-site; CSRF
// tokens cover those.
func CrossSite(c *fiber.Ctx, publicURL string) bool {
	switch c.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	o := c.Get(fiber.HeaderOrigin)
	return o != "" && o != publicURL
}

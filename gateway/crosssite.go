package gateway

import "github.com/gofiber/fiber/v2"

// CrossSite reports a request that the browser says comes from another
// site. Fetch metadata decides when the browser sends it: Sec-Fetch-Site
// cross-site or same-site (a sibling subdomain) is cross-site, same-origin
// is not (a page cannot forge it: it is a forbidden header name). Without
// it, an Origin other than publicURL is cross-site, and "Origin: null"
// counts as cross-site: browsers send it from sandboxed frames, data: and
// file: documents and after cross-origin redirects.
//
// Why same-origin wins over "Origin: null": Arbor's pages are sent with
// Referrer-Policy: no-referrer (a callback URL holds a code), and under
// that policy the Fetch standard serializes the Origin of a form POST from
// Arbor's own page as "null" too; only the fetch metadata then tells the
// two apart. A browser too old to send Sec-Fetch-Site (Safari before 16.4)
// is refused with "Origin: null", which errs on the safe side.
//
// Requests without either header (non-browser clients) are not
// cross-site; CSRF tokens cover those.
func CrossSite(c *fiber.Ctx, publicURL string) bool {
	switch c.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	case "same-origin":
		return false
	}
	o := c.Get(fiber.HeaderOrigin)
	return o != "" && o != publicURL
}

package pages

import (
	"html/template"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/httperr"
)

// ErrorPage is what the layout's error page (the "error" template every
// Templates set has) shows besides the error itself.
type ErrorPage struct {
	// Title is the page's title and heading ("Sign-in failed").
	Title string
	// Who is the signed-in person (Who), empty for none.
	Who       string
	RequestID string
	// Message is the page's text; empty: the error's message.
	Message string
	// Code, if set, marks the page as an Arbor error page for tests and
	// browser automation: <main class="card arbor-error" data-error=Code>.
	Code string
	// ID is the id of the page's <main>, if any.
	ID string
	// Back, if set, is a button that leads back ("Back to sign-in").
	Back *Link
	// Refresh is read by the layout; an error page never reloads.
	Refresh bool
}

// Link is a button on a page.
type Link struct{ Href, Text string }

// Error answers e with an error page of Arbor's look: to a browser
// (httperr.WantsHTML), the "error" template of t with e's status, the page
// headers and Retry-After from e; to any other client, e as httperr.Render
// writes it (JSON). It is how the pages that speak to a person (sign-in,
// account, CLI and device approval) show an error; errors a handler
// returns instead reach the gateway's error handler, which writes
// httperr's own page. e.Err is not written; the caller logs it.
func Error(c *fiber.Ctx, t *template.Template, e *httperr.Error, p ErrorPage) error {
	if !httperr.WantsHTML(c) {
		return httperr.Render(c, e, p.RequestID)
	}
	if e.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(httperr.RetryAfterSeconds(e.RetryAfter), 10))
	}
	if p.Message == "" {
		p.Message = e.Message
	}
	return Render(c, t, e.Status, "error", p)
}

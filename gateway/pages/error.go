package pages

import (
	"html/template"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
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
	// Fix, if set, is a second paragraph: what to do (a policy refusal's,
	// Denied).
	Fix string
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
// account, CLI and device approval) show an error with a title and a way
// back; errors a handler returns instead reach the gateway's error
// handler, which writes the same page through HTTPErrorPage. e.Err is not
// written; the caller logs it.
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

// StepError answers a failed step of sign-in or of the account page: it
// logs the failure ("sign-in failed" with the code, status, path and
// e.Err; error level for a 5xx, info otherwise) and shows Error's page
// titled title, with a button back to sign-in (the path signIn).
func StepError(c *fiber.Ctx, t *template.Template, e *httperr.Error, title, signIn string) error {
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelError
	}
	gateway.Logger(c).Log(c.UserContext(), level, "sign-in failed", "error", e.Code, "status", e.Status, "path", c.Path(), "err", e.Err)
	return Error(c, t, e, ErrorPage{
		Title: title, RequestID: gateway.RequestID(c), Code: e.Code,
		Back: &Link{Href: signIn, Text: "Back to sign-in"},
	})
}

// HTTPErrorPage is the HTML page httperr writes for a browser (httperr.Page:
// set it as gateway.Options.ErrorPage and httperr.HandlerConfig.Page): the
// layout's error page, titled with the status ("404 Not Found"), with the
// page headers (pages.Headers), the error's code and message and the
// request id. An error a route returns, a 404 or a refused request thus
// looks like Arbor's other pages and is defended as they are.
func HTTPErrorPage(names Names) (httperr.Page, error) {
	t, err := Templates(names, nil)
	if err != nil {
		return nil, err
	}
	return func(c *fiber.Ctx, status int, code, message, requestID string) error {
		title := strconv.Itoa(status) + " " + http.StatusText(status)
		if deniedCodes[code] {
			title = DeniedTitle
		}
		return Render(c, t, status, "error", ErrorPage{
			Title: title, RequestID: requestID, Message: message, Code: code,
		})
	}, nil
}

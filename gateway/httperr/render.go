package httperr

import (
	"context"
	"encoding/json"
	"html"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// body is the JSON shape of every error Arbor answers.
type body struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
	// Rule and Fix: a policy refusal's (Denied).
	Rule string `json:"rule,omitempty"`
	Fix  string `json:"fix,omitempty"`
}

// WantsHTML reports whether the client prefers an HTML page to JSON, as a
// browser navigating to a URL does (Accept: text/html,…). A missing Accept
// header, */* or an explicit application/json preference all get JSON.
func WantsHTML(c *fiber.Ctx) bool {
	if len(c.Request().Header.Peek(fiber.HeaderAccept)) == 0 {
		return false
	}
	return c.Accepts(fiber.MIMEApplicationJSON, fiber.MIMETextHTML) == fiber.MIMETextHTML
}

// Page writes the HTML error page a browser gets (see [WantsHTML]): the
// status, e's stable code and message, and the request id ("" for none),
// every value escaped. [RenderPage] has already set the status,
// Cache-Control and Retry-After; a Page sets the body, its Content-Type
// and any headers of its own. Arbor's is its pages' error page
// (pages.HTTPErrorPage, set by the app in gateway.Options.ErrorPage and
// HandlerConfig.Page), so that every error a person sees has the layout
// and the headers of Arbor's other pages; this package stays a leaf. A Page
// that fails leaves the answer to the plain page below.
type Page func(c *fiber.Ctx, status int, code, message, requestID string) error

// Render writes e as the response: JSON, or a small plain HTML page when the
// client prefers HTML. It is RenderPage without a Page.
func Render(c *fiber.Ctx, e *Error, requestID string) error {
	return RenderPage(c, e, requestID, nil)
}

// RenderPage writes e as the response: JSON, or the HTML page page writes
// when the client prefers HTML (nil or failing: a small plain page). It
// replaces any body already set but keeps headers a handler set on purpose
// (WWW-Authenticate, …), and writes Retry-After from e.RetryAfter when it
// is set. Error responses are never cached. e.Err is not written anywhere;
// log it with [Log].
func RenderPage(c *fiber.Ctx, e *Error, requestID string, page Page) error {
	status := e.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	c.Status(status)
	c.Set(fiber.HeaderCacheControl, "no-store")
	if e.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(RetryAfterSeconds(e.RetryAfter), 10))
	}
	if e.Plain {
		c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
		var b strings.Builder
		b.WriteString(e.Message)
		if e.Fix != "" {
			b.WriteString("\n" + e.Fix)
		}
		b.WriteString("\n(arbor: " + e.Code)
		if requestID != "" {
			b.WriteString(", request id " + requestID)
		}
		b.WriteString(")\n")
		return c.SendString(b.String())
	}
	if WantsHTML(c) {
		if page != nil && page(c, status, e.Code, e.Message, requestID) == nil {
			return nil
		}
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return c.SendString(plainPage(status, e.Code, e.Message, requestID))
	}
	b, err := json.Marshal(body{Error: e.Code, Message: e.Message, RequestID: requestID, Rule: e.Rule, Fix: e.Fix})
	if err != nil {
		// Only strings are marshalled, so this cannot happen; answer anyway.
		b = []byte(`{"error":"internal_error","message":"error rendering failed"}`)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(b)
}

// plainPage is the plain HTML error page, for apps without a [Page] (standalone
// Fiber apps, tests) and should a Page fail. It is deliberately plain: no
// assets, no script, every dynamic value escaped.
//
// The body is <main class="arbor-error" data-error="CODE">, so that tests
// (and browser automation) can tell an Arbor error page from an app page.
func plainPage(status int, code, message, requestID string) string {
	title := strconv.Itoa(status) + " " + http.StatusText(status)
	var b strings.Builder
	b.Grow(512 + len(message) + len(requestID))
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>`)
	b.WriteString(html.EscapeString(title))
	b.WriteString(`</title><style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#f2f2f2;padding:.1rem .3rem}</style></head><body><main class="arbor-error" data-error="`)
	b.WriteString(html.EscapeString(code))
	b.WriteString(`"><h1>`)
	b.WriteString(html.EscapeString(title))
	b.WriteString(`</h1><p>`)
	b.WriteString(html.EscapeString(message))
	b.WriteString(`</p>`)
	if requestID != "" {
		b.WriteString(`<p>Request id: <code>`)
		b.WriteString(html.EscapeString(requestID))
		b.WriteString(`</code></p>`)
	}
	b.WriteString(`</main></body></html>`)
	return b.String()
}

// Log records e with its cause. Server-side failures (5xx) are logged at
// error level, client errors at debug: a 404 storm should not flood the log,
// but every 5xx deserves a line an operator can find by request id.
func Log(ctx context.Context, logger *slog.Logger, e *Error, requestID string) {
	if logger == nil {
		return
	}
	level := slog.LevelDebug
	if e.Status >= 500 {
		level = slog.LevelError
	}
	if !logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", requestID),
		slog.Int("status", e.Status),
		slog.String("error", e.Code),
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	logger.LogAttrs(ctx, level, "request failed", attrs...)
}

// HandlerConfig configures [Handler].
type HandlerConfig struct {
	// Logger receives one line per error (see [Log]). Nil disables logging.
	Logger *slog.Logger
	// RequestID returns the request's id for the body and the log line. Nil
	// renders errors without one.
	RequestID func(c *fiber.Ctx) string
	// Page writes the HTML page a browser gets (see [Page]). Nil: the
	// plain page.
	Page Page
}

// Handler returns a Fiber ErrorHandler that classifies with [From], logs with
// [Log] and writes with [RenderPage] and cfg.Page. The gateway installs its own, which also
// feeds the access log and metrics; Handler is for standalone Fiber apps and
// tests that want the same error shape.
func Handler(cfg HandlerConfig) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		e := From(err)
		id := ""
		if cfg.RequestID != nil {
			id = cfg.RequestID(c)
		}
		Log(c.Context(), cfg.Logger, e, id)
		return RenderPage(c, e, id, cfg.Page)
	}
}

// GitClient reports whether the request comes from a Git client (User-Agent
// git/, JGit/ or go-git/, a Git-Protocol header, or an Accept of Git's
// smart-HTTP types). Such a client shows a failed request's body to its
// user only when it is text/plain, so an error for it is rendered with
// Plain: the Git proxy's own, and the edge's refusals on /git/ (rate
// limits) alike.
func GitClient(c *fiber.Ctx) bool {
	ua := c.Get(fiber.HeaderUserAgent)
	return strings.HasPrefix(ua, "git/") || strings.HasPrefix(ua, "JGit/") || strings.HasPrefix(ua, "go-git/") ||
		c.Get("Git-Protocol") != "" || strings.Contains(c.Get(fiber.HeaderAccept), "application/x-git-")
}

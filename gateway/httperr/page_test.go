package httperr_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/httperr"
)

// TestHandlerPage: with a Page, a browser's error page is the Page's (with
// the status, code, message and request id, and the headers Render sets);
// JSON answers are byte for byte those without a Page; a Page that fails
// leaves the answer to the plain page.
func TestHandlerPage(t *testing.T) {
	ok := func(c *fiber.Ctx, status int, code, message, requestID string) error {
		c.Set("X-Page", "yes")
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return c.SendString(strconv.Itoa(status) + "|" + code + "|" + message + "|" + requestID)
	}
	failing := func(c *fiber.Ctx, status int, code, message, requestID string) error {
		return errors.New("template broken")
	}
	newApp := func(page httperr.Page) *fiber.App {
		app := fiber.New(fiber.Config{DisableStartupMessage: true, ErrorHandler: httperr.Handler(httperr.HandlerConfig{
			RequestID: func(*fiber.Ctx) string { return "rid-1" }, Page: page,
		})})
		app.Get("/later", func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderWWWAuthenticate, `Cookie realm="arbor"`)
			return httperr.New(503, "provider_rate_limited", "later <soon>").WithRetryAfter(1500 * time.Millisecond)
		})
		app.Get("/odd", func(c *fiber.Ctx) error { return httperr.New(302, "odd", "not an error status") })
		return app
	}
	type answer struct {
		status                             int
		body, ctype, retry, cache, www, pg string
	}
	get := func(app *fiber.App, path, accept string) answer {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return answer{res.StatusCode, string(b), res.Header.Get("Content-Type"), res.Header.Get("Retry-After"),
			res.Header.Get("Cache-Control"), res.Header.Get("WWW-Authenticate"), res.Header.Get("X-Page")}
	}
	plain, withPage, broken := newApp(nil), newApp(ok), newApp(failing)

	// A browser: the Page, after the status and headers Render sets.
	got := get(withPage, "/later", "text/html")
	want := answer{503, "503|provider_rate_limited|later <soon>|rid-1", "text/html; charset=utf-8", "2", "no-store", `Cookie realm="arbor"`, "yes"}
	if got != want {
		t.Errorf("page:\n got %+v\nwant %+v", got, want)
	}
	if got := get(withPage, "/odd", "text/html"); got.status != 500 || got.body != "500|odd|not an error status|rid-1" {
		t.Errorf("a status outside 4xx/5xx reaches the page as 500: %+v", got)
	}
	// A failing Page: the plain page, as without a Page.
	if got, want := get(broken, "/later", "text/html"), get(plain, "/later", "text/html"); got != want || got.status != 503 {
		t.Errorf("failing page:\n got %+v\nwant %+v", got, want)
	}
	// Anyone else: JSON, byte for byte as without a Page.
	for _, accept := range []string{"", "application/json", "*/*", "application/json, text/html;q=0.5"} {
		got, want := get(withPage, "/later", accept), get(plain, "/later", accept)
		if got != want || got.ctype != "application/json; charset=utf-8" ||
			got.body != `{"error":"provider_rate_limited","message":"later \u003csoon\u003e","request_id":"rid-1"}` {
			t.Errorf("Accept %q:\n got %+v\nwant %+v", accept, got, want)
		}
	}
}

package pages

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/membership"
)

// TestDenied: a refused Verdict is a page titled "Access denied" with the
// rule and then what to do, marked with its code, for a browser; JSON with
// code, rule and fix for any other client; and a Denied error returned by a
// handler gets the same title through HTTPErrorPage.
func TestDenied(t *testing.T) {
	tpl, err := Templates(Names{App: "Acme"}, fstest.MapFS{"p.html": {Data: []byte(`{{define "p"}}{{end}}`)}}, "p.html")
	if err != nil {
		t.Fatal(err)
	}
	page, err := HTTPErrorPage(Names{App: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	v := membership.Verdict{Code: membership.CodeNotAllowed, Rule: "Access to Acme is limited to members of the GitHub group <vintner>.", Fix: "Ask the people who run Acme."}
	app := fiber.New(fiber.Config{DisableStartupMessage: true, ErrorHandler: httperr.Handler(httperr.HandlerConfig{Page: page})})
	app.Get("/sign-in-refused", func(c *fiber.Ctx) error {
		return Denied(c, tpl, v, ErrorPage{Back: &Link{Href: "/auth/sign-in", Text: "Sign in with another account"}})
	})
	app.Get("/route", func(c *fiber.Ctx) error {
		return httperr.Denied(membership.Verdict{Code: membership.CodeRouteNotAllowed, Rule: "The pages under /admin/ are limited.", Fix: "Go back."})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	defer func() { _ = app.Shutdown() }()
	get := func(path, accept string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+path, nil)
		req.Header.Set("Accept", accept)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res, body := get("/sign-in-refused", "text/html")
	want := `<main class="card arbor-error" data-error="not_allowed">
<h1>Access denied</h1>
<p>Access to Acme is limited to members of the GitHub group &lt;vintner&gt;.</p>
<p class="fix">Ask the people who run Acme.</p>
<p><a class="button" href="/auth/sign-in">Sign in with another account</a></p>
</main>`
	if res.StatusCode != 403 || !strings.Contains(body, want) || res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("Content-Security-Policy") != CSP {
		t.Errorf("page: %d %q\n%s\nwant\n%s", res.StatusCode, res.Header.Get("Cache-Control"), body, want)
	}
	res, body = get("/sign-in-refused", "application/json")
	var j struct{ Error, Message, Rule, Fix string }
	if err := json.Unmarshal([]byte(body), &j); err != nil || res.StatusCode != 403 || j.Error != "not_allowed" || j.Rule != v.Rule || j.Fix != v.Fix {
		t.Errorf("JSON: %d %s", res.StatusCode, body)
	}
	res, body = get("/route", "text/html")
	if res.StatusCode != 403 || !strings.Contains(body, "<h1>Access denied</h1>") || !strings.Contains(body, `data-error="route_not_allowed"`) ||
		!strings.Contains(body, "<p>The pages under /admin/ are limited. Go back.</p>") {
		t.Errorf("HTTPErrorPage of a denial: %d\n%s", res.StatusCode, body)
	}
}

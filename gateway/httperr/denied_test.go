package httperr_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/membership"
)

// A refused Verdict is a 403 with its code, and the rule and the fix in
// words: as "rule" and "fix" in JSON, in the message of the page.
func TestDenied(t *testing.T) {
	v := membership.Verdict{Code: membership.CodeRouteNotAllowed, Rule: "The pages under /admin/ are limited to <team>.", Fix: "Ask an admin."}
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler:          httperr.Handler(httperr.HandlerConfig{RequestID: func(*fiber.Ctx) string { return "rid-2" }}),
	})
	app.Get("/denied", func(c *fiber.Ctx) error { return httperr.Denied(v) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	defer func() { _ = app.Shutdown() }()

	get := func(accept string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/denied", nil)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("application/json")
	var got struct{ Error, Message, Rule, Fix, RequestID string }
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 403 {
		t.Fatalf("%d %s (%v)", resp.StatusCode, body, err)
	}
	if got.Error != "route_not_allowed" || got.Rule != v.Rule || got.Fix != v.Fix || got.Message != v.Rule+" "+v.Fix {
		t.Errorf("JSON = %+v", got)
	}
	resp, body = get("text/html")
	if resp.StatusCode != 403 || !strings.Contains(body, `data-error="route_not_allowed"`) ||
		!strings.Contains(body, "limited to &lt;team&gt;. Ask an admin.") {
		t.Errorf("page = %d %s", resp.StatusCode, body)
	}
	// An admitting Verdict is a bug, refused all the same.
	if e := httperr.Denied(membership.Verdict{}); e.Status != 403 || e.Code != httperr.CodeForbidden || e.Message == "" {
		t.Errorf("Denied(zero) = %+v", e)
	}
}

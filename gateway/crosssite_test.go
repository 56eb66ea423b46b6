package gateway_test

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
)

func TestCrossSite(t *testing.T) {
	const public = "https://arbor.example"
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Post("/form", func(c *fiber.Ctx) error {
		return c.SendString(fmt.Sprint(gateway.CrossSite(c, public)))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { app.Shutdown() })
	client := &http.Client{Timeout: 10 * time.Second}

	for _, tc := range []struct {
		name          string
		origin, fetch string // "" = header absent
		want          bool
	}{
		{"no headers (a non-browser client)", "", "", false},
		{"Arbor's own origin", public, "", false},
		{"Arbor's own origin, same-origin fetch", public, "same-origin", false},
		{"fetch metadata none (typed URL)", "", "none", false},
		{"Origin: null", "null", "", true},
		{"Origin: null, same-origin fetch (Arbor's page under no-referrer)", "null", "same-origin", false},
		{"Origin: null, cross-site fetch", "null", "cross-site", true},
		{"Origin: NULL", "NULL", "", true},
		{"another site", "https://evil.example", "", true},
		{"a sibling subdomain", "https://app.arbor.example", "", true},
		{"plain http of Arbor's host", "http://arbor.example", "", true},
		{"Arbor's origin with a trailing slash", public + "/", "", true},
		{"Arbor's origin with a port", public + ":443", "", true},
		{"Sec-Fetch-Site cross-site", "", "cross-site", true},
		{"Sec-Fetch-Site same-site", "", "same-site", true},
		{"cross-site fetch despite a matching Origin", public, "cross-site", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/form", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.fetch != "" {
				req.Header.Set("Sec-Fetch-Site", tc.fetch)
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var got string
			fmt.Fscan(res.Body, &got)
			if got != fmt.Sprint(tc.want) {
				t.Fatalf("CrossSite with Origin %q, Sec-Fetch-Site %q = %s, want %v", tc.origin, tc.fetch, got, tc.want)
			}
		})
	}
}

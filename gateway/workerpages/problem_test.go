package workerpages

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/workers"
)

// TestProblem: the worker service's errors map to their answers in one
// place, and a browser gets the error page every Arbor error gets
// (httperr's), byte for byte as before.
func TestProblem(t *testing.T) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true, ErrorHandler: httperr.Handler(httperr.HandlerConfig{})})
	app.Get("/missing", func(c *fiber.Ctx) error { return problem(fmt.Errorf("get: %w", workers.ErrNotFound)) })
	app.Get("/bad", func(c *fiber.Ctx) error { return problem(workers.ErrBadName) })
	for _, tc := range []struct {
		path, accept string
		status       int
		body         string
	}{
		{"/missing", "text/html", 404, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>404 Not Found</title><style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#f2f2f2;padding:.1rem .3rem}</style></head><body><main class="arbor-error" data-error="worker_not_found"><h1>404 Not Found</h1><p>You have no worker with that id</p></main></body></html>`},
		{"/missing", "", 404, `{"error":"worker_not_found","message":"You have no worker with that id"}`},
		{"/bad", "", 400, fmt.Sprintf(`{"error":"invalid_name","message":"A worker name has 1 to %d characters and no control characters"}`, workers.MaxName)},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		res, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || string(body) != tc.body {
			t.Errorf("GET %s (Accept %q): %d\n%s\nwant %d\n%s", tc.path, tc.accept, res.StatusCode, body, tc.status, tc.body)
		}
	}
}

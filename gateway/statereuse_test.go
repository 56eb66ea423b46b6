package gateway_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/edge/proxy"
)

// TestRequestStateReuseKeepsWhatLeft: a connection's requests share one
// state (newState), so what a handler keeps of a request — its id, its
// logger — must stay that request's after the connection's next requests,
// proxied or not, have reused the state.
func TestRequestStateReuseKeepsWhatLeft(t *testing.T) {
	up := echoUpstream(t)
	var kept []string
	var loggers []func()
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}}, mountRoutes(t, gateway.ClassAPI, func(r fiber.Router) {
		r.Get("/api/keep", func(c *fiber.Ctx) error {
			kept = append(kept, gateway.RequestID(c))
			l := gateway.Logger(c)
			loggers = append(loggers, func() { l.Info("later") })
			return c.SendString("ok")
		})
	}))
	conn, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	var ids []string
	for i := range 6 {
		path := "/api/keep"
		if i%2 == 1 {
			path = "/app/proxied"
		}
		// A client id on every third request: adopted ids share the path too.
		extra := ""
		if i%3 == 2 {
			extra = fmt.Sprintf("X-Request-Id: client-%d\r\n", i)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, extra)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
		if path == "/api/keep" {
			ids = append(ids, resp.Header.Get("X-Request-Id"))
		}
	}
	if len(kept) != len(ids) {
		t.Fatalf("kept %d ids, answered %d", len(kept), len(ids))
	}
	for i := range ids {
		if kept[i] != ids[i] {
			t.Errorf("request %d: the id a handler kept became %q; the response said %q", i, kept[i], ids[i])
		}
	}
	for _, f := range loggers {
		f()
	}
	n := 0
	for _, l := range g.logs.lines(t) {
		if l["msg"] == "later" {
			if l["request_id"] != ids[n] {
				t.Errorf("logger %d logs request_id %v after the connection moved on, want %q", n, l["request_id"], ids[n])
			}
			n++
		}
	}
	if n != len(ids) {
		t.Fatalf("%d later lines, want %d", n, len(ids))
	}
}

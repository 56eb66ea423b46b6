package gateway_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/edge/proxy"
	"github.com/vintner/arbor/gateway/edge/reqbody"
	"github.com/vintner/arbor/gateway/httperr"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestOwnRouteBodies checks the edge body rule on a mounted route: no
// Content-Encoding, JSON and form bodies only, raw bytes to the handler,
// form values from the body alone, and a per-Mount cap.
func TestOwnRouteBodies(t *testing.T) {
	g := startGateway(t, gateway.Options{}, func(s *gateway.Server) {
		mountRoutes(t, gateway.ClassAPI, func(r fiber.Router) {
			r.Post("/api/raw", func(c *fiber.Ctx) error { return c.Send(reqbody.Raw(c)) })
			r.Get("/api/raw", func(c *fiber.Ctx) error { return c.Send(reqbody.Raw(c)) })
			r.Post("/api/form", func(c *fiber.Ctx) error { return c.SendString(reqbody.FormValue(c, "csrf")) })
			r.Post("/api/json", func(c *fiber.Ctx) error {
				var v struct{ Name string }
				if err := reqbody.JSON(c, &v); err != nil {
					return err
				}
				return c.SendString(v.Name)
			})
		})(s)
		if err := s.Mount(gateway.ClassAPI, func(r fiber.Router) {
			r.Post("/api/small", func(c *fiber.Ctx) error { return c.Send(reqbody.Raw(c)) })
		}, gateway.WithBodyLimit(16)); err != nil {
			t.Fatal(err)
		}
		// A route added around Mount gets no body at all.
		s.App().Post("/unmounted", func(c *fiber.Ctx) error { return c.SendString("len=" + strconv.Itoa(len(reqbody.Raw(c)))) })
	})

	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("csrf", "x")
	_ = mw.Close()

	json := []byte(`{"Name":"ada"}`)
	tests := []struct {
		name, method, path, ctype, cenc string
		body                            []byte
		status                          int
		code, want                      string
	}{
		{name: "gzip", method: "POST", path: "/api/raw", ctype: "application/json", cenc: "gzip", body: gzipped(t, json), status: 415, code: reqbody.CodeUnsupportedEncoding},
		{name: "gzip twice", method: "POST", path: "/api/raw", ctype: "application/json", cenc: "gzip, gzip", body: gzipped(t, gzipped(t, json)), status: 415, code: reqbody.CodeUnsupportedEncoding},
		{name: "identity then gzip", method: "POST", path: "/api/raw", ctype: "application/json", cenc: "identity, gzip", body: gzipped(t, json), status: 415, code: reqbody.CodeUnsupportedEncoding},
		{name: "deflate", method: "POST", path: "/api/raw", ctype: "application/json", cenc: "deflate", body: []byte("x"), status: 415, code: reqbody.CodeUnsupportedEncoding},
		{name: "br", method: "POST", path: "/api/raw", ctype: "application/json", cenc: "br", body: []byte("x"), status: 415, code: reqbody.CodeUnsupportedEncoding},
		{name: "encoding without body", method: "GET", path: "/api/raw", cenc: "gzip", status: 415, code: reqbody.CodeUnsupportedEncoding},
		{name: "identity", method: "POST", path: "/api/raw", ctype: "application/json", cenc: "Identity", body: json, status: 200, want: string(json)},
		{name: "multipart", method: "POST", path: "/api/form", ctype: mw.FormDataContentType(), body: mp.Bytes(), status: 415, code: httperr.CodeUnsupportedMedia},
		{name: "text/plain", method: "POST", path: "/api/json", ctype: "text/plain", body: json, status: 415, code: httperr.CodeUnsupportedMedia},
		{name: "no content type", method: "POST", path: "/api/json", body: json, status: 415, code: httperr.CodeUnsupportedMedia},
		{name: "json with charset", method: "POST", path: "/api/json", ctype: "Application/JSON; charset=utf-8", body: json, status: 200, want: "ada"},
		{name: "form to a JSON route", method: "POST", path: "/api/json", ctype: "application/x-www-form-urlencoded", body: []byte("Name=ada"), status: 400, code: httperr.CodeBadRequest},
		{name: "form value from the body", method: "POST", path: "/api/form?csrf=query", ctype: "application/x-www-form-urlencoded; charset=UTF-8", body: []byte("csrf=body"), status: 200, want: "body"},
		{name: "form value never from the query", method: "POST", path: "/api/form?csrf=query", ctype: "application/x-www-form-urlencoded", body: []byte("other=1"), status: 200, want: ""},
		{name: "no body, no type", method: "GET", path: "/api/raw", status: 200, want: ""},
		{name: "per-mount cap", method: "POST", path: "/api/small", ctype: "application/json", body: []byte(`"0123456789abcde"`), status: 413, code: httperr.CodeBodyTooLarge},
		{name: "under the per-mount cap", method: "POST", path: "/api/small", ctype: "application/json", body: []byte(`"0123"`), status: 200, want: `"0123"`},
		{name: "default cap", method: "POST", path: "/api/raw", ctype: "application/json", body: bytes.Repeat([]byte("x"), reqbody.DefaultLimit+1), status: 413, code: httperr.CodeBodyTooLarge},
		{name: "route outside Mount", method: "POST", path: "/unmounted", ctype: "text/plain", cenc: "gzip", body: gzipped(t, json), status: 200, want: "len=0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rd io.Reader
			if tc.body != nil {
				rd = bytes.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, g.url+tc.path, rd)
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.cenc != "" {
				req.Header.Set("Content-Encoding", tc.cenc)
			}
			resp, body := do(t, req)
			if tc.code != "" {
				wantError(t, resp, body, tc.status, tc.code)
				return
			}
			if resp.StatusCode != tc.status || string(body) != tc.want {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
}

// TestProxiedBodiesUntouched: the body rule is for Arbor's routes only; a
// compressed or multipart upload reaches the upstream byte for byte.
func TestProxiedBodiesUntouched(t *testing.T) {
	type seen struct {
		enc, ctype string
		body       []byte
	}
	got := make(chan seen, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Header.Get("Content-Encoding"), r.Header.Get("Content-Type"), b}
	})
	g := startGateway(t, gateway.Options{Upstream: proxy.Upstream{URL: up.URL}}, nil)
	payload := gzipped(t, gzipped(t, []byte(strings.Repeat("a", 1<<20))))
	req, _ := http.NewRequest("POST", g.url+"/upload", bytes.NewReader(payload))
	req.Header.Set("Content-Encoding", "gzip, gzip")
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	resp, body := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	s := <-got
	if s.enc != "gzip, gzip" || s.ctype != "multipart/form-data; boundary=x" || !bytes.Equal(s.body, payload) {
		t.Fatalf("upstream saw Content-Encoding %q, Content-Type %q, %d bytes; want the request as sent (%d bytes)", s.enc, s.ctype, len(s.body), len(payload))
	}
}

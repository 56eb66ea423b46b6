package proxy

import (
	"bufio"
	"net"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

const browserRequest = "GET /app/dashboard?tab=1 HTTP/1.1\r\nHost: trellis.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCookie: __Host-arbor=eyJhbGciOiJIUzI1NiJ9.eyJzaWQiOiJhYmMifQ.sig; theme=dark\r\n" +
	"Upgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Site: none\r\n\r\n"

// BenchmarkRewriteRequest measures the header work done on every proxied
// request: hop-by-hop and identity stripping plus forwarding headers.
func BenchmarkRewriteRequest(b *testing.B) {
	p, err := New(Config{Upstream: Upstream{URL: "http://127.0.0.1:3000"}, IdentityHeaders: []string{"Remote-User", "X-Forwarded-User"}})
	if err != nil {
		b.Fatal(err)
	}
	app := fiber.New()
	var fctx fasthttp.RequestCtx
	fctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5555}, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		fctx.Request.Reset()
		if err := fctx.Request.Read(bufio.NewReader(strings.NewReader(browserRequest))); err != nil {
			b.Fatal(err)
		}
		c := app.AcquireCtx(&fctx)
		x := p.acquire()
		b.StartTimer()
		if err := p.rewriteRequest(c, x, false); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		x.release()
		app.ReleaseCtx(c)
		b.StartTimer()
	}
}

func BenchmarkFilterResponse(b *testing.B) {
	var resp fasthttp.Response
	raw := "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 5\r\nCache-Control: no-cache\r\n" +
		"Set-Cookie: a=1; Path=/\r\nX-Frame-Options: DENY\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\nhello"
	if err := resp.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatal(err)
	}
	var out fasthttp.ResponseHeader
	x := &exchange{}
	b.ReportAllocs()
	for range b.N {
		resp.Header.CopyTo(&out)
		filterResponseHeaders(&out, x, false)
	}
}

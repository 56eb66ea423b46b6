package https_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/gateway/edge/https"
)

// plainServer serves h with PlainServer on 127.0.0.1.
func plainServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := https.PlainServer(h, slog.New(slog.DiscardHandler))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// raw sends a request exactly as written and reads the answer.
func raw(t *testing.T, addr, request string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestRedirectHandler(t *testing.T) {
	var challenged []string
	h, err := https.RedirectHandler("https://arbor.example:8443", func(w http.ResponseWriter, r *http.Request) bool {
		challenged = append(challenged, r.URL.Path)
		if r.URL.Path != https.ACMEChallengePrefix+"known-token" {
			return false
		}
		io.WriteString(w, "known-token.thumbprint")
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := plainServer(t, h)
	cases := []struct {
		name, request string
		status        int
		location      string
		body          string
	}{
		{"path and query kept, Host ignored",
			"GET /a/b%20c?x=1&y=%2F HTTP/1.1\r\nHost: evil.example\r\n\r\n",
			http.StatusPermanentRedirect, "https://arbor.example:8443/a/b%20c?x=1&y=%2F", ""},
		{"POST keeps its method (308)",
			"POST /form HTTP/1.1\r\nHost: arbor.example\r\nContent-Length: 3\r\n\r\na=b",
			http.StatusPermanentRedirect, "https://arbor.example:8443/form", ""},
		{"absolute-form target: only its path and query",
			"GET http://evil.example/p?q=1 HTTP/1.1\r\nHost: evil.example\r\n\r\n",
			http.StatusPermanentRedirect, "https://arbor.example:8443/p?q=1", ""},
		{"a path that looks like a host stays a path",
			"GET //evil.example/x HTTP/1.1\r\nHost: evil.example\r\n\r\n",
			http.StatusPermanentRedirect, "https://arbor.example:8443//evil.example/x", ""},
		{"OPTIONS * is net/http's own answer, no redirect",
			"OPTIONS * HTTP/1.1\r\nHost: evil.example\r\n\r\n",
			http.StatusOK, "", ""},
		{"ACME challenge answered",
			"GET /.well-known/acme-challenge/known-token HTTP/1.1\r\nHost: arbor.example\r\n\r\n",
			http.StatusOK, "", "known-token.thumbprint"},
		{"ACME challenge not known: redirected",
			"GET /.well-known/acme-challenge/other HTTP/1.1\r\nHost: arbor.example\r\n\r\n",
			http.StatusPermanentRedirect, "https://arbor.example:8443/.well-known/acme-challenge/other", ""},
		{"headers over 8 KiB refused",
			"GET / HTTP/1.1\r\nHost: arbor.example\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n",
			http.StatusRequestHeaderFieldsTooLarge, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, body := raw(t, addr, c.request)
			if res.StatusCode != c.status || res.Header.Get("Location") != c.location {
				t.Fatalf("%d Location %q; want %d %q\n%s", res.StatusCode, res.Header.Get("Location"), c.status, c.location, body)
			}
			if c.body != "" && body != c.body {
				t.Fatalf("body %q; want %q", body, c.body)
			}
			if res.Header.Get("Strict-Transport-Security") != "" {
				t.Fatal("HSTS sent over plain http")
			}
		})
	}
	if strings.Join(challenged, ",") != https.ACMEChallengePrefix+"known-token,"+https.ACMEChallengePrefix+"other" {
		t.Fatalf("challenge asked for %q; want only the two challenge paths", challenged)
	}
}

func TestRedirectHandlerWithoutACME(t *testing.T) {
	h, err := https.RedirectHandler("https://arbor.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := raw(t, plainServer(t, h), "GET /.well-known/acme-challenge/x HTTP/1.1\r\nHost: a\r\n\r\n")
	if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != "https://arbor.example/.well-known/acme-challenge/x" {
		t.Fatalf("%d %q", res.StatusCode, res.Header.Get("Location"))
	}
	for _, bad := range []string{"http://arbor.example", "arbor.example", "https://"} {
		if _, err := https.RedirectHandler(bad, nil); err == nil || !strings.Contains(err.Error(), "https://") {
			t.Errorf("RedirectHandler(%q) = %v; want an error asking for https://", bad, err)
		}
	}
}

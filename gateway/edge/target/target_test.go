package target

import (
	"bufio"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// nodeReading resolves a request target against a base URL the way Node's
// new URL(req.url, base) does (RFC 3986 reference resolution): "//x/y" is a
// network-path reference with host "x".
func nodeReading(t *testing.T, target string) (host, path string) {
	t.Helper()
	base, _ := url.Parse("http://app.internal")
	ref, err := url.Parse(target)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", target, err)
	}
	u := base.ResolveReference(ref)
	return u.Host, u.EscapedPath()
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		target   string
		wantPath string // the path Arbor reads and forwards
		wantURI  string // the origin-form target the upstream receives
		bad      bool
		// refused: fasthttp already refuses to read the request.
		refused bool
	}{
		{target: "/static/admin", wantPath: "/static/admin", wantURI: "/static/admin"},
		{target: "//static/admin", wantPath: "/static/admin", wantURI: "/static/admin"},
		{target: "///static/admin", wantPath: "/static/admin", wantURI: "/static/admin"},
		{target: "//static//admin/", wantPath: "/static/admin/", wantURI: "/static/admin/"},
		{target: "//static/admin?next=http://x//y", wantPath: "/static/admin", wantURI: "/static/admin?next=http://x//y"},
		{target: "//evil.example/admin", wantPath: "/evil.example/admin", wantURI: "/evil.example/admin"},
		{target: "/a?b=//c", wantPath: "/a", wantURI: "/a?b=//c"},
		{target: "//", wantPath: "/", wantURI: "/"},
		{target: "http://host//static/admin", wantPath: "/static/admin", wantURI: "/static/admin"},
		{target: "HTTP://host///static//admin?q=//", wantPath: "/static/admin", wantURI: "/static/admin?q=//"},
		{target: "https://host//evil.example/admin", wantPath: "/evil.example/admin", wantURI: "/evil.example/admin"},
		{target: "*", wantPath: "*"},
		{target: "static/admin", refused: true},
		{target: "x://static//admin", bad: true},
		{target: "ftp://host//admin", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			var req fasthttp.Request
			method := "GET "
			if tc.target == "*" {
				method = "OPTIONS "
			}
			raw := method + tc.target + " HTTP/1.1\r\nHost: arbor.example\r\n\r\n"
			if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil || tc.refused {
				if err == nil || !tc.refused {
					t.Fatalf("reading the request: %v (refused: %v)", err, tc.refused)
				}
				return
			}
			err := Normalize(&req)
			if tc.bad {
				if !errors.Is(err, ErrBadTarget) {
					t.Fatalf("Normalize = %v, want ErrBadTarget", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if tc.target == "*" {
				return
			}
			if got := string(req.URI().PathOriginal()); got != tc.wantPath {
				t.Errorf("path = %q, want %q", got, tc.wantPath)
			}
			// What the proxy sends: the URI's origin-form request target.
			req.URI().DisablePathNormalizing = true
			got := string(req.URI().RequestURI())
			if got != tc.wantURI {
				t.Errorf("forwarded target = %q, want %q", got, tc.wantURI)
			}
			if host, path := nodeReading(t, got); host != "app.internal" || path != tc.wantPath {
				t.Errorf("a URL-parsing upstream reads host %q path %q, want app.internal %q", host, path, tc.wantPath)
			}
		})
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/", "//a/b", "///a", "/a//b?c=//d", "http://h//a", "https://h/a//b#x", "//a?x=http://b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if strings.ContainsAny(target, " \r\n\t\x00") || target == "" {
			return
		}
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n"))); err != nil {
			return
		}
		if Normalize(&req) != nil {
			return
		}
		if p := req.URI().PathOriginal(); strings.Contains(string(p), "//") {
			t.Fatalf("%q: path %q still has //", target, p)
		}
	})
}

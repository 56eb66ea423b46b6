package proxy

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestHasDotSegment(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/", false},
		{"/a/b/c", false},
		{"/file.tar.gz", false},
		{"/.well-known/openid-configuration", false},
		{"/a/...", false},
		{"/a/..b", false},
		{"/a%2Fb", false},
		{"/%41", false},
		{"/.", true},
		{"/..", true},
		{"/a/./b", true},
		{"/a/../b", true},
		{"/a/..", true},
		{"/a/%2e%2e/b", true},
		{"/a/%2E./b", true},
		{"/a/.%2e", true},
		{"/a%2f..%2fb", true},
		{"/a%2F..", true},
		{"/a\\..\\b", true},
		{"/a%5c..%5cb", true},
		{"/a/%2", false},
		{"/a/%zz", false},
	}
	for _, tc := range tests {
		if got := hasDotSegment([]byte(tc.path)); got != tc.want {
			t.Errorf("hasDotSegment(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	u := "http://127.0.0.1:1"
	p, err := New(Config{Upstream: Upstream{URL: u}, IdentityHeaders: []string{"Remote-User", "x_email"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tests := []struct {
		name string
		want hdrAction
	}{
		{"Accept", keep},
		{"Cookie", keep},
		{"X-Arborist", keep},
		{"X-Request-Id", keep},
		{"Connection", drop},
		{"KEEP-ALIVE", drop},
		{"Te", drop},
		{"Trailer", drop},
		{"Transfer-Encoding", drop},
		{"Upgrade", drop},
		{"Expect", drop},
		{"Proxy-Authorization", drop},
		{"proxy_connection", drop},
		{"X-Arbor-User-Id", drop},
		{"x_arbor_user_id", drop},
		{"X_ARBOR-EMAIL", drop},
		{"Remote-User", drop},
		{"REMOTE_USER", drop},
		{"X-Email", drop},
		{"x_email", drop},
		{"X-Forwarded-For", fwdFor},
		{"x-forwarded-proto", fwdProto},
		{"X-Forwarded-Host", fwdHost},
		{"Forwarded", fwdForwarded},
		{"X-Real-Ip", fwdRealIP},
		{"X-Forwarded-Prefix", fwdOther},
		{"X_Forwarded_For", drop},
		{"X-Forwarded_Host", drop},
		{"X_Real_IP", drop},
		// The default rewrite headers.
		{"X-Original-URL", drop},
		{"x_original_url", drop},
		{"X-Rewrite-Url", drop},
		{"X-ORIGINAL-URI", drop},
		{"X-Original-Path", drop},
		{"x-envoy-original-path", drop},
		{"X-Original-Urls", keep},
		{"Sec-Fetch-Mode", keep},
		{"Accept-Encoding", keep},
	}
	for _, tc := range tests {
		if got := p.classify([]byte(tc.name)); got != tc.want {
			t.Errorf("classify(%q) = %d, want %d", tc.name, got, tc.want)
		}
	}

	// An explicit list replaces the default; an empty one strips none.
	for _, tc := range []struct {
		list     []string
		original hdrAction
		custom   hdrAction
	}{
		{[]string{"X-Custom-Path"}, keep, drop},
		{[]string{}, keep, keep},
	} {
		q, err := New(Config{Upstream: Upstream{URL: u, RewriteHeaders: tc.list}})
		if err != nil {
			t.Fatal(err)
		}
		if got := q.classify([]byte("X-Original-URL")); got != tc.original {
			t.Errorf("RewriteHeaders %q: classify(X-Original-URL) = %d, want %d", tc.list, got, tc.original)
		}
		if got := q.classify([]byte("x-custom-path")); got != tc.custom {
			t.Errorf("RewriteHeaders %q: classify(x-custom-path) = %d, want %d", tc.list, got, tc.custom)
		}
		q.Close()
	}
}

func TestTokenList(t *testing.T) {
	var tl tokenList
	tl.parse([]byte(" keep-alive, X-Foo ,close,x_bar, Upgrade"))
	for name, want := range map[string]bool{"X-Foo": true, "x-foo": true, "X-Bar": true, "Keep-Alive": false, "Upgrade": false, "X-Baz": false} {
		if got := tl.has([]byte(name)); got != want {
			t.Errorf("has(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestIsWebSocketUpgrade(t *testing.T) {
	tests := []struct {
		method, conn, upgrade string
		want                  bool
	}{
		{"GET", "Upgrade", "websocket", true},
		{"GET", "keep-alive, Upgrade", "WebSocket", true},
		{"GET", "keep-alive", "websocket", false},
		{"GET", "Upgrade", "h2c", false},
		{"POST", "Upgrade", "websocket", false},
	}
	for _, tc := range tests {
		var h fasthttp.RequestHeader
		h.SetMethod(tc.method)
		h.Set("Connection", tc.conn)
		h.Set("Upgrade", tc.upgrade)
		if got := isWebSocketUpgrade(&h); got != tc.want {
			t.Errorf("%s Connection: %s Upgrade: %s = %v, want %v", tc.method, tc.conn, tc.upgrade, got, tc.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, raw := range []string{"ftp://x", "http://", "http://u:p@x", "http://x/?q=1", "http://x:port"} {
		_, err := New(Config{Upstream: Upstream{URL: raw}})
		if err == nil {
			t.Errorf("New accepted Upstream %q", raw)
		} else if strings.Contains(err.Error(), "u:p") {
			t.Errorf("New's error repeats the credentials: %v", err)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Errorf("New accepted an empty Upstream")
	}
}

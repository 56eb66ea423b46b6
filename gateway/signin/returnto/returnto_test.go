package returnto

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// openRedirects are classic open-redirect payloads; every one must be
// refused.
var openRedirects = []string{
	// Scheme-relative and absolute URLs.
	"//evil.com",
	"///evil.com",
	"////evil.com",
	"//evil.com/",
	"//evil.com@good",
	"//good@evil.com",
	"//evil.com%2f@good",
	"https://evil.com",
	"http://evil.com",
	"HTTPS://evil.com",
	"https:evil.com",
	"https:/evil.com",
	"ftp://evil.com",
	"evil.com",
	"evil.com/path",
	"@evil.com",
	"javascript:alert(1)",
	"JavaScript:alert(1)",
	"javascript://%0aalert(1)",
	"data:text/html,<script>alert(1)</script>",
	"vbscript:msgbox(1)",
	// Backslashes, which browsers read as "/".
	`/\evil.com`,
	`\/\/evil.com`,
	`\\evil.com`,
	`\evil.com`,
	`/\/evil.com`,
	`/a\..\..\\evil.com`,
	// Encoded slashes and backslashes.
	"/%2f%2fevil.com",
	"/%2F%2Fevil.com",
	"/%2fevil.com",
	"/%5cevil.com",
	"/%5C%5Cevil.com",
	"/%252f%252fevil.com",
	"/%25252f%25252fevil.com",
	"/%255cevil.com",
	"%2f%2fevil.com",
	"%2F%2Fevil.com",
	"%5c%5cevil.com",
	// Whitespace and control characters, raw and encoded.
	"/%09/evil.com",
	"/%0a/evil.com",
	"/%0d/evil.com",
	"/%20/evil.com",
	"/%00/evil.com",
	"/%2509/evil.com",
	"/\t/evil.com",
	"/\n/evil.com",
	"/\r/evil.com",
	" //evil.com",
	"\t//evil.com",
	"\x00//evil.com",
	"/ /evil.com",
	"//\tevil.com",
	"/\x0b/evil.com",
	"/a\r\nSet-Cookie:x=1",
	"/a%0d%0aLocation:%20https://evil.com",
	"/\u3000/evil.com",
	"/\u00a0/evil.com",
	// Dot segments, raw and encoded.
	"/.//evil.com",
	"/..//evil.com",
	"/./..//evil.com",
	"/%2e//evil.com",
	"/%2e%2e//evil.com",
	"/%2e%2e%2f%2fevil.com",
	"/a/../..//evil.com",
	"/a/%2e%2e/%2e%2e/evil.com",
	"/.%2e/evil.com",
	"/%252e%252e/evil.com",
	// Other shapes.
	"",
	"?//evil.com",
	"#//evil.com",
	"/%",
	"/%zz",
	"/%2",
	"/a%2F%2F%2Fevil.com",
	"/" + strings.Repeat("a", MaxLength),
	"/%2525252525252f",
	"/ａ/evil.com",
}

func TestValidateRefusesOpenRedirects(t *testing.T) {
	if len(openRedirects) < 50 {
		t.Fatalf("only %d payloads, want at least 50", len(openRedirects))
	}
	for _, raw := range openRedirects {
		if clean, err := Validate(raw); err == nil {
			t.Errorf("Validate(%q) = %q, want refused", raw, clean)
		}
	}
}

func TestValidateReasons(t *testing.T) {
	tests := []struct {
		raw  string
		want error
	}{
		{"", ErrEmpty},
		{"/" + strings.Repeat("a", MaxLength), ErrTooLong},
		{"//evil.com", ErrNotRelative},
		{"https://evil.com", ErrNotRelative},
		{"dashboard", ErrNotRelative},
		{`/\evil.com`, ErrForbiddenChar},
		{"/\t/evil.com", ErrForbiddenChar},
		{"/é", ErrForbiddenChar},
		{"/%zz", ErrBadEscape},
		{"/a?q=100%", ErrBadEscape},
		{"/%2f%2fevil.com", ErrEncodedSeparator},
		{"/%5cevil.com", ErrEncodedSeparator},
		{"/%09/evil.com", ErrEncodedSeparator},
		{"/%20/evil.com", ErrEncodedSeparator},
		{"/%252f%252fevil.com", ErrEncodedSeparator},
		{"/a%00b", ErrEncodedSeparator},
		{"/.//evil.com", ErrDotSegment},
		{"/a/../b", ErrDotSegment},
		{"/a/%2E%2e/b", ErrDotSegment},
		{"/a/%252e%252e/b", ErrDotSegment},
		{"/a//b", ErrEmptySegment},
		{"/a%2f%2fb", ErrEmptySegment},
		{"/%2525252525252f", ErrTooDeeplyEncoded},
	}
	for _, tt := range tests {
		_, err := Validate(tt.raw)
		if !errors.Is(err, tt.want) {
			t.Errorf("Validate(%q) error = %v, want %v", tt.raw, err, tt.want)
		}
	}
}

func TestValidateAcceptsSameOriginPaths(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"/", "/"},
		{"/dashboard", "/dashboard"},
		{"/dashboard/", "/dashboard/"},
		{"/dashboard?tab=1", "/dashboard?tab=1"},
		{"/a/b%20c", "/a/b%20c"},
		{"/vines/123#frag", "/vines/123"},
		{"/#frag", "/"},
		{"/a?", "/a"},
		{"/search?q=a%2Fb&next=%2F%2Fevil.com", "/search?q=a%2Fb&next=%2F%2Fevil.com"},
		{"/search?next=//evil.com", "/search?next=//evil.com"},
		{"/files/a%2Fb", "/files/a%2Fb"},
		{"/a:b", "/a:b"},
		{"/javascript:alert(1)", "/javascript:alert(1)"},
		{"/a.b/.well-known/x", "/a.b/.well-known/x"},
		{"/...", "/..."},
		{"/100%25", "/100%25"},
		{"/" + strings.Repeat("a", MaxLength-1), "/" + strings.Repeat("a", MaxLength-1)},
	}
	for _, tt := range tests {
		got, err := Validate(tt.raw)
		if err != nil || got != tt.want {
			t.Errorf("Validate(%q) = %q, %v; want %q, nil", tt.raw, got, err, tt.want)
		}
		checkSameOrigin(t, tt.raw, got)
	}
}

var base = mustParse("https://app.example/x/")

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// checkSameOrigin asserts the invariant of every accepted reference: it
// resolves to the same origin and reads as a bare path.
func checkSameOrigin(t *testing.T, raw, clean string) {
	t.Helper()
	ref, err := url.Parse(clean)
	if err != nil {
		t.Fatalf("Validate(%q) accepted %q, which url.Parse refuses: %v", raw, clean, err)
	}
	if ref.Scheme != "" || ref.Host != "" || ref.User != nil || ref.Opaque != "" {
		t.Fatalf("Validate(%q) accepted %q, which parses with scheme %q host %q", raw, clean, ref.Scheme, ref.Host)
	}
	got := base.ResolveReference(ref)
	if got.Scheme != "https" || got.Host != "app.example" || got.User != nil {
		t.Fatalf("Validate(%q) accepted %q, which resolves to %s", raw, clean, got)
	}
	// A second round through the browser: the resolved URL, serialized and
	// parsed again, must still be on the same origin.
	again, err := url.Parse(got.String())
	if err != nil || again.Scheme != "https" || again.Host != "app.example" {
		t.Fatalf("Validate(%q) accepted %q, which reparses to %v (%v)", raw, clean, again, err)
	}
	if strings.ContainsAny(clean, "\\#\t\r\n ") {
		t.Fatalf("Validate(%q) accepted %q with a forbidden character", raw, clean)
	}
	// Validation is idempotent.
	if c2, err := Validate(clean); err != nil || c2 != clean {
		t.Fatalf("Validate(%q) = %q, %v; want it to accept its own output", clean, c2, err)
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range openRedirects {
		f.Add(s)
	}
	f.Add("/")
	f.Add("/dashboard?tab=1")
	f.Add("/a/b%20c")
	f.Add("/vines/123#frag")
	f.Fuzz(func(t *testing.T, raw string) {
		clean, err := Validate(raw)
		if err != nil {
			if clean != "" {
				t.Fatalf("Validate(%q) returned %q with error %v", raw, clean, err)
			}
			return
		}
		checkSameOrigin(t, raw, clean)
	})
}

package access

import (
	"errors"
	"strings"
	"testing"
)

// rulesA has a public default, so a reading that reaches a stricter rule
// is what keeps a request from being public.
var rulesA = []Rule{
	{Prefix: "/admin", Class: Session},
	{Prefix: "/api", Class: API},
	{Prefix: "/api/public/", Class: Public},
	{Prefix: "/api/session/", Class: Session},
	{Prefix: "/static/", Class: Public},
	{Prefix: "/account/", Class: Session},
	{Prefix: "/Reports", Class: Session},
	{Prefix: "/keys", Class: Session},
	{Prefix: "/café", Class: API},
}

// rulesB has a session default and public holes in it.
var rulesB = []Rule{
	{Prefix: "/static/", Class: Public},
	{Prefix: "/public", Class: Public},
	{Prefix: "/healthz", Class: Public},
	{Prefix: "/api", Class: API},
}

func mustNew(tb testing.TB, def Class, rules []Rule) *Policy {
	tb.Helper()
	p, err := New(def, rules)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// bad marks a path Classify must refuse.
const bad Class = 0

func TestClassify(t *testing.T) {
	a := mustNew(t, Public, rulesA)
	b := mustNew(t, Session, rulesB)
	long := strings.Repeat("a", 5000)
	tests := []struct {
		pol  *Policy
		raw  string
		want Class
	}{
		// Prefix semantics.
		{a, "/", Public},
		{a, "/admin", Session},
		{a, "/admin/", Session},
		{a, "/admin/users", Session},
		{a, "/adminx", Public},
		{a, "/api", API},
		{a, "/api/", API},
		{a, "/api/v1/users", API},
		{a, "/apix", Public},
		{a, "/api/public/x", Public},
		{a, "/api/public/", Public},
		{a, "/api/public", API}, // "/api/public/" needs the slash
		{b, "/static", Session}, // likewise "/static/"
		{b, "/static/", Public},
		{b, "/static/app.js", Public},
		{b, "/publicx", Session},
		{b, "/elsewhere", Session},
		{b, "/", Session},
		// Query strings and fragments.
		{a, "/public?x=/admin", Public},
		{a, "/public?/../admin", Public},
		{a, "/public#/admin", Public},
		{a, "/admin?x=/public", Session},
		{a, "/admin#x", Session},
		{b, "/public?", Public},
		{b, "/healthz?/api", Public},
		{a, "?/admin", bad},
		{a, "#/admin", bad},
		// Percent-decoding.
		{a, "/%61dmin", Session},
		{a, "/%41dmin", Session}, // "/Admin", caught by the case check
		{a, "/a%64min/x", Session},
		{a, "/%61%70%69", API},
		{a, "/admin%20", Public},
		{a, "/100%25", Public},
		{a, "/%zz", bad},
		{a, "/%", bad},
		{a, "/admin%", bad},
		{a, "/%2", bad},
		{a, "/%g1", bad},
		// Dot segments, raw and encoded.
		{a, "/.", bad},
		{a, "/..", bad},
		{a, "/./admin", bad},
		{a, "/public/../admin", bad},
		{a, "/admin/.", bad},
		{a, "/public/.#x", bad},
		{a, "/public/..?x", bad},
		{a, "/public/..#", bad},
		{a, "/public/.?", bad},
		{a, "/public/.a?x", Public},
		{a, "/%2e%2e/admin", bad},
		{a, "/%2E%2e/admin", bad},
		{a, "/public/%2e%2e/admin", bad},
		{a, "/public/..%2fadmin", bad},
		{a, "/public/%2e%2e%2fadmin", bad},
		{a, "/public/.%2e/admin", bad},
		{a, "/...", Public},
		{a, "/..a", Public},
		{a, "/.well-known/x", Public},
		// Repeated slashes.
		{a, "//admin", Session},
		{a, "///admin//users", Session},
		{a, "/public//admin", Public},
		{a, "/api//public/x", Public},
		{b, "//static/x", Public},
		// Encoded slashes: both readings count.
		{a, "/admin%2fx", Session},        // decoded "/admin/x"
		{a, "/admin%2Fx", Session},        // same
		{a, "/%2Fadmin", Session},         // decoded "//admin" is "/admin"
		{b, "/static%2Fapp.js", Session},  // kept: one segment, the default
		{b, "/static/a%2Fb", Public},      // both readings under "/static/"
		{a, "/api/session%2Fx", Session},  // decoded Session, kept API: decoded wins
		{b, "/%2Fapi", API},               // decoded API, kept Session: decoded wins
		{a, "/api%2Fpublic/x", Public},    // decoded public, kept no rule: default
		{a, "/static%2F..%2Fadmin", bad},  // decoded has a dot segment
		{a, "%2Fadmin", bad},              // does not start with "/"
		{a, "/api/public%2F..%2F..", bad}, // likewise
		{b, "/healthz%2F..%2Fadmin", bad}, // likewise
		{b, "/public%2fx", Session},       // kept: segment "public%2Fx"
		{a, "/account%2F", Session},       // decoded "/account/"
		{a, "/static%2F%2F%2Fx", Public},  // kept: no rule, default public
		{b, "/static%2F%2F%2Fx", Session}, // kept: no rule, default session
		{a, "/admin" + strings.Repeat("%2F", 300) + "x", Session},
		// Backslashes.
		{a, `/public\..\admin`, bad},
		{a, `/a\b`, bad},
		{a, "/a%5cb", bad},
		{a, "/public%5C..%5Cadmin", bad},
		// Control characters and NUL.
		{a, "/a\x00b", bad},
		{a, "/a%00b", bad},
		{a, "/a\nb", bad},
		{a, "/a%0d%0ab", bad},
		{a, "/a\tb", bad},
		{a, "/a%09", bad},
		{a, "/a\x7f", bad},
		{a, "/a%7F", bad},
		{a, "/a\x1fb", bad},
		// Path parameters, Tomcat style.
		{a, "/admin;/x", Session}, // Tomcat reads "/admin/x"
		{a, "/admin;jsessionid=1", Session},
		{a, "/adm;x/in", Public}, // "/adm/in", not "/admin"
		{a, "/api;v=1/users", API},
		{a, "/public;x", Public},
		{a, "/admin%3bx", Session},    // decoded ";" counts too
		{a, "/public/..;/admin", bad}, // Tomcat reads ".." here
		{a, "/public/..;x=1/admin", bad},
		{a, "/public/.;/admin", bad},
		{a, "/..;/admin", bad},
		{a, "/public/%2e%2e;/admin", bad},
		{a, "/public/..%3b/admin", bad},
		{a, "/public/;/admin", Public},   // "/public//admin" is "/public/admin"
		{b, "/static;x/app.js", Session}, // plain reading: segment "static;x"
		// Case.
		{a, "/ADMIN", Session},
		{a, "/Admin/users", Session},
		{a, "/aDmIn", Session},
		{a, "/API/v1", API},
		{a, "/ADMINX", Public},
		{a, "/Reports", Session},
		{a, "/reports/2024", Session},
		{a, "/REPORTS", Session},
		{b, "/Static/app.js", Session}, // case only ever makes a path stricter
		{b, "/PUBLIC", Session},
		{a, "/ADMIN;x/y", Session},
		// Unicode.
		{a, "/café", API},
		{a, "/caf%C3%A9/x", API},
		{a, "/CAFÉ", API},
		{a, "/cafe", Public},
		{a, "/\u212Aeys", Session}, // KELVIN SIGN folds to "k"
		{a, "/%E2%84%AAeys", Session},
		{a, "/ädmin", Public},
		{a, "/admin\u00a0", Public},
		{a, "/\xff\xfe", Public},
		{a, "/%ff", Public},
		// Double encoding.
		{a, "/%2561dmin", Session},
		{a, "/%252561dmin", Session},
		{a, "/%25252561dmin", bad}, // still changing after three rounds
		{a, "/%252e%252e/admin", bad},
		{a, "/public%252F..%252Fadmin", bad},
		{a, "/%2500", bad},
		{a, "/100%2525", Public},
		{a, "/a%25zz", Public},
		// Very long paths.
		{a, "/static/" + long, Public},
		{a, "/admin/" + long, Session},
		{a, strings.Repeat("/", 3000) + "admin", Session},
		{a, "/" + strings.Repeat("%61", 3000), Public},
		{a, "/admin/" + strings.Repeat("%61", 3000), Session},
		{a, "/" + strings.Repeat("x/", 3000) + "..", bad},
		// Not a path.
		{a, "", bad},
		{a, "admin", bad},
		{a, "*", bad},
		{a, "http://example.com/admin", bad},
		{a, " /admin", bad},
	}
	for _, tt := range tests {
		got, err := tt.pol.Classify([]byte(tt.raw))
		if tt.want == bad {
			if err != ErrBadPath || got != 0 {
				t.Errorf("Classify(%.60q) = %v, %v; want 0, ErrBadPath", tt.raw, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Classify(%.60q) = %v, %v; want %v", tt.raw, got, err, tt.want)
		}
	}
}

func TestClassifyRootRule(t *testing.T) {
	p := mustNew(t, Public, []Rule{{Prefix: "/", Class: API}, {Prefix: "/login", Class: Public}})
	for raw, want := range map[string]Class{
		"/":         API,
		"/x":        API,
		"/login":    Public,
		"/login/cb": Public,
		"/loginx":   API,
		"/LOGIN":    API, // "/" matches too; only "/login" is public
		"/%6cogin":  Public,
	} {
		if got, err := p.Classify([]byte(raw)); err != nil || got != want {
			t.Errorf("Classify(%q) = %v, %v; want %v", raw, got, err, want)
		}
	}
}

func TestClassifyNoRules(t *testing.T) {
	for _, def := range []Class{Public, Session, API} {
		p := mustNew(t, def, nil)
		if got, err := p.Classify([]byte("/x%2Fy;z")); err != nil || got != def {
			t.Errorf("def %v: got %v, %v", def, got, err)
		}
	}
}

func TestClassifyDoesNotModifyInput(t *testing.T) {
	p := mustNew(t, Public, rulesA)
	raw := []byte("//ADMIN%2f%41;x/..%zz")
	orig := string(raw)
	p.Classify(raw)
	if string(raw) != orig {
		t.Fatalf("Classify changed its input to %q", raw)
	}
}

func TestClassString(t *testing.T) {
	for c, want := range map[Class]string{Public: "public", Session: "session", API: "api", 0: "access.Class(0)", 9: "access.Class(9)"} {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", uint8(c), got, want)
		}
	}
}

func TestParseClass(t *testing.T) {
	for s, want := range map[string]Class{"public": Public, "PUBLIC": Public, "Session": Session, "api": API, "API": API} {
		if got, err := ParseClass(s); err != nil || got != want {
			t.Errorf("ParseClass(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "private", " api", "api ", "apis", "token"} {
		_, err := ParseClass(s)
		if err == nil {
			t.Errorf("ParseClass(%q) succeeded", s)
			continue
		}
		for _, name := range []string{`"public"`, `"session"`, `"api"`} {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("ParseClass(%q) error %q does not name %s", s, err, name)
			}
		}
	}
	for c := Public; c <= API; c++ {
		if got, err := ParseClass(c.String()); err != nil || got != c {
			t.Errorf("ParseClass(%v.String()) = %v, %v", c, got, err)
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		def   Class
		rules []Rule
		want  []string // substrings of the error
	}{
		{0, nil, []string{"default class", "access.Public"}},
		{4, nil, []string{"default class"}},
		{Public, []Rule{{"", Session}}, []string{"rule 0", `write "/"`}},
		{Public, []Rule{{"/a", Session}, {"api", API}}, []string{"rule 1", `"/api"`}},
		{Public, []Rule{{"/a//b", Session}}, []string{`"//"`, `"/a/b"`}},
		{Public, []Rule{{"//a", Session}}, []string{`"/a"`}},
		{Public, []Rule{{"/a/../b", Session}}, []string{"dot", `resolved path, "/b"`}},
		{Public, []Rule{{"/a/./b", Session}}, []string{"dot"}},
		{Public, []Rule{{"/..", Session}}, []string{"dot"}},
		{Public, []Rule{{"/a/..;x/", Session}}, []string{"dot"}},
		{Public, []Rule{{"/a%20b", Session}}, []string{`"%"`, "decoded"}},
		{Public, []Rule{{"/a%2Fb", Session}}, []string{`"%"`}},
		{Public, []Rule{{"/a?x=1", Session}}, []string{`'?'`, `write "/a"`}},
		{Public, []Rule{{"/a#x", Session}}, []string{`'#'`, `write "/a"`}},
		{Public, []Rule{{`/a\b`, Session}}, []string{`"\"`}},
		{Public, []Rule{{"/a\x00", Session}}, []string{"control"}},
		{Public, []Rule{{"/a\nb", Session}}, []string{"control"}},
		{Public, []Rule{{"/a\x7f", Session}}, []string{"control"}},
		{Public, []Rule{{"/" + strings.Repeat("a", MaxPrefixLength), Session}}, []string{"1025 bytes"}},
		{Public, []Rule{{"/\xff", Session}}, []string{"UTF-8"}},
		{Public, []Rule{{"/a", 0}}, []string{"rule 0", "invalid class 0", "access.Session"}},
		{Public, []Rule{{"/a", 4}}, []string{"invalid class 4"}},
		{Public, []Rule{{"/a", Session}, {"/b", API}, {"/a", Session}}, []string{"rules 0 and 2", `"/a"`, "keep one"}},
		{Public, []Rule{{"/Admin", Session}, {"/admin", Public}}, []string{"rules 0", "differ only in case"}},
		{Public, []Rule{{"/café", Session}, {"/CAFÉ", API}}, []string{"differ only in case"}},
	}
	for _, tt := range tests {
		p, err := New(tt.def, tt.rules)
		if err == nil {
			t.Errorf("New(%v, %q) = %v, want error", tt.def, tt.rules, p)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("New(%v, %q) error %q does not contain %q", tt.def, tt.rules, err, w)
			}
		}
		if errors.Is(err, ErrBadPath) {
			t.Errorf("New error %q wraps ErrBadPath", err)
		}
	}
}

func TestNewAccepts(t *testing.T) {
	rules := []Rule{
		{"/", Session},
		{"/a", Public},
		{"/a/", Session}, // distinct from "/a"
		{"/Admin", Session},
		{"/admin", Session}, // same class: harmless
		{"/a b;c=d/é", API},
		{"/.well-known/", Public},
		{"/...", Public},
		{"/" + strings.Repeat("a", MaxPrefixLength-1), API},
	}
	if _, err := New(Public, rules); err != nil {
		t.Fatal(err)
	}
}

func TestNewCopiesRules(t *testing.T) {
	rules := []Rule{{"/admin", Session}}
	p := mustNew(t, Public, rules)
	rules[0] = Rule{"/other", API}
	if got, _ := p.Classify([]byte("/admin")); got != Session {
		t.Fatalf("Classify after changing the rules slice = %v", got)
	}
}

func TestLongestPrefixWinsWhateverTheOrder(t *testing.T) {
	rules := []Rule{
		{"/a", Session},
		{"/a/b/", Public},
		{"/a/b/c", API},
		{"/a/b", Session},
	}
	want := map[string]Class{"/a": Session, "/a/x": Session, "/a/b": Session, "/a/b/": Public, "/a/b/x": Public, "/a/b/c/d": API, "/a/b/cd": Public}
	for i := range rules {
		// Rotate the rules.
		r := append(append([]Rule(nil), rules[i:]...), rules[:i]...)
		p := mustNew(t, Public, r)
		for raw, w := range want {
			if got, err := p.Classify([]byte(raw)); err != nil || got != w {
				t.Errorf("rotation %d: Classify(%q) = %v, %v; want %v", i, raw, got, err, w)
			}
		}
	}
}

func TestClassifyAllocs(t *testing.T) {
	p := mustNew(t, Session, benchRules)
	for _, raw := range []string{
		"/static/js/app.0123456789.js",
		"/ADMIN/Users/List",
		"/api/v1/a%2Fb/c%20d",
		"//static//x",
		"/public/a;jsessionid=x/b",
		"/%2561dmin",
	} {
		b := []byte(raw)
		if n := testing.AllocsPerRun(100, func() { p.Classify(b) }); n != 0 {
			t.Errorf("Classify(%q): %v allocations, want 0", raw, n)
		}
	}
}

var benchRules = []Rule{
	{"/static/", Public},
	{"/assets/", Public},
	{"/favicon.ico", Public},
	{"/robots.txt", Public},
	{"/healthz", Public},
	{"/public", Public},
	{"/api", API},
	{"/api/public/", Public},
	{"/admin", Session},
	{"/login", Public},
}

func BenchmarkClassify(b *testing.B) {
	p := mustNew(b, Session, benchRules)
	for _, bc := range []struct{ name, raw string }{
		{"plain", "/static/js/app.0123456789ab.js"}, // 30 bytes
		{"default", "/vineyards/123/harvests/2024/x"},
		{"upper", "/Static/js/App.0123456789ab.js"},
		{"percent", "/static/js/app%20012345%2F.js"},
		{"dslash", "//static//js/app.0123456789.js"},
		{"params", "/static/js;v=1/app.0123456.js"},
		{"long", "/static/" + strings.Repeat("abcdefgh/", 100)},
	} {
		raw := []byte(bc.raw)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Classify(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

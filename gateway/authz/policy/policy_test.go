package policy

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/service/membership"
)

func compile(t testing.TB, cfg config.Policy, opts Options) *Policy {
	t.Helper()
	p, err := Compile(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var testPolicy = config.Policy{
	Allow: config.PolicyAllow{
		Emails:       []string{"Boss@Elsewhere.org"},
		EmailDomains: []string{"example.com"},
		Groups:       []string{"github:vintner", "gitlab:grp/sub"},
	},
	Routes: []config.PolicyRoute{
		{Prefix: "/admin/", Groups: []string{"github:vintner/platform"}},
		{Prefix: "/admin/billing", Emails: []string{"cfo@example.com"}},
		{Prefix: "/ops", Groups: []string{"github:vintner/ops"}, Emails: []string{"oncall@example.com"}},
	},
}

var testOpts = Options{ProviderNames: map[string]string{"github": "GitHub"}, AppName: "Trellis"}

func TestAdmit(t *testing.T) {
	p := compile(t, testPolicy, testOpts)
	cases := []struct {
		name string
		m    *membership.Member
		code string
		fix  string
	}{
		{"group", &membership.Member{Groups: []string{"github:vintner"}}, "", ""},
		{"subgroup path", &membership.Member{Groups: []string{"gitlab:grp/sub"}}, "", ""},
		{"parent group is not the subgroup", &membership.Member{Groups: []string{"gitlab:grp"}}, membership.CodeNotAllowed, "ask the people"},
		{"email", &membership.Member{Emails: []string{"boss@elsewhere.org"}}, "", ""},
		{"domain", &membership.Member{Emails: []string{"x@other.net", "a@example.com"}}, "", ""},
		{"subdomain is not the domain", &membership.Member{Emails: []string{"a@sub.example.com"}}, membership.CodeNotAllowed, ""},
		{"lookalike domain", &membership.Member{Emails: []string{"a@badexample.com"}}, membership.CodeNotAllowed, ""},
		{"other provider same name", &membership.Member{Groups: []string{"gitlab:vintner"}}, membership.CodeNotAllowed, ""},
		{"nobody", &membership.Member{}, membership.CodeNotAllowed, "ask the people who run Trellis"},
		{"restricted org", &membership.Member{Restricted: []string{"github:vintner"}}, membership.CodeNotAllowed, "must approve Trellis"},
		{"disabled", &membership.Member{Disabled: true, Groups: []string{"github:vintner"}}, membership.CodeAccountDisabled, "enable it"},
		{"unavailable", &membership.Member{Unavailable: true, Groups: []string{"github:vintner"}}, membership.CodeMembershipsUnavailable, "try again later"},
		{"nil", nil, membership.CodeNotAllowed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := p.Admit(c.m)
			if v.Code != c.code || v.Admitted() != (c.code == "") {
				t.Fatalf("Admit = %+v, want code %q", v, c.code)
			}
			if c.code != "" && (v.Rule == "" || v.Fix == "") {
				t.Errorf("refusal without words: %+v", v)
			}
			if !strings.Contains(v.Fix, c.fix) {
				t.Errorf("Fix %q does not contain %q", v.Fix, c.fix)
			}
			// One wording: the membership service's, which users get.
			if c.m != nil && c.m.Disabled && v != membership.VerdictDisabled || c.m != nil && c.m.Unavailable && v != membership.VerdictUnavailable {
				t.Errorf("Admit = %+v, not the membership service's words", v)
			}
		})
	}
	v := p.Admit(&membership.Member{})
	want := "Access to Trellis is limited to members of the GitHub group vintner, members of the gitlab group grp/sub, boss@elsewhere.org and addresses at example.com."
	if v.Rule != want {
		t.Errorf("Rule = %q\nwant  %q", v.Rule, want)
	}
}

func TestOpenPolicy(t *testing.T) {
	p := compile(t, config.Policy{}, Options{})
	if !p.Open() || !p.Admit(&membership.Member{}).Admitted() {
		t.Fatal("an empty allow must admit anyone")
	}
	if v := p.Admit(&membership.Member{Disabled: true}); v.Code != membership.CodeAccountDisabled {
		t.Fatalf("disabled under an open policy: %+v", v)
	}
	if p.Route([]byte("/admin/")) != nil || p.HasRoutes() {
		t.Fatal("routes without route rules")
	}
}

func TestRoute(t *testing.T) {
	p := compile(t, testPolicy, testOpts)
	cases := []struct{ path, prefix string }{
		{"/admin/", "/admin/"},
		{"/admin/users?x=1", "/admin/"},
		{"/admin", ""},
		{"/admin/billing", "/admin/billing"},
		{"/admin/billing/2024", "/admin/billing"},
		{"/admin/billingx", "/admin/"},
		{"/ops", "/ops"},
		{"/ops/", "/ops"},
		{"/opsx", ""},
		{"/", ""},
		// The same readings as auth.*_paths.
		{"/%61dmin/", "/admin/"},
		{"//admin//x", "/admin/"},
		{"/admin;x=1/panel", "/admin/"},
		{"/ADMIN/panel", "/admin/"},
		{"/%2561dmin/", "/admin/"},
		{"/x%2F..%2Fadmin/", ""}, // a dot segment: refused (the gate answers 400 first)
		{"/public/../admin/", ""},
		{"/admin/%zz", ""},
	}
	for _, c := range cases {
		r := p.Route([]byte(c.path))
		got := ""
		if r != nil {
			got = r.Prefix
		}
		if got != c.prefix {
			t.Errorf("Route(%q) = %q, want %q", c.path, got, c.prefix)
		}
	}
}

func TestRouteAdmit(t *testing.T) {
	p := compile(t, testPolicy, testOpts)
	admin, ops := p.Route([]byte("/admin/x")), p.Route([]byte("/ops"))
	cases := []struct {
		name string
		r    *Route
		m    *membership.Member
		code string
		fix  string
	}{
		{"in team", admin, &membership.Member{Groups: []string{"github:vintner", "github:vintner/platform"}}, "", ""},
		{"org only", admin, &membership.Member{Groups: []string{"github:vintner"}}, membership.CodeRouteNotAllowed, "Ask the people"},
		{"org restricts the app", admin, &membership.Member{Restricted: []string{"github:vintner"}}, membership.CodeRouteNotAllowed, "must approve Trellis"},
		{"email on route", ops, &membership.Member{Emails: []string{"oncall@example.com"}}, "", ""},
		{"group on route", ops, &membership.Member{Groups: []string{"github:vintner/ops"}}, "", ""},
		{"neither", ops, &membership.Member{Emails: []string{"a@example.com"}}, membership.CodeRouteNotAllowed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := c.r.Admit(c.m)
			if v.Code != c.code || !strings.Contains(v.Fix, c.fix) {
				t.Fatalf("Admit = %+v, want code %q, fix with %q", v, c.code, c.fix)
			}
		})
	}
	v := admin.Admit(&membership.Member{})
	if want := "The pages under /admin/ are limited to members of the GitHub group vintner/platform."; v.Rule != want {
		t.Errorf("Rule = %q, want %q", v.Rule, want)
	}
}

func TestVisible(t *testing.T) {
	m := &membership.Member{Groups: []string{"github:hubbers", "github:vintner", "github:vintner/ops", "github:vintner/platform", "gitlab:grp/sub", "gitlab:odd,name"}}
	p := compile(t, testPolicy, testOpts)
	if got, want := p.Visible(m), []string{"github:vintner", "github:vintner/ops", "github:vintner/platform", "gitlab:grp/sub"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Visible = %q, want %q", got, want)
	}
	all := compile(t, testPolicy, Options{VisibleAll: true})
	if got, want := all.Visible(m), []string{"github:hubbers", "github:vintner", "github:vintner/ops", "github:vintner/platform", "gitlab:grp/sub"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Visible(all) = %q, want %q", got, want)
	}
	// 14 + 1 + 19 = 34 bytes fit in 40, the next does not.
	capped := compile(t, testPolicy, Options{VisibleAll: true, VisibleMax: 40})
	if got, want := capped.Visible(m), []string{"github:hubbers", "github:vintner"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Visible(capped) = %q, want %q", got, want)
	}
	if strings.Join(capped.Visible(m), ",") != "github:hubbers,github:vintner" {
		t.Error("joined")
	}
}

func TestCompileRefuses(t *testing.T) {
	for _, cfg := range []config.Policy{
		{Allow: config.PolicyAllow{Groups: []string{"vintner"}}},
		{Routes: []config.PolicyRoute{{Prefix: "/a/"}}},
		{Routes: []config.PolicyRoute{{Prefix: "a", Groups: []string{"github:x"}}}},
		{Routes: []config.PolicyRoute{{Prefix: "/a/", Groups: []string{"github:x"}}, {Prefix: "/a/", Groups: []string{"github:y"}}}},
	} {
		if _, err := Compile(cfg, Options{}); err == nil {
			t.Errorf("Compile(%+v) succeeded", cfg)
		}
	}
}

package policy

import (
	"testing"

	"github.com/vintner/arbor/service/membership"
)

// BenchmarkRouteAdmit is the per-request check: find the route of a path
// and judge a cached Member. It must not allocate (TestRouteAdmitAllocs).
func BenchmarkRouteAdmit(b *testing.B) {
	p := compile(b, testPolicy, testOpts)
	m := &membership.Member{
		Emails: []string{"octocat@example.com"},
		Groups: []string{"github:hubbers", "github:vintner", "github:vintner/ops", "github:vintner/platform", "gitlab:grp/sub"},
	}
	for _, bc := range []struct{ name, path string }{
		{"admitted", "/admin/users/42"},
		{"refused", "/admin/billing/2024"},
		{"no route", "/assets/app.js"},
		{"escaped", "/%61dmin/users"},
	} {
		path := []byte(bc.path)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if r := p.Route(path); r != nil {
					_ = r.Admit(m)
				}
			}
		})
	}
}

func TestRouteAdmitAllocs(t *testing.T) {
	p := compile(t, testPolicy, testOpts)
	m := &membership.Member{Groups: []string{"github:vintner"}, Restricted: []string{"github:x"}}
	for _, path := range []string{"/admin/users/42", "/admin/billing/2024", "/assets/app.js", "/%61dmin/users", "//ops"} {
		b := []byte(path)
		if n := testing.AllocsPerRun(100, func() {
			if r := p.Route(b); r != nil {
				_ = r.Admit(m)
			}
			_ = p.Admit(m)
		}); n != 0 {
			t.Errorf("%s: %v allocations", path, n)
		}
	}
}

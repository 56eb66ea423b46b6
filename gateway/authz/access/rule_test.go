package access

import "testing"

// Rule gives the index of the rule that decides, read as Classify reads:
// the longest prefix of the primary reading, else the first other reading
// a rule governs; -1 for the default; ErrBadPath for what Classify refuses.
func TestRule(t *testing.T) {
	p, err := New(Public, []Rule{
		{Prefix: "/admin/", Class: API},
		{Prefix: "/admin/billing", Class: API},
		{Prefix: "/ops", Class: API},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want int
		bad  bool
	}{
		{"/admin/x", 0, false},
		{"/admin/billing/2026", 1, false},
		{"/admin/billingx", 0, false},
		{"/ops", 2, false},
		{"/opsx", -1, false},
		{"/", -1, false},
		{"/%61dmin/x", 0, false},
		{"//admin/x", 0, false},
		{"/admin;v=1/x", 0, false},
		{"/ADMIN/x", 0, false},
		{"/x%2F..%2Fadmin/", -1, true},
		{"/a/../admin/", -1, true},
		{"admin", -1, true},
	} {
		got, err := p.Rule([]byte(tc.path))
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("Rule(%q) = %d, %v; want %d, bad %v", tc.path, got, err, tc.want, tc.bad)
		}
		if c, _ := p.Classify([]byte(tc.path)); (c == API) != (tc.want >= 0) {
			t.Errorf("Classify(%q) = %v disagrees with Rule %d", tc.path, c, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = p.Rule([]byte("/%61dmin/x")) }); n != 0 {
		t.Errorf("Rule allocates %v times", n)
	}
}

package scope

import (
	"testing"
)

func TestParseAndString(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Set
		str  string
	}{
		{"", 0, ""},
		{"proxy", Proxy, "proxy"},
		{"proxy  providers proxy", Providers | Proxy, "providers proxy"},
		{"workers providers proxy", All, "providers workers proxy"},
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want || got.String() != c.str {
			t.Errorf("Parse(%q) = %v (%q), %v; want %v (%q)", c.in, got, got.String(), err, c.want, c.str)
		}
	}
	for _, bad := range []string{"admin", "proxy admin", "Proxy", "providers:read"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted an unknown scope", bad)
		}
	}
	if got := ParseKnown("proxy admin:all"); got != Proxy {
		t.Errorf("ParseKnown ignores unknown names: got %v", got)
	}
	if !All.Has(Providers|Workers) || Proxy.Has(Providers) || !Proxy.Has(0) {
		t.Error("Has")
	}
	if w := (Providers | Proxy).Words("Tendril"); len(w) != 2 {
		t.Errorf("Words: %v", w)
	}
	if w := Workers.Words("Hyphae"); len(w) != 1 || w[0] != "register, rotate and revoke Hyphae workers (long-lived worker tokens) in your name" {
		t.Errorf("Words names the workers from its argument: %q", w)
	}
}

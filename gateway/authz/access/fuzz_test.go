package access

import (
	"bytes"
	"net/url"
	"path"
	"strings"
	"testing"
)

// reference classifies raw the simple way: percent-decode it with
// url.PathUnescape, clean it with path.Clean (keeping a trailing slash,
// which is significant to a "/static/" rule) and take the longest matching
// rule, comparing bytes exactly. ok is false when it cannot read raw.
func reference(def Class, rules []Rule, raw []byte) (class Class, ok bool) {
	s := string(raw)
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	u, err := url.PathUnescape(s)
	if err != nil || !strings.HasPrefix(u, "/") {
		return 0, false
	}
	clean := path.Clean(u)
	if strings.HasSuffix(u, "/") && clean != "/" {
		clean += "/"
	}
	class, best := def, -1
	for _, r := range rules {
		match := strings.HasPrefix(clean, r.Prefix) &&
			(strings.HasSuffix(r.Prefix, "/") || len(clean) == len(r.Prefix) || clean[len(r.Prefix)] == '/')
		if match && len(r.Prefix) > best {
			class, best = r.Class, len(r.Prefix)
		}
	}
	return class, true
}

// fuzzSeeds are the inputs committed in testdata/fuzz/FuzzClassify as well.
var fuzzSeeds = []string{
	"/",
	"/admin",
	"/public?x=/admin",
	"/public#/admin",
	"//admin",
	"/%61dmin",
	"/public/%2e%2e/admin",
	"/public/..%2fadmin",
	"/admin%2Fx",
	"/static%2Fapp.js",
	"/a%5cb",
	`/public\..\admin`,
	"/admin;/x",
	"/public/..;/admin",
	"/ADMIN",
	"/\u212Aeys",
	"/%2561dmin",
	"/a%00b",
	"/%zz",
	"/api/session%2Fx",
	"/%2Fapi",
	"/caf%C3%A9/x",
}

func FuzzClassify(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	policies := []struct {
		def   Class
		rules []Rule
	}{
		{Public, rulesA},
		{Session, rulesB},
		{API, []Rule{{"/", Public}, {"/a", Session}, {"/a/b/", API}, {"/A/c", Session}}},
	}
	pols := make([]*Policy, len(policies))
	for i, pc := range policies {
		pols[i] = mustNew(f, pc.def, pc.rules)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		orig := string(raw)
		for i, p := range pols {
			got, err := p.Classify(raw)
			if string(raw) != orig {
				t.Fatalf("Classify changed its input %q to %q", orig, raw)
			}
			if err != nil {
				if err != ErrBadPath || got != 0 {
					t.Fatalf("policy %d: Classify(%q) = %v, %v; want 0, ErrBadPath", i, raw, got, err)
				}
				continue
			}
			if !got.valid() {
				t.Fatalf("policy %d: Classify(%q) = invalid class %d", i, raw, got)
			}
			want, ok := reference(policies[i].def, policies[i].rules, raw)
			if !ok {
				t.Fatalf("policy %d: Classify(%q) = %v, but the reference cannot read it", i, raw, got)
			}
			// At least as strict as the reference; and since the
			// decoded reading comes first, equal to it unless the
			// reference is public.
			if want != Public && got != want {
				t.Fatalf("policy %d: Classify(%q) = %v, reference %v", i, raw, got, want)
			}
			// The fast path agrees with the general one.
			cut := raw
			if i := bytes.IndexAny(cut, "?#"); i >= 0 {
				cut = cut[:i]
			}
			if g2, _, err := p.classifySlow(cut, flagPct|flagSlashes|flagSemi); err != nil || g2 != got {
				t.Fatalf("policy %d: Classify(%q) = %v, but the general path says %v, %v", i, raw, got, g2, err)
			}
			// A query or fragment never changes the class.
			for _, suffix := range []string{"?/admin", "#/a/b/c", "?%zz/.."} {
				if g2, err := p.Classify(append(bytes.Clone(raw), suffix...)); err != nil || g2 != got {
					t.Fatalf("policy %d: Classify(%q) = %v, but with %q appended %v, %v", i, raw, got, suffix, g2, err)
				}
			}
		}
	})
}

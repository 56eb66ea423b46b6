package returnto

import "strings"

// OrDefault is the return path of a request: Validate(raw), or def when
// raw is empty, invalid, or a path under one of the prefixes in avoid
// (the steps of the sign-in flow itself, which make no sense, or loop, as
// a place to return to). It never fails: an invalid return path is
// ignored, not an error page.
func OrDefault(raw, def string, avoid []string) string {
	if raw == "" {
		return def
	}
	clean, err := Validate(raw)
	if err != nil || under(clean, avoid) {
		return def
	}
	return clean
}

// under reports whether p is one of prefixes, or a path or query below one.
func under(p string, prefixes []string) bool {
	for _, prefix := range prefixes {
		if p == prefix || strings.HasPrefix(p, prefix+"?") || strings.HasPrefix(p, strings.TrimSuffix(prefix, "/")+"/") {
			return true
		}
	}
	return false
}

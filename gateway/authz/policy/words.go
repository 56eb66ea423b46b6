package policy

import (
	"strings"
)

// words writes the Rule and Fix of refusals from the configuration only.
type words struct{ opts Options }

// provider is the name people know provider by.
func (w words) provider(prov string) string {
	if n := w.opts.ProviderNames[prov]; n != "" {
		return n
	}
	return prov
}

// list says who a rule admits: "members of the GitHub group
// vintner/platform, alice@example.com and addresses at example.com".
func (w words) list(groups, emails, domains []string) string {
	var parts []string
	for _, g := range groups {
		prov, name, _ := strings.Cut(g, ":")
		parts = append(parts, "members of the "+w.provider(prov)+" group "+name)
	}
	parts = append(parts, emails...)
	for _, d := range domains {
		parts = append(parts, "addresses at "+strings.TrimPrefix(d, "@"))
	}
	switch len(parts) {
	case 0:
		return "nobody"
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// restrictedFix is the Fix when the provider hid a membership the rule
// needs: the organisation restricts which apps may see it (GitHub's OAuth
// app access restrictions), so its owners must approve the app. See the
// package documentation for the provider's pages.
func (w words) restrictedFix() string {
	app := w.opts.AppName
	return "Your sign-in provider hides your membership from " + app + ": the organisation restricts which apps may see it. " +
		"An owner of the organisation must approve " + app + " in the organisation's settings (third-party application access), " +
		"or you can ask them to from your account's list of authorised applications (\"Request access\"). Then sign in again."
}

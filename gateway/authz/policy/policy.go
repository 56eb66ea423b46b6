// Package policy compiles the policy: section of the configuration into
// the rules every request meets: who may sign in and stay signed in
// (policy.allow, [Policy.Admit]), which signed-in users may reach which
// paths (policy.routes, [Policy.Route] and [Route.Admit]), and which of a
// user's groups the upstream may see ([Policy.Visible]).
//
// It is the membership.Judge: the membership service builds one
// membership.Member per user from the store, asks Admit and Visible once,
// and keeps the answers on the Member (Member.Verdict, Member.Visible,
// Member.VisibleHeader), so that a request only reads them. The per-request
// part, Route and Route.Admit on a cached Member, allocates nothing and
// takes well under a microsecond (BenchmarkRouteAdmit).
//
// # Words
//
// A refusal says, in words a user understands, which rule applied (the
// Verdict's Rule: "Access is limited to members of the GitHub group
// vintner/platform and to addresses at example.com.") and what to do
// (Fix). Every name in them comes from the configuration, never from the
// request. When the rule names a group whose provider hid the user's
// membership (Member.Restricted: a GitHub organisation that restricts
// OAuth apps, docs.github.com "Approving OAuth apps for your
// organization",
// https://docs.github.com/organizations/managing-oauth-access-to-your-organizations-data/approving-oauth-apps-for-your-organization),
// Fix says that the organisation's owners must approve the app, which a
// member may ask for from their own settings
// (https://docs.github.com/en/account-and-profile/how-tos/organization-membership/requesting-organization-approval-for-oauth-apps).
//
// # Paths
//
// Route reads the path exactly as auth.*_paths are read (package access:
// decoded, slashes merged, dot segments refused, every ambiguous reading
// considered); it is the same reader, asked for the rule that decided
// (access.Policy.Rule) instead of a class.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/authz/access"
	"github.com/vintner/arbor/service/membership"
)

// Options are what the words of a refusal and the visible groups need
// besides the policy: section.
type Options struct {
	// ProviderNames maps a provider to the name people know it by
	// ("github" to its plugin's display name). A provider not in it is
	// called by its configured name.
	ProviderNames map[string]string
	// AppName is the app behind Arbor (ui.app_name), named in Fix. Default
	// "this app".
	AppName string
	// VisibleAll makes Visible return every group of a member, not only
	// those the policy mentions (identity.groups_header_all).
	VisibleAll bool
	// VisibleMax caps the groups Visible returns, joined with ",", in
	// bytes (identity.groups_header_max). Default
	// config.DefaultGroupsHeaderMax.
	VisibleMax int
}

// Policy is the compiled policy: section. It is immutable and safe for
// concurrent use. It implements membership.Judge.
type Policy struct {
	open    bool // no allow rule: anyone passes
	emails  []string
	domains []string // "@example.com"
	groups  []string
	// mentioned: every group of allow and routes, sorted, for Visible.
	mentioned []string

	denied, deniedRestricted membership.Verdict

	table  *access.Policy // routes: all access.API, default Public
	routes []Route

	visibleAll bool
	visibleMax int
}

var _ membership.Judge = (*Policy)(nil)

// Route is one policy.routes entry, compiled.
type Route struct {
	// Prefix is the entry's prefix, as configured.
	Prefix string

	groups, emails           []string
	denied, deniedRestricted membership.Verdict
}

// Compile checks cfg (as config.Validate does, for a Policy built by
// hand) and compiles it.
func Compile(cfg config.Policy, opts Options) (*Policy, error) {
	if opts.AppName == "" {
		opts.AppName = "this app"
	}
	if opts.VisibleMax == 0 {
		opts.VisibleMax = config.DefaultGroupsHeaderMax
	}
	if opts.VisibleMax < 0 {
		return nil, errors.New("policy: Options.VisibleMax must not be negative")
	}
	w := words{opts: opts}
	p := &Policy{
		emails:     lowerSorted(cfg.Allow.Emails),
		groups:     sortedCopy(cfg.Allow.Groups),
		visibleAll: opts.VisibleAll,
		visibleMax: opts.VisibleMax,
	}
	for _, d := range cfg.Allow.EmailDomains {
		p.domains = append(p.domains, "@"+strings.ToLower(strings.TrimPrefix(d, "@")))
	}
	p.open = len(p.emails)+len(p.domains)+len(p.groups) == 0
	for _, g := range p.groups {
		if err := checkGroup(g); err != nil {
			return nil, fmt.Errorf("policy: allow.groups: %w", err)
		}
	}
	if !p.open {
		rule := "Access to " + opts.AppName + " is limited to " + w.list(cfg.Allow.Groups, p.emails, cfg.Allow.EmailDomains) + "."
		fix := "If you should have access, ask the people who run " + opts.AppName + " to add you, or sign in with an account that passes this rule."
		p.denied = membership.Verdict{Code: membership.CodeNotAllowed, Rule: rule, Fix: fix}
		p.deniedRestricted = membership.Verdict{Code: membership.CodeNotAllowed, Rule: rule, Fix: w.restrictedFix()}
	}
	rules := make([]access.Rule, 0, len(cfg.Routes))
	for i, r := range cfg.Routes {
		if len(r.Groups)+len(r.Emails) == 0 {
			return nil, fmt.Errorf("policy: routes entry %d (prefix %q) lists no groups and no emails", i, r.Prefix)
		}
		for _, g := range r.Groups {
			if err := checkGroup(g); err != nil {
				return nil, fmt.Errorf("policy: routes entry %d (prefix %q): %w", i, r.Prefix, err)
			}
		}
		rule := "The pages under " + r.Prefix + " are limited to " + w.list(r.Groups, lowerSorted(r.Emails), nil) + "."
		fix := "Ask the people who run " + opts.AppName + " for access to " + r.Prefix + ", or go back to a page you may use."
		p.routes = append(p.routes, Route{
			Prefix: r.Prefix,
			groups: sortedCopy(r.Groups),
			emails: lowerSorted(r.Emails),
			denied: membership.Verdict{Code: membership.CodeRouteNotAllowed, Rule: rule, Fix: fix},
			deniedRestricted: membership.Verdict{Code: membership.CodeRouteNotAllowed, Rule: rule,
				Fix: w.restrictedFix()},
		})
		rules = append(rules, access.Rule{Prefix: r.Prefix, Class: access.API})
		p.mentioned = append(p.mentioned, r.Groups...)
	}
	if len(rules) > 0 {
		t, err := access.New(access.Public, rules)
		if err != nil {
			return nil, fmt.Errorf("policy: routes: %w", err)
		}
		p.table = t
	}
	p.mentioned = append(p.mentioned, p.groups...)
	slices.Sort(p.mentioned)
	p.mentioned = slices.Compact(p.mentioned)
	return p, nil
}

// checkGroup refuses what config.Validate refuses of a group name that
// would break the words or the header.
func checkGroup(g string) error {
	prov, name, ok := strings.Cut(g, ":")
	if !ok || prov == "" || name == "" || strings.ContainsAny(name, ", \t\r\n") {
		return fmt.Errorf("%q is not \"<provider>:<group>\" without commas or spaces", g)
	}
	return nil
}

func sortedCopy(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func lowerSorted(s []string) []string {
	out := sortedCopy(s)
	for i := range out {
		out[i] = strings.ToLower(out[i])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Open reports whether policy.allow is empty: anyone with an account may
// sign in.
func (p *Policy) Open() bool { return p.open }

// Admit decides whether m may sign in and stay signed in: refused when an
// operator disabled the account (account_disabled) or the providers have
// not answered for longer than the grace period
// (memberships_unavailable); else admitted when policy.allow is empty or
// any of its rules matches (a verified address, its domain, a group);
// else not_allowed, with the rule in words and what to do. A nil m is
// refused as not_allowed.
func (p *Policy) Admit(m *membership.Member) membership.Verdict {
	switch {
	case m == nil:
		return p.refusal()
	case m.Disabled:
		return membership.VerdictDisabled // the words are the membership service's, which decides first
	case m.Unavailable:
		return membership.VerdictUnavailable
	case p.open:
		return membership.Verdict{}
	}
	for _, e := range m.Emails {
		if _, ok := slices.BinarySearch(p.emails, e); ok {
			return membership.Verdict{}
		}
		for _, d := range p.domains {
			if strings.HasSuffix(e, d) {
				return membership.Verdict{}
			}
		}
	}
	for _, g := range p.groups {
		if m.InGroup(g) {
			return membership.Verdict{}
		}
	}
	if restricted(m, p.groups) {
		return p.deniedRestricted
	}
	return p.denied
}

// refusal is not_allowed for a member that cannot be judged.
func (p *Policy) refusal() membership.Verdict {
	if p.open {
		return membership.Verdict{Code: membership.CodeNotAllowed, Rule: "Arbor could not find your account.", Fix: "Sign in again."}
	}
	return p.denied
}

// restricted reports whether one of groups, or the top-level group it
// belongs to ("github:vintner" for "github:vintner/platform"), is in
// m.Restricted: the provider hid the membership from the app.
func restricted(m *membership.Member, groups []string) bool {
	if len(m.Restricted) == 0 {
		return false
	}
	for _, g := range groups {
		if _, ok := slices.BinarySearch(m.Restricted, g); ok {
			return true
		}
		if prov, name, _ := strings.Cut(g, ":"); strings.Contains(name, "/") {
			top := g[:len(prov)+1+strings.IndexByte(name, '/')]
			if _, ok := slices.BinarySearch(m.Restricted, top); ok {
				return true
			}
		}
	}
	return false
}

// Route returns the policy.routes entry that governs path (the raw path
// as received, fasthttp's PathOriginal), or nil when none does or the
// path cannot be read (the gate has refused such paths already, with
// access.ErrBadPath). It does not allocate.
func (p *Policy) Route(path []byte) *Route {
	if p == nil || p.table == nil {
		return nil
	}
	i, err := p.table.Rule(path)
	if err != nil || i < 0 {
		return nil
	}
	return &p.routes[i]
}

// HasRoutes reports whether the policy has route rules.
func (p *Policy) HasRoutes() bool { return p != nil && p.table != nil }

// Admit decides whether m may reach the route's paths: any of its groups
// or verified addresses passes; else route_not_allowed. It does not
// check policy.allow (the chain has, with Member.Verdict) and does not
// allocate.
func (r *Route) Admit(m *membership.Member) membership.Verdict {
	if m == nil {
		return r.denied
	}
	for _, g := range r.groups {
		if m.InGroup(g) {
			return membership.Verdict{}
		}
	}
	for _, e := range r.emails {
		if m.HasEmail(e) {
			return membership.Verdict{}
		}
	}
	if restricted(m, r.groups) {
		return r.deniedRestricted
	}
	return r.denied
}

// Visible returns the groups of m the upstream may see: those the policy
// mentions (every group with Options.VisibleAll), in sorted order, as many
// as fit in Options.VisibleMax bytes joined with ",". A group that could
// not travel in the header (a comma, a space, a control or non-ASCII
// character) is left out.
func (p *Policy) Visible(m *membership.Member) []string {
	if m == nil {
		return nil
	}
	var out []string
	size := 0
	for _, g := range m.Groups {
		if !p.visibleAll {
			if _, ok := slices.BinarySearch(p.mentioned, g); !ok {
				continue
			}
		}
		if !headerSafe(g) {
			continue
		}
		n := len(g)
		if len(out) > 0 {
			n++
		}
		if size+n > p.visibleMax {
			break
		}
		size += n
		out = append(out, g)
	}
	return out
}

// headerSafe reports whether g can be one item of the comma-separated
// groups header: visible ASCII, no comma.
func headerSafe(g string) bool {
	if g == "" {
		return false
	}
	for i := 0; i < len(g); i++ {
		if c := g[i]; c <= ' ' || c >= 0x7f || c == ',' {
			return false
		}
	}
	return true
}

package config

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vintner/arbor/gateway/authz/access"
)

// Policy says who may sign in and reach which routes, from verified e-mail
// addresses and the users' groups at the login providers (the policy:
// section; docs/policy.md). It is compiled by package
// gateway/authz/policy.
type Policy struct {
	// Allow lists who may sign in and stay signed in: a user passes when
	// any listed rule matches. All empty (the default): anyone with an
	// account at a configured login provider.
	Allow PolicyAllow `yaml:"allow"`
	// RecheckInterval is how often a signed-in user's memberships are
	// fetched again from the providers, in the background. Default 10m.
	RecheckInterval time.Duration `yaml:"recheck_interval"`
	// GracePeriod is how long the last known memberships stand while the
	// providers cannot answer; after it, access is refused with
	// memberships_unavailable. 0 refuses at the first failed re-check.
	// Default 1h: long enough to ride out a provider's incident (GitHub's
	// and GitLab's status pages show most outages end within the hour)
	// without locking everyone out, short enough that a person removed
	// during an outage keeps access for at most one hour more.
	GracePeriod time.Duration `yaml:"grace_period"`
	// Routes add requirements by upstream path prefix, read the same way
	// as auth.*_paths; the longest matching prefix wins. In the
	// environment as a YAML flow or JSON list:
	// ARBOR_POLICY_ROUTES='[{prefix: /admin/, groups: [github:vintner/platform]}]'.
	// Default none.
	Routes []PolicyRoute `yaml:"routes"`
}

// PolicyAllow is policy.allow: each list may be empty.
type PolicyAllow struct {
	// Emails are verified addresses allowed in, lower case.
	Emails []string `yaml:"emails"`
	// EmailDomains admit every verified address at these domains
	// (example.com admits a@example.com, not a@sub.example.com).
	EmailDomains []string `yaml:"email_domains"`
	// Groups are "<provider>:<group>" names (github:vintner,
	// github:vintner/platform, gitlab:grp/sub, bitbucket:ws-one,
	// google:example.com); the provider must be configured.
	Groups []string `yaml:"groups"`
}

// PolicyRoute is one policy.routes entry: paths under Prefix need one of
// Groups or Emails (as well as policy.allow).
type PolicyRoute struct {
	// Prefix is an upstream path prefix ("/admin/"), matched like
	// auth.*_paths.
	Prefix string `yaml:"prefix"`
	// Groups: a user in any of them passes.
	Groups []string `yaml:"groups"`
	// Emails: a user with any of these verified addresses passes.
	Emails []string `yaml:"emails"`
}

// Defaults of the policy: and identity: keys that policy adds.
const (
	DefaultRecheckInterval  = 10 * time.Minute
	DefaultGracePeriod      = time.Hour
	DefaultGroupsHeader     = "X-Arbor-User-Groups"
	DefaultGroupsHeaderMax  = 2048
	maxPolicyNameLength     = 256
	minGroupsHeaderMaxBytes = 64
	maxGroupsHeaderMaxBytes = 8192
)

func defaultPolicy() Policy {
	return Policy{RecheckInterval: DefaultRecheckInterval, GracePeriod: DefaultGracePeriod}
}

// Enabled reports whether the policy restricts anyone: an allow rule or a
// route rule is set. A disabled policy costs nothing per request.
func (p Policy) Enabled() bool {
	return len(p.Allow.Emails)+len(p.Allow.EmailDomains)+len(p.Allow.Groups)+len(p.Routes) > 0
}

// GroupProviders returns the providers whose groups the policy mentions,
// sorted and without repeats: sign-in asks these for their groups scopes
// and keeps their grants, so memberships can be re-checked.
func (p Policy) GroupProviders() []string {
	var out []string
	add := func(groups []string) {
		for _, g := range groups {
			if prov, _, ok := strings.Cut(g, ":"); ok && !slices.Contains(out, prov) {
				out = append(out, prov)
			}
		}
	}
	add(p.Allow.Groups)
	for _, r := range p.Routes {
		add(r.Groups)
	}
	slices.Sort(out)
	return out
}

// fillPolicyDefaults lower-cases addresses and domains (they are compared
// in lower case) and turns empty lists into nil.
func (c *Config) fillPolicyDefaults() {
	norm := func(list []string) []string {
		if len(list) == 0 {
			return nil
		}
		out := make([]string, len(list))
		for i, s := range list {
			out[i] = strings.ToLower(strings.TrimSpace(s))
		}
		return out
	}
	c.Policy.Allow.Emails = norm(c.Policy.Allow.Emails)
	c.Policy.Allow.EmailDomains = norm(c.Policy.Allow.EmailDomains)
	if len(c.Policy.Allow.Groups) == 0 {
		c.Policy.Allow.Groups = nil
	}
	if len(c.Policy.Routes) == 0 {
		c.Policy.Routes = nil
	}
	for i := range c.Policy.Routes {
		c.Policy.Routes[i].Emails = norm(c.Policy.Routes[i].Emails)
	}
}

// validatePolicy checks policy.* and identity.groups_header*.
func (c Config) validatePolicy(bad func(key, format string, args ...any)) {
	p := c.Policy
	if p.RecheckInterval <= 0 {
		bad("policy.recheck_interval", "%v: want a positive duration such as 10m", p.RecheckInterval)
	}
	if p.GracePeriod < 0 {
		bad("policy.grace_period", "%v: want 0 (refuse at the first failed re-check) or a positive duration such as 1h", p.GracePeriod)
	}
	for _, e := range p.Allow.Emails {
		if err := checkEmail(e); err != "" {
			bad("policy.allow.emails", "%q %s", e, err)
		}
	}
	for _, d := range p.Allow.EmailDomains {
		if err := checkDomain(d); err != "" {
			bad("policy.allow.email_domains", "%q %s", d, err)
		}
	}
	for _, g := range p.Allow.Groups {
		if err := c.checkGroup(g); err != "" {
			bad("policy.allow.groups", "%q %s", g, err)
		}
	}
	seen := map[string]bool{}
	for i, r := range p.Routes {
		key := "policy.routes"
		entry := "entry " + strconv.Itoa(i) + " (prefix " + strconv.Quote(r.Prefix) + "): "
		if msg := checkRoutePrefix(r.Prefix); msg != "" {
			bad(key, entry+"%s", msg)
		}
		if seen[r.Prefix] {
			bad(key, entry+"the prefix appears twice; keep one entry per prefix")
		}
		seen[r.Prefix] = true
		if len(r.Groups)+len(r.Emails) == 0 {
			bad(key, entry+"lists no groups and no emails: name who may reach these paths")
		}
		for _, g := range r.Groups {
			if err := c.checkGroup(g); err != "" {
				bad(key, entry+"group %q %s", g, err)
			}
		}
		for _, e := range r.Emails {
			if err := checkEmail(e); err != "" {
				bad(key, entry+"email %q %s", e, err)
			}
		}
	}
	if h := c.Identity.GroupsHeader; h == "" || strings.ContainsAny(h, " :\t\r\n") {
		bad("identity.groups_header", "%q is not a header name", h)
	}
	if n := c.Identity.GroupsHeaderMax; n < minGroupsHeaderMaxBytes || n > maxGroupsHeaderMaxBytes {
		bad("identity.groups_header_max", "%d: want %d to %d bytes", n, minGroupsHeaderMaxBytes, maxGroupsHeaderMaxBytes)
	}
}

// checkEmail explains what is wrong with an address of the policy, "" if
// nothing.
func checkEmail(e string) string {
	local, domain, ok := strings.Cut(e, "@")
	switch {
	case !ok || local == "" || strings.Contains(domain, "@"):
		return "is not an e-mail address such as alice@example.com"
	case len(e) > maxPolicyNameLength:
		return "is too long"
	case strings.ContainsAny(local, " \t\r\n,<>\"") || !utf8.ValidString(local):
		return "has a character that does not belong in an address"
	}
	if msg := checkDomain(domain); msg != "" {
		return "has a domain that " + strings.TrimPrefix(msg, "is ")
	}
	return ""
}

// checkDomain explains what is wrong with a domain of the policy.
func checkDomain(d string) string {
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasPrefix(d, "@") || strings.HasSuffix(d, ".") || !strings.Contains(d, ".") || strings.Contains(d, "..") {
		return "is not a domain such as example.com (write it without @ or a leading dot)"
	}
	for _, r := range d {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return "is not a domain such as example.com: use lower-case letters, digits, '-' and '.' (punycode for other letters)"
		}
	}
	return ""
}

// checkGroup explains what is wrong with a "<provider>:<group>" name.
func (c Config) checkGroup(g string) string {
	prov, name, ok := strings.Cut(g, ":")
	switch {
	case !ok || prov == "" || name == "":
		return `is not "<provider>:<group>", e.g. github:vintner/platform`
	case len(g) > maxPolicyNameLength:
		return "is too long"
	case !validProviderName(prov):
		return "does not start with a provider's name (github, gitlab, …)"
	}
	if _, configured := c.Providers[prov]; !configured {
		names := make([]string, 0, len(c.Providers))
		for n := range c.Providers {
			names = append(names, n)
		}
		slices.Sort(names)
		have := "none is configured"
		if len(names) > 0 {
			have = "configured: " + strings.Join(names, ", ")
		}
		return "names provider " + strconv.Quote(prov) + ", which is not configured under providers: (" + have + ")"
	}
	for _, r := range name {
		// Groups travel in a comma-separated header: no commas, spaces
		// or characters a header cannot carry.
		if r <= ' ' || r == ',' || r == 0x7f || r >= utf8.RuneSelf {
			return "has a space, a comma or a character a header cannot carry"
		}
	}
	return ""
}

// checkRoutePrefix explains what is wrong with a route prefix, with the
// rules of auth.*_paths (access.New): the policy reads paths as they do.
func checkRoutePrefix(p string) string {
	if _, err := access.New(access.Public, []access.Rule{{Prefix: p, Class: access.API}}); err != nil {
		_, msg, _ := strings.Cut(err.Error(), "): ")
		return msg
	}
	return ""
}

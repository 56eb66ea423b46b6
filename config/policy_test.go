package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const policyProviders = "providers:\n  github: {client_id: x}\n  google: {client_id: y}\n"

func TestPolicyLoads(t *testing.T) {
	p := writeFile(t, policyProviders+`
policy:
  allow:
    emails: [Alice@Example.COM]
    email_domains: [Example.com]
    groups: [github:vintner]
  grace_period: 0s
  routes:
    - prefix: /admin/
      groups: [github:vintner/platform, google:example.com]
identity:
  groups_header_all: true
`)
	cfg, err := Load(Source{File: p, Environ: []string{"ARBOR_POLICY_RECHECK_INTERVAL=30s", "ARBOR_IDENTITY_GROUPS_HEADER_MAX=4096"}})
	if err != nil {
		t.Fatal(err)
	}
	pol := cfg.Policy
	if !pol.Enabled() {
		t.Error("Enabled() = false")
	}
	if !reflect.DeepEqual(pol.Allow.Emails, []string{"alice@example.com"}) || !reflect.DeepEqual(pol.Allow.EmailDomains, []string{"example.com"}) {
		t.Errorf("addresses not lower-cased: %v %v", pol.Allow.Emails, pol.Allow.EmailDomains)
	}
	if pol.RecheckInterval != 30*time.Second || pol.GracePeriod != 0 {
		t.Errorf("recheck %v grace %v", pol.RecheckInterval, pol.GracePeriod)
	}
	if got := pol.GroupProviders(); !reflect.DeepEqual(got, []string{"github", "google"}) {
		t.Errorf("GroupProviders = %v", got)
	}
	if !cfg.Identity.GroupsHeaderAll || cfg.Identity.GroupsHeaderMax != 4096 || cfg.Identity.GroupsHeader != DefaultGroupsHeader {
		t.Errorf("identity = %+v", cfg.Identity)
	}
}

func TestPolicyDefaultsAndEnvRoutes(t *testing.T) {
	cfg, err := Load(Source{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Policy.Enabled() || cfg.Policy.RecheckInterval != 10*time.Minute || cfg.Policy.GracePeriod != time.Hour || cfg.Policy.GroupProviders() != nil {
		t.Errorf("default policy = %+v", cfg.Policy)
	}
	cfg, err = Load(Source{Environ: []string{
		"ARBOR_PROVIDERS_GITHUB_CLIENT_ID=x",
		"ARBOR_POLICY_ALLOW_GROUPS=github:vintner, github:hubbers",
		"ARBOR_POLICY_ROUTES=[{prefix: /admin/, groups: [github:vintner/platform]}]",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Policy.Allow.Groups, []string{"github:vintner", "github:hubbers"}) ||
		len(cfg.Policy.Routes) != 1 || cfg.Policy.Routes[0].Prefix != "/admin/" {
		t.Errorf("env policy = %+v", cfg.Policy)
	}
}

func TestBadPolicy(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        []string
		wantErr    []string
	}{
		{"group without provider", "policy:\n  allow:\n    groups: [vintner]\n", nil, []string{"policy.allow.groups", "ARBOR_POLICY_ALLOW_GROUPS", `"<provider>:<group>"`}},
		{"group of unconfigured provider", policyProviders + "policy:\n  allow:\n    groups: [gitlab:grp]\n", nil, []string{`provider "gitlab"`, "configured: github, google"}},
		{"group with comma", policyProviders + "policy:\n  allow:\n    groups: [\"github:a,b\"]\n", nil, []string{"comma"}},
		{"group with empty name", policyProviders + "policy:\n  allow:\n    groups: [\"github:\"]\n", nil, []string{`"<provider>:<group>"`}},
		{"bad email", "policy:\n  allow:\n    emails: [alice]\n", nil, []string{"policy.allow.emails", "not an e-mail address"}},
		{"email bad domain", "policy:\n  allow:\n    emails: [alice@localhost]\n", nil, []string{"policy.allow.emails", "domain"}},
		{"domain with at", "policy:\n  allow:\n    email_domains: [\"@example.com\"]\n", nil, []string{"policy.allow.email_domains", "without @"}},
		{"zero recheck", "policy:\n  recheck_interval: 0s\n", nil, []string{"policy.recheck_interval", "positive"}},
		{"negative grace", "", []string{"ARBOR_POLICY_GRACE_PERIOD=-1m"}, []string{"policy.grace_period", "ARBOR_POLICY_GRACE_PERIOD"}},
		{"route not a path", policyProviders + "policy:\n  routes:\n    - prefix: admin\n      groups: [github:vintner]\n", nil, []string{"policy.routes", "entry 0", `"/admin"`}},
		{"route dot segment", policyProviders + "policy:\n  routes:\n    - prefix: /a/../admin/\n      groups: [github:vintner]\n", nil, []string{"policy.routes", "dot segment"}},
		{"route escaped", policyProviders + "policy:\n  routes:\n    - prefix: /%61dmin\n      groups: [github:vintner]\n", nil, []string{"policy.routes", "decoded form"}},
		{"route twice", policyProviders + "policy:\n  routes:\n    - {prefix: /a/, groups: [github:x]}\n    - {prefix: /a/, groups: [github:y]}\n", nil, []string{"appears twice"}},
		{"route empty", "policy:\n  routes:\n    - prefix: /a/\n", nil, []string{"no groups and no emails"}},
		{"route unknown key", "policy:\n  routes:\n    - prefix: /a/\n      team: [x]\n", nil, []string{"team"}},
		{"route bad group", policyProviders + "policy:\n  routes:\n    - {prefix: /a/, groups: [gitlab:x]}\n", nil, []string{"entry 0", `group "gitlab:x"`}},
		{"bad env routes", "", []string{"ARBOR_POLICY_ROUTES=[{prefix: /a/, teams: [x]}]"}, []string{"ARBOR_POLICY_ROUTES", "PolicyRoute"}},
		{"groups header", "identity:\n  groups_header: \"X Groups\"\n", nil, []string{"identity.groups_header", "not a header name"}},
		{"groups header max", "identity:\n  groups_header_max: 10\n", nil, []string{"identity.groups_header_max", "64 to 8192"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := Source{Environ: c.env}
			if c.yaml != "" {
				src.File = writeFile(t, c.yaml)
			}
			_, err := Load(src)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

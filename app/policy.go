package app

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/authz"
	"github.com/vintner/arbor/gateway/authz/policy"
	"github.com/vintner/arbor/plugins/builtin"
	"github.com/vintner/arbor/sdk/abi/manifest"
	"github.com/vintner/arbor/service/membership"
)

// MembersFunc builds the Members the chain consults (the membership
// service, service/membership) from the compiled policy, its Judge.
type MembersFunc func(judge membership.Judge) (authz.Members, error)

// compilePolicy compiles policy:; nil without one.
func (a *App) compilePolicy(cfg config.Config) (*policy.Policy, error) {
	if !cfg.Policy.Enabled() {
		return nil, nil
	}
	pol, err := policy.Compile(cfg.Policy, policy.Options{
		ProviderNames: providerDisplayNames(cfg.Policy.GroupProviders()),
		AppName:       cfg.UI.AppName,
		VisibleAll:    cfg.Identity.GroupsHeaderAll,
		VisibleMax:    cfg.Identity.GroupsHeaderMax,
	})
	if err != nil {
		return nil, usageErr(err)
	}
	return pol, nil
}

// buildPolicy returns the route rules and the Members the chain and the
// gate consult for the compiled policy pol: the membership service real,
// or what Options.Members builds (tests that set memberships themselves).
// Without a policy there are no rules, and the chain still asks the
// membership service, which then refuses only disabled accounts: `arbor
// users disable` stops a user's workers at once whether or not a policy
// is configured (a cached lookup, ~30 ns and no allocation per request).
func (a *App) buildPolicy(pol *policy.Policy, real *membership.Service) (*policy.Policy, authz.Members, error) {
	if pol == nil {
		return nil, real, nil
	}
	if a.opts.Members == nil {
		return pol, real, nil
	}
	members, err := a.opts.Members(pol)
	if err != nil {
		return nil, nil, fmt.Errorf("policy: starting the membership service: %w", err)
	}
	if members == nil {
		return nil, nil, errors.New("policy: app.Options.Members returned no Members")
	}
	return pol, members, nil
}

// providerDisplayNames are the names people know the built-in providers
// by ("GitHub"), read from their manifests, for the words of a refusal. A
// provider that is not built in is called by its configured name.
func providerDisplayNames(providers []string) map[string]string {
	out := map[string]string{}
	for _, p := range providers {
		fsys, ok := builtin.Plugin(p)
		if !ok {
			continue
		}
		raw, err := fs.ReadFile(fsys, "plugin.json")
		if err != nil {
			continue
		}
		if m, err := manifest.Parse(raw); err == nil && m.DisplayName != "" {
			out[p] = m.DisplayName
		}
	}
	return out
}

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

// buildPolicy compiles policy: and builds the Members the chain and the
// gate consult. Without a policy both are nil: nothing is consulted and
// requests cost what they did before. A policy with no Options.Members
// to judge memberships by is refused: Arbor fails closed rather than
// admit everyone.
func (a *App) buildPolicy(cfg config.Config) (*policy.Policy, authz.Members, error) {
	if !cfg.Policy.Enabled() {
		return nil, nil, nil
	}
	pol, err := policy.Compile(cfg.Policy, policy.Options{
		ProviderNames: providerDisplayNames(cfg.Policy.GroupProviders()),
		AppName:       cfg.UI.AppName,
		VisibleAll:    cfg.Identity.GroupsHeaderAll,
		VisibleMax:    cfg.Identity.GroupsHeaderMax,
	})
	if err != nil {
		return nil, nil, usageErr(err)
	}
	if a.opts.Members == nil {
		return nil, nil, usageErr(errors.New("policy: is configured, but this Arbor has no membership service to judge users by (app.Options.Members); remove policy: or use a build that has one"))
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

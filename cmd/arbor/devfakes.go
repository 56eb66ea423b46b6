package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

// startDevFakes starts a fake provider for every built-in plugin and returns
// the environment that points Arbor's provider configuration at them. The
// client secrets go into this process's environment, the only place Arbor
// reads them from besides files. publicURL is where the fakes send
// browsers back.
func startDevFakes(publicURL string) (*fakes.Set, []string, error) {
	set, err := fakes.Start(publicURL, fakes.Options{Edit: devFakeMemberships})
	if err != nil {
		return nil, nil, fmt.Errorf("dev: %w", err)
	}
	var env []string
	for _, kv := range set.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ARBOR_PROVIDER_") {
			if err := os.Setenv(k, v); err != nil {
				set.Close()
				return nil, nil, err
			}
			continue
		}
		env = append(env, kv)
	}
	return set, env, nil
}

// fakeURLs lists "name url" of the running fakes, for the start-up banner.
func fakeURLs(set *fakes.Set) []string {
	var out []string
	for _, name := range set.Names() {
		out = append(out, name+" "+set.Fakes[name].URL())
	}
	return out
}

// devFakeMemberships gives the fakes of `arbor dev` their memberships
// (docs/fake-providers.md, "Memberships"). The presets already have
// octocat in organisation vintner and its team platform and hubot in
// none; dev adds an organisation, acme, that octocat belongs to but that
// restricts OAuth apps, so that a policy naming github:acme shows the
// explanation Arbor gives for it. Change them while dev runs with
// POST <fake>/__fake/memberships {"user": "octocat", "groups": ["vintner"]}.
func devFakeMemberships(name string, c *fakeprovider.Config) {
	if name != "github" {
		return
	}
	c.RestrictedOrgs = append(c.RestrictedOrgs, "acme")
	c.Memberships["octocat"] = append(c.Memberships["octocat"], "acme")
}

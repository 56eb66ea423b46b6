package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/vintner/arbor/gateway/config"
	"github.com/vintner/arbor/plugins/builtin/fakes"
)

// startDevFakes starts a fake provider for every built-in plugin and returns
// the environment that points Arbor's provider configuration at them. The
// client secrets go into this process's environment, the only place Arbor
// reads them from besides files. publicURL is where the fakes send
// browsers back.
func startDevFakes(publicURL string) (*fakes.Set, []string, error) {
	set, err := fakes.Start(publicURL, fakes.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("dev: %w", err)
	}
	var env []string
	for _, name := range set.Names() {
		c := set.Configs[name]
		prefix := "ARBOR_PROVIDERS_" + strings.ToUpper(name) + "_"
		env = append(env,
			prefix+"CLIENT_ID="+c.ClientID,
			prefix+"AUTHORIZE_URL="+c.Endpoints.AuthorizeURL,
			prefix+"TOKEN_URL="+c.Endpoints.TokenURL,
			prefix+"API_BASE="+c.Endpoints.APIBase,
			prefix+"REVOKE_URL="+c.Endpoints.RevokeURL,
			prefix+"ALLOWED_HOSTS="+strings.Join(c.AllowedHosts, ","),
			prefix+"ALLOW_PRIVATE_HOSTS="+strings.Join(c.AllowPrivateHosts, ","),
		)
		if err := os.Setenv(config.ProviderSecretEnv(name), c.ClientSecret); err != nil {
			set.Close()
			return nil, nil, err
		}
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

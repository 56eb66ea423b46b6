// Package fakes runs a fake provider server (package sdk/fakeprovider) for
// each built-in plugin and says how to point the plugin at it. `arbor dev`
// and the gateway's sign-in tests use it, so that both talk to the same
// stand-ins for GitHub, GitLab, Bitbucket and Google and nothing leaves the
// machine.
package fakes

import (
	"fmt"
	"io/fs"
	"net/url"
	"strings"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/plugins/builtin"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/abi/manifest"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// Set is one running fake per built-in plugin.
type Set struct {
	// Fakes by plugin name.
	Fakes map[string]*fakeprovider.Provider
	// Configs are the plugin configurations that point each built-in
	// plugin at its fake: client credentials, endpoints on the fake's host
	// (the manifest's default paths) and that host allowed as a private
	// host.
	Configs map[string]plugins.PluginConfig
}

// Options adjust the fakes.
type Options struct {
	// Edit, if set, changes a fake's configuration (for example its users)
	// before it starts.
	Edit func(name string, c *fakeprovider.Config)
}

// Start starts the fakes. publicURL is the gateway's external URL: each
// fake accepts exactly publicURL + "/auth/callback/" + name as redirect URI.
func Start(publicURL string, opts Options) (*Set, error) {
	s := &Set{Fakes: map[string]*fakeprovider.Provider{}, Configs: map[string]plugins.PluginConfig{}}
	for _, name := range builtin.Names() {
		fc, ok := plugintest.Preset(name)
		if !ok {
			continue
		}
		pfs, _ := builtin.Plugin(name)
		raw, err := fs.ReadFile(pfs, manifest.File)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("fakes: reading the %s plugin's manifest: %w", name, err)
		}
		m, err := manifest.Parse(raw)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("fakes: the %s plugin's manifest: %w", name, err)
		}
		fc.Name += " (fake)"
		fc.RedirectURIs = []string{strings.TrimRight(publicURL, "/") + "/auth/callback/" + name}
		if opts.Edit != nil {
			opts.Edit(name, &fc)
		}
		f := fakeprovider.New(fc)
		if err := f.Start(); err != nil {
			s.Close()
			return nil, fmt.Errorf("fakes: starting the fake %s: %w", name, err)
		}
		s.Fakes[name] = f
		base := f.URL()
		rehost := func(def string) string {
			if def == "" {
				return ""
			}
			u, err := url.Parse(def)
			if err != nil {
				return ""
			}
			return base + u.EscapedPath()
		}
		cfg := f.Config()
		host := strings.TrimPrefix(base, "http://")
		s.Configs[name] = plugins.PluginConfig{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoints: abi.Endpoints{
				AuthorizeURL: rehost(m.Endpoints.AuthorizeURL),
				TokenURL:     rehost(m.Endpoints.TokenURL),
				APIBase:      strings.TrimSuffix(rehost(m.Endpoints.APIBase), "/"),
				RevokeURL:    rehost(m.Endpoints.RevokeURL),
			},
			AllowedHosts:      []string{host},
			AllowPrivateHosts: []string{host},
		}
	}
	return s, nil
}

// Close stops every fake.
func (s *Set) Close() {
	for _, f := range s.Fakes {
		f.Close()
	}
}

// Names returns the names of the running fakes, sorted.
func (s *Set) Names() []string {
	var out []string
	for _, n := range builtin.Names() {
		if _, ok := s.Fakes[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

// Environ returns the environment that configures Arbor's providers to use
// the fakes: ARBOR_PROVIDERS_<NAME>_… for the client id, endpoints and
// allowed hosts, and ARBOR_PROVIDER_<NAME>_CLIENT_SECRET for the secret.
func (s *Set) Environ() []string {
	var env []string
	for _, name := range s.Names() {
		c := s.Configs[name]
		up := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		prefix := "ARBOR_PROVIDERS_" + up + "_"
		env = append(env,
			prefix+"CLIENT_ID="+c.ClientID,
			prefix+"AUTHORIZE_URL="+c.Endpoints.AuthorizeURL,
			prefix+"TOKEN_URL="+c.Endpoints.TokenURL,
			prefix+"API_BASE="+c.Endpoints.APIBase,
			prefix+"REVOKE_URL="+c.Endpoints.RevokeURL,
			prefix+"ALLOWED_HOSTS="+strings.Join(c.AllowedHosts, ","),
			prefix+"ALLOW_PRIVATE_HOSTS="+strings.Join(c.AllowPrivateHosts, ","),
			"ARBOR_PROVIDER_"+up+"_CLIENT_SECRET="+c.ClientSecret,
		)
	}
	return env
}

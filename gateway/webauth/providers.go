package webauth

import (
	"context"
	"sort"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
)

// Provider is one sign-in provider as the web flow uses it. *plugins.Plugin
// is one; nothing else is expected to be.
type Provider interface {
	Name() string
	AuthorizeURL(ctx context.Context, in plugins.AuthorizeInput) (string, error)
	Exchange(ctx context.Context, in plugins.ExchangeInput) (*abi.Token, error)
	User(ctx context.Context, accessToken string) (*abi.User, error)
}

// ProviderInfo describes a sign-in provider for pages.
type ProviderInfo struct {
	Name        string
	DisplayName string
	// PKCE says whether the provider accepts PKCE.
	PKCE bool
}

// Providers lists the providers users can sign in with.
type Providers interface {
	// Ready reports whether the provider list is known: false while the
	// plugins are still loading at start-up.
	Ready() bool
	// Login returns the providers that can sign users in now, ordered for
	// display.
	Login() []ProviderInfo
	// LoginProvider returns one of them by name.
	LoginProvider(name string) (Provider, ProviderInfo, bool)
}

// Registry is the part of *plugins.Registry that PluginProviders uses.
type Registry interface {
	List() []*plugins.Plugin
	Get(name string) (*plugins.Plugin, bool)
}

// PluginProviders offers every loaded plugin whose manifest says it can sign
// users in and that has an OAuth client configured. registry returns the
// current registry, or nil while plugins are still loading (no providers
// then).
func PluginProviders(registry func() Registry) Providers {
	return pluginProviders{registry: registry}
}

type pluginProviders struct {
	registry func() Registry
}

func info(p *plugins.Plugin) (ProviderInfo, bool) {
	m := p.Manifest()
	if !m.Kind.Login() || !p.Configured() {
		return ProviderInfo{}, false
	}
	name := m.DisplayName
	if name == "" {
		name = m.Name
	}
	return ProviderInfo{Name: m.Name, DisplayName: name, PKCE: m.PKCE}, true
}

func (pp pluginProviders) Ready() bool { return pp.registry() != nil }

func (pp pluginProviders) Login() []ProviderInfo {
	reg := pp.registry()
	if reg == nil {
		return nil
	}
	var out []ProviderInfo
	for _, p := range reg.List() {
		if in, ok := info(p); ok {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (pp pluginProviders) LoginProvider(name string) (Provider, ProviderInfo, bool) {
	reg := pp.registry()
	if reg == nil {
		return nil, ProviderInfo{}, false
	}
	p, ok := reg.Get(name)
	if !ok {
		return nil, ProviderInfo{}, false
	}
	in, ok := info(p)
	if !ok {
		return nil, ProviderInfo{}, false
	}
	return p, in, true
}

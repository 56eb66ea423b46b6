// Package providers answers "which providers can users sign in with, and
// which can they connect as Git providers, right now" from the loaded
// plugins and their configuration.
//
// Nothing in gateway/ knows a provider by name: a plugin's manifest says
// what it is for (kind login, git or both) and the operator's
// configuration says whether it has an OAuth client. A plugin added to
// plugins.dir therefore shows up on the sign-in and Integrations pages after
// a reload, with no change here.
package providers

import (
	"context"
	"sort"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
)

// Info describes a provider for pages and APIs.
type Info struct {
	Name        string
	DisplayName string
	// PKCE says whether the provider accepts PKCE.
	PKCE bool
	// Login and Git say what the provider can be used for.
	Login, Git bool
}

// Provider is what Arbor calls on a provider. *plugins.Plugin is one.
type Provider interface {
	Name() string
	AuthorizeURL(ctx context.Context, in plugins.AuthorizeInput) (string, error)
	Exchange(ctx context.Context, in plugins.ExchangeInput) (*abi.Token, error)
	Refresh(ctx context.Context, in plugins.RefreshInput) (*abi.Token, error)
	Revoke(ctx context.Context, in plugins.RevokeInput) error
	User(ctx context.Context, accessToken string) (*abi.User, error)
	Repos(ctx context.Context, in plugins.ReposInput) (*abi.RepoPage, error)
}

// Registry is the part of *plugins.Registry used here.
type Registry interface {
	List() []*plugins.Plugin
	Get(name string) (*plugins.Plugin, bool)
}

// Set is the providers of a registry that may change (reloads) or not exist
// yet (plugins still loading at start-up).
type Set struct {
	registry func() Registry
}

// FromRegistry returns the providers of the registry that registry()
// returns, or none while it returns nil.
func FromRegistry(registry func() Registry) *Set { return &Set{registry: registry} }

func info(p *plugins.Plugin) (Info, bool) {
	if !p.Configured() {
		return Info{}, false
	}
	m := p.Manifest()
	name := m.DisplayName
	if name == "" {
		name = m.Name
	}
	return Info{Name: m.Name, DisplayName: name, PKCE: m.PKCE, Login: m.Kind.Login(), Git: m.Kind.Git()}, true
}

// Ready reports whether the plugins have loaded.
func (s *Set) Ready() bool { return s.registry() != nil }

func (s *Set) list(keep func(Info) bool) []Info {
	reg := s.registry()
	if reg == nil {
		return nil
	}
	var out []Info
	for _, p := range reg.List() {
		if in, ok := info(p); ok && keep(in) {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Login lists the configured providers users can sign in with, by name.
func (s *Set) Login() []Info { return s.list(func(in Info) bool { return in.Login }) }

// Git lists the configured providers users can connect, by name.
func (s *Set) Git() []Info { return s.list(func(in Info) bool { return in.Git }) }

// Get returns a configured provider by name, whatever it is for.
func (s *Set) Get(name string) (Provider, Info, bool) {
	reg := s.registry()
	if reg == nil {
		return nil, Info{}, false
	}
	p, ok := reg.Get(name)
	if !ok {
		return nil, Info{}, false
	}
	in, ok := info(p)
	if !ok {
		return nil, Info{}, false
	}
	return p, in, true
}

package app

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/service/connections"
)

// gitHostDefault is a built-in provider's Git host and the Basic user name
// it takes with an OAuth token as password.
type gitHostDefault struct{ url, user string }

// builtinGitHosts are the built-in plugins' Git hosts. They live here, in
// the app's wiring, until the plugins say it themselves (issue 22, part 3);
// gateway/ knows no provider.
var builtinGitHosts = map[string]gitHostDefault{
	"github":    {"https://github.com", "x-access-token"},
	"gitlab":    {"https://gitlab.com", "oauth2"},
	"bitbucket": {"https://bitbucket.org", "x-token-auth"},
}

// gitHosts answers gitproxy.Hosts from the providers' configuration and the
// built-in defaults, for providers that are loaded and can be connected.
type gitHosts struct {
	hosts map[string]gitHostDefault // by provider, resolved at start
	provs connections.Providers
}

// newGitHosts resolves each configured provider's Git host: git_url and
// git_user, else api_base without /api/v3 or /api/v4 (GitHub Enterprise,
// self-managed GitLab) with the built-in user name, else the built-in
// default. A git_url without a git_user for a provider Arbor does not
// know is an error in the configuration.
func newGitHosts(cfg config.Config, provs connections.Providers) (*gitHosts, error) {
	g := &gitHosts{hosts: map[string]gitHostDefault{}, provs: provs}
	for name, p := range cfg.Providers {
		def, builtin := builtinGitHosts[name]
		h := def
		if p.GitUser != "" {
			h.user = p.GitUser
		}
		switch {
		case p.GitURL != "":
			h.url = p.GitURL
		case p.APIBase != "" && builtin:
			for _, suffix := range []string{"/api/v3", "/api/v4"} {
				if base, ok := strings.CutSuffix(strings.TrimRight(p.APIBase, "/"), suffix); ok {
					h.url = base
				}
			}
		}
		if h.url == "" {
			continue // no Git host: not served by the Git proxy
		}
		u, err := url.Parse(h.url)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			shown := "(not a URL)"
			if err == nil {
				shown = u.Redacted() // never the credentials it may hold
			}
			return nil, fmt.Errorf("providers.%s.git_url %s: want an http(s) URL without credentials or query, e.g. https://github.example.com", name, shown)
		}
		if h.user == "" {
			return nil, fmt.Errorf("providers.%s.git_user is required with git_url: the Basic user name the Git host takes with an OAuth token (GitHub x-access-token, GitLab oauth2, Bitbucket x-token-auth)", name)
		}
		g.hosts[name] = h
	}
	for name, h := range builtinGitHosts {
		if _, ok := g.hosts[name]; !ok {
			g.hosts[name] = h
		}
	}
	return g, nil
}

// GitHost implements gitproxy.Hosts: only for a provider that is loaded,
// configured and connectable (a Git provider).
func (g *gitHosts) GitHost(provider string) (string, string, bool) {
	h, ok := g.hosts[provider]
	if !ok {
		return "", "", false
	}
	if _, info, ok := g.provs.Get(provider); !ok || !info.Git {
		return "", "", false
	}
	return h.url, h.user, true
}

package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/service/connections"
)

// gitHostOverride is an operator's providers.<name>.git_url and git_user:
// either may be empty, and each wins over the plugin's answer.
type gitHostOverride struct{ url, user string }

// gitHoster is the part of *plugins.Plugin that says where a provider's
// Git host is (the git_host operation, asked once per loaded version).
type gitHoster interface {
	Implements(op abi.Op) bool
	GitHost(ctx context.Context) (*abi.GitHost, error)
}

// gitHosts answers gitproxy.Hosts for providers that are loaded and can be
// connected: the operator's git_url and git_user, else what the provider's
// plugin says (git_host). gateway/ knows no provider by name, and neither
// does this file: the built-in plugins say their own Git hosts.
type gitHosts struct {
	overrides map[string]gitHostOverride // by provider, checked at start
	provs     connections.Providers
	log       *slog.Logger
	warned    sync.Map // provider+reason → struct{}: each problem is logged once
}

// newGitHosts checks the providers' git_url overrides: an http(s) URL
// without credentials or query.
func newGitHosts(cfg config.Config, provs connections.Providers, log *slog.Logger) (*gitHosts, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &gitHosts{overrides: map[string]gitHostOverride{}, provs: provs, log: log}
	for name, p := range cfg.Providers {
		if p.GitURL == "" && p.GitUser == "" {
			continue
		}
		if p.GitURL != "" {
			u, err := url.Parse(p.GitURL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" {
				shown := "(not a URL)"
				if err == nil {
					shown = u.Redacted() // never the credentials it may hold
				}
				return nil, fmt.Errorf("providers.%s.git_url %s: want an http(s) URL without credentials or query, e.g. https://github.example.com", name, shown)
			}
		}
		g.overrides[name] = gitHostOverride{url: p.GitURL, user: p.GitUser}
	}
	return g, nil
}

// GitHost implements gitproxy.Hosts: only for a provider that is loaded,
// configured and connectable (a Git provider), and has a Git host and a
// Basic user name from its configuration or its plugin.
func (g *gitHosts) GitHost(provider string) (string, string, bool) {
	prov, info, ok := g.provs.Get(provider)
	if !ok || !info.Git {
		return "", "", false
	}
	o := g.overrides[provider]
	base, user := o.url, o.user
	if base == "" || user == "" {
		if p, ok := prov.(gitHoster); ok && p.Implements(abi.OpGitHost) {
			// The answer is kept per loaded version: only the first call
			// after a load reaches the plugin, bounded by its deadline.
			h, err := p.GitHost(context.Background())
			if err != nil {
				g.warnOnce(provider, "plugin", "git proxy: the provider's plugin did not say where its Git host is; its Git URLs answer 404 until it does, or set providers."+provider+".git_url and git_user",
					"provider", provider, "error", err)
				return "", "", false
			}
			if base == "" {
				base = h.URL
			}
			if user == "" {
				user = h.BasicUser
			}
		}
	}
	switch {
	case base == "":
		return "", "", false // no Git host: not served by the Git proxy
	case user == "":
		g.warnOnce(provider, "user", "git proxy: providers."+provider+".git_url is set but no Basic user name is known for it: set providers."+provider+".git_user (GitHub x-access-token, GitLab oauth2, Bitbucket x-token-auth); its Git URLs answer 404 until then",
			"provider", provider)
		return "", "", false
	}
	return base, user, true
}

// warnOnce logs msg the first time provider has the problem what.
func (g *gitHosts) warnOnce(provider, what, msg string, args ...any) {
	if _, seen := g.warned.LoadOrStore(provider+"\x00"+what, struct{}{}); !seen {
		g.log.Warn(msg, args...)
	}
}

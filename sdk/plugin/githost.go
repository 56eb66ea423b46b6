package plugin

import "strings"

// GitHosting declares where a provider's Git repositories are served over
// HTTPS and how an OAuth token authenticates there (the git_host
// operation):
//
//	Git: &plugin.GitHosting{URL: "https://github.com", User: "x-access-token", APISuffix: "/api/v3"},
//
// The host asks once per loaded plugin version, with the effective
// endpoints (the operator's overrides applied), and keeps the answer.
type GitHosting struct {
	// URL is the Git host for the provider's public service
	// ("https://github.com"), used when the API base does not end in
	// APISuffix.
	URL string
	// User is the HTTP Basic user name that goes with the access token
	// as password (GitHub "x-access-token", GitLab "oauth2", Bitbucket
	// "x-token-auth").
	User string
	// APISuffix, if set, is the path the REST API has under the Git
	// host on a self-hosted install: an API base ending in it (GitHub
	// Enterprise "https://ghe.example.com/api/v3", self-managed GitLab
	// "https://gitlab.example.com/api/v4") has its Git host at the API
	// base without it ("https://ghe.example.com"). Empty: the Git host
	// is always URL (Bitbucket Cloud).
	APISuffix string
}

// For returns the Git host for the endpoints e: the API base without
// APISuffix when it ends in it (and is an http(s) URL without query),
// else URL.
func (g *GitHosting) For(e Endpoints) *GitHost {
	h := &GitHost{URL: strings.TrimRight(g.URL, "/"), BasicUser: g.User}
	if g.APISuffix == "" {
		return h
	}
	base, ok := strings.CutSuffix(strings.TrimRight(e.APIBase, "/"), strings.TrimRight(g.APISuffix, "/"))
	if !ok {
		return h
	}
	if !plainHTTPURL(base) {
		return h
	}
	h.URL = base
	return h
}

// plainHTTPURL reports whether s is an http(s) URL with a host and without
// credentials, query or fragment. It does not import net/url, which would
// add about 680 kB to every module.
func plainHTTPURL(s string) bool {
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "http://"); !ok {
			return false
		}
	}
	host, _, _ := strings.Cut(rest, "/")
	return host != "" && !strings.ContainsAny(rest, "@?#") && !strings.ContainsAny(host, " \\")
}

// check reports what is missing from the declaration.
func (g *GitHosting) check() string {
	switch {
	case g.URL == "" && g.APISuffix == "":
		return "plugin.Provider: Git.URL and Git.APISuffix are both empty: set the Git host's URL (\"https://github.com\")"
	case g.User == "":
		return "plugin.Provider: Git.User is empty: name the Basic user name that goes with an OAuth token (\"x-access-token\")"
	case g.APISuffix != "" && !strings.HasPrefix(g.APISuffix, "/"):
		return "plugin.Provider: Git.APISuffix must start with \"/\" (\"/api/v3\")"
	}
	return ""
}

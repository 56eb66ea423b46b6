package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/vintner/arbor/internal/fakegit"
	"github.com/vintner/arbor/plugins/builtin/fakes"
)

// devGitHost is what `arbor dev` serves behind each fake Git provider:
// the Basic user name its Git host takes and the repositories it holds,
// so that a clone through the Git proxy (docs/git-proxy.md) works on one
// machine.
type devGitHost struct {
	user  string
	repos map[string]map[string]string
}

var devGitHosts = map[string]devGitHost{
	"github": {"x-access-token", map[string]map[string]string{
		"octocat/hello-world": {"README.md": "# Hello World!\n\nMy first repository on the fake GitHub of `arbor dev`.\n"},
	}},
	"gitlab": {"oauth2", map[string]map[string]string{
		"jsmith/hello-world":           {"README.md": "# Hello World\n\nOn the fake GitLab of `arbor dev`.\n"},
		"vintner/platform/hello-world": {"README.md": "# Hello World\n\nIn a GitLab subgroup: /git/gitlab/vintner/platform/hello-world.git\n"},
	}},
	"bitbucket": {"x-token-auth", map[string]map[string]string{
		"atlas/hello-world": {"README.md": "# Hello World\n\nOn the fake Bitbucket of `arbor dev`.\n"},
	}},
}

// startDevGitHosts starts a fake Git host (package fakegit) for each fake
// Git provider and returns the environment that points the providers'
// git_url at them, and "name url" lines for the banner. Without git
// installed it warns on w and serves none: the rest of dev works.
func startDevGitHosts(set *fakes.Set, w io.Writer) (stop func(), env, banner []string) {
	var hosts []*fakegit.Host
	stop = func() {
		for _, h := range hosts {
			h.Close()
		}
	}
	names := make([]string, 0, len(devGitHosts))
	for name := range devGitHosts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := set.Fakes[name]
		if f == nil {
			continue
		}
		d := devGitHosts[name]
		h, err := fakegit.Start(fakegit.Options{User: d.user, ValidToken: f.ValidAccessToken, Repos: d.repos})
		if err != nil {
			fmt.Fprintf(w, "dev: no fake Git repositories: %v\n", err)
			stop()
			return func() {}, nil, nil
		}
		hosts = append(hosts, h)
		env = append(env, "ARBOR_PROVIDERS_"+strings.ToUpper(name)+"_GIT_URL="+h.URL())
		for repo := range d.repos {
			banner = append(banner, "/git/"+name+"/"+repo+".git")
		}
	}
	sort.Strings(banner)
	return stop, env, banner
}

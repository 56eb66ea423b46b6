package fakeprovider

import "fmt"

// Repo is a repository as a test expects a plugin to list it.
type Repo struct {
	FullName      string
	Private       bool
	DefaultBranch string
	// Internal: visible to the instance's users only (GitLab); a plugin
	// may report it as private or not.
	Internal bool
}

// VisibleRepos returns the repositories that a token of the user with
// that login can list through the fake's API in its current
// configuration, in no particular order; nil for an unknown login ("" is
// the first user). With Config.AppInstallations (GitHub App user access
// tokens) that is the repositories of the user's installation
// (User.Installation): all, the first Selected, or none. Tests
// (and sdk/plugintest) compare a plugin's listing with it.
//
// The repositories are generated: the user's own repo-001 … repo-N
// (every third private, every seventh on "master"), plus whatever the
// flavor adds or hides (documented on the presets). Bitbucket: the
// repositories of the user's personal workspace and of every shared
// workspace (Config.Workspaces) the user is a member of.
func (p *Provider) VisibleRepos(login string) []Repo {
	u := p.findUser(login)
	if u == nil {
		return nil
	}
	if p.cfg.Flavor == FlavorBitbucket {
		return p.bitbucketVisible(u)
	}
	n := p.visibleCount(u)
	out := make([]Repo, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, generatedRepo(p.cfg.Flavor, u.Login, i))
	}
	return out
}

// generatedRepo is the i-th generated repository of owner.
func generatedRepo(f Flavor, owner string, i int) Repo {
	r := Repo{FullName: fmt.Sprintf("%s/repo-%03d", owner, i), Private: i%3 == 0, DefaultBranch: "main"}
	if i%7 == 0 {
		r.DefaultBranch = "master"
	}
	r.Internal = f == FlavorGitLab && !r.Private && i%5 == 0
	return r
}

// visibleCount is how many of u's generated repositories (the first n)
// u's tokens can list.
func (p *Provider) visibleCount(u *User) int {
	if !p.cfg.AppInstallations {
		return u.Repos
	}
	switch in := u.Installation; {
	case in.ID == 0:
		return 0
	case in.Selected > 0:
		return min(in.Selected, u.Repos)
	}
	return u.Repos
}

package workers

// Repository credentials (issue 22): a worker record with scopes. It
// authenticates a Git client (ArgoCD, `git` with a credential helper) on
// Arbor's Git proxy with HTTP Basic, user name = the credential's id,
// password = its token. The token, its storage (SHA-256 only), rotation
// and revocation are a worker's; what differs is where it is accepted:
//
//   - a record without scopes is a Tendril worker: X-Worker-ID and
//     X-Worker-Token on the worker routes, never on the Git proxy;
//   - a record with scopes is a repository credential: Basic on the Git
//     proxy only, never as a worker. A credential leaked from an ArgoCD
//     secret opens repositories, not the app's worker API.

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Scopes of a repository credential.
const (
	// ScopeGitRead allows clone, fetch and ls-remote (git-upload-pack).
	ScopeGitRead = "git:read"
	// ScopeGitWrite allows push (git-receive-pack) too; it implies
	// ScopeGitRead.
	ScopeGitWrite = "git:write"
)

// Limits of a repository credential's patterns.
const (
	// MaxRepoPatterns is the most patterns one credential holds.
	MaxRepoPatterns = 32
	// MaxRepoPattern is the longest pattern, in bytes.
	MaxRepoPattern = 256
)

// ErrBadScope: a scope is unknown, or repository patterns were given
// without a git scope.
var ErrBadScope = errors.New("workers: bad scope")

// ErrBadRepoPattern: a repository pattern is malformed or there are too
// many.
var ErrBadRepoPattern = errors.New("workers: bad repository pattern")

// Grant is what a registration asks for besides a name: nothing for a
// Tendril worker; scopes (and optionally repository patterns) for a
// repository credential.
type Grant struct {
	// Scopes: empty for a worker; ScopeGitRead and/or ScopeGitWrite for a
	// repository credential.
	Scopes []string
	// Repos limits a repository credential to matching repositories (see
	// MatchRepo); empty allows all. Only with Scopes.
	Repos []string
}

// CleanGrant checks and normalizes g: scopes known, sorted, without
// duplicates, git:read added to git:write; patterns valid (see
// MatchRepo), lower-cased, without a trailing ".git", without
// duplicates. Errors wrap ErrBadScope or ErrBadRepoPattern and say what
// to write instead.
func CleanGrant(g Grant) (Grant, error) {
	var out Grant
	for _, s := range g.Scopes {
		switch s = strings.TrimSpace(s); s {
		case ScopeGitRead:
		case ScopeGitWrite:
			out.Scopes = append(out.Scopes, ScopeGitRead)
		default:
			return Grant{}, fmt.Errorf("%w: %q; write \"scopes\": [\"git:read\"], or [\"git:read\", \"git:write\"] to push too", ErrBadScope, s)
		}
		out.Scopes = append(out.Scopes, s)
	}
	slices.Sort(out.Scopes)
	out.Scopes = slices.Compact(out.Scopes)
	if len(g.Repos) > 0 && len(out.Scopes) == 0 {
		return Grant{}, fmt.Errorf("%w: repository patterns need a git scope; write \"scopes\": [\"git:read\"] with them", ErrBadScope)
	}
	if len(g.Repos) > MaxRepoPatterns {
		return Grant{}, fmt.Errorf("%w: %d patterns; at most %d", ErrBadRepoPattern, len(g.Repos), MaxRepoPatterns)
	}
	for _, p := range g.Repos {
		c, err := cleanPattern(p)
		if err != nil {
			return Grant{}, err
		}
		if !slices.Contains(out.Repos, c) {
			out.Repos = append(out.Repos, c)
		}
	}
	return out, nil
}

// cleanPattern checks one pattern: [provider ":"] segment ("/" segment)+,
// each segment a path.Match pattern, the last one possibly "**".
func cleanPattern(p string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %q %s; write owner/repo, owner/*, group/** or github:owner/repo", ErrBadRepoPattern, p, why)
	}
	c := strings.ToLower(strings.TrimSpace(p))
	if c == "" || len(c) > MaxRepoPattern {
		return bad(fmt.Sprintf("is empty or longer than %d bytes", MaxRepoPattern))
	}
	provider, repo, found := strings.Cut(c, ":")
	if !found {
		provider, repo = "", c
	} else if provider == "" || strings.ContainsAny(provider, "/*?[") {
		return bad("has an empty or malformed provider before ':'")
	}
	repo = strings.TrimSuffix(repo, ".git")
	segs := strings.Split(repo, "/")
	if len(segs) < 2 {
		return bad("names no owner and repository")
	}
	for i, s := range segs {
		switch {
		case s == "" || s == "." || s == "..":
			return bad("has an empty, '.' or '..' segment")
		case s == "**" && i == len(segs)-1:
		case strings.Contains(s, "**"):
			return bad("uses ** other than as the whole last segment")
		case strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r == 0x7f || r == '\\' }):
			return bad("has spaces, control characters or backslashes")
		default:
			if _, err := path.Match(s, ""); err != nil {
				return bad("is not a valid glob")
			}
		}
	}
	if found {
		return provider + ":" + repo, nil
	}
	return repo, nil
}

// MatchRepo reports whether repo (owner/repo, or group/subgroup/repo, as
// in the Git proxy's URL, without ".git") of provider matches one of
// patterns; no patterns match everything. A pattern is an optional
// provider and ':', then one glob per path segment (path.Match: * and ?
// stay within a segment); a last segment "**" matches one or more
// segments. Matching ignores case, as GitHub, GitLab and Bitbucket do for
// repository paths.
//
//	octocat/*         octocat/hello-world, not octocat/a/b
//	group/**          group/app, group/sub/app
//	github:octocat/*  the same, on github only
func MatchRepo(patterns []string, provider, repo string) bool {
	if len(patterns) == 0 {
		return true
	}
	repo = strings.ToLower(repo)
	segs := strings.Split(repo, "/")
	for _, p := range patterns {
		if prov, rest, ok := strings.Cut(p, ":"); ok {
			if !strings.EqualFold(prov, provider) {
				continue
			}
			p = rest
		}
		if matchSegments(strings.Split(p, "/"), segs) {
			return true
		}
	}
	return false
}

func matchSegments(pat, segs []string) bool {
	for i, p := range pat {
		if p == "**" && i == len(pat)-1 {
			return len(segs) > i
		}
		if i >= len(segs) {
			return false
		}
		if ok, err := path.Match(p, segs[i]); err != nil || !ok {
			return false
		}
	}
	return len(pat) == len(segs)
}

// IsRepoCredential reports whether scopes make a record a repository
// credential rather than a worker.
func IsRepoCredential(scopes []string) bool { return len(scopes) > 0 }

// CanPush reports whether the credential may push (git:write).
func (id Identity) CanPush() bool { return slices.Contains(id.Scopes, ScopeGitWrite) }

// CanFetch reports whether the credential may clone and fetch (git:read).
func (id Identity) CanFetch() bool { return slices.Contains(id.Scopes, ScopeGitRead) }

// AllowsRepo reports whether the credential's patterns admit repo of
// provider (MatchRepo).
func (id Identity) AllowsRepo(provider, repo string) bool {
	return MatchRepo(id.Repos, provider, repo)
}

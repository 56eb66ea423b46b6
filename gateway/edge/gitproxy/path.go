package gitproxy

import (
	"strings"
)

// Prefix is where the Git proxy serves.
const Prefix = "/git/"

// Git's smart HTTP services.
const (
	ServiceUploadPack  = "git-upload-pack"  // clone, fetch, ls-remote
	ServiceReceivePack = "git-receive-pack" // push
)

// Limits of a repository path.
const (
	maxPath     = 512 // bytes after Prefix
	maxSegments = 20  // GitLab allows 20 levels of subgroups
)

// request is a Git proxy request as its path and query say.
type request struct {
	provider string
	repo     string // owner/repo or group/…/repo, without ".git"
	service  string // ServiceUploadPack or ServiceReceivePack
	refs     bool   // GET info/refs (the advertisement), else the POST
}

// errPath is why a path is refused; the message is shown to the client.
type errPath struct{ msg string }

func (e *errPath) Error() string { return e.msg }

var (
	errNotSmart = &errPath{"Arbor relays Git's smart HTTP protocol only: info/refs?service=git-upload-pack or git-receive-pack, and the POSTs that follow; upgrade git or drop the dumb-HTTP URL"}
	errShape    = &errPath{"A Git URL through Arbor is /git/{provider}/{owner}/{repo}.git (GitLab: /git/{provider}/{group}/{subgroup}/{repo}.git)"}
	errChars    = &errPath{"A repository path has letters, digits, '.', '_' and '-' in each segment, no '%' escapes, '.' or '..' segments"}
)

// parse reads a Git proxy request from the raw path (as the client sent
// it, escapes included), the method and the service query parameter. It
// is strict: anything a provider's repository names cannot contain is
// refused, so that the path sent to the provider is the one checked
// against the credential's patterns, and no escape, dot segment or
// separator can make them differ.
func parse(method, rawPath, service string) (request, error) {
	rest, ok := strings.CutPrefix(rawPath, Prefix)
	if !ok || len(rest) > maxPath {
		return request{}, errShape
	}
	if strings.ContainsAny(rest, "%\\") {
		return request{}, errChars
	}
	var r request
	switch {
	case strings.HasSuffix(rest, "/info/refs"):
		if method != "GET" {
			return request{}, errNotSmart
		}
		rest, r.refs, r.service = strings.TrimSuffix(rest, "/info/refs"), true, service
		if service != ServiceUploadPack && service != ServiceReceivePack {
			return request{}, errNotSmart
		}
	case strings.HasSuffix(rest, "/"+ServiceUploadPack):
		rest, r.service = strings.TrimSuffix(rest, "/"+ServiceUploadPack), ServiceUploadPack
	case strings.HasSuffix(rest, "/"+ServiceReceivePack):
		rest, r.service = strings.TrimSuffix(rest, "/"+ServiceReceivePack), ServiceReceivePack
	default:
		return request{}, errNotSmart
	}
	if !r.refs && method != "POST" {
		return request{}, errNotSmart
	}
	provider, repo, ok := strings.Cut(rest, "/")
	if !ok || !validProvider(provider) {
		return request{}, errShape
	}
	repo = strings.TrimSuffix(repo, ".git")
	segs := strings.Split(repo, "/")
	if len(segs) < 2 || len(segs) > maxSegments {
		return request{}, errShape
	}
	for _, s := range segs {
		if !validSegment(s) {
			return request{}, errChars
		}
	}
	r.provider, r.repo = provider, repo
	return r, nil
}

// validProvider matches plugin names: ^[a-z][a-z0-9_-]{0,31}$.
func validProvider(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validSegment: one path segment of a repository as GitHub, GitLab and
// Bitbucket name them: letters, digits, '.', '_', '-', not "." or "..",
// not ending in ".git" (that would be a repository "x.git.git").
func validSegment(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

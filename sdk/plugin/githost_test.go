//go:build !wasip1

package plugin

import (
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
)

// TestGitHostingFor: the Git host follows the API base of a self-hosted
// install (GitHub Enterprise, self-managed GitLab) and is the public one
// otherwise.
func TestGitHostingFor(t *testing.T) {
	github := &GitHosting{URL: "https://github.com", User: "x-access-token", APISuffix: "/api/v3"}
	gitlab := &GitHosting{URL: "https://gitlab.com/", User: "oauth2", APISuffix: "/api/v4"}
	bitbucket := &GitHosting{URL: "https://bitbucket.org", User: "x-token-auth"}
	for _, c := range []struct {
		name     string
		g        *GitHosting
		apiBase  string
		url, usr string
	}{
		{"github default", github, "https://api.github.com", "https://github.com", "x-access-token"},
		{"github none configured", github, "", "https://github.com", "x-access-token"},
		{"github enterprise", github, "https://ghe.example.com/api/v3", "https://ghe.example.com", "x-access-token"},
		{"github enterprise, trailing slash", github, "https://ghe.example.com/api/v3/", "https://ghe.example.com", "x-access-token"},
		{"github enterprise under a path", github, "https://example.com/ghe/api/v3", "https://example.com/ghe", "x-access-token"},
		{"github a fake without the suffix", github, "http://127.0.0.1:8080", "https://github.com", "x-access-token"},
		{"github not a URL before the suffix", github, "/api/v3", "https://github.com", "x-access-token"},
		{"github credentials in the base", github, "https://u:p@ghe.example.com/api/v3", "https://github.com", "x-access-token"},
		{"gitlab.com", gitlab, "https://gitlab.com/api/v4", "https://gitlab.com", "oauth2"},
		{"gitlab self-managed", gitlab, "https://gitlab.example.com/api/v4", "https://gitlab.example.com", "oauth2"},
		{"gitlab v3 is not v4", gitlab, "https://gitlab.example.com/api/v3", "https://gitlab.com", "oauth2"},
		{"bitbucket fixed", bitbucket, "https://api.bitbucket.org/2.0", "https://bitbucket.org", "x-token-auth"},
		{"bitbucket ignores any base", bitbucket, "https://bb.example.com/api/v3", "https://bitbucket.org", "x-token-auth"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.g.For(Endpoints{APIBase: c.apiBase})
			if got.URL != c.url || got.BasicUser != c.usr {
				t.Errorf("For(%q) = %q %q, want %q %q", c.apiBase, got.URL, got.BasicUser, c.url, c.usr)
			}
		})
	}
}

// TestDispatchGitHost: a Provider with Git declares git_host and answers
// it for the request's endpoints; without Git it neither declares nor
// answers it; an incomplete declaration is refused at Register.
func TestDispatchGitHost(t *testing.T) {
	defer func(p any) { provider = p }(provider)
	p := &Provider{Git: &GitHosting{URL: "https://github.com", User: "x-access-token", APISuffix: "/api/v3"}}
	if got := Implemented(p); !got.Has(abi.OpGitHost) {
		t.Errorf("implemented %s, want git_host in it", got)
	}
	provider = p
	res, payload := run(t, abi.OpGitHost, &abi.GitHostRequest{Endpoints: abi.Endpoints{APIBase: "https://ghe.example.com/api/v3"}})
	var h abi.GitHost
	if res.Code != "" || abi.Unmarshal(payload, &h) != nil || h != (abi.GitHost{URL: "https://ghe.example.com", BasicUser: "x-access-token"}) {
		t.Errorf("git_host: %+v %+v", res, h)
	}
	provider = &Provider{}
	if Implemented(provider).Has(abi.OpGitHost) {
		t.Error("a Provider without Git declares git_host")
	}
	if res, _ := run(t, abi.OpGitHost, &abi.GitHostRequest{}); res.Code != abi.CodeUnsupported {
		t.Errorf("git_host without Git: %+v", res)
	}
	for _, c := range []struct {
		g    GitHosting
		want string
	}{
		{GitHosting{User: "u"}, "Git.URL"},
		{GitHosting{URL: "https://h"}, "Git.User"},
		{GitHosting{URL: "https://h", User: "u", APISuffix: "api/v3"}, "APISuffix"},
	} {
		if got := (&Provider{Git: &c.g}).check(); !strings.Contains(got, c.want) {
			t.Errorf("check(%+v) = %q, want it to mention %s", c.g, got, c.want)
		}
	}
}

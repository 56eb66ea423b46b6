package plugins

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/vintner/arbor/sdk/abi"
)

// GitHost returns where the provider's Git host is and the HTTP Basic user
// name that goes with an OAuth token there (the git_host operation), for
// the plugin's effective endpoints: GitHub Enterprise's or a self-managed
// GitLab's API base gives its own Git host. The answer depends on the
// configuration only, so it is asked once per loaded version and kept; a
// failed call is not kept and is asked again next time.
//
// A URL of "" means the provider has no Git host for this configuration.
//
// # Errors
//
// A plugin that does not implement git_host (one built before ABI v1 had
// the operation, or a provider without Git, like Google) answers an
// *Error with code unsupported without calling the plugin; check
// Implements(abi.OpGitHost) first. An answer whose URL is not an http(s)
// URL without credentials or query, or that names no user, is internal.
func (p *Plugin) GitHost(ctx context.Context) (*abi.GitHost, error) {
	v, err := p.acquire(abi.OpGitHost)
	if err != nil {
		return nil, err
	}
	defer v.unref()
	if !v.ops.Has(abi.OpGitHost) {
		return nil, &Error{Plugin: p.name, Op: abi.OpGitHost, Code: abi.CodeUnsupported,
			Message: fmt.Sprintf("the plugin does not implement %s (it implements %s): configure git_url and git_user for it", abi.OpGitHost, v.ops)}
	}
	v.gitMu.Lock()
	defer v.gitMu.Unlock()
	if v.gitHost != nil {
		h := *v.gitHost
		return &h, nil
	}
	res, err := v.call(ctx, abi.OpGitHost, &abi.GitHostRequest{Endpoints: v.endpoints}, nil)
	if err != nil {
		return nil, err
	}
	var h abi.GitHost
	if err := h.UnmarshalABI(res.Payload); err != nil {
		return nil, v.errorf(abi.OpGitHost, abi.CodeInternal, false, err, "the plugin returned a malformed %s result: %v", abi.OpGitHost, err)
	}
	if msg := checkGitHost(h); msg != "" {
		return nil, v.errorf(abi.OpGitHost, abi.CodeInternal, false, nil,
			"%s: fix the plugin, or set git_url and git_user for it in the configuration", msg)
	}
	h.URL = strings.TrimRight(h.URL, "/")
	v.gitHost = &h
	out := h
	return &out, nil
}

// checkGitHost says what is wrong with a plugin's git_host answer.
func checkGitHost(h abi.GitHost) string {
	if h.URL == "" {
		return ""
	}
	u, err := url.Parse(h.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return "the plugin answered a Git host that is not an http(s) URL"
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "the plugin answered a Git host URL with credentials, a query or a fragment"
	case h.BasicUser == "":
		return "the plugin answered a Git host without a Basic user name"
	}
	return ""
}

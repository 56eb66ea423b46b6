package main

// The arbor-rule target: issue 19 asks that proxied throughput with a
// policy route rule be at least 0.95x the throughput without one.
//
// The rule needs a policy, and a policy is the whole process's: the Arbor
// of arbor-anon, arbor-auth and arbor-worker keeps running without one
// (its targets and verdicts stay as they were), and a second `arbor
// serve` runs beside it with the same command, binary, secrets and
// environment plus
//
//	policy.allow.groups: [github:vintner]
//	policy.routes: [{prefix: /, groups: [github:vintner/platform]}, {prefix: /admin/, …}]
//	policy.recheck_interval: 1h
//
// so that every proxied path is governed by a route rule (the longest of
// two prefixes matches "/"). Its caller is octocat, signed in through the
// fake GitHub: at sign-in the real membership service asks the GitHub
// plugin for octocat's groups (the fake's memberships: vintner and
// vintner/platform), stores them on the user and admits the sign-in.
// From then on each request takes the policy's per-request path: the
// chain asks the membership service for the Member (a cache hit), the gate
// finds the route and admits the Member, and Director adds the groups
// header and the assertion's groups claim. The re-check interval is set
// above the run's length, as the token lifetime is (-token-ttl), so that
// what is measured is that steady state, not a re-check.
//
// arbor-rule is paired with arbor-auth (the same request, with a session
// cookie, to the Arbor without a policy) round by round, and the verdict
// is on the median of the rounds' ratios.
//
// Before any measurement, prepareRule checks that the rule is in force:
// octocat's request reaches the upstream with the user id and the groups
// header; an anonymous request is sent to sign in (a route rule makes a
// public route need a session); and monalisa, who passes policy.allow
// (member of vintner) but not the route (not in vintner/platform), is
// refused with 403 route_not_allowed.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vintner/arbor/gateway/authn/session"
)

// groupsHeader is the header Arbor sets with the user's groups (the
// default of identity.groups_header); groupsPath is the upstream's path
// that answers its value.
const (
	groupsHeader = "X-Arbor-User-Groups"
	groupsPath   = "/__loadbench/groups"
	// ruleGroups is what octocat's requests must carry in groupsHeader:
	// the groups the policy names that octocat is in, sorted.
	ruleGroups = "github:vintner,github:vintner/platform"
)

// ruleNote describes the arbor-rule target in the output.
const ruleNote = "arbor-rule: a second `arbor serve` with policy.allow github:vintner and a route rule on / for github:vintner/platform; octocat (in vintner/platform by the fake GitHub, read by the membership service at sign-in) with its session cookie; paired with arbor-auth (the same request, no policy)"

// ruleOn reports whether this run has the arbor-rule target: it needs
// the real `arbor serve` with sign-in, and is left out of the runs that
// measure something else (-flood, -tls, -ab, -replicas 2).
func ruleOn(cfg config) bool {
	return cfg.rule && cfg.arborCmd != "" && cfg.auth && !cfg.flood && !cfg.tls && !cfg.ab && cfg.replicas == 1
}

// ruleEnv is the environment of the Arbor with a route rule, added to
// the first Arbor's: its own address, public URL and data dir (with
// -store etcd, its own key prefix on the same etcd), and the policy.
func ruleEnv(cfg config, addr, dataDir string) []string {
	env := []string{
		"ARBOR_LISTEN=" + addr,
		"ARBOR_PUBLIC_URL=http://" + addr,
		"ARBOR_DATA_DIR=" + dataDir,
		"ARBOR_POLICY_ALLOW_GROUPS=github:vintner",
		"ARBOR_POLICY_ROUTES=[{prefix: /, groups: [github:vintner/platform]}, {prefix: /admin/, groups: [github:vintner/ops]}]",
		// Above the run's length: no re-check during the measurement.
		"ARBOR_POLICY_RECHECK_INTERVAL=" + max(cfg.tokenTTL, time.Hour).String(),
	}
	if cfg.store == "etcd" {
		env = append(env, "ARBOR_STORE_ROOT=/arbor-rule/")
	}
	return append(env, sharedPluginCache()...)
}

// envPluginCache is plugins.cache_dir's variable.
const envPluginCache = "ARBOR_PLUGINS_CACHE_DIR"

// sharedPluginCache is the environment that gives a further Arbor the
// first one's cache of the plugins' compiled code (the default under its
// data dir, unless the environment names one for both), complete once the
// first is ready, so that it does not compile the plugins again (about 15
// s on a busy 2-core machine). wazero keys the cache by the module's hash
// and its own version, so another build of Arbor may share it: it finds
// its own entries or adds them.
func sharedPluginCache() []string {
	if os.Getenv(envPluginCache) == "" && os.Getenv("ARBOR_DATA_DIR") != "" {
		return []string{envPluginCache + "=" + filepath.Join(os.Getenv("ARBOR_DATA_DIR"), "plugin-cache")}
	}
	return nil
}

// prepareRule waits for the Arbor with a route rule at base, signs in as
// octocat, checks that the rule is in force (see the file's comment) and
// returns octocat's Cookie header value.
func prepareRule(cfg config, base, upAddr string) (string, error) {
	if err := waitReady(strings.TrimPrefix(base, "http://"), 3*time.Minute); err != nil {
		return "", fmt.Errorf("never became ready: %w", err)
	}
	value, err := signInAs(base, "octocat")
	if err != nil {
		return "", fmt.Errorf("signing in as octocat: %w", err)
	}
	cookie := session.InsecureCookieName + "=" + value

	before, err := upstreamCount(upAddr)
	if err != nil {
		return "", err
	}
	status, body, _, err := get(base+groupsPath, cookie)
	if err != nil {
		return "", err
	}
	after, err := upstreamCount(upAddr)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK || after-before != 1 || body != ruleGroups {
		return "", fmt.Errorf("octocat's request: %d, %d with %s at the upstream, %s %q; want 200, 1 and %q",
			status, after-before, userIDHeader, groupsHeader, body, ruleGroups)
	}

	status, _, loc, err := get(base+"/", "")
	if err != nil {
		return "", err
	}
	if status != http.StatusFound || !strings.Contains(loc, "/auth/sign-in") {
		return "", fmt.Errorf("an anonymous request under the route rule: %d to %q, want 302 to sign-in", status, loc)
	}

	other, err := signInAs(base, "monalisa")
	if err != nil {
		return "", fmt.Errorf("signing in as monalisa (in vintner, so policy.allow admits her): %w", err)
	}
	status, body, _, err = get(base+"/", session.InsecureCookieName+"="+other)
	if err != nil {
		return "", err
	}
	if status != http.StatusForbidden || !strings.Contains(body, "route_not_allowed") {
		return "", fmt.Errorf("monalisa (not in vintner/platform) under the route rule: %d, want 403 route_not_allowed\n%s", status, body)
	}
	return cookie, nil
}

// get requests u with the Cookie header cookie (if not empty), without
// following redirects, and returns the status, up to 4 KiB of the body and
// the Location header.
func get(u, cookie string) (status int, body, location string, err error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, "", "", err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	req.Header.Set("Accept", "application/json")
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b), resp.Header.Get("Location"), nil
}

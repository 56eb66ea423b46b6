package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/plugins/builtin/fakes"
	"github.com/vintner/arbor/sdk/fakeprovider"
)

// In dev mode without a config file, a policy a person can watch at work
// (docs/policy.md, "Try it"): /admin/ is limited to the fake GitHub's team
// vintner/platform, which octocat belongs to, and memberships are
// re-checked every 15 seconds rather than every 10 minutes, so taking
// octocat out of the team through the fake's control endpoint shows
// Arbor's explaining page on /admin/ within moments. policy.allow stays
// empty: every fake user of every fake provider can still sign in. A
// variable already set in the environment wins over each default.
const (
	devPolicyRoutesEnv  = "ARBOR_POLICY_ROUTES"
	devPolicyRecheckEnv = "ARBOR_POLICY_RECHECK_INTERVAL"

	devAdminPrefix  = "/admin/"
	devAdminGroup   = "github:vintner/platform"
	devPolicyRoutes = "[{prefix: " + devAdminPrefix + ", groups: [" + devAdminGroup + "]}]"
	devRecheck      = "15s"
)

// devPolicyEnv returns the dev policy's variables that the environment
// does not set already.
func devPolicyEnv() []string {
	var env []string
	for _, kv := range [][2]string{{devPolicyRoutesEnv, devPolicyRoutes}, {devPolicyRecheckEnv, devRecheck}} {
		if _, set := os.LookupEnv(kv[0]); !set {
			env = append(env, kv[0]+"="+kv[1])
		}
	}
	return env
}

// devPolicyHint tells, in the start-up banner, how to watch the dev
// policy end octocat's access to /admin/, when the running configuration
// still has its rule and the fake GitHub runs; otherwise "".
func devPolicyHint(cfg config.Config, addr string, set *fakes.Set) string {
	gh := set.Fakes["github"]
	if gh == nil || !slices.ContainsFunc(cfg.Policy.Routes, func(r config.PolicyRoute) bool {
		return r.Prefix == devAdminPrefix && slices.Contains(r.Groups, devAdminGroup)
	}) {
		return ""
	}
	return fmt.Sprintf(`  policy: %s is for the GitHub team vintner/platform, re-checked every %v.
  Sign in with GitHub as octocat, open http://%s%s, then take octocat out of the team:
    curl -X POST %s%s -d '{"user":"octocat","groups":["vintner"]}'
  and within about %v %s shows why it is refused (put "vintner/platform" back to undo).
`, devAdminPrefix, cfg.Policy.RecheckInterval, addr, devAdminPrefix,
		gh.URL(), fakeprovider.ControlMembershipsPath, cfg.Policy.RecheckInterval, devAdminPrefix)
}

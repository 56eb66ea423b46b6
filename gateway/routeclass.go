package gateway

import (
	"github.com/gofiber/fiber/v2"
)

// RouteClass labels a request in logs and metrics by what kind of route
// served it. It is a small closed set, never a raw path, so that metric
// cardinality stays bounded however many distinct URLs clients send.
type RouteClass uint8

// Route classes. Routes set theirs through [Server.Mount] or
// [SetRouteClass]; a request nothing claims stays ClassOther.
const (
	// ClassOther is a request no route claimed: rejected before routing
	// (malformed, headers too large) or unmatched with the proxy disabled.
	ClassOther RouteClass = iota
	// ClassHealth is /healthz and /readyz.
	ClassHealth
	// ClassMetrics is /metrics.
	ClassMetrics
	// ClassProxy is a request relayed to the upstream.
	ClassProxy
	// ClassAuth is a sign-in, callback, logout or device-login route.
	ClassAuth
	// ClassAPI is Arbor's own JSON API.
	ClassAPI
	// ClassGit is the Git proxy (/git/…): clones and fetches relayed to a
	// provider's Git host.
	ClassGit

	numClasses
)

var classNames = [numClasses]string{"other", "health", "metrics", "proxy", "auth", "api", "git"}

// String returns the label value used in logs and metrics.
func (c RouteClass) String() string {
	if c >= numClasses {
		return "other"
	}
	return classNames[c]
}

// SetRouteClass labels the current request. Routes mounted with
// [Server.Mount] are labelled already; use this for routes added another way.
func SetRouteClass(c *fiber.Ctx, class RouteClass) {
	if st := stateOf(c); st != nil && class < numClasses {
		st.class = class
	}
}

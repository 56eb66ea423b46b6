package ratelimit

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/edge/reqbody"
)

// Route is one entry of the route table: the method and the path pattern
// as the handler package registers it, and the class it is charged to.
type Route struct {
	Method string
	Path   string
	Class  Class
	// ByGrant charges the RFC 8628 token endpoint by its grant_type:
	// the device code grant to DevicePoll, anything else to Refresh.
	ByGrant bool
}

// Table is the fixed route → class table. The paths are those of
// gateway/signin, gateway/pages and gateway/api; [Limits.Missing]
// reports an entry that no registration matched, so that a renamed route
// fails the start instead of losing its limit.
var Table = []Route{
	// Sign-in: each start writes (or seals) OAuth state and sends the
	// browser to a provider; each callback costs a code exchange.
	{Method: fiber.MethodGet, Path: "/auth/start/:provider", Class: SignIn},
	{Method: fiber.MethodGet, Path: "/auth/link/:provider", Class: SignIn},
	{Method: fiber.MethodGet, Path: "/auth/callback/:provider", Class: SignIn},
	{Method: fiber.MethodGet, Path: "/integrations/:provider/connect", Class: SignIn},
	// Device starts: each creates a pending login; entering a user code
	// is a guess at one.
	{Method: fiber.MethodPost, Path: "/api/auth/cli/start", Class: DeviceStart},
	{Method: fiber.MethodGet, Path: "/cli/login", Class: DeviceStart},
	{Method: fiber.MethodPost, Path: "/oauth/device/code", Class: DeviceStart},
	{Method: fiber.MethodPost, Path: "/device", Class: DeviceStart},
	// Polls, and the refresh of a CLI token.
	{Method: fiber.MethodPost, Path: "/api/auth/cli/exchange", Class: DevicePoll},
	{Method: fiber.MethodPost, Path: "/oauth/token", Class: DevicePoll, ByGrant: true},
	{Method: fiber.MethodPost, Path: "/api/auth/cli/refresh", Class: Refresh},
}

// grantDeviceCode is RFC 8628's grant_type (api.GrantDeviceCode).
const grantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

func routeID(method, path string) string { return method + " " + path }

// RouteHandler is a gateway.RouteHook: for each route a Mount call
// registers, the limiter to run in front of its handlers (after the
// gateway's entry handler, which caps the body). Every route gets the
// failed-authentication check; those in Table also their class's limit.
//
//	srv.Mount(gateway.ClassAuth, web.Routes, gateway.WithRouteHook(limits.RouteHandler))
//
// Routes under GitPrefix (the Git proxy, whose clients authenticate with
// HTTP Basic) count failures under GitFailedAuth instead of FailedAuth.
func (l *Limits) RouteHandler(method, path string) fiber.Handler {
	var rt *Route
	for i := range Table {
		if Table[i].Path == path && (Table[i].Method == method || method == "ALL") {
			rt = &Table[i]
			l.matched[routeID(Table[i].Method, path)] = true
			break
		}
	}
	auth := FailedAuth
	if strings.HasPrefix(path, GitPrefix) {
		auth = GitFailedAuth
	}
	return l.handler(rt, auth)
}

// GitPrefix is where the Git proxy's routes are (gitproxy.Prefix; this
// package does not import the proxy it limits).
const GitPrefix = "/git/"

// Missing lists the Table entries that no registration passed to Routes
// has matched, as "METHOD /path". The wiring calls it after mounting.
func (l *Limits) Missing() []string {
	var out []string
	for _, rt := range Table {
		if !l.matched[routeID(rt.Method, rt.Path)] {
			out = append(out, routeID(rt.Method, rt.Path))
		}
	}
	sort.Strings(out)
	return out
}

// MissingError is Missing as an error for the wiring to fail on, nil when
// every entry matched.
func (l *Limits) MissingError() error {
	if m := l.Missing(); len(m) > 0 {
		return fmt.Errorf("rate limits: the route table (gateway/edge/ratelimit.Table) names %s, which no handler registers; update the table to the route's new path", strings.Join(m, ", "))
	}
	return nil
}

// handler is the limiter in front of one route's handlers.
func (l *Limits) handler(rt *Route, auth Class) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if rt == nil && (l.keyed[auth] == nil || !hasCredentials(c)) {
			return c.Next() // nothing to charge
		}
		k, ok := clientKey(c)
		if !ok {
			return c.Next()
		}
		if rt != nil {
			class := rt.Class
			if rt.ByGrant {
				class = grantClass(c)
			}
			if err := l.take(c, class, k); err != nil {
				return err
			}
		}
		return l.checkAuth(c, k, auth, c.Next)
	}
}

// grantClass reads the token request's grant_type as the token endpoint
// does: from the form body, through reqbody (the gateway's entry handler
// has checked and capped it).
func grantClass(c *fiber.Ctx) Class {
	if reqbody.FormValue(c, "grant_type") == grantDeviceCode {
		return DevicePoll
	}
	return Refresh
}

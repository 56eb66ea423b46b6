package ratelimit

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"
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
// gateway/webauth, gateway/integrations and gateway/cliauth; [Limits.Missing]
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

// grantDeviceCode is RFC 8628's grant_type (cliauth.GrantDeviceCode).
const grantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

func routeID(method, path string) string { return method + " " + path }

// Routes wraps a gateway.Server.Mount registration function: every route
// it registers gets the failed-authentication check, and those in Table
// their class's limit, in front of its handlers (after the gateway's own
// entry handler, which caps the body).
//
//	srv.Mount(gateway.ClassAuth, limits.Routes(web.Routes))
func (l *Limits) Routes(register func(r fiber.Router)) func(r fiber.Router) {
	return func(r fiber.Router) { register(&router{r: r, l: l}) }
}

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
func (l *Limits) handler(rt *Route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if rt == nil && (l.keyed[FailedAuth] == nil || !hasCredentials(c)) {
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
		return l.checkAuth(c, k, c.Next)
	}
}

// grantClass reads the token request's grant_type from the query or the
// form body, where the token endpoint reads it. Only a form body is
// parsed, and the gateway has capped its size already.
func grantClass(c *fiber.Ctx) Class {
	g := c.Request().URI().QueryArgs().Peek("grant_type")
	if len(g) == 0 {
		g = c.Request().PostArgs().Peek("grant_type")
	}
	if string(g) == grantDeviceCode {
		return DevicePoll
	}
	return Refresh
}

// router is the fiber.Router handed to a wrapped registration.
type router struct {
	r      fiber.Router
	l      *Limits
	prefix string // of Group and Route, for matching the table
}

var _ fiber.Router = (*router)(nil)

func (rr *router) wrap(r fiber.Router, prefix string) fiber.Router {
	return &router{r: r, l: rr.l, prefix: prefix}
}

// chain puts the limiter in front of the handlers of method path.
func (rr *router) chain(method, path string, handlers []fiber.Handler) []fiber.Handler {
	full := rr.prefix + path
	var rt *Route
	for i := range Table {
		if Table[i].Path == full && (Table[i].Method == method || method == "ALL") {
			rt = &Table[i]
			rr.l.matched[routeID(Table[i].Method, full)] = true
			break
		}
	}
	return slices.Insert(slices.Clone(handlers), 0, rr.l.handler(rt))
}

func (rr *router) add(method, path string, handlers []fiber.Handler) fiber.Router {
	return rr.wrap(rr.r.Add(method, path, rr.chain(method, path, handlers)...), rr.prefix)
}

func (rr *router) Use(args ...interface{}) fiber.Router { return rr.wrap(rr.r.Use(args...), rr.prefix) }

func (rr *router) Get(path string, handlers ...fiber.Handler) fiber.Router {
	// Fiber registers a GET route for HEAD too; so does this.
	return rr.wrap(rr.r.Get(path, rr.chain(fiber.MethodGet, path, handlers)...), rr.prefix)
}

func (rr *router) Head(path string, handlers ...fiber.Handler) fiber.Router {
	return rr.add(fiber.MethodHead, path, handlers)
}

func (rr *router) Post(path string, handlers ...fiber.Handler) fiber.Router {
	return rr.add(fiber.MethodPost, path, handlers)
}

func (rr *router) Put(path string, handlers ...fiber.Handler) fiber.Router {
	return rr.add(fiber.MethodPut, path, handlers)
}

func (rr *router) Delete(path string, handlers ...fiber.Handler) fiber.Router {
	return rr.add(fiber.MethodDelete, path, handlers)
}

func (rr *router) Connect(path string, handlers ...fiber.Handler) fiber.Router {
	return rr.add(fiber.MethodConnect, path, handlers)
}

func (rr *router) Options(path string, handlers ...fiber.Handler) fiber.Router {
	return rr.add(fiber.MethodOptions, path, handlers)
}

func (rr *router) Trace(path string, handlers ...fiber.Handler) fiber.Router {
	return rr.add(fiber.MethodTrace, path, handlers)
}

func (rr *router) Patch(path string, handlers ...fiber.Handler) fiber.Router {
	return rr.add(fiber.MethodPatch, path, handlers)
}

func (rr *router) Add(method, path string, handlers ...fiber.Handler) fiber.Router {
	return rr.add(strings.ToUpper(method), path, handlers)
}

func (rr *router) All(path string, handlers ...fiber.Handler) fiber.Router {
	return rr.wrap(rr.r.All(path, rr.chain("ALL", path, handlers)...), rr.prefix)
}

func (rr *router) Static(prefix, root string, config ...fiber.Static) fiber.Router {
	return rr.wrap(rr.r.Static(prefix, root, config...), rr.prefix)
}

func (rr *router) Group(prefix string, handlers ...fiber.Handler) fiber.Router {
	return rr.wrap(rr.r.Group(prefix, handlers...), rr.prefix+prefix)
}

func (rr *router) Route(prefix string, fn func(router fiber.Router), name ...string) fiber.Router {
	return rr.wrap(rr.r.Route(prefix, func(r fiber.Router) { fn(rr.wrap(r, rr.prefix+prefix)) }, name...), rr.prefix+prefix)
}

func (rr *router) Mount(prefix string, app *fiber.App) fiber.Router {
	return rr.wrap(rr.r.Mount(prefix, app), rr.prefix)
}

func (rr *router) Name(name string) fiber.Router { return rr.wrap(rr.r.Name(name), rr.prefix) }

package gateway

import (
	"strings"

	"github.com/gofiber/fiber/v2"
)

// classRouter is the fiber.Router handed to Mount's callback. Every route
// registered through it gets the class's entry handler (label + body cap) in
// front of its own handlers, then the handler a WithRouteHook option gives
// for that route, if any. Middleware (Use, Group handlers) is registered
// unchanged: it runs for a whole prefix, including requests that fall
// through to the proxy, so it must not label them.
type classRouter struct {
	r      fiber.Router
	entry  fiber.Handler
	hook   RouteHook
	prefix string // of Group and Route, so that the hook sees full paths
}

var _ fiber.Router = (*classRouter)(nil)

func (cr *classRouter) wrap(r fiber.Router, prefix string) fiber.Router {
	return &classRouter{r: r, entry: cr.entry, hook: cr.hook, prefix: prefix}
}

// chain puts the entry handler and the hook's handler for method path in
// front of handlers.
func (cr *classRouter) chain(method, path string, handlers []fiber.Handler) []fiber.Handler {
	out := make([]fiber.Handler, 0, len(handlers)+2)
	out = append(out, cr.entry)
	if cr.hook != nil {
		if h := cr.hook(method, cr.prefix+path); h != nil {
			out = append(out, h)
		}
	}
	return append(out, handlers...)
}

func (cr *classRouter) add(method, path string, handlers []fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.Add(method, path, cr.chain(method, path, handlers)...), cr.prefix)
}

func (cr *classRouter) Use(args ...interface{}) fiber.Router {
	return cr.wrap(cr.r.Use(args...), cr.prefix)
}

func (cr *classRouter) Get(path string, handlers ...fiber.Handler) fiber.Router {
	// Fiber registers a GET route for HEAD too.
	return cr.wrap(cr.r.Get(path, cr.chain(fiber.MethodGet, path, handlers)...), cr.prefix)
}

func (cr *classRouter) Head(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.add(fiber.MethodHead, path, handlers)
}

func (cr *classRouter) Post(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.add(fiber.MethodPost, path, handlers)
}

func (cr *classRouter) Put(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.add(fiber.MethodPut, path, handlers)
}

func (cr *classRouter) Delete(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.add(fiber.MethodDelete, path, handlers)
}

func (cr *classRouter) Connect(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.add(fiber.MethodConnect, path, handlers)
}

func (cr *classRouter) Options(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.add(fiber.MethodOptions, path, handlers)
}

func (cr *classRouter) Trace(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.add(fiber.MethodTrace, path, handlers)
}

func (cr *classRouter) Patch(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.add(fiber.MethodPatch, path, handlers)
}

func (cr *classRouter) Add(method, path string, handlers ...fiber.Handler) fiber.Router {
	return cr.add(strings.ToUpper(method), path, handlers)
}

// All registers path for every method; the hook is asked with the method
// "ALL".
func (cr *classRouter) All(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.All(path, cr.chain("ALL", path, handlers)...), cr.prefix)
}

// Static serves files; such requests keep the route class of whatever else
// claims them (ClassOther unless a middleware sets one).
func (cr *classRouter) Static(prefix, root string, config ...fiber.Static) fiber.Router {
	return cr.wrap(cr.r.Static(prefix, root, config...), cr.prefix)
}

func (cr *classRouter) Group(prefix string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.Group(prefix, handlers...), cr.prefix+prefix)
}

func (cr *classRouter) Route(prefix string, fn func(router fiber.Router), name ...string) fiber.Router {
	full := cr.prefix + prefix
	return cr.wrap(cr.r.Route(prefix, func(r fiber.Router) { fn(cr.wrap(r, full)) }, name...), full)
}

func (cr *classRouter) Mount(prefix string, app *fiber.App) fiber.Router {
	return cr.wrap(cr.r.Mount(prefix, app), cr.prefix)
}

func (cr *classRouter) Name(name string) fiber.Router { return cr.wrap(cr.r.Name(name), cr.prefix) }

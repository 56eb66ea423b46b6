package gateway

import (
	"github.com/gofiber/fiber/v2"
)

// classRouter is the fiber.Router handed to Mount's callback. Every route
// registered through it gets the class's entry handler (label + body cap) in
// front of its own handlers. Middleware (Use, Group handlers) is registered
// unchanged: it runs for a whole prefix, including requests that fall
// through to the proxy, so it must not label them.
type classRouter struct {
	r     fiber.Router
	entry fiber.Handler
}

var _ fiber.Router = (*classRouter)(nil)

func (cr *classRouter) wrap(r fiber.Router) fiber.Router {
	return &classRouter{r: r, entry: cr.entry}
}

func (cr *classRouter) chain(handlers []fiber.Handler) []fiber.Handler {
	out := make([]fiber.Handler, 0, len(handlers)+1)
	return append(append(out, cr.entry), handlers...)
}

func (cr *classRouter) Use(args ...interface{}) fiber.Router { return cr.wrap(cr.r.Use(args...)) }

func (cr *classRouter) Get(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.Get(path, cr.chain(handlers)...))
}

func (cr *classRouter) Head(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.Head(path, cr.chain(handlers)...))
}

func (cr *classRouter) Post(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.Post(path, cr.chain(handlers)...))
}

func (cr *classRouter) Put(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.Put(path, cr.chain(handlers)...))
}

func (cr *classRouter) Delete(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.Delete(path, cr.chain(handlers)...))
}

func (cr *classRouter) Connect(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.Connect(path, cr.chain(handlers)...))
}

func (cr *classRouter) Options(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.Options(path, cr.chain(handlers)...))
}

func (cr *classRouter) Trace(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.Trace(path, cr.chain(handlers)...))
}

func (cr *classRouter) Patch(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.Patch(path, cr.chain(handlers)...))
}

func (cr *classRouter) Add(method, path string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.Add(method, path, cr.chain(handlers)...))
}

func (cr *classRouter) All(path string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.All(path, cr.chain(handlers)...))
}

// Static serves files; such requests keep the route class of whatever else
// claims them (ClassOther unless a middleware sets one).
func (cr *classRouter) Static(prefix, root string, config ...fiber.Static) fiber.Router {
	return cr.wrap(cr.r.Static(prefix, root, config...))
}

func (cr *classRouter) Group(prefix string, handlers ...fiber.Handler) fiber.Router {
	return cr.wrap(cr.r.Group(prefix, handlers...))
}

func (cr *classRouter) Route(prefix string, fn func(router fiber.Router), name ...string) fiber.Router {
	return cr.wrap(cr.r.Route(prefix, func(r fiber.Router) { fn(cr.wrap(r)) }, name...))
}

func (cr *classRouter) Mount(prefix string, app *fiber.App) fiber.Router {
	return cr.wrap(cr.r.Mount(prefix, app))
}

func (cr *classRouter) Name(name string) fiber.Router { return cr.wrap(cr.r.Name(name)) }

package pages

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/authn"
)

//go:embed layout.html
var layout embed.FS

// Names are the product names pages speak of (config ui.app_name and
// ui.worker_name). An empty one is the config's default.
type Names struct {
	App, Worker string
}

// WithDefaults fills an empty name with the config's default.
func (n Names) WithDefaults() Names {
	if n.App == "" {
		n.App = config.DefaultAppName
	}
	if n.Worker == "" {
		n.Worker = config.DefaultWorkerName
	}
	return n
}

// Templates parses the shared layout (the "head" and "foot" templates every
// page starts and ends with) and then the files of fsys that match
// patterns. The layout reads .Title, .Who (the signed-in person's name,
// empty for none), .Refresh (reload after 2 s) and .RequestID. Every
// template may call appName and workerName, which give names (defaults
// filled in). Without patterns (fsys may be nil) it is the layout alone.
func Templates(names Names, fsys fs.FS, patterns ...string) (*template.Template, error) {
	names = names.WithDefaults()
	t, err := template.New("layout.html").Funcs(template.FuncMap{
		"appName":    func() string { return names.App },
		"workerName": func() string { return names.Worker },
	}).ParseFS(layout, "layout.html")
	if err != nil || len(patterns) == 0 {
		return t, err
	}
	return t.ParseFS(fsys, patterns...)
}

// Render writes the page name of t with the page headers.
func Render(c *fiber.Ctx, t *template.Template, status int, name string, v any) error {
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name, v); err != nil {
		return fmt.Errorf("rendering page %s: %w", name, err)
	}
	Headers(c)
	c.Status(status)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.SendString(b.String())
}

// Who is how a page names the signed-in person: the login, or the e-mail
// address when there is no login.
func Who(id authn.Identity) string {
	if id.Login != "" {
		return id.Login
	}
	return id.Email
}

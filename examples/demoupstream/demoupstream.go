// Package demoupstream is the small app `arbor dev` puts behind the gateway:
// it shows who Arbor says is signed in and every header it received, so a
// newcomer can see exactly what an upstream behind Arbor gets.
package demoupstream

import (
	"encoding/json"
	"html/template"
	"net/http"
	"sort"
	"strings"
)

// WorkerPath is the demo's worker API: `arbor dev` makes it a worker
// route, so only registered Tendril workers reach it.
const WorkerPath = "/api/tendril/"

// Handler returns the demo app.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(WorkerPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "identity": identity(r)})
	})
	mux.HandleFunc("GET /api/whoami", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"identity": identity(r),
			"headers":  r.Header,
		})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		page.Execute(w, view{Path: r.URL.Path, Identity: identity(r), Headers: sortedHeaders(r)})
	})
	return mux
}

// identity collects the X-Arbor-* headers Arbor set.
func identity(r *http.Request) map[string]string {
	out := map[string]string{}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-arbor-") {
			out[k] = strings.Join(v, ", ")
		}
	}
	return out
}

type header struct{ Name, Value string }

type view struct {
	Path     string
	Identity map[string]string
	Headers  []header
}

func sortedHeaders(r *http.Request) []header {
	var hs []header
	for k, v := range r.Header {
		if strings.EqualFold(k, "Cookie") {
			v = []string{"(hidden)"}
		}
		hs = append(hs, header{k, strings.Join(v, ", ")})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Name < hs[j].Name })
	return hs
}

var page = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Trellis demo upstream</title>
<style>body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1f2d1f}
h1{color:#3c6e3c}table{border-collapse:collapse;width:100%}td{border-bottom:1px solid #ddd;padding:.3rem .5rem;font-family:monospace;font-size:.9rem;word-break:break-all}
.who{background:#eef6ee;border:1px solid #b9d8b9;border-radius:.5rem;padding:1rem}.who code{word-break:break-all}td:first-child{white-space:nowrap;word-break:normal}</style></head>
<body><h1>Trellis demo upstream</h1>
<p>This page is served by the demo app behind Arbor. Path: <code>{{.Path}}</code></p>
<div class="who">{{if .Identity}}<strong>Signed in.</strong> Arbor says:<ul>{{range $k, $v := .Identity}}<li><code>{{$k}}: {{$v}}</code></li>{{end}}</ul>
<p><a id="account" href="/auth/account">Account and sessions</a> · <a id="integrations" href="/integrations">Integrations (Git providers)</a></p>
{{else}}<strong>No identity headers:</strong> this request reached the app without a signed-in user.{{end}}</div>
<h2>Headers the app received</h2><table>{{range .Headers}}<tr><td>{{.Name}}</td><td>{{.Value}}</td></tr>{{end}}</table>
</body></html>`))

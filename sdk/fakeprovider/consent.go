package fakeprovider

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The consent page works without JavaScript: the form posts back to the
// authorization URL with every request parameter as a hidden field, the
// chosen fake user and the button pressed ("decision").
var consentTmpl = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Provider}} (fake) — Authorize {{.App}}?</title>
<style>
body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1f2328}
.card{border:1px solid #d0d7de;border-radius:8px;padding:1.5rem}
.fake{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.5rem .75rem;font-size:.9rem}
button{font-size:1rem;padding:.5rem 1.25rem;border-radius:6px;border:1px solid #d0d7de;cursor:pointer}
button[value=approve]{background:#1f883d;color:#fff;border-color:#1a7f37}
code{background:#f6f8fa;padding:0 .25rem}
</style>
</head>
<body>
<div class="card">
<h1>{{.Provider}} (fake) — Authorize {{.App}}?</h1>
<p class="fake">This is a fake {{.Provider}} run by Arbor for development and tests. No real account is involved.</p>
<p><strong>{{.App}}</strong> wants to access your {{.Provider}} account and will be sent back to <code>{{.Redirect}}</code>.</p>
{{if .Scopes}}<p>Requested permissions:</p>
<ul>{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>{{else}}<p>No extra permissions requested.</p>{{end}}
<form method="post">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<p><label for="fake_user">Signed in as</label>
<select id="fake_user" name="fake_user">
{{range .Users}}<option value="{{.Login}}"{{if .Selected}} selected{{end}}>{{.Login}}{{if .Name}} ({{.Name}}){{end}}</option>
{{end}}</select></p>
<p><button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button></p>
</form>
</div>
</body>
</html>
`))

var errorTmpl = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Provider}} (fake) — {{.Code}}</title></head>
<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem">
<h1>{{.Provider}} (fake): {{.Code}}</h1>
<p>{{.Message}}</p>
</body>
</html>
`))

type hiddenField struct{ Name, Value string }

type consentUser struct {
	Login, Name string
	Selected    bool
}

func (p *Provider) consentPage(w http.ResponseWriter, ar *authRequest, login string) {
	var hidden []hiddenField
	keys := make([]string, 0, len(ar.params))
	for k := range ar.params {
		if k != "fake_user" && k != "fake_auto" && k != "decision" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range ar.params[k] {
			hidden = append(hidden, hiddenField{k, v})
		}
	}
	sel := p.findUser(login)
	users := make([]consentUser, len(p.cfg.Users))
	for i := range p.cfg.Users {
		u := &p.cfg.Users[i]
		users[i] = consentUser{Login: u.Login, Name: u.Name, Selected: u == sel}
	}
	redirect := ar.redirectURI
	if u, err := url.Parse(redirect); err == nil {
		redirect = u.Scheme + "://" + u.Host + u.Path
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	consentTmpl.Execute(w, map[string]any{
		"Provider": p.cfg.Name, "App": p.cfg.AppName, "Redirect": redirect,
		"Scopes": p.grantScopes(ar.scopes), "Hidden": hidden, "Users": users,
	})
}

func errorPage(w http.ResponseWriter, provider string, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	errorTmpl.Execute(w, map[string]string{"Provider": provider, "Code": code, "Message": strings.TrimSpace(msg)})
}

package pages

import (
	"strings"
	"testing"
	"testing/fstest"
)

// TestTemplatesNames: pages get the product names from Templates' names;
// with the defaults the layout is byte for byte what it was when the names
// were written into it.
func TestTemplatesNames(t *testing.T) {
	fsys := fstest.MapFS{"p.html": {Data: []byte(`{{define "p"}}{{template "head" .}}<p>{{appName}} · {{workerName}}</p>{{template "foot" .}}{{end}}`)}}
	data := map[string]any{"Title": "Workers", "Who": "octocat", "RequestID": "r1"}
	const before = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Workers · Arbor</title><link rel="stylesheet" href="/auth/assets/arbor.css"></head>
<body><header class="bar"><a class="brand" href="/">Trellis</a><a class="who" href="/auth/account">octocat</a></header>` +
		`<p>Trellis · Tendril</p><footer>Protected by Arbor · request <code>r1</code></footer></body></html>`
	for _, tc := range []struct {
		names Names
		want  string
	}{
		{Names{}, before},
		{Names{App: "Trellis", Worker: "Tendril"}, before},
		{Names{App: "Acme <Cloud>", Worker: "Runner"}, strings.NewReplacer(
			`href="/">Trellis</a>`, `href="/">Acme &lt;Cloud&gt;</a>`,
			"<p>Trellis · Tendril</p>", "<p>Acme &lt;Cloud&gt; · Runner</p>").Replace(before)},
	} {
		tpl, err := Templates(tc.names, fsys, "p.html")
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := tpl.ExecuteTemplate(&b, "p", data); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("names %+v:\n got %s\nwant %s", tc.names, b.String(), tc.want)
		}
	}
}

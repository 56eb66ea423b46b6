package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeProductNamesFromConfig: `arbor serve` names the app on its pages
// as ui.app_name says, and with the default as before ("Trellis").
func TestServeProductNamesFromConfig(t *testing.T) {
	te := newTestEnv(t)
	for _, tc := range []struct {
		env  []string
		want []string
		not  string
	}{
		{nil, []string{`<a class="brand" href="/">Trellis</a>`, "<h1>Sign in to Trellis</h1>"}, "Acme"},
		{[]string{"ARBOR_UI_APP_NAME=Acme Cloud"}, []string{`<a class="brand" href="/">Acme Cloud</a>`, "<h1>Sign in to Acme Cloud</h1>"}, "Trellis"},
	} {
		s := startServe(t, te.with(tc.env...))
		resp, err := http.Get("http://" + s.addr + "/auth/sign-in")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(b)
		for _, w := range tc.want {
			if !strings.Contains(page, w) {
				t.Errorf("%v: the sign-in page (%d) lacks %q:\n%s", tc.env, resp.StatusCode, w, page)
			}
		}
		if strings.Contains(page, tc.not) {
			t.Errorf("%v: the sign-in page names %q:\n%s", tc.env, tc.not, page)
		}
		if err := s.stop(t); err != nil {
			t.Logf("stop: %v", err)
		}
	}
}

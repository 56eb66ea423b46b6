package fakeprovider_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// postOnly is an endpoint that takes only a POSTed form, and what it
// answers to anything else.
type postOnly struct {
	name        string
	cfg         func() fakeprovider.Config
	url         func(fakeprovider.Endpoints) string
	notPost     string // the error_description of the 405
	badFormCode int    // the status of the invalid_request for a bad form
}

// TestPostOnlyEndpoints: the token endpoint and the form-posted revocation
// endpoints answer another method with 405 and Allow: POST, and a body
// that is not a form with 400 (a token endpoint error, so 200 for GitHub,
// which answers its errors so).
func TestPostOnlyEndpoints(t *testing.T) {
	for _, tc := range []postOnly{
		{"GitLab token", fakeprovider.GitLab, func(e fakeprovider.Endpoints) string { return e.TokenURL }, "The token endpoint accepts POST only.", 400},
		{"GitHub token", fakeprovider.GitHub, func(e fakeprovider.Endpoints) string { return e.TokenURL }, "The token endpoint accepts POST only.", 200},
		{"GitLab revoke (RFC 7009)", fakeprovider.GitLab, func(e fakeprovider.Endpoints) string { return e.RevokeURL }, "Use POST.", 400},
		{"Google revoke", fakeprovider.Google, func(e fakeprovider.Endpoints) string { return e.RevokeURL }, "Use POST.", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, tc.cfg())
			u := tc.url(p.Endpoints())
			send := func(method, body string) (*http.Response, map[string]any) {
				req, err := http.NewRequest(method, u, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Accept", "application/json")
				resp, err := noFollow.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var v map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
					t.Fatalf("%s %s: %d, body not JSON: %v", method, u, resp.StatusCode, err)
				}
				return resp, v
			}
			resp, v := send(http.MethodGet, "")
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" ||
				v["error"] != "invalid_request" || v["error_description"] != tc.notPost {
				t.Errorf("GET: %d, Allow %q, %v; want 405, POST, invalid_request %q", resp.StatusCode, resp.Header.Get("Allow"), v, tc.notPost)
			}
			resp, v = send(http.MethodPost, "token=%zz")
			if resp.StatusCode != tc.badFormCode || v["error"] != "invalid_request" || v["error_description"] != "The request body is not a valid form." {
				t.Errorf("POST with a bad form: %d, %v; want %d invalid_request", resp.StatusCode, v, tc.badFormCode)
			}
		})
	}
}

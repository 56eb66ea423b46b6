package webauth_test

// Helpers of the Integrations page that this package's full-stack tests
// still use (ratelimit_test.go, device_test.go); the Integrations tests
// themselves are in gateway/integrations, on app/apptest.

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var stateRE = regexp.MustCompile(`id="card-([a-z0-9_-]+)" data-provider="[^"]*" data-state="([a-z_]+)"`)

// cards returns provider → state from the Integrations page.
func cards(t *testing.T, b *browser) map[string]string {
	t.Helper()
	res := b.Get("/integrations")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("Integrations page: %d\n%s", res.StatusCode, res.Body)
	}
	out := map[string]string{}
	for _, m := range stateRE.FindAllStringSubmatch(res.Body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// connectProvider runs "Connect" on the Integrations page through the fake.
func connectProvider(t *testing.T, b *browser, provider string) {
	t.Helper()
	res := b.Get("/integrations/" + provider + "/connect")
	if res.StatusCode != http.StatusFound {
		t.Fatalf("connect %s: %d %s", provider, res.StatusCode, res.Body)
	}
	res = b.Get(b.Approve(res.Location(), ""))
	if res.StatusCode != http.StatusFound || !strings.HasSuffix(res.Location(), "/integrations?notice=connected") {
		t.Fatalf("connect callback: %d → %q\n%s", res.StatusCode, res.Location(), res.Body)
	}
}

func getJSON(t *testing.T, b *browser, path string, into any) *response {
	t.Helper()
	res := b.Get(path)
	if into != nil && res.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(res.Body), into); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, res.Body)
		}
	}
	return res
}

type tokenJSON struct {
	Provider    string  `json:"provider"`
	AccessToken string  `json:"access_token"`
	ExpiresAt   *string `json:"expires_at"`
}

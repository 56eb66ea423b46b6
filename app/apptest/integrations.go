package apptest

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// cardRE finds each provider card of the Integrations page and its state.
var cardRE = regexp.MustCompile(`id="card-([a-z0-9_-]+)" data-provider="[^"]*" data-state="([a-z_]+)"`)

// IntegrationCards returns provider → state (connected, needs_reconnect,
// …) as the Integrations page shows them to b.
func IntegrationCards(t *testing.T, b *Browser) map[string]string {
	t.Helper()
	res := b.Get("/integrations")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("Integrations page: %d\n%s", res.StatusCode, res.Body)
	}
	out := map[string]string{}
	for _, m := range cardRE.FindAllStringSubmatch(res.Body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// ConnectProvider runs "Connect" on the Integrations page for b through
// the provider's fake, which approves at once.
func ConnectProvider(t *testing.T, b *Browser, provider string) {
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

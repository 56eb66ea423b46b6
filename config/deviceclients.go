package config

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/vintner/arbor/gateway/authz/scope"
)

// DeviceClient is an RFC 8628 client Arbor accepts at /oauth/device/code
// (cli.device_clients). Only registered clients may start a device login:
// an unknown client_id gets 400 invalid_client and nothing is stored. The
// approval page shows Name, never text from the request, and the client's
// tokens can do only what Scopes allow (docs/cli-login.md, "Device clients
// and scopes"). Grape, the first-party CLI, is built in and not listed.
type DeviceClient struct {
	// ID is the client_id the client sends: 1 to 64 letters, digits, '.',
	// '_' or '-'; unique; "grape" is reserved.
	ID string `yaml:"id"`
	// Name is shown to the user on the approval page ("Trellis desktop"):
	// 1 to 40 printable characters.
	Name string `yaml:"name"`
	// Scopes the client may be granted: providers, workers, proxy. At
	// least one. A request asking for none gets all of these.
	Scopes []string `yaml:"scopes"`
}

var deviceClientID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// validateDeviceClients checks cli.device_clients, cli.issuer and
// cli.audience.
func (c CLI) validateDeviceClients(cliName string, bad func(key, format string, args ...any)) {
	if c.Audience == "" || len(c.Audience) > 256 {
		bad("cli.audience", "%q: want 1 to 256 characters (default arbor-cli)", c.Audience)
	}
	if len(c.Issuer) > 256 {
		bad("cli.issuer", "want at most 256 characters (default: public_url)")
	}
	seen := map[string]bool{}
	for i, d := range c.DeviceClients {
		entry := func(format string, args ...any) {
			bad("cli.device_clients", "entry "+strconv.Itoa(i)+": "+format, args...)
		}
		switch {
		case !deviceClientID.MatchString(d.ID):
			entry("id %q: want 1 to 64 letters, digits, '.', '_' or '-'", d.ID)
		case strings.EqualFold(d.ID, "grape"):
			entry("id %q is reserved for %s, the built-in CLI", d.ID, cliName)
		case seen[d.ID]:
			entry("id %q appears twice; client ids must be unique", d.ID)
		}
		seen[d.ID] = true
		if n := strings.TrimSpace(d.Name); n == "" || len(d.Name) > 40 || strings.IndexFunc(d.Name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			entry("name %q: want 1 to 40 printable characters, shown on the approval page", d.Name)
		}
		if len(d.Scopes) == 0 {
			entry("scopes empty: list the scopes the client may have (%s)", strings.Join(scope.Names(), ", "))
		} else if _, err := scope.Parse(strings.Join(d.Scopes, " ")); err != nil {
			entry("scopes: %v", err)
		}
	}
}

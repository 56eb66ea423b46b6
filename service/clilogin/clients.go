package clilogin

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/internal/printable"
	"github.com/vintner/arbor/internal/scopeset"
)

// Registered device clients: the defence against RFC 8628 phishing.
//
// RFC 8628 lets any program start a device login and show the user a link
// to Arbor's /device page with the code filled in. Arbor therefore accepts
// only the clients the operator registered (config cli.device_clients): an
// unknown client_id is refused before anything is stored, the approval page
// shows the registered name (never text from the request), the machine
// that asked (its address as Arbor saw it, and its User-Agent as the device
// reported it) and what the token will be allowed to do, and the token
// carries only the scopes the client is allowed (gateway/authz/scope).
// Those are checked again on every use against the configuration of the
// moment: a client removed from the configuration loses its logins at
// once, and one whose scopes were narrowed keeps only what is still
// allowed.
//
// Grape, the first-party CLI, is a built-in client with every scope; its
// login pages show the name config ui.cli_name (gateway/pages' CLI).

// GrapeClientID is the first-party CLI's fixed client id.
const GrapeClientID = "grape"

// flowRFC8628 marks the refresh families of RFC 8628 logins (ClientInfo
// "flow"); the others are Grape's.
const flowRFC8628 = "device authorization"

// ClientInfo keys Arbor sets itself; keys a client sends with this prefix
// are dropped.
const (
	infoPrefix    = "arbor:"
	infoAddress   = "arbor:address"
	infoUserAgent = "arbor:user_agent"
)

// DeviceClient is a registered RFC 8628 client.
type DeviceClient struct {
	ID     string
	Name   string
	Scopes scopeset.Set
}

func newClientRegistry(list []DeviceClient) (map[string]DeviceClient, error) {
	m := make(map[string]DeviceClient, len(list))
	for _, d := range list {
		switch {
		case d.ID == "" || d.Name == "":
			return nil, errors.New("clilogin: a DeviceClient needs an ID and a Name")
		case d.ID == GrapeClientID:
			return nil, fmt.Errorf("clilogin: device client id %q is reserved", d.ID)
		case d.Scopes == 0 || d.Scopes&^scopeset.All != 0:
			return nil, fmt.Errorf("clilogin: device client %q: scopes must be a non-empty subset of %q", d.ID, scopeset.All.String())
		}
		if _, dup := m[d.ID]; dup {
			return nil, fmt.Errorf("clilogin: device client id %q appears twice", d.ID)
		}
		m[d.ID] = d
	}
	return m, nil
}

// grantedScopes is what a login's tokens may do now. A Grape login may do
// everything. An RFC 8628 login may do what was granted at login (every
// scope for a login made before scopes existed) within what its client is
// allowed today; zero means the login must be refused: its client is no
// longer registered.
func (s *Service) grantedScopes(f data.RefreshFamily) scopeset.Set {
	if f.ClientInfo["flow"] != flowRFC8628 {
		return scopeset.All
	}
	g := scopeset.All
	if f.Scope != "" {
		g = scopeset.ParseKnown(f.Scope)
	}
	return g & s.clients[f.ClientID].Scopes // zero when unregistered
}

// machineInfo records the address a device request came from and the
// User-Agent it sent, for the approval page.
func machineInfo(from From, info map[string]string) map[string]string {
	if info == nil {
		info = map[string]string{}
	}
	info[infoAddress] = printable.Clean(from.Addr, 64)
	if ua := printable.Clean(from.UserAgent, 120); ua != "" {
		info[infoUserAgent] = ua
	}
	return info
}

// Machine is what an approval page shows of the requesting machine.
type Machine struct {
	Address   string
	UserAgent string
	// Info is what the device said of itself (Grape's client_info).
	Info []KV
}

// KV is one entry of Machine.Info.
type KV struct{ Key, Value string }

func machineOf(info map[string]string) Machine {
	m := Machine{Address: info[infoAddress], UserAgent: info[infoUserAgent]}
	for k, v := range info {
		if !strings.HasPrefix(k, infoPrefix) {
			m.Info = append(m.Info, KV{k, v})
		}
	}
	sort.Slice(m.Info, func(i, j int) bool { return m.Info[i].Key < m.Info[j].Key })
	if m.Address == "" {
		m.Address = "(not recorded)"
	}
	return m
}

// Client returns the registered RFC 8628 client id.
func (s *Service) Client(id string) (DeviceClient, bool) {
	d, ok := s.clients[id]
	return d, ok
}

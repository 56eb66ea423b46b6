// Package manifest reads and checks plugin.json, the description that sits
// beside a plugin's module: its name, ABI version, module hash, operations,
// endpoints, scopes, allowed hosts and requested limits.
//
// It is a separate package from abi because the guest does not need it:
// abi is linked into every plugin, and the manifest's JSON, URL and
// hashing code would add over a megabyte to each module (and with it load
// time).
package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/vintner/arbor/sdk/abi"
)

// File is the manifest's file name, beside the module.
const File = "plugin.json"

// Kind says what a provider is used for.
type Kind string

const (
	// KindLogin: signing in to Arbor.
	KindLogin Kind = "login"
	// KindGit: connecting accounts and listing repositories.
	KindGit Kind = "git"
	// KindBoth: both.
	KindBoth Kind = "both"
)

// Login reports whether k can be used to sign in.
func (k Kind) Login() bool { return k == KindLogin || k == KindBoth }

// Git reports whether k can be connected as a Git provider.
func (k Kind) Git() bool { return k == KindGit || k == KindBoth }

// Manifest describes a plugin. It is stored as plugin.json beside the module
// and decoded strictly: an unknown key is an error, so a typo does not go
// unnoticed.
type Manifest struct {
	// Name identifies the plugin in configuration, URLs and the store
	// ("github"): lower case letters, digits, '-' and '_', at most 32.
	Name string `json:"name"`
	// DisplayName is shown on buttons ("GitHub"). Default: Name.
	DisplayName string `json:"display_name,omitempty"`
	// Version is the plugin's own version, for people ("1.2.0").
	Version string `json:"version"`
	// ABIVersion must equal Version (1).
	ABIVersion int `json:"abi_version"`
	// Module is the module's file name beside the manifest.
	// Default: Name + ".wasm".
	Module string `json:"module,omitempty"`
	// SHA256 is the hex SHA-256 of the module; the host refuses a module
	// that does not match.
	SHA256 string `json:"sha256"`
	// Kind is login, git or both.
	Kind Kind `json:"kind"`
	// Operations lists what the plugin implements, by name ("exchange").
	// It must match what the module reports, and include authorize and
	// exchange; login plugins need user, git plugins need repos.
	Operations []string `json:"operations"`
	// Endpoints are the provider's default URLs; the operator may override
	// each one. Their hosts are implicitly allowed outbound hosts.
	Endpoints abi.Endpoints `json:"endpoints"`
	// Scopes are the default scopes per purpose.
	Scopes Scopes `json:"scopes"`
	// PKCE says whether the provider accepts PKCE (S256).
	PKCE bool `json:"pkce"`
	// AllowedHosts are the other hosts the plugin may reach through
	// http_do: "api.example.com", "example.com:8443" (that port only) or
	// "*.example.com" (subdomains, not example.com itself).
	AllowedHosts []string `json:"allowed_hosts,omitempty"`
	// Limits are requests; the operator's policy clamps them.
	Limits Limits `json:"limits"`
}

// Scopes are default OAuth scopes. Login and repository access often need
// different grants (GitHub: read:user user:email versus repo).
type Scopes struct {
	Login []string `json:"login,omitempty"`
	Git   []string `json:"git,omitempty"`
	// Groups are the scopes the groups operation needs on top of Login
	// (GitHub: read:org). The host asks for them at sign-in only when the
	// operator's policy uses this provider's groups. Only a plugin whose
	// operations include groups may list them.
	Groups []string `json:"groups,omitempty"`
}

// Limits a plugin asks for. Zero means the host's default.
type Limits struct {
	// MemoryPages is the linear memory limit in 64 KiB pages.
	MemoryPages uint32 `json:"memory_pages,omitempty"`
	// TimeoutMS is the deadline of one call (guest CPU and HTTP) in
	// milliseconds.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// ResponseBytes caps one HTTP response body.
	ResponseBytes int64 `json:"response_bytes,omitempty"`
}

// Parse decodes and validates a manifest.
func Parse(b []byte) (*Manifest, error) {
	// Look at the ABI version first: a manifest written for another
	// version may have keys this one does not know, and "unknown key" would
	// hide the real problem.
	var probe struct {
		Name       string `json:"name"`
		ABIVersion int    `json:"abi_version"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if probe.ABIVersion != abi.Version {
		return nil, abi.VersionError(probe.Name, "its manifest declares", probe.ABIVersion)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if dec.More() {
		return nil, errors.New("manifest: trailing data after the JSON object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks the manifest and fills in defaults (DisplayName, Module).
func (m *Manifest) Validate() error {
	if !validName(m.Name) {
		return fmt.Errorf("manifest: name %q must be 1-32 lower case letters, digits, '-' or '_', starting with a letter", m.Name)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("manifest of plugin %q: "+format, append([]any{m.Name}, args...)...)
	}
	if m.ABIVersion != abi.Version {
		return abi.VersionError(m.Name, "its manifest declares", m.ABIVersion)
	}
	if m.DisplayName == "" {
		m.DisplayName = m.Name
	}
	if strings.TrimSpace(m.Version) == "" {
		return fail("version is missing")
	}
	if m.Module == "" {
		m.Module = m.Name + ".wasm"
	}
	if strings.ContainsAny(m.Module, `/\`) || m.Module == "." || m.Module == ".." || !strings.HasSuffix(m.Module, ".wasm") {
		return fail("module %q must be a file name ending in .wasm, beside the manifest", m.Module)
	}
	if len(m.SHA256) != 64 || strings.ToLower(m.SHA256) != m.SHA256 {
		return fail("sha256 must be the module's SHA-256 as 64 lower case hex digits")
	}
	if _, err := hex.DecodeString(m.SHA256); err != nil {
		return fail("sha256 must be the module's SHA-256 as 64 lower case hex digits")
	}
	switch m.Kind {
	case KindLogin, KindGit, KindBoth:
	default:
		return fail("kind %q must be login, git or both", m.Kind)
	}
	ops, err := m.OpSet()
	if err != nil {
		return fail("%v", err)
	}
	for _, need := range []abi.Op{abi.OpAuthorize, abi.OpExchange} {
		if !ops.Has(need) {
			return fail("operations must include %q", need)
		}
	}
	if m.Kind.Login() && !ops.Has(abi.OpUser) {
		return fail("kind %q needs the \"user\" operation", m.Kind)
	}
	if m.Kind.Git() && !ops.Has(abi.OpRepos) {
		return fail("kind %q needs the \"repos\" operation", m.Kind)
	}
	if len(m.Scopes.Groups) > 0 && !ops.Has(abi.OpGroups) {
		return fail("scopes.groups is for the \"groups\" operation, which operations does not list")
	}
	for key, u := range map[string]string{
		"authorize_url": m.Endpoints.AuthorizeURL, "token_url": m.Endpoints.TokenURL,
		"api_base": m.Endpoints.APIBase, "revoke_url": m.Endpoints.RevokeURL,
	} {
		if err := CheckEndpoint(u); err != nil {
			return fail("endpoints.%s: %v", key, err)
		}
	}
	for _, h := range m.AllowedHosts {
		if err := CheckHostPattern(h); err != nil {
			return fail("allowed_hosts: %v", err)
		}
	}
	if m.Limits.MemoryPages > 65536 || m.Limits.TimeoutMS < 0 || m.Limits.ResponseBytes < 0 {
		return fail("limits must be positive (memory_pages at most 65536)")
	}
	return nil
}

// OpSet returns the manifest's operations as a set.
func (m *Manifest) OpSet() (abi.OpSet, error) {
	var s abi.OpSet
	for _, name := range m.Operations {
		o, ok := abi.ParseOp(name)
		if !ok {
			return 0, fmt.Errorf("unknown operation %q (known: %s)", name, allOps())
		}
		if s.Has(o) {
			return 0, fmt.Errorf("operation %q listed twice", name)
		}
		s = s.With(o)
	}
	return s, nil
}

// VerifyModule checks module against the manifest's SHA256.
func (m *Manifest) VerifyModule(module []byte) error {
	sum := sha256.Sum256(module)
	if got := hex.EncodeToString(sum[:]); got != m.SHA256 {
		return fmt.Errorf("plugin %q: module %s has SHA-256 %s but the manifest says %s: "+
			"the module was changed or replaced after the manifest was written; rebuild the plugin "+
			"(arbor plugin build) or restore the matching module", m.Name, m.Module, got, m.SHA256)
	}
	return nil
}

// CheckEndpoint reports whether u is empty or an absolute http(s) URL
// without user information, query or fragment.
func CheckEndpoint(u string) error {
	if u == "" {
		return nil
	}
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", u, err)
	}
	if (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return fmt.Errorf("%q must be an absolute http or https URL", u)
	}
	if p.User != nil || p.Fragment != "" {
		return fmt.Errorf("%q must not contain user information or a fragment", u)
	}
	return nil
}

// CheckHostPattern reports whether p is a valid allowed-host entry: a host
// name or IP address, optionally with ":port", or "*." followed by a
// domain.
func CheckHostPattern(p string) error {
	if p == "" || strings.ContainsAny(p, "/@?# ") {
		return fmt.Errorf("%q must be a host, host:port or *.domain (no scheme or path)", p)
	}
	host, port := p, ""
	if h, pt, err := net.SplitHostPort(p); err == nil {
		host, port = h, pt
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port must be 1-65535", p)
		}
	}
	host = strings.TrimPrefix(host, "*.")
	if host == "" || strings.Contains(host, "*") {
		return fmt.Errorf("%q: a wildcard may only be a leading \"*.\"", p)
	}
	return nil
}

func allOps() string {
	var names []string
	for _, o := range abi.Ops {
		names = append(names, o.String())
	}
	return strings.Join(names, ", ")
}

// validName reports whether s matches ^[a-z][a-z0-9_-]{0,31}$.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Package scopeset is the set of permissions a CLI access token can carry
// (package gateway/authz/scope explains why there are scopes): the Set,
// its names and words. It is apart from gateway/authz/scope, which answers
// a token lacking a scope over HTTP, so that the CLI login service
// (service/clilogin) and its token format (service/clilogin/clitoken),
// which speak no HTTP, can grant and read scopes; gateway/authz/scope
// re-exports it under its old names.
package scopeset

import (
	"fmt"
	"strings"
)

// Set is a set of scopes. The zero Set allows nothing.
type Set uint8

// The scopes.
const (
	Providers Set = 1 << iota
	Workers
	Proxy

	// All is every scope: Grape's, and that of a token without a scope
	// claim.
	All = Providers | Workers | Proxy
)

var names = []struct {
	s           Set
	name, words string
}{
	{Providers, "providers", "read your Git provider access tokens and repository lists through Arbor"},
	{Workers, "workers", "register, rotate and revoke " + workerName + " workers (long-lived worker tokens) in your name"},
	{Proxy, "proxy", "use the app as you"},
}

// Names lists the scope names, in a fixed order.
func Names() []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n.name
	}
	return out
}

// Parse reads a space-separated list of scope names (RFC 6749 3.3). An
// unknown name is an error; duplicates are allowed.
func Parse(s string) (Set, error) {
	var out Set
	for _, f := range strings.Fields(s) {
		one, ok := byName(f)
		if !ok {
			return 0, fmt.Errorf("unknown scope %q (known: %s)", f, strings.Join(Names(), ", "))
		}
		out |= one
	}
	return out, nil
}

// ParseKnown reads a space-separated list and ignores names it does not
// know: a token's claim, which a newer Arbor may have minted.
func ParseKnown(s string) Set {
	var out Set
	for _, f := range strings.Fields(s) {
		one, _ := byName(f)
		out |= one
	}
	return out
}

func byName(name string) (Set, bool) {
	for _, n := range names {
		if n.name == name {
			return n.s, true
		}
	}
	return 0, false
}

// Has reports whether every scope of need is in s.
func (s Set) Has(need Set) bool { return s&need == need }

// String is the space-separated list of names, in a fixed order.
func (s Set) String() string {
	var b strings.Builder
	for _, n := range names {
		if s&n.s != 0 {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(n.name)
		}
	}
	return b.String()
}

// workerName stands in the words for the workers' product name (config
// ui.worker_name), which Words puts in.
const workerName = "\x00worker"

// Words describes each scope of s in plain words, for an approval page;
// worker is what the workers are called (config ui.worker_name).
func (s Set) Words(worker string) []string {
	var out []string
	for _, n := range names {
		if s&n.s != 0 {
			out = append(out, strings.ReplaceAll(n.words, workerName, worker))
		}
	}
	return out
}

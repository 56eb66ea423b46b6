// Package abi is the contract between Arbor's WebAssembly plugin host
// (package plugins) and provider plugins (package sdk/plugin): export and
// import names, operations, error codes, the messages that cross the boundary
// and the plugin manifest.
//
// Both sides import this package, so it imports nothing of Arbor's and
// compiles for GOOS=wasip1 GOARCH=wasm. docs/plugin-abi.md explains every
// choice made here; this comment is the short version.
//
// # Calls
//
// The host writes an encoded request into a buffer it gets from the plugin's
// allocator export (ExportAlloc), then calls one export per operation with
// (ptr, len). The export returns the location of an encoded Result packed
// into an i64 as ptr<<32 | len. Both buffers belong to the plugin and stay
// valid until the plugin's next export is called, so the host never
// allocates inside the guest while guest code is running.
//
// During a call the plugin may call the host's http_do and log imports from
// the module named HostModule. http_do writes the response into a buffer the
// plugin supplies if it fits and returns its length either way; a plugin
// whose buffer was too small grows it and calls http_take to collect the
// held response. The host therefore never re-enters the guest to allocate.
//
// # Encoding
//
// Messages use a hand-written subset of the protocol buffers wire format
// (varints and length-delimited fields, unknown fields skipped). It needs no
// reflection, which matters because WithCloseOnContextDone, which the host
// must use to stop runaway plugins, makes reflective guest code several times
// slower; see docs/plugin-abi.md for the measurements. Fields are numbered so
// that a later minor revision of ABI v1 can add fields without breaking
// plugins built against this one.
//
// # Versioning
//
// The ABI version is part of the host module name (arbor_v1) and of the
// marker export (arbor_abi_v1). A plugin built for another version imports a
// module this host does not provide, and the host refuses it at load time
// with a message that names both versions.
package abi

import (
	"errors"
	"strconv"
	"strings"
)

// Version is the ABI version this package describes.
const Version = 1

// HostModule is the name of the module the host's functions are imported
// from. It carries the ABI version so that a plugin built for another
// version fails to link instead of misbehaving.
const HostModule = "arbor_v1"

// hostModulePrefix is what every ABI version's host module starts with.
const hostModulePrefix = "arbor_v"

// Plugin exports.
const (
	// ExportMarker is func() i32. Its presence marks a module as an Arbor
	// ABI v1 plugin; it returns the operations the plugin implements as an
	// OpSet so the host can compare them with the manifest.
	ExportMarker = "arbor_abi_v1"
	// ExportAlloc is func(size i32) i32: it returns a plugin-owned buffer of
	// at least size bytes, valid until the next export call, or 0 if the
	// plugin could not allocate one.
	ExportAlloc = "arbor_alloc"
	// ExportMemory is the plugin's linear memory.
	ExportMemory = "memory"
	// ExportInitialize is the reactor initialiser emitted by
	// go build -buildmode=c-shared; the host runs it once per instance.
	ExportInitialize = "_initialize"

	// markerPrefix is what every ABI version's marker export starts with.
	markerPrefix = "arbor_abi_v"
)

// EnvPlugin is the environment variable the host sets in every instance
// it creates: the name of the plugin (its manifest's "name") the instance
// serves. A module that carries one provider may ignore it. A module that
// carries several (Arbor's built-in plugins are one module, so that they
// share one compiled copy of the Go runtime and libraries) acts as the
// provider it names: sdk/plugin's RegisterAs.
const EnvPlugin = "ARBOR_PLUGIN"

// Host imports, all in HostModule.
const (
	// ImportHTTPDo is func(req_ptr, req_len, buf_ptr, buf_cap i32) i32.
	// The host performs the encoded HTTPRequest and returns the length of
	// the encoded HTTPResponse. If that length is at most buf_cap the
	// response was written at buf_ptr; otherwise the host holds it until
	// http_take is called or the call ends.
	ImportHTTPDo = "http_do"
	// ImportHTTPTake is func(buf_ptr, buf_cap i32) i32. It writes the
	// response held by the last http_do if it fits and returns its length;
	// it returns -1 if no response is held.
	ImportHTTPTake = "http_take"
	// ImportLog is func(level, ptr, len i32): a log line at a slog level
	// (-4 debug, 0 info, 4 warn, 8 error).
	ImportLog = "log"
)

// ParseHostModule reports the ABI version encoded in a host module name such
// as "arbor_v2". ok is false if name is not an Arbor host module.
func ParseHostModule(name string) (version int, ok bool) {
	return parseVersioned(name, hostModulePrefix)
}

// ParseMarker reports the ABI version encoded in a marker export name such
// as "arbor_abi_v2". ok is false if name is not a marker.
func ParseMarker(name string) (version int, ok bool) {
	return parseVersioned(name, markerPrefix)
}

func parseVersioned(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" {
		return 0, false
	}
	v, err := strconv.Atoi(rest)
	if err != nil || v <= 0 {
		return 0, false
	}
	return v, true
}

// Op is one operation a plugin can implement.
type Op uint8

// Operations. The numeric values are the bit positions in OpSet and are part
// of the ABI.
const (
	// OpAuthorize returns the query parameters of the provider's
	// authorization URL (AuthorizeRequest → AuthorizeResult).
	OpAuthorize Op = iota
	// OpExchange exchanges an authorization code for tokens
	// (ExchangeRequest → Token).
	OpExchange
	// OpRefresh uses a refresh token (RefreshRequest → Token).
	OpRefresh
	// OpRevoke revokes a grant or token (RevokeRequest → empty).
	OpRevoke
	// OpUser returns the signed-in user (UserRequest → User).
	OpUser
	// OpRepos lists repositories one page at a time
	// (ReposRequest → RepoPage).
	OpRepos
	// OpGroups returns the groups the user belongs to, by the provider's
	// own names (GroupsRequest → Groups). It was added within v1: a plugin
	// built before it has no arbor_groups export and its marker's OpSet
	// lacks it, so the host answers unsupported for it and loads it as
	// before.
	OpGroups
	// OpGitHost says where the provider's Git host is and which HTTP Basic
	// user name goes with an OAuth token as password
	// (GitHostRequest → GitHost). It was added within v1 after OpGroups:
	// a plugin built before it has no arbor_git_host export and its
	// marker's OpSet lacks it; it loads as before and has no Git host
	// unless the operator configures one.
	OpGitHost

	numOps
)

// Ops lists every operation in ABI order.
var Ops = [...]Op{OpAuthorize, OpExchange, OpRefresh, OpRevoke, OpUser, OpRepos, OpGroups, OpGitHost}

var opNames = [numOps]string{"authorize", "exchange", "refresh", "revoke", "user", "repos", "groups", "git_host"}

var opExports = [numOps]string{
	"arbor_authorize", "arbor_exchange", "arbor_refresh", "arbor_revoke", "arbor_user", "arbor_repos",
	"arbor_groups", "arbor_git_host",
}

// String returns the operation's manifest name ("exchange").
func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Export returns the name of the export that implements o
// ("arbor_exchange"). Its signature is func(ptr, len i32) i64.
func (o Op) Export() string {
	if o < numOps {
		return opExports[o]
	}
	return ""
}

// ParseOp returns the operation with the manifest name s.
func ParseOp(s string) (Op, bool) {
	for i, n := range opNames {
		if n == s {
			return Op(i), true
		}
	}
	return 0, false
}

// OpSet is a set of operations, one bit per Op.
type OpSet uint32

// Has reports whether o is in s.
func (s OpSet) Has(o Op) bool { return s&(1<<o) != 0 }

// With returns s with o added.
func (s OpSet) With(o Op) OpSet { return s | 1<<o }

// String lists the operations in s ("authorize,exchange").
func (s OpSet) String() string {
	var b strings.Builder
	for _, o := range Ops {
		if s.Has(o) {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(o.String())
		}
	}
	return b.String()
}

// Code is a stable error code carried in a Result. Callers branch on it;
// the accompanying message is for people.
type Code string

// Error codes. A plugin reports the first group; the host adds the second.
const (
	// CodeInvalidRequest: the request lacked something the operation needs.
	CodeInvalidRequest Code = "invalid_request"
	// CodeInvalidGrant: the provider rejected the code or refresh token;
	// the user must sign in or reconnect again.
	CodeInvalidGrant Code = "invalid_grant"
	// CodeInvalidClient: the provider rejected the client id or secret; the
	// operator must fix the configuration.
	CodeInvalidClient Code = "invalid_client"
	// CodeInvalidToken: the provider rejected the access token (expired or
	// revoked); refresh it or reconnect.
	CodeInvalidToken Code = "invalid_token"
	// CodeUnsupported: the plugin does not implement the operation.
	CodeUnsupported Code = "unsupported"
	// CodeProviderError: the provider answered with an unexpected error.
	CodeProviderError Code = "provider_error"
	// CodeRateLimited: the provider asked us to slow down. The Result's
	// RetryAfter says for how long.
	CodeRateLimited Code = "rate_limited"

	// CodeHostNotAllowed: http_do refused the destination (not in the
	// manifest's allow-list, a forbidden address, or a forbidden redirect).
	CodeHostNotAllowed Code = "host_not_allowed"
	// CodeTimeout: the call's deadline passed (guest CPU or http_do).
	CodeTimeout Code = "timeout"
	// CodeResponseTooLarge: an HTTP response exceeded the response cap.
	CodeResponseTooLarge Code = "response_too_large"
	// CodeUnavailable: the plugin is closed, or the provider could not be
	// reached.
	CodeUnavailable Code = "unavailable"
	// CodeInternal: the plugin crashed, trapped, broke the ABI or returned
	// an error without a code.
	CodeInternal Code = "internal"
)

// Bounds of Result.RetryAfter, in seconds. A rate_limited result without
// RetryAfter (a plugin built before the field existed, or a provider that
// said nothing) means DefaultRetryAfter: GitHub's "wait for at least one
// minute before retrying" when it gives no header
// (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit).
// The host clamps a reported value to MinRetryAfter..MaxRetryAfter: a
// provider's clock or a broken header must not make Arbor tell its callers
// to come back in a year, or hammer the provider without pause.
const (
	DefaultRetryAfter = 60
	MinRetryAfter     = 1
	MaxRetryAfter     = 3600
)

// ClampRetryAfter returns seconds within MinRetryAfter..MaxRetryAfter, and
// DefaultRetryAfter for a value that is not positive (unknown). (Any
// positive whole number of seconds is at least MinRetryAfter.)
func ClampRetryAfter(seconds int64) int {
	switch {
	case seconds <= 0:
		return DefaultRetryAfter
	case seconds > MaxRetryAfter:
		return MaxRetryAfter
	}
	return int(seconds)
}

// ErrABIVersion is wrapped by the errors that report a plugin built for
// another ABI version.
var ErrABIVersion = errors.New("unsupported ABI version")

// VersionError reports a plugin of ABI version v; where says how that was
// found ("the module was built for", "its manifest declares").
func VersionError(plugin, where string, v int) error {
	if plugin == "" {
		plugin = "(unnamed)"
	}
	return &versionError{msg: "plugin " + strconv.Quote(plugin) + ": " + where + " ABI v" + strconv.Itoa(v) +
		", but this Arbor supports ABI v" + strconv.Itoa(Version) + " only: rebuild the plugin with an Arbor SDK for ABI v" +
		strconv.Itoa(Version) + ", or run an Arbor release that supports v" + strconv.Itoa(v)}
}

type versionError struct{ msg string }

func (e *versionError) Error() string { return e.msg }
func (e *versionError) Unwrap() error { return ErrABIVersion }

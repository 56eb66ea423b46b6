// Package plugins is Arbor's WebAssembly plugin host. Every provider's
// quirks (GitHub's form-encoded token answers, Bitbucket's Basic client
// authentication, GitLab's rotating refresh tokens) live in a plugin, so
// that adding a provider never touches the gateway, and a bug in one cannot
// read another user's data, reach the internal network or take the process
// down.
//
// # Why WebAssembly, and what the sandbox enforces
//
// A plugin is a wasip1 reactor module, normally built with the standard Go
// toolchain (package sdk/plugin), plus a manifest (plugin.json); any
// language that can produce such a module works (examples/gitea-rust is in
// Rust; docs/plugin-abi.md, "Plugins in other languages"). The host runs it with
// wazero and grants it nothing but a wall clock, randomness and two host
// functions: http_do and log. Each call:
//
//   - runs on an instance from a bounded pool (instantiation costs 6-9 ms
//     and ~5.5 MB, so never per request; instances are not goroutine-safe,
//     so one call per instance). The pool grows under concurrent calls up
//     to Policy.PoolSize and shrinks back to Policy.KeepWarm instances
//     (default none) once the others have gone unused for
//     Policy.IdleTimeout, so that neither the load's instances nor a
//     burst's stay resident. A plugin with no instance for
//     Policy.CodeIdleTimeout also releases its compiled code, and its next
//     call compiles the module again (from the on-disk cache: tens of
//     milliseconds);
//   - has one deadline covering guest CPU and HTTP (WithCloseOnContextDone
//     is always on: it is the only thing that stops a runaway loop);
//   - has a memory limit (default 32 MiB) enforced per instance by a
//     bounded memory allocator, although the runtime is shared;
//   - carries only what its operation needs (the client secret goes only to
//     exchange, refresh and revoke; one user's tokens at most).
//
// http_do allows only the manifest's hosts, the plugin's endpoints and the
// operator's additions; it resolves names itself and refuses loopback,
// link-local (169.254.169.254), private, unique-local and other special
// addresses unless the operator allowed that host, dials exactly the
// address it checked, re-checks every redirect, insists on https for
// public hosts and caps the response (package internal/netguard).
//
// An instance that trapped, crashed, timed out, broke the ABI or tripped a
// sandbox rule is closed and replaced: a trap does not close it, and its
// state can no longer be trusted. Healthy instances are replaced too after
// MaxCallsPerInstance calls or past a memory high-water mark, because guest
// memory never shrinks.
//
// # Loading and reloading
//
// Load checks everything it can before the first call: the manifest
// (strictly decoded), the module's SHA-256, every export and import and its
// signature (naming what is missing, and saying so when a module was built
// for another ABI version) and the initial memory against the limit, all
// before spending a second on compilation (package internal/wasmbin); then
// that the operations the module implements match the manifest. A Registry
// loads a directory (and embedded built-ins through fs.FS); Reload swaps a
// changed plugin behind its stable *Plugin handle, lets calls in flight
// finish on the old version, and keeps the old version serving if the new
// one fails to load.
//
// # Errors
//
// Every call returns *Error with a stable abi.Code and a retryable flag;
// use errors.As. Messages never contain the client secret or the call's
// tokens: the host removes them from plugin log lines and error messages.
// A rate_limited error carries RetryAfter, how long the provider asked to
// wait: 60 s when the plugin did not say (a plugin built before the ABI
// had the field), and never outside 1 s .. 1 h.
//
// docs/plugin-abi.md describes the ABI and the reasons behind it.
package plugins

// Package authz decides, for every request relayed to the upstream,
// whether it may reach the upstream and what the upstream learns of the
// caller. It is where the answers of two other places meet:
//
//   - the route classes (package access) say what a path needs: nothing
//     (Public), a browser session (Session: an anonymous page load is
//     redirected to sign-in) or a session or token (API: 401 JSON);
//   - the chain (package gateway/authn) says who is calling: worker
//     credentials on worker routes, else a session cookie or a CLI token.
//
// The [Gate] joins them. [Gate.Guard] is gateway.Options.Guard: it runs
// before every proxied request, classifies the path, asks the chain, keeps
// the identity on the request ([IdentityOf]) and stops what may not pass.
// [Gate.Director] is gateway.Options.Director: once the proxy has stripped
// every client-sent identity header, it writes Arbor's own (the [Headers],
// and the signed assertion of package assertion) and removes Arbor's
// cookies and the caller's credentials, so the upstream learns who is
// calling and never anything it could replay.
//
// A newcomer follows a proxied request from gateway/server.go to
// gateway.Options.Guard to here.
//
// # Policy
//
// Who may be signed in at all (policy.allow) is decided where the caller
// is found: the chain consults [Members] (the membership service) for
// every session, CLI token and worker, on every route it guards, and
// refuses with the Verdict's code (403, in words). Which signed-in users
// may reach which paths (policy.routes) is decided here, by
// GateOptions.Rules on the Member the chain found; the Director passes
// the Member's visible groups on (the groups header and claim). Package
// policy compiles both from config; docs/policy.md tells the whole story.
//
// # The hot path
//
// Guard and Director run on every proxied request: an authenticated
// request costs one allocation (the identity kept for Director), an
// anonymous one none (BenchmarkGuard). Header names are canonicalised
// once, in NewGate.
package authz

import "github.com/vintner/arbor/gateway/authn"

// Members answers a user's standing (membership.Member, with the policy's
// Verdict): the membership service implements it, and the chain consults
// it (authn.Config.Members) for every authenticated user. It is
// authn.Members, named here too because authorization is what it is for.
type Members = authn.Members
